package main

import (
	"strconv"
	"time"

	"tlcvm/compat"
	"tlcvm/dirtyrate"
	"tlcvm/machine"
)

// dirtyMachine adapts machine.Machine to dirtyrate.Machine.
type dirtyMachine struct{ *machine.Machine }

func (d dirtyMachine) Blocks() []dirtyrate.Block {
	var out []dirtyrate.Block
	for _, b := range d.RAMBlocks() {
		out = append(out, b)
	}
	return out
}

func (d dirtyMachine) PageHashes(b dirtyrate.Block, pages []uint64, out []uint32, ok []bool) error {
	return d.Machine.PageHashes(b.(*machine.RAMBlock), pages, out, ok)
}

func (d dirtyMachine) SetDirtyThrottle(cpu int, s time.Duration, ring uint64) {
	d.Machine.SetDirtyThrottle(cpu, s, ring)
}

// dirtyRingSize is the dirty ring of the accelerator chosen: -accel kvm,dirty-ring-size=N
// when KVM is (QEMU's), or tlcvm's extension -accel tcg,x-dirty-ring-size=N, which gives a
// TCG machine the dirty-ring measurement and dirty limits QEMU offers only under KVM
// (docs/compatibility.md). 0: none. The value must be a power of two, as QEMU's
// kvm_set_dirty_ring_size requires, and at most KVM's 65536 entries.
func dirtyRingSize(cfg *compat.Config, kvm bool) (uint64, error) {
	accel, prop := "tcg", "x-dirty-ring-size"
	if kvm {
		accel, prop = "kvm", "dirty-ring-size"
	}
	for _, o := range cfg.Accels {
		if a, _ := o.Get("accel"); a != accel {
			continue
		}
		v, ok := o.Get(prop)
		if !ok {
			return 0, nil
		}
		n, err := strconv.ParseUint(v, 0, 32)
		if err != nil {
			return 0, failf(cfg, o.Loc, "Parameter '%s' expects uint32_t", prop)
		}
		if n&(n-1) != 0 || n > 65536 {
			return 0, failf(cfg, o.Loc, "%s must be a power of two.", prop)
		}
		return n, nil
	}
	return 0, nil
}
