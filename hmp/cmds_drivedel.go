package hmp

import (
	"encoding/json"

	"tlcvm/compat/qerror"
)

// drive_del and drive_add: hmp_drive_del and hmp_drive_add (block/monitor/block-hmp-cmds.c)
// through x-tlcvm-drive-del and x-tlcvm-drive-add. Their errors are error_report's: the text
// alone, no "Error: ". drive_add's PCI address is ignored, as QEMU ignores it; -n (a
// blockdev node from the options) is not supported.

func driveDelCommands() []Command {
	return []Command{
		{Name: "drive_del", Args: "id:B", Params: "device", Help: "remove host block device",
			Run: func(c *Call) {
				id, _ := c.Args.Str("id")
				if _, err := c.Execute("x-tlcvm-drive-del", map[string]string{"id": id}); err != nil {
					c.Print(err.Error() + "\n" + qerror.Hint(err))
				}
			}},
		{Name: "drive_add", Args: "node:-n,pci_addr:s,opts:s",
			Params: "[-n] [[<domain>:]<bus>:]<slot>\n[file=file][,if=type][,bus=n]\n[,unit=m][,media=d][,index=i]\n" +
				"[,snapshot=on|off][,cache=on|off]\n[,readonly=on|off][,copy-on-read=on|off]",
			Help: "add drive to PCI storage controller",
			Run: func(c *Call) {
				opts, _ := c.Args.Str("opts")
				if c.Args.Bool("node") {
					c.Print("tlcvm: drive_add -n is not supported; use blockdev-add\n")
					return
				}
				raw, err := c.Execute("x-tlcvm-drive-add", map[string]string{"opts": opts})
				if err != nil {
					c.Print(err.Error() + "\n" + qerror.Hint(err))
					return
				}
				var r textReply
				if json.Unmarshal(raw, &r) == nil {
					c.Print(r.Text)
				}
			}},
	}
}
