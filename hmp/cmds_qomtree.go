package hmp

// info qom-tree: hmp_info_qom_tree, the QOM composition tree from /machine or a path, as
// package qomtree renders it (x-tlcvm-info-qom-tree).

func qomTreeCommands() []Command {
	return []Command{
		{Info: true, Name: "qom-tree", Args: "path:s?", Params: "[path]",
			Help: "show QOM composition tree",
			Run: func(c *Call) {
				args := map[string]string{}
				if p, ok := c.Args.Str("path"); ok {
					args["path"] = p
				}
				var r textReply
				if !c.Fail(c.Query("x-tlcvm-info-qom-tree", args, &r)) {
					c.Print(r.Text)
				}
			}},
	}
}
