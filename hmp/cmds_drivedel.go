package hmp

// drive_del: hmp_drive_del (block/monitor/block-hmp-cmds.c) through x-tlcvm-drive-del. Its
// errors are error_report's: the text alone, no "Error: ".

func driveDelCommands() []Command {
	return []Command{
		{Name: "drive_del", Args: "id:B", Params: "device", Help: "remove host block device",
			Run: func(c *Call) {
				id, _ := c.Args.Str("id")
				if _, err := c.Execute("x-tlcvm-drive-del", map[string]string{"id": id}); err != nil {
					c.Print(err.Error() + "\n")
				}
			}},
	}
}
