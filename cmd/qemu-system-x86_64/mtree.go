package main

import (
	"cmp"
	"slices"
	"strings"

	"tlcvm/compat"
	"tlcvm/compat/optval"
	"tlcvm/machine"
	"tlcvm/machine/memtree"
)

// memoryTree gathers what decides the board's memory regions (RAM split, device memory and
// DIMMs, CPUs, PCI functions in realize order, legacy ports) into package memtree's Board
// and builds it: info mtree (x-tlcvm-info-mtree).
func (v *vm) memoryTree() *memtree.Tree {
	m := v.machine
	c := m.Config()
	b := memtree.Board{Q35: strings.HasPrefix(c.Type, "pc-q35-"), None: c.Type == "none", MemHotplug: c.Slots > 0}
	b.Below, b.Above = m.RAMSplit()
	b.DeviceMemBase, b.DeviceMemSize = m.DeviceMemory()
	if v.memHP != nil {
		b.DIMMs = v.memHP.regions()
	}
	for _, cpu := range m.CPUs() {
		if cpu.Plugged {
			b.CPUs = append(b.CPUs, cpu.Index)
		}
	}
	if v.devices != nil {
		for _, f := range v.devices.PCIRealizeOrder() {
			b.PCI = append(b.PCI, memtree.PCIDevice{Type: f.Type, Bridge: f.Bridge, Parent: f.Parent})
			if v := legacyVGA[f.Type]; v != "" {
				b.VGA = v
			}
		}
		for _, d := range v.devices.Peripherals() {
			switch d.Type {
			case "isa-serial":
				b.Serials++
			case "isa-parallel":
				b.Parallels++
			}
		}
	}
	cfg := v.plan.cfg
	b.NoHPET = machineOff(cfg, "hpet")
	b.NoVMPort = machineOff(cfg, "vmport")
	for _, s := range cfg.Serials {
		if s != "none" {
			b.Serials++
		}
	}
	for _, s := range cfg.Parallels {
		if s != "none" {
			b.Parallels++
		}
	}
	b.FDC = !b.Q35 || len(v.boardFloppies()) > 0
	return memtree.Build(b)
}

// legacyVGA are the display types with legacy VGA registers and their kind.
var legacyVGA = map[string]string{"VGA": "std", "virtio-vga": "std", "qxl-vga": "std", "cirrus-vga": "cirrus"}

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
