package main

import (
	"tlcvm/compat"
	"tlcvm/dump"
	"tlcvm/input"
	"tlcvm/machine"
	"tlcvm/qmp"
	"tlcvm/qmp/cmds"
)

// vgaModels is -vga's value → the display device QEMU creates.
var vgaModels = map[string]string{
	"std": "VGA", "cirrus": "cirrus-vga", "vmware": "vmware-svga", "qxl": "qxl-vga", "virtio": "virtio-vga",
}

// vgaDevices are the -device models with a VGA (legacy window at 0xa0000).
var vgaDevices = map[string]bool{
	"VGA": true, "isa-vga": true, "cirrus-vga": true, "isa-cirrus-vga": true, "vmware-svga": true,
	"qxl-vga": true, "virtio-vga": true, "ati-vga": true, "vhost-user-vga": true, "virtio-vga-gl": true,
}

// displayModel is the machine's display adapter: -vga's, else the first VGA -device.
func displayModel(cfg *compat.Config) string {
	if m, ok := vgaModels[cfg.VGA]; ok {
		return m
	}
	for _, d := range cfg.Devices {
		if vgaDevices[d.Driver] {
			return d.Driver
		}
	}
	return ""
}

// displayID is the qdev id of the display device (-device MODEL,id=ID); "" for -vga.
func displayID(cfg *compat.Config, model string) string {
	if _, ok := vgaModels[cfg.VGA]; ok {
		return ""
	}
	for _, d := range cfg.Devices {
		if d.Driver == model {
			return d.ID
		}
	}
	return ""
}

// dumpVM adapts the machine to what dump-guest-memory reads.
type dumpVM struct{ m *machine.Machine }

func (v dumpVM) StopForDump() func() { return v.m.StopForDump() }

// Snapshot converts the machine's memory map and vCPU states.
func (v dumpVM) Snapshot() *dump.Machine {
	out := &dump.Machine{}
	for _, b := range v.m.GuestPhysBlocks() {
		db := dump.Block{Start: b.GPA, Size: b.Size, Name: b.Name}
		if b.RAM != nil {
			db.Mem = ramView{m: v.m, b: b}
		}
		out.Blocks = append(out.Blocks, db)
	}
	for _, st := range v.m.CPUStates() {
		out.CPUs = append(out.CPUs, dumpCPU(st))
	}
	return out
}

// ramView reads a RAM range of a block: pages through the written bitmap, bytes through
// ReadPhys (which holds the machine's RAM lock and checks pages restored by mapping).
type ramView struct {
	m *machine.Machine
	b machine.PhysBlock
}

func (r ramView) Written(off uint64) bool {
	return r.b.RAM.Written((r.b.Offset + off) / machine.PageSize)
}

// NextWritten is dump.WrittenFinder: the kdump writer skips never-written RAM a bitmap word
// at a time.
func (r ramView) NextWritten(off, end uint64) uint64 {
	base := r.b.Offset / machine.PageSize
	return (r.b.RAM.NextWritten(base+off/machine.PageSize, base+end/machine.PageSize) - base) * machine.PageSize
}

func (r ramView) ReadAt(p []byte, off uint64) error {
	return r.m.ReadPhys(r.b.GPA+off, p)
}

func dumpSeg(s machine.Segment) dump.Segment {
	return dump.Segment{Selector: s.Selector, Base: s.Base, Limit: s.Limit, Flags: s.Flags}
}

func dumpCPU(st machine.CPUState) dump.CPU {
	c := dump.CPU{Regs: st.Regs, RIP: st.RIP, RFlags: st.RFlags, CR: st.CR, EFER: st.EFER,
		LDT: dumpSeg(st.LDT), TR: dumpSeg(st.TR),
		GDT: dump.Segment{Base: st.GDTBase, Limit: st.GDTLimit}, IDT: dump.Segment{Base: st.IDTBase, Limit: st.IDTLimit}}
	for i, s := range st.Segs {
		c.Segs[i] = dumpSeg(s)
	}
	return c
}

// wireDump gives the dump commands their dumper and declares DUMP_COMPLETED, which the
// dumper emits through the server once it exists.
func (v *vm) wireDump(reg *qmp.Registry, deps *cmds.Deps) {
	d := dump.NewDumper()
	d.Completed = func(r dump.Result, errText string) {
		if v.server != nil {
			v.server.Emit("DUMP_COMPLETED", cmds.DumpCompleted(r, errText))
		}
	}
	deps.Dumper = d
	deps.DumpVM = dumpVM{v.machine}
	cmds.RegisterDumpEvents(reg)
}

// newInputRouter routes input events to the machine's PS/2 keyboard and mouse while the
// VM runs (or is suspended).
func newInputRouter(m *machine.Machine) *input.Router {
	r := &input.Router{Running: func() bool {
		st, _ := m.Status()
		return st == machine.StateRunning || st == machine.StateSuspended
	}}
	if m.HasPS2() {
		r.Register(m.Keyboard())
		r.Register(m.Mouse())
	}
	return r
}
