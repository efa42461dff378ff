package machine

import (
	"fmt"
	"strings"
)

// Register indexes in x86 encoding order (QEMU's R_EAX …).
const (
	RAX = iota
	RCX
	RDX
	RBX
	RSP
	RBP
	RSI
	RDI
	R8
	R9
	R10
	R11
	R12
	R13
	R14
	R15
)

// Segment is a cached segment descriptor (QEMU's SegmentCache).
type Segment struct {
	Selector uint16 `json:"selector"`
	Base     uint64 `json:"base"`
	Limit    uint32 `json:"limit"`
	Flags    uint32 `json:"flags"`
}

// Descriptor flag bits (QEMU target/i386/cpu.h DESC_*).
const (
	descA   = 1 << 8
	descW   = 1 << 9 // data: writable
	descR   = 1 << 9 // code: readable
	descE   = 1 << 10
	descC   = 1 << 10
	descCS  = 1 << 11
	descS   = 1 << 12
	descP   = 1 << 15
	descL   = 1 << 21
	descB   = 1 << 22
	descG   = 1 << 23
	descDPL = 13
)

// Control-register and EFER bits used by the guest.
const (
	cr0PE   = 1 << 0
	cr0ET   = 1 << 4
	cr0NE   = 1 << 5
	cr0WP   = 1 << 16
	cr0NW   = 1 << 29
	cr0CD   = 1 << 30
	cr0PG   = 1 << 31
	cr4PAE  = 1 << 5
	cr4PGE  = 1 << 7
	eferSCE = 1 << 0
	eferLME = 1 << 8
	eferLMA = 1 << 10
)

// CPUState is one vCPU's architectural state: the whole of the workload's per-vCPU
// state lives here (and in guest RAM). It is the plain, versioned save/load struct of
// section "cpu/N" (version 2: Disk added; version 1 states load without it).
type CPUState struct {
	Regs     [16]uint64 `json:"regs"` // RAX..R15 in encoding order
	RIP      uint64     `json:"rip"`
	RFlags   uint64     `json:"rflags"`
	Segs     [6]Segment `json:"segs"` // ES CS SS DS FS GS
	LDT      Segment    `json:"ldt"`
	TR       Segment    `json:"tr"`
	GDTBase  uint64     `json:"gdt-base"`
	GDTLimit uint32     `json:"gdt-limit"`
	IDTBase  uint64     `json:"idt-base"`
	IDTLimit uint32     `json:"idt-limit"`
	CR       [5]uint64  `json:"cr"` // CR0..CR4 (CR1 unused)
	DR       [8]uint64  `json:"dr"`
	EFER     uint64     `json:"efer"`
	Halted   bool       `json:"halted"`
	MXCSR    uint32     `json:"mxcsr"`
	FCW      uint16     `json:"fcw"`
	// Disk is the guest's disk driver (disk.go; version 2), nil without disk= items.
	Disk *DiskState `json:"disk,omitempty"`
}

// cpuidVersion is CPUID.1:EAX of the CPU model, which x86 reset leaves in EDX.
func cpuidVersion(model string) uint64 {
	switch model {
	case "qemu32":
		return 0x00000663
	case "kvm64":
		return 0x00000f61
	case "kvm32":
		return 0x000006a1
	default: // qemu64: family 15, model 107, stepping 1
		return 0x00060fb1
	}
}

// resetCPUState is x86_cpu_reset's state: real mode at f000:fff0. Application processors
// (index > 0) wait halted for the bootstrap processor.
func resetCPUState(index int, model string) CPUState {
	var s CPUState
	s.Regs[RDX] = cpuidVersion(model)
	s.RIP = 0xfff0
	s.RFlags = 0x2
	data := Segment{Limit: 0xffff, Flags: descP | descS | descW | descA}
	s.Segs = [6]Segment{data, {Selector: 0xf000, Base: 0xffff0000, Limit: 0xffff,
		Flags: descP | descS | descCS | descR | descA}, data, data, data, data}
	s.LDT = Segment{Limit: 0xffff, Flags: descP | 2<<8}
	s.TR = Segment{Limit: 0xffff, Flags: descP | 11<<8}
	s.GDTLimit, s.IDTLimit = 0xffff, 0xffff
	s.CR[0] = cr0CD | cr0NW | cr0ET
	s.DR[6], s.DR[7] = 0xffff0ff0, 0x400
	s.MXCSR, s.FCW = 0x1f80, 0x37f
	s.Halted = index > 0
	return s
}

// enterLongMode puts s in 64-bit long mode with paging on and CR3 = cr3, as a boot
// loader leaves it: flat 64-bit code at selector 0x10, data at 0x18, a busy TSS.
func (s *CPUState) enterLongMode(cr3 uint64) {
	code := Segment{Selector: 0x10, Limit: 0xffffffff,
		Flags: descG | descL | 0xf<<16 | descP | descS | descCS | descR | descA}
	data := Segment{Selector: 0x18, Limit: 0xffffffff,
		Flags: descG | descB | 0xf<<16 | descP | descS | descW | descA}
	s.Segs = [6]Segment{data, code, data, data, {}, {}}
	s.LDT = Segment{Flags: descP | 2<<8}
	s.TR = Segment{Selector: 0x20, Base: 0x4800, Limit: 0x67, Flags: descP | 11<<8}
	s.GDTBase, s.GDTLimit = 0x4100, 0x2f
	s.IDTBase, s.IDTLimit = 0, 0xfff
	s.CR[0] = cr0PG | cr0WP | cr0NE | cr0ET | cr0PE
	s.CR[3] = cr3
	s.CR[4] = cr4PAE | cr4PGE
	s.EFER = eferSCE | eferLME | eferLMA
	s.RFlags = 0x2
	s.Halted = false
}

func (s *CPUState) longMode() bool { return s.EFER&eferLMA != 0 }
func (s *CPUState) cs64() bool     { return s.longMode() && s.Segs[1].Flags&descL != 0 }
func (s *CPUState) protected() bool {
	return s.CR[0]&cr0PE != 0
}

var segNames = [6]string{"ES", "CS", "SS", "DS", "FS", "GS"}

var sysTypeNames = [2][16]string{
	{"Reserved", "TSS16-avl", "LDT", "TSS16-busy", "CallGate16", "TaskGate", "IntGate16",
		"TrapGate16", "Reserved", "TSS32-avl", "Reserved", "TSS32-busy", "CallGate32",
		"Reserved", "IntGate32", "TrapGate32"},
	{"<hiword>", "Reserved", "LDT", "Reserved", "Reserved", "Reserved", "Reserved",
		"Reserved", "Reserved", "TSS64-avl", "Reserved", "TSS64-busy", "CallGate64",
		"Reserved", "IntGate64", "TrapGate64"},
}

func (s *CPUState) dumpSeg(b *strings.Builder, name string, sc Segment) {
	if s.cs64() {
		fmt.Fprintf(b, "%-3s=%04x %016x %08x %08x", name, sc.Selector, sc.Base, sc.Limit, sc.Flags&0x00ffff00)
	} else {
		fmt.Fprintf(b, "%-3s=%04x %08x %08x %08x", name, sc.Selector, uint32(sc.Base), sc.Limit, sc.Flags&0x00ffff00)
	}
	if s.protected() && sc.Flags&descP != 0 {
		fmt.Fprintf(b, " DPL=%d ", (sc.Flags>>descDPL)&3)
		switch {
		case sc.Flags&descS != 0 && sc.Flags&descCS != 0:
			switch {
			case sc.Flags&descL != 0:
				b.WriteString("CS64")
			case sc.Flags&descB != 0:
				b.WriteString("CS32")
			default:
				b.WriteString("CS16")
			}
			fmt.Fprintf(b, " [%c%c", flagChar(sc.Flags&descC != 0, 'C'), flagChar(sc.Flags&descR != 0, 'R'))
			fmt.Fprintf(b, "%c]", flagChar(sc.Flags&descA != 0, 'A'))
		case sc.Flags&descS != 0:
			if sc.Flags&descB != 0 || s.longMode() {
				b.WriteString("DS  ")
			} else {
				b.WriteString("DS16")
			}
			fmt.Fprintf(b, " [%c%c", flagChar(sc.Flags&descE != 0, 'E'), flagChar(sc.Flags&descW != 0, 'W'))
			fmt.Fprintf(b, "%c]", flagChar(sc.Flags&descA != 0, 'A'))
		default:
			lm := 0
			if s.longMode() {
				lm = 1
			}
			b.WriteString(sysTypeNames[lm][(sc.Flags>>8)&15])
		}
	}
	b.WriteByte('\n')
}

func flagChar(on bool, c byte) byte {
	if on {
		return c
	}
	return '-'
}

// Dump renders the state exactly as QEMU 7.2's x86_cpu_dump_state(…, CPU_DUMP_FPU), the
// body of HMP "info registers" (which prints "\nCPU#N\n" before it). Lines end in "\n".
func (s *CPUState) Dump() string {
	var b strings.Builder
	r := &s.Regs
	fl := uint32(s.RFlags)
	flags := []byte{flagChar(fl&0x400 != 0, 'D'), flagChar(fl&0x800 != 0, 'O'), flagChar(fl&0x80 != 0, 'S'),
		flagChar(fl&0x40 != 0, 'Z'), flagChar(fl&0x10 != 0, 'A'), flagChar(fl&0x4 != 0, 'P'), flagChar(fl&0x1 != 0, 'C')}
	hlt := 0
	if s.Halted {
		hlt = 1
	}
	if s.cs64() {
		fmt.Fprintf(&b, "RAX=%016x RBX=%016x RCX=%016x RDX=%016x\n", r[RAX], r[RBX], r[RCX], r[RDX])
		fmt.Fprintf(&b, "RSI=%016x RDI=%016x RBP=%016x RSP=%016x\n", r[RSI], r[RDI], r[RBP], r[RSP])
		fmt.Fprintf(&b, "R8 =%016x R9 =%016x R10=%016x R11=%016x\n", r[R8], r[R9], r[R10], r[R11])
		fmt.Fprintf(&b, "R12=%016x R13=%016x R14=%016x R15=%016x\n", r[R12], r[R13], r[R14], r[R15])
		fmt.Fprintf(&b, "RIP=%016x RFL=%08x [%s] CPL=%d II=0 A20=1 SMM=0 HLT=%d\n", s.RIP, fl, flags, s.Segs[1].Selector&3, hlt)
	} else {
		fmt.Fprintf(&b, "EAX=%08x EBX=%08x ECX=%08x EDX=%08x\n", uint32(r[RAX]), uint32(r[RBX]), uint32(r[RCX]), uint32(r[RDX]))
		fmt.Fprintf(&b, "ESI=%08x EDI=%08x EBP=%08x ESP=%08x\n", uint32(r[RSI]), uint32(r[RDI]), uint32(r[RBP]), uint32(r[RSP]))
		cpl := 0
		if s.protected() {
			cpl = int(s.Segs[1].Selector & 3)
		}
		fmt.Fprintf(&b, "EIP=%08x EFL=%08x [%s] CPL=%d II=0 A20=1 SMM=0 HLT=%d\n", uint32(s.RIP), fl, flags, cpl, hlt)
	}
	for i, sc := range s.Segs {
		s.dumpSeg(&b, segNames[i], sc)
	}
	s.dumpSeg(&b, "LDT", s.LDT)
	s.dumpSeg(&b, "TR", s.TR)
	if s.longMode() {
		fmt.Fprintf(&b, "GDT=     %016x %08x\n", s.GDTBase, s.GDTLimit)
		fmt.Fprintf(&b, "IDT=     %016x %08x\n", s.IDTBase, s.IDTLimit)
		fmt.Fprintf(&b, "CR0=%08x CR2=%016x CR3=%016x CR4=%08x\n", uint32(s.CR[0]), s.CR[2], s.CR[3], uint32(s.CR[4]))
	} else {
		fmt.Fprintf(&b, "GDT=     %08x %08x\n", uint32(s.GDTBase), s.GDTLimit)
		fmt.Fprintf(&b, "IDT=     %08x %08x\n", uint32(s.IDTBase), s.IDTLimit)
		fmt.Fprintf(&b, "CR0=%08x CR2=%08x CR3=%08x CR4=%08x\n", uint32(s.CR[0]), uint32(s.CR[2]), uint32(s.CR[3]), uint32(s.CR[4]))
	}
	// TARGET_FMT_lx is 16 digits on x86_64 builds, in both branches.
	for i := 0; i < 4; i++ {
		fmt.Fprintf(&b, "DR%d=%016x ", i, s.DR[i])
	}
	fmt.Fprintf(&b, "\nDR6=%016x DR7=%016x\n", s.DR[6], s.DR[7])
	fmt.Fprintf(&b, "EFER=%016x\n", s.EFER)
	fmt.Fprintf(&b, "FCW=%04x FSW=0000 [ST=0] FTW=00 MXCSR=%08x\n", s.FCW, s.MXCSR)
	for i := 0; i < 8; i++ {
		fmt.Fprintf(&b, "FPR%d=0000000000000000 0000", i)
		if i&1 == 1 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	nxmm := 8
	if s.cs64() {
		nxmm = 16
	}
	for i := 0; i < nxmm; i++ {
		fmt.Fprintf(&b, "XMM%02d=0000000000000000 0000000000000000", i)
		if i&1 == 1 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String()
}
