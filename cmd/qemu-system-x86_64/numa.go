package main

import (
	"fmt"
	"strconv"
	"strings"

	"tlcvm/compat"
	"tlcvm/machine"
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
	mem := map[uint64]uint64{}
	var total uint64
	for _, o := range numaNodeOpts(cfg) {
		id := uint64(len(seen))
		if s, ok := o.Get("nodeid"); ok {
			if id, err = strconv.ParseUint(s, 0, 16); err != nil {
				return 0, false, failf(cfg, o.Loc, "Parameter 'nodeid' expects uint16")
			}
		}
		if id >= maxNUMANodes {
			return 0, false, failf(cfg, o.Loc, "Max number of NUMA nodes reached: %d", id)
		}
		if seen[id] {
			return 0, false, failf(cfg, o.Loc, "Duplicate NUMA nodeid: %d", id)
		}
		seen[id] = true
		if _, ok := o.Get("mem"); ok {
			return 0, false, failf(cfg, o.Loc, "Parameter -numa node,mem is not supported by this machine type\nUse -numa node,memdev instead")
		}
		if mid, ok := o.Get("memdev"); ok {
			ob, ok := v.objects.Get(mid)
			if !ok || ob.Memory == nil {
				return 0, false, failf(cfg, o.Loc, "memdev=%s is ambiguous", mid)
			}
			v.objects.Use(ob)
			total += ob.Memory.Size
			mem[id] += ob.Memory.Size
			memdevs = true
		}
	}
	for i := range uint64(len(seen)) {
		if !seen[i] {
			return 0, false, failf(cfg, "", "numa: Node ID missing: %d", i)
		}
	}
	v.numaMem = make([]uint64, len(seen))
	for i := range v.numaMem {
		v.numaMem[i] = mem[uint64(i)]
	}
	// machines without numa_mem_supported (7.1 on) never split the RAM among the nodes
	if (memdevs || (len(seen) > 0 && !v.plan.machine.NUMAMemSupported)) && total != v.plan.mcfg.RAMSize {
		return 0, false, failf(cfg, "", "total memory for NUMA nodes (0x%x) should equal RAM size (0x%x)", total, v.plan.mcfg.RAMSize)
	}
	return len(seen), memdevs, nil
}

// numaNodeOpts are the -numa node options, each with its location.
func numaNodeOpts(cfg *compat.Config) []*compat.Opts { return numaOpts(cfg, "node") }

// numaOpts are the -numa options of a type, each with its location.
func numaOpts(cfg *compat.Config, typ string) []*compat.Opts {
	var nodes []*compat.Opts
	for _, a := range cfg.Args {
		if a.Name != "numa" {
			continue
		}
		o, err := compat.ParseOpts(a.Value, "type")
		if err != nil {
			continue // compat refused it already
		}
		if t, _ := o.Get("type"); t == typ {
			o.Loc = a.Loc
			nodes = append(nodes, o)
		}
	}
	return nodes
}

// numaCPUNodes is the NUMA node of each possible CPU (nil without -numa node): the cpus= of
// each -numa node (parse_numa_node: ranges "a-b", the key repeatable), and for the CPUs no
// node names, machine_numa_finish_cpu_init's choice: with no cpus= at all the board's default
// (x86_get_default_cpu_node_id: the socket modulo the node count), else node 0 with QEMU's
// warnings. Node ids are checked by buildNUMA.
func numaCPUNodes(cfg *compat.Config, m machine.Config) (cpuNodes []int, warnings []string, err error) {
	nodes := numaNodeOpts(cfg)
	if len(nodes) == 0 || m.MaxCPUs == 0 {
		return nil, nil, nil
	}
	cpuNodes = make([]int, m.MaxCPUs)
	for i := range cpuNodes {
		cpuNodes[i] = -1
	}
	assigned := false
	for i, o := range nodes {
		id := i
		if s, ok := o.Get("nodeid"); ok {
			if v, err := strconv.ParseUint(s, 0, 16); err == nil {
				id = int(v)
			}
		}
		for _, kv := range o.List {
			if kv.Name != "cpus" {
				continue
			}
			lo, hi, ok := cpuRange(kv.Value)
			if !ok {
				return nil, nil, failf(cfg, o.Loc, "Parameter 'cpus' expects a uint64 value or range")
			}
			for c := lo; c <= hi; c++ {
				if c >= uint64(m.MaxCPUs) {
					return nil, nil, failf(cfg, o.Loc, "CPU index (%d) should be smaller than maxcpus (%d)", c, m.MaxCPUs)
				}
				if n := cpuNodes[c]; n >= 0 && n != id {
					return nil, nil, failf(cfg, o.Loc, "CPU is already assigned to node-id: %d", n)
				}
				cpuNodes[c] = id
				assigned = true
			}
		}
	}
	threads, cores, dies := max(m.Threads, 1), max(m.Cores, 1), max(m.Dies, 1)
	topo := func(i int) map[string]int {
		return map[string]int{"socket-id": i / (threads * cores * dies), "die-id": i / (threads * cores) % dies,
			"core-id": i / threads % cores, "thread-id": i % threads}
	}
	// -numa cpu,node-id=N,socket-id=…: machine_set_cpu_numa_node, every slot the ids match
	for _, o := range numaOpts(cfg, "cpu") {
		ns, _ := o.Get("node-id")
		id, err := strconv.Atoi(ns)
		if err != nil {
			continue // compat and QEMU's visitor refuse it
		}
		for i := range cpuNodes {
			match := true
			for k, v := range topo(i) {
				if s, ok := o.Get(k); ok && s != strconv.Itoa(v) {
					match = false
				}
			}
			if !match {
				continue
			}
			if n := cpuNodes[i]; n >= 0 && n != id {
				return nil, nil, failf(cfg, o.Loc, "CPU is already assigned to node-id: %d", n)
			}
			cpuNodes[i] = id
			assigned = true
		}
	}
	var missing []string
	for i, n := range cpuNodes {
		if n >= 0 {
			continue
		}
		socket := i / (threads * cores * dies)
		if !assigned {
			cpuNodes[i] = socket % len(nodes)
			continue
		}
		die := ""
		if dies > 1 {
			die = fmt.Sprintf("die-id: %d, ", i/(threads*cores)%dies)
		}
		missing = append(missing, fmt.Sprintf("CPU %d [socket-id: %d, %score-id: %d, thread-id: %d]",
			i, socket, die, i/threads%cores, i%threads))
		cpuNodes[i] = 0
	}
	if len(missing) > 0 {
		warnings = []string{"CPU(s) not present in any NUMA nodes: " + strings.Join(missing, ", "),
			"All CPU(s) up to maxcpus should be described in NUMA config, " +
				"ability to start up with partial NUMA mappings is obsoleted and will be removed in future"}
	}
	return cpuNodes, warnings, nil
}

// cpuRange reads one cpus= value as the opts visitor reads a uint64 list item: "N" or "A-B"
// with A <= B.
func cpuRange(s string) (lo, hi uint64, ok bool) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err := strconv.ParseUint(a, 0, 64)
	if err != nil {
		return 0, 0, false
	}
	hi = lo
	if isRange {
		if hi, err = strconv.ParseUint(b, 0, 64); err != nil || hi < lo {
			return 0, 0, false
		}
	}
	return lo, hi, true
}
