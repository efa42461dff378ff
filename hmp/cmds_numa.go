package hmp

// info numa: hmp_info_numa prints x-query-numa's text.

func numaCommands() []Command {
	return []Command{
		{Info: true, Name: "numa", Params: "", Help: "show NUMA information",
			Run: func(c *Call) {
				var r humanReadableText
				if !c.Fail(c.Query("x-query-numa", nil, &r)) {
					c.Print(r.Text)
				}
			}},
	}
}
