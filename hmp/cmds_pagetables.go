package hmp

import "encoding/binary"

// info tlb and info mem: target/i386/monitor.c's hmp_info_tlb and hmp_info_mem over the
// guest's page tables, read through x-tlcvm-read-memory (physical) and the control
// registers of x-tlcvm-registers, for the monitor's current CPU. 4-level long mode is
// walked as tlb_info_la48 and mem_info_la48 do; with paging off both print "PG disabled".
// tlcvm's guest uses no 32-bit paging and no LA57: those walks print nothing.

const (
	pgPresent  = 1 << 0
	pgRW       = 1 << 1
	pgUser     = 1 << 2
	pgPWT      = 1 << 3
	pgPCD      = 1 << 4
	pgAccessed = 1 << 5
	pgDirty    = 1 << 6
	pgPSE      = 1 << 7
	pgGlobal   = 1 << 8
	pgNX       = 1 << 63

	ptAddrMask = 0x3fffffffff000 // the walks' table address mask
)

// pagingState reads the current CPU's paging registers; ok=false when there is no CPU
// (printed as QEMU does).
func (c *Call) pagingState() (cpu int, cr0, cr3, cr4, efer uint64, ok bool) {
	cpu, ok = c.CPU()
	if !ok {
		c.Print("No CPU available\n")
		return
	}
	var r registersInfo
	if c.Fail(c.Query("x-tlcvm-registers", registersArgs{CPUIndex: cpu}, &r)) {
		return cpu, 0, 0, 0, 0, false
	}
	regs := parseRegisterDump(r.Text)
	get := func(n string) uint64 {
		if v := regs[n]; len(v) > 0 {
			return v[0]
		}
		return 0
	}
	return cpu, get("CR0"), get("CR3"), get("CR4"), get("EFER"), true
}

// pageTable reads the 512 entries of the table at physical addr (zeros where the read
// fails, as unassigned memory reads in QEMU).
func (c *Call) pageTable(cpu int, addr uint64) []uint64 {
	out := make([]uint64, 512)
	b, err := c.readMemory(addr, 4096, true, cpu)
	if err != nil {
		return out
	}
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return out
}

// canonical is addr_canonical: bit 47 sign-extended.
func canonical(a uint64) uint64 {
	if a&(1<<47) != 0 {
		a |= 0xffff << 48
	}
	return a
}

// pageWalk runs the la48 walk: leaf for each present page (va, entry, the mask of its
// address bits, the protection the levels above allow), hole for each entry that is not
// present (va, the level's address), in address order.
func (c *Call) pageWalk(cpu int, cr3 uint64, leaf func(va, pte, mask, prot uint64), hole func(va uint64)) {
	const prot = pgUser | pgRW | pgPresent
	pml4 := c.pageTable(cpu, cr3&ptAddrMask)
	for l1, pml4e := range pml4 {
		v1 := uint64(l1) << 39
		if pml4e&pgPresent == 0 {
			hole(v1)
			continue
		}
		pdp := c.pageTable(cpu, pml4e&ptAddrMask)
		for l2, pdpe := range pdp {
			v2 := v1 + uint64(l2)<<30
			if pdpe&pgPresent == 0 {
				hole(v2)
				continue
			}
			if pdpe&pgPSE != 0 {
				leaf(v2, pdpe, 0x3ffffc0000000, pdpe&prot&pml4e)
				continue
			}
			pd := c.pageTable(cpu, pdpe&ptAddrMask)
			for l3, pde := range pd {
				v3 := v2 + uint64(l3)<<21
				if pde&pgPresent == 0 {
					hole(v3)
					continue
				}
				if pde&pgPSE != 0 {
					leaf(v3, pde, 0x3ffffffe00000, pde&prot&pml4e&pdpe)
					continue
				}
				pt := c.pageTable(cpu, pde&ptAddrMask)
				for l4, pte := range pt {
					v4 := v3 + uint64(l4)<<12
					if pte&pgPresent == 0 {
						hole(v4)
						continue
					}
					leaf(v4, pte, ptAddrMask, pte&prot&pml4e&pdpe&pde)
				}
			}
		}
	}
}

// pagingMode prints what hmp_info_tlb/mem print before a walk, and reports whether to walk.
func (c *Call) pagingMode() (cpu int, cr3 uint64, walk bool) {
	cpu, cr0, cr3, cr4, efer, ok := c.pagingState()
	if !ok {
		return 0, 0, false
	}
	if cr0&(1<<31) == 0 {
		c.Print("PG disabled\n")
		return 0, 0, false
	}
	// PAE, long mode active, no LA57: the la48 walk
	return cpu, cr3, cr4&(1<<5) != 0 && efer&(1<<10) != 0 && cr4&(1<<12) == 0
}

func pageTableCommands() []Command {
	return []Command{
		{Info: true, Name: "tlb", Params: "", Help: "show virtual to physical memory mappings",
			Run: func(c *Call) {
				cpu, cr3, walk := c.pagingMode()
				if !walk {
					return
				}
				c.pageWalk(cpu, cr3, func(va, pte, mask, _ uint64) {
					flag := func(bit uint64, ch byte) byte {
						if pte&bit != 0 {
							return ch
						}
						return '-'
					}
					c.Printf("%016x: %016x %c%c%c%c%c%c%c%c%c\n", canonical(va), pte&mask,
						flag(pgNX, 'X'), flag(pgGlobal, 'G'), flag(pgPSE, 'P'), flag(pgDirty, 'D'),
						flag(pgAccessed, 'A'), flag(pgPCD, 'C'), flag(pgPWT, 'T'), flag(pgUser, 'U'), flag(pgRW, 'W'))
				}, func(uint64) {})
			}},
		{Info: true, Name: "mem", Params: "", Help: "show the active virtual memory mappings",
			Run: func(c *Call) {
				cpu, cr3, walk := c.pagingMode()
				if !walk {
					return
				}
				start, last := int64(-1), uint64(0)
				print := func(end, prot uint64) { // mem_print
					if prot == last {
						return
					}
					if start != -1 {
						u, w := byte('-'), byte('-')
						if last&pgUser != 0 {
							u = 'u'
						}
						if last&pgRW != 0 {
							w = 'w'
						}
						s := uint64(start)
						c.Printf("%016x-%016x %016x %c%c%c\n", canonical(s), canonical(end), canonical(end-s), u, 'r', w)
					}
					if prot != 0 {
						start = int64(end)
					} else {
						start = -1
					}
					last = prot
				}
				c.pageWalk(cpu, cr3, func(va, _, _, prot uint64) { print(va, prot) }, func(va uint64) { print(va, 0) })
				print(1<<48, 0)
			}},
	}
}
