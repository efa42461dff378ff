package hmp

// info vm-generation-id: hmp_info_vm_generation_id, through query-vm-generation-id.

func vmgenidCommands() []Command {
	return []Command{
		{Info: true, Name: "vm-generation-id", Params: "", Help: "Show Virtual Machine Generation ID",
			Run: func(c *Call) {
				var g struct {
					GUID string `json:"guid"`
				}
				if c.Fail(c.Query("query-vm-generation-id", nil, &g)) {
					return
				}
				c.Printf("%s\n", g.GUID)
			}},
	}
}
