package hmp

// info qtree: hmp_info_qtree (softmmu/qdev-monitor.c), the device tree as package qdev
// renders it (x-tlcvm-info-qtree).

func qtreeCommands() []Command {
	return []Command{
		{Info: true, Name: "qtree", Params: "", Help: "show device tree",
			Run: func(c *Call) {
				var r textReply
				if !c.Fail(c.Query("x-tlcvm-info-qtree", nil, &r)) {
					c.Print(r.Text)
				}
			}},
	}
}
