package dump

// What a dump reads: the guest-physical blocks and the vCPUs' state. The dump package
// owns these types; the composition root adapts the machine to them, so this package
// never imports machine.

// PageSize is the target page size of x86 (qemu_target_page_size): the unit of the
// "written" test, of the kdump bitmaps and of the ELF writes.
const PageSize = 4096

// Memory is the content of one block.
type Memory interface {
	// Written reports whether the page at block offset off (a multiple of PageSize) was
	// ever written. A page never written is zero and is never read: the ELF writer leaves
	// a hole in the file for it, the kdump writer describes it as the zero page.
	Written(off uint64) bool
	// ReadAt copies len(p) bytes at block offset off (within written pages) into p.
	ReadAt(p []byte, off uint64) error
}

// WrittenFinder is what a Memory may offer for a writer that walks gigabytes of RAM
// mostly never written (the kdump writer): the written pages without a call per page.
type WrittenFinder interface {
	// NextWritten is the block offset of the first written page in [off, end) (both
	// multiples of PageSize), or end when there is none.
	NextWritten(off, end uint64) uint64
}

// Block is one contiguous run of guest-physical memory, QEMU's GuestPhysBlock: a RAM
// region (or a ROM, or video RAM) as the guest's memory map shows it at the time of the
// dump. Blocks are in ascending address order, do not overlap and, for x86 machines,
// start and end on page boundaries.
type Block struct {
	Start, Size uint64 // guest-physical
	Name        string // QEMU's memory region name ("pc.ram", "pc.bios", …), for logs
	// Mem is the block's content; nil for memory the machine does not model (a ROM
	// image, video RAM): every page reads as zero and is never written.
	Mem Memory
}

// End is one past the block's last address (QEMU's target_end).
func (b Block) End() uint64 { return b.Start + b.Size }

// Segment is a cached segment descriptor (QEMU's SegmentCache).
type Segment struct {
	Selector uint16
	Base     uint64
	Limit    uint32
	Flags    uint32
}

// CPU is one vCPU's architectural state as the dump writes it (QEMU's CPUX86State,
// the members arch_dump.c reads).
type CPU struct {
	Regs     [16]uint64 // RAX RCX RDX RBX RSP RBP RSI RDI R8 … R15 (x86 encoding order)
	RIP      uint64
	RFlags   uint64
	Segs     [6]Segment // ES CS SS DS FS GS
	LDT, TR  Segment
	GDT, IDT Segment // base and limit only
	CR       [5]uint64
	EFER     uint64
}

// Register indexes in Regs.
const (
	rAX = iota
	rCX
	rDX
	rBX
	rSP
	rBP
	rSI
	rDI
)

// Segment indexes in Segs (QEMU's R_ES …).
const (
	segES = iota
	segCS
	segSS
	segDS
	segFS
	segGS
)

const (
	eferLMA = 1 << 10
	cr0PG   = 1 << 31
	cr4PAE  = 1 << 5
)

// LMA reports long mode active (QEMU's HF_LMA_MASK).
func (c *CPU) LMA() bool { return c.EFER&eferLMA != 0 }

// Machine is what one dump reads: taken while the vCPUs are stopped.
type Machine struct {
	Blocks []Block
	CPUs   []CPU
}

// totalSize is the bytes of the blocks within the filter (dump_calculate_size).
func (m *Machine) totalSize(f filter) uint64 {
	var t uint64
	for _, b := range m.Blocks {
		t += f.size(b)
	}
	return t
}

// filter is the begin/length area of dump-guest-memory (length 0: none).
type filter struct{ begin, length uint64 }

func (f filter) on() bool { return f.length > 0 }

// size is dump_filtered_memblock_size: the bytes of b within the area.
func (f filter) size(b Block) uint64 {
	if !f.on() {
		return b.Size
	}
	left, right := max(f.begin, b.Start), min(f.begin+f.length, b.End())
	if right <= left {
		return 0
	}
	return right - left
}

// start is dump_filtered_memblock_start: the block offset where the area begins in b,
// or false when b is outside it.
func (f filter) start(b Block) (uint64, bool) {
	if !f.on() {
		return 0, true
	}
	if b.Start >= f.begin+f.length || b.End() <= f.begin {
		return 0, false
	}
	if f.begin > b.Start {
		return f.begin - b.Start, true
	}
	return 0, true
}
