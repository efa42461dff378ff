package main

import (
	"strconv"

	"tlcvm/compat"
)

// maxNUMANodes is QEMU's MAX_NODES.
const maxNUMANodes = 128

// buildNUMA applies the -numa node options as parse_numa_node and
// numa_complete_configuration do, once the -object back-ends exist: it counts the nodes
// (pc-dimm's node= must name one), marks each node's memdev in use (a DIMM cannot take it,
// object-del refuses it) and checks that the nodes' memory adds up to the RAM size. It
// reports whether the nodes brought the RAM (then the board makes no "pc.ram" back-end).
// tlcvm's guest sees one memory range whatever the nodes: the topology has no other effect.
func (v *vm) buildNUMA() (nodes int, memdevs bool, err error) {
	cfg := v.plan.cfg
	seen := map[uint64]bool{}
	var total uint64
	for _, a := range cfg.Args {
		if a.Name != "numa" {
			continue
		}
		o, perr := compat.ParseOpts(a.Value, "type")
		if perr != nil {
			continue // compat refused it already
		}
		if t, _ := o.Get("type"); t != "node" {
			continue
		}
		id := uint64(len(seen))
		if s, ok := o.Get("nodeid"); ok {
			if id, err = strconv.ParseUint(s, 0, 16); err != nil {
				return 0, false, failf(cfg, a.Loc, "Parameter 'nodeid' expects uint16")
			}
		}
		if id >= maxNUMANodes {
			return 0, false, failf(cfg, a.Loc, "Max number of NUMA nodes reached: %d", id)
		}
		if seen[id] {
			return 0, false, failf(cfg, a.Loc, "Duplicate NUMA nodeid: %d", id)
		}
		seen[id] = true
		if _, ok := o.Get("mem"); ok {
			return 0, false, failf(cfg, a.Loc, "Parameter -numa node,mem is not supported by this machine type\nUse -numa node,memdev instead")
		}
		if id, ok := o.Get("memdev"); ok {
			ob, ok := v.objects.Get(id)
			if !ok || ob.Memory == nil {
				return 0, false, failf(cfg, a.Loc, "memdev=%s is ambiguous", id)
			}
			v.objects.Use(ob)
			total += ob.Memory.Size
			memdevs = true
		}
	}
	if memdevs && total != v.plan.mcfg.RAMSize {
		return 0, false, failf(cfg, "", "total memory for NUMA nodes (0x%x) should equal RAM size (0x%x)", total, v.plan.mcfg.RAMSize)
	}
	return len(seen), memdevs, nil
}
