package main

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"tlcvm/blockdev"
	"tlcvm/compat"
	"tlcvm/compat/optval"
	"tlcvm/machine"
	"tlcvm/machine/memtree"
)

// memoryTree builds the board's memory tree: info mtree (x-tlcvm-info-mtree).
func (v *vm) memoryTree() *memtree.Tree { return memtree.Build(v.board()) }

// board gathers what decides the board's memory regions and their owners (RAM split,
// device memory and DIMMs, CPUs, PCI functions in realize order, legacy ports, displays)
// into package memtree's Board.
func (v *vm) board() memtree.Board {
	m := v.machine
	c := m.Config()
	cfg := v.plan.cfg
	b := memtree.Board{Q35: strings.HasPrefix(c.Type, "pc-q35-"), None: c.Type == "none", MemHotplug: c.Slots > 0,
		NoHPET: machineOff(cfg, "hpet"), NoVMPort: machineOff(cfg, "vmport"), NoACPI: !hasACPI(cfg)}
	b.Below, b.Above = m.RAMSplit()
	ramID := v.plan.machine.DefaultRAMID
	if ramID == "" {
		ramID = "ram" // the machine none's
	}
	if id, ok := cfg.Machine.Prop("memory-backend"); ok {
		ramID = id
	}
	b.RAMOwner = "/objects/" + ramID
	b.DeviceMemBase, b.DeviceMemSize = m.DeviceMemory()
	if v.memHP != nil {
		b.DIMMs = v.memHP.regions()
	}
	for _, cpu := range m.CPUs() {
		if cpu.Plugged {
			b.CPUs = append(b.CPUs, memtree.CPU{Index: cpu.Index, Path: cpu.QOMPath})
		}
	}
	for _, s := range cfg.Serials {
		if s != "none" {
			b.Serials = append(b.Serials, memtree.ISAPort{Index: len(b.Serials)})
		}
	}
	for _, s := range cfg.Parallels {
		if s != "none" {
			b.Parallels = append(b.Parallels, memtree.ISAPort{Index: len(b.Parallels)})
		}
	}
	if v.devices != nil {
		for _, f := range v.devices.PCIRealizeOrder() {
			var o *memtree.Owner
			if !f.Board {
				o = &memtree.Owner{Dev: true, ID: f.ID, Path: f.Path}
			}
			b.PCI = append(b.PCI, memtree.PCIDevice{Type: f.Type, Bridge: f.Bridge, Parent: f.Parent, Owner: o})
			if kind := legacyVGA[f.Type]; kind != "" {
				b.VGAs = append(b.VGAs, memtree.VGA{Kind: kind, Owner: o})
			}
		}
		for _, d := range v.devices.Peripherals() {
			o := &memtree.Owner{Dev: true, ID: d.ID, Path: d.Path}
			raw, _ := d.Prop("index")
			index := strings.Trim(string(raw), `"`)
			switch d.Type {
			case "isa-serial":
				b.Serials = append(b.Serials, isaPort(index, len(b.Serials), o))
			case "isa-parallel":
				b.Parallels = append(b.Parallels, isaPort(index, len(b.Parallels), o))
			}
		}
	}
	b.Floppies = len(v.boardFloppies())
	if v.block != nil {
		b.IDEDrives = boardIDEDrives(v.block)
	}
	b.FDC = !b.Q35 || b.Floppies > 0
	b.USB = !b.Q35 && machineOn(cfg, "usb")
	return b
}

// isaPort is an isa-serial's or isa-parallel's port: its index property, else the next
// (QEMU counts the ports realized).
func isaPort(index string, next int, o *memtree.Owner) memtree.ISAPort {
	if i, err := strconv.Atoi(index); err == nil && i >= 0 {
		return memtree.ISAPort{Index: i, Owner: o}
	}
	return memtree.ISAPort{Index: next, Owner: o}
}

// legacyVGA are the display types with legacy VGA registers and their kind.
var legacyVGA = map[string]string{"VGA": "std", "virtio-vga": "std", "qxl-vga": "std", "cirrus-vga": "cirrus"}

// machineOn reports -machine NAME=on (usb; -usb sets usb=on).
func machineOn(cfg *compat.Config, name string) bool {
	s, ok := cfg.Machine.Prop(name)
	on, valid := optval.Bool(s, optval.QAPIWords)
	return ok && valid && on
}

// machineOff reports -machine NAME=off (hpet, vmport; -no-hpet sets hpet=off).
func machineOff(cfg *compat.Config, name string) bool {
	s, ok := cfg.Machine.Prop(name)
	if !ok {
		return false
	}
	on, ok := optval.Bool(s, optval.QAPIWords)
	return ok && !on
}

// ramBlocks are the machine's RAM blocks as x-query-ramblock lists them. Their offsets are
// find_ram_offset's for the memory back-ends in creation order (QEMU allocates a back-end's
// block when it creates it, the -object ones before the board's RAM, which is a back-end
// too); among blocks of one size the older is listed first.
func (v *vm) ramBlocks() []memtree.RAMBlock {
	var sizes []uint64
	index := map[string]int{}
	if v.objects != nil {
		for _, o := range v.objects.List() {
			if o.Memory != nil {
				index[o.ID] = len(sizes)
				sizes = append(sizes, o.Memory.Size)
			}
		}
	}
	type block struct {
		memtree.RAMBlock
		order int
	}
	var blocks []block
	for _, b := range v.machine.RAMBlocks() {
		i, ok := index[b.Name()]
		if !ok {
			i = len(sizes)
			sizes = append(sizes, b.Size())
		}
		blocks = append(blocks, block{memtree.RAMBlock{Name: b.Name(), PageSize: machine.PageSize, Used: b.Size(), MaxSize: b.Size()}, i})
	}
	offs := memtree.AllocOffsets(sizes)
	slices.SortStableFunc(blocks, func(a, b block) int {
		if a.MaxSize != b.MaxSize {
			return cmp.Compare(b.MaxSize, a.MaxSize)
		}
		return cmp.Compare(a.order, b.order)
	})
	out := make([]memtree.RAMBlock, len(blocks))
	for i, b := range blocks {
		b.Offset = offs[b.order]
		out[i] = b.RAMBlock
	}
	return out
}

// boardIDEDrives counts the IDE drive devices the board made (-drive if=ide, -cdrom, -hda).
func boardIDEDrives(g *blockdev.Graph) int {
	g.Lock()
	defer g.Unlock()
	n := 0
	for _, b := range g.BackendsLocked() {
		if b.Drive != nil && b.Drive.Interface == "ide" && b.Device != nil {
			n++
		}
	}
	return n
}
