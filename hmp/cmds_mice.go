package hmp

// info mice (hmp_info_mice, through query-mice), mouse_set (hmp_mouse_set: qemu_mouse_set
// through x-tlcvm-mouse-set; its error is printed without "Error: ", as error_report_err
// does in a monitor) and dumpdtb (hmp_dumpdtb).

type mouseInfo struct {
	Index    int64  `json:"index"`
	Name     string `json:"name"`
	Current  bool   `json:"current"`
	Absolute bool   `json:"absolute"`
}

func miceCommands() []Command {
	return []Command{
		{Info: true, Name: "mice", Params: "", Help: "show which guest mouse is receiving events",
			Run: func(c *Call) {
				var mice []mouseInfo
				if c.Fail(c.Query("query-mice", nil, &mice)) {
					return
				}
				if len(mice) == 0 {
					c.Print("No mouse devices connected\n")
					return
				}
				for _, m := range mice {
					cur, abs := ' ', ""
					if m.Current {
						cur = '*'
					}
					if m.Absolute {
						abs = " (absolute)"
					}
					c.Printf("%c Mouse #%d: %s%s\n", cur, m.Index, m.Name, abs)
				}
			}},
		{Name: "mouse_set", Args: "index:i", Params: "index", Help: "set which mouse device receives events",
			Run: func(c *Call) {
				idx, _ := c.Args.Int("index")
				if _, err := c.Execute("x-tlcvm-mouse-set", map[string]int64{"index": idx}); err != nil {
					c.Print(err.Error() + "\n")
				}
			}},
		{Name: "dumpdtb", Args: "filename:F", Params: "filename",
			Help: "dump the FDT in dtb format to 'filename'",
			Run: func(c *Call) {
				f, _ := c.Args.Str("filename")
				c.Do("dumpdtb", map[string]any{"filename": f})
			}},
	}
}
