package hmp

// info mtree: hmp_info_mtree (softmmu/memory.c mtree_info), the memory region tree as
// package memtree renders it (x-tlcvm-info-mtree).

func mtreeCommands() []Command {
	return []Command{
		{Info: true, Name: "mtree", Args: "flatview:-f,dispatch_tree:-d,owner:-o,disabled:-D",
			Params: "[-f][-d][-o][-D]",
			Help: "show memory tree (-f: dump flat view for address spaces;-d: dump dispatch tree, " +
				"valid with -f only);-o: dump region owners/parents;-D: dump disabled regions",
			Run: func(c *Call) {
				args := map[string]bool{}
				for _, k := range []string{"flatview", "dispatch_tree", "owner", "disabled"} {
					if c.Args.Bool(k) {
						args[k] = true
					}
				}
				var r textReply
				if !c.Fail(c.Query("x-tlcvm-info-mtree", args, &r)) {
					c.Print(r.Text)
				}
			}},
	}
}
