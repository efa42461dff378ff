package hmp

import "fmt"

// gva2gpa: hmp_gva2gpa — the monitor's current CPU translates the page of addr
// (cpu_get_phys_page_attrs_debug), through x-tlcvm-gva2gpa.

func gvaCommands() []Command {
	return []Command{
		{Name: "gva2gpa", Args: "addr:l", Params: "addr",
			Help: "print the guest physical address corresponding to a guest virtual address",
			Run: func(c *Call) {
				addr := uint64(argInt(c, "addr"))
				cpu, ok := c.CPU()
				if !ok {
					c.Print("No cpu\n")
					return
				}
				var r struct {
					Mapped bool   `json:"mapped"`
					GPA    uint64 `json:"gpa"`
				}
				args := map[string]any{"cpu-index": cpu, "addr": addr &^ 0xfff}
				if c.Fail(c.Query("x-tlcvm-gva2gpa", args, &r)) {
					return
				}
				if !r.Mapped {
					c.Print("Unmapped\n")
					return
				}
				c.Printf("gpa: %s\n", cHexAlt(r.GPA+addr&0xfff))
			}},
	}
}

// cHexAlt is C's "%#lx": 0x-prefixed hex, but a bare 0 for zero.
func cHexAlt(v uint64) string {
	if v == 0 {
		return "0"
	}
	return fmt.Sprintf("%#x", v)
}
