package hmp

// info usernet: hmp_info_usernet (net/slirp.c), the user back-ends' socket tables as
// package netdev renders them (x-tlcvm-info-usernet).

func userNetCommands() []Command {
	return []Command{
		{Info: true, Name: "usernet", Params: "", Help: "show user network stack connection states",
			Run: func(c *Call) {
				var r textReply
				if !c.Fail(c.Query("x-tlcvm-info-usernet", nil, &r)) {
					c.Print(r.Text)
				}
			}},
	}
}
