package hmp

// gpa2hva, gpa2hpa: hmp_gpa2hva and hmp_gpa2hpa (monitor/misc.c) print the host address of
// a guest-physical address, through x-tlcvm-gpa2hva; its errors print as error_report_err.

func gpaCommands() []Command {
	type reply struct {
		Region string `json:"region"`
		HVA    uint64 `json:"hva"`
		HPA    uint64 `json:"hpa"`
	}
	return []Command{
		{Name: "gpa2hva", Args: "addr:l", Params: "addr",
			Help: "print the host virtual address corresponding to a guest physical address",
			Run: func(c *Call) {
				addr := uint64(argInt(c, "addr"))
				var r reply
				if err := c.Query("x-tlcvm-gpa2hva", map[string]any{"addr": addr}, &r); err != nil {
					c.Printf("%s\n", err) // error_report_err: no "Error: "
					return
				}
				c.Printf("Host virtual address for 0x%x (%s) is %#x\n", addr, r.Region, r.HVA)
			}},
		{Name: "gpa2hpa", Args: "addr:l", Params: "addr",
			Help: "print the host physical address corresponding to a guest physical address",
			Run: func(c *Call) {
				addr := uint64(argInt(c, "addr"))
				var r reply
				if err := c.Query("x-tlcvm-gpa2hva", map[string]any{"addr": addr, "physical": true}, &r); err != nil {
					c.Printf("%s\n", err)
					return
				}
				c.Printf("Host physical address for 0x%x (%s) is 0x%x\n", addr, r.Region, r.HPA)
			}},
	}
}
