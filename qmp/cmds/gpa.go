package cmds

import (
	"tlcvm/machine"
	"tlcvm/machine/memtree"
	"tlcvm/qmp"
)

// x-tlcvm-gpa2hva serves HMP gpa2hva and gpa2hpa (monitor/misc.c; no QMP twin in QEMU
// 7.2): the host address of a guest-physical address's byte. tlcvm's guest RAM is host
// memory mapped by this process, so the virtual address is where the byte really is, and
// with physical the host physical address comes from /proc/self/pagemap (frame numbers
// read as zero unless root).
//
// QEMU's gpa2hva asks memory_region_find: no region there is "No memory is mapped at
// address 0x…", device registers "Memory at address 0x… is not RAM". tlcvm loads no
// firmware, so its ROM regions (pc.bios, isa-bios, pc.rom) have no host memory: they
// answer as device registers do, where QEMU prints its ROM's host address.

// hostAddresser is what the machine offers for it.
type hostAddresser interface {
	HostAddr(gpa uint64) (block string, hva uintptr, ok bool)
}

// Gpa2hvaArgs are x-tlcvm-gpa2hva's arguments.
type Gpa2hvaArgs struct {
	Addr     uint64 `json:"addr"`
	Physical bool   `json:"physical,omitempty"`
}

// Gpa2hvaInfo is its reply: the region's name and the host virtual address, and with
// physical the host physical one.
type Gpa2hvaInfo struct {
	Region string `json:"region"`
	HVA    uint64 `json:"hva"`
	HPA    uint64 `json:"hpa,omitempty"`
}

func registerGpa(r *qmp.Registry, d *Deps) {
	h, ok := d.Machine.(hostAddresser)
	if !ok {
		return
	}
	r.Register(qmp.Command{Name: "x-tlcvm-gpa2hva", Internal: true, Args: &Gpa2hvaArgs{}, Returns: Gpa2hvaInfo{},
		Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*Gpa2hvaArgs)
			name := ""
			if d.MemoryTree != nil {
				reg, _, found := d.MemoryTree().Find("memory", a.Addr)
				if !found {
					return nil, qmp.GenericError("No memory is mapped at address 0x%x", a.Addr)
				}
				if reg.Kind != memtree.RAM {
					return nil, qmp.GenericError("Memory at address 0x%x is not RAM", a.Addr)
				}
				name = reg.Name
			}
			block, hva, found := h.HostAddr(a.Addr)
			if !found {
				return nil, qmp.GenericError("No memory is mapped at address 0x%x", a.Addr)
			}
			if name == "" {
				name = block
			}
			info := Gpa2hvaInfo{Region: name, HVA: uint64(hva)}
			if a.Physical {
				pa, err := machine.HostPhysAddr(hva)
				if err != nil {
					return nil, err
				}
				info.HPA = pa
			}
			return info, nil
		}})
}
