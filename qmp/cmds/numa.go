package cmds

import (
	"fmt"
	"strings"

	"tlcvm/qmp"
)

// x-query-numa (hw/core/machine-hmp-cmds.c hmp_info_numa's text in QEMU 7.2): the node
// count, then per node the present CPUs on it (query-cpus-fast's node-id), its memory and
// the memory devices plugged on it (query_numa_node_mem: a DIMM counts in both).
//
//	2 nodes
//	node 0 cpus: 0 1
//	node 0 size: 128 MB
//	node 0 plugged: 0 MB

func registerNUMA(r *qmp.Registry, d *Deps) {
	r.Register(qmp.Command{Name: "x-query-numa", Returns: HumanReadableText{}, Features: []string{"unstable"},
		Run: func(*qmp.Call) (any, error) { return HumanReadableText{HumanReadableText: numaText(d)}, nil }})
}

func numaText(d *Deps) string {
	var mem []uint64
	if d.NUMA != nil {
		mem = d.NUMA()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d nodes\n", len(mem))
	if len(mem) == 0 {
		return b.String()
	}
	size := append([]uint64(nil), mem...)
	plugged := make([]uint64, len(mem))
	if d.MemoryDevices != nil {
		for _, m := range d.MemoryDevices.List() {
			if w, ok := m.Variant.(PCDIMMDeviceInfoWrapper); ok && w.Data.Node >= 0 && int(w.Data.Node) < len(mem) {
				size[w.Data.Node] += w.Data.Size
				plugged[w.Data.Node] += w.Data.Size
			}
		}
	}
	var cpus []machineCPU
	if d.Machine != nil {
		for _, c := range d.Machine.CPUs() {
			if c.Plugged {
				cpus = append(cpus, machineCPU{c.Index, c.Props.NodeID})
			}
		}
	}
	for i := range mem {
		fmt.Fprintf(&b, "node %d cpus:", i)
		for _, c := range cpus {
			if c.node == i {
				fmt.Fprintf(&b, " %d", c.index)
			}
		}
		fmt.Fprintf(&b, "\nnode %d size: %d MB\nnode %d plugged: %d MB\n", i, size[i]>>20, i, plugged[i]>>20)
	}
	return b.String()
}

type machineCPU struct{ index, node int }
