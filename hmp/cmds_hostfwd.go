package hmp

// hostfwd_add and hostfwd_remove: hmp_hostfwd_add and hmp_hostfwd_remove (net/slirp.c) on a
// user back-end (the first one without a netdev id), through package netdev's operations
// (x-tlcvm-hostfwd-add, x-tlcvm-hostfwd-remove), which give the text QEMU prints.

func hostFwdCommands() []Command {
	run := func(name string) func(c *Call) {
		return func(c *Call) {
			a := map[string]string{}
			arg1, _ := c.Args.Str("arg1")
			if arg2, ok := c.Args.Str("arg2"); ok {
				a["netdev"], a["rule"] = arg1, arg2
			} else {
				a["rule"] = arg1
			}
			var r textReply
			if !c.Fail(c.Query(name, a, &r)) {
				c.Print(r.Text)
			}
		}
	}
	return []Command{
		{Name: "hostfwd_add", Args: "arg1:s,arg2:s?",
			Params: "[netdev_id] [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport",
			Help:   "redirect TCP or UDP connections from host to guest (requires -net user)",
			Run:    run("x-tlcvm-hostfwd-add")},
		{Name: "hostfwd_remove", Args: "arg1:s,arg2:s?",
			Params: "[netdev_id] [tcp|udp]:[hostaddr]:hostport",
			Help:   "remove host-to-guest TCP or UDP redirection",
			Run:    run("x-tlcvm-hostfwd-remove")},
	}
}
