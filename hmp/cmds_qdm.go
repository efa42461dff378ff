package hmp

// info qdm: hmp_info_qdm (softmmu/qdev-monitor.c), every device model as -device help lists
// them, the no-user ones included, as package catalog renders them (x-tlcvm-info-qdm).

func qdmCommands() []Command {
	return []Command{
		{Info: true, Name: "qdm", Params: "", Help: "show qdev device model list",
			Run: func(c *Call) {
				var r textReply
				if !c.Fail(c.Query("x-tlcvm-info-qdm", nil, &r)) {
					c.Print(r.Text)
				}
			}},
	}
}
