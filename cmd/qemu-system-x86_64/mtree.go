package main

import (
	"strings"

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
			b.VGA = b.VGA || f.Type == "VGA"
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
