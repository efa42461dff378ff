package cmds

import "tlcvm/qmp"

// x-tlcvm-gva2gpa serves HMP gva2gpa (no QMP twin in QEMU 7.2): a guest virtual address
// translated by a vCPU's page tables.

// virtTranslator is what the machine offers for it.
type virtTranslator interface {
	VirtToPhys(cpu int, va uint64) (pa uint64, ok bool, err error)
}

// Gva2gpaArgs are x-tlcvm-gva2gpa's arguments.
type Gva2gpaArgs struct {
	CPUIndex int64  `json:"cpu-index"`
	Addr     uint64 `json:"addr"`
}

// Gva2gpaInfo is its reply: the physical address, when mapped.
type Gva2gpaInfo struct {
	Mapped bool   `json:"mapped"`
	GPA    uint64 `json:"gpa"`
}

func registerGva(r *qmp.Registry, d *Deps) {
	t, ok := d.Machine.(virtTranslator)
	if !ok {
		return
	}
	r.Register(qmp.Command{Name: "x-tlcvm-gva2gpa", Internal: true, Args: &Gva2gpaArgs{}, Returns: Gva2gpaInfo{},
		Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*Gva2gpaArgs)
			if !d.cpuExists(a.CPUIndex) {
				return nil, qmp.GenericError("Parameter 'cpu-index' expects a CPU number")
			}
			pa, ok, err := t.VirtToPhys(int(a.CPUIndex), a.Addr)
			if err != nil {
				return nil, err
			}
			return Gva2gpaInfo{Mapped: ok, GPA: pa}, nil
		}})
}
