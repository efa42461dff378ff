package hmp

// info ramblock: hmp_info_ramblock prints x-query-ramblock's text.

func ramBlockCommands() []Command {
	return []Command{
		{Info: true, Name: "ramblock", Params: "", Help: "Display system ramblock information",
			Run: func(c *Call) {
				var r humanReadableText
				if !c.Fail(c.Query("x-query-ramblock", nil, &r)) {
					c.Print(r.Text)
				}
			}},
	}
}
