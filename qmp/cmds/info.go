package cmds

import (
	"tlcvm/internal/ghash"
	"tlcvm/machine"
	"tlcvm/qmp"
)

// NameInfo is query-name's reply; name is absent when -name was not given.
type NameInfo struct {
	qmp.QAPIOrder
	Name string `json:"name,omitempty"`
}

// UuidInfo is query-uuid's reply.
type UuidInfo struct {
	qmp.QAPIOrder
	UUID string `json:"UUID"`
}

// KvmInfo is query-kvm's reply: "present" as Debian's QEMU (compiled in), "enabled" when
// the accelerator chosen is KVM (see the composition root's chooseAccel).
type KvmInfo struct {
	qmp.QAPIOrder
	Enabled bool `json:"enabled"`
	Present bool `json:"present"`
}

// TargetInfo is query-target's reply.
type TargetInfo struct {
	qmp.QAPIOrder
	Arch string `json:"arch"`
}

// CpuInstanceProperties identifies a CPU slot; members absent when the machine has no such
// level (die-id appears only with dies > 1, as in QEMU 7.2).
type CpuInstanceProperties struct {
	qmp.QAPIOrder
	NodeID    *int64 `json:"node-id,omitempty"`
	SocketID  *int64 `json:"socket-id,omitempty"`
	DieID     *int64 `json:"die-id,omitempty"`
	ClusterID *int64 `json:"cluster-id,omitempty"`
	CoreID    *int64 `json:"core-id,omitempty"`
	ThreadID  *int64 `json:"thread-id,omitempty"`
}

// CpuInfoFast is one element of query-cpus-fast.
type CpuInfoFast struct {
	qmp.QAPIOrder
	CPUIndex int64                  `json:"cpu-index"`
	QOMPath  string                 `json:"qom-path"`
	ThreadID int64                  `json:"thread-id"`
	Props    *CpuInstanceProperties `json:"props,omitempty"`
	Target   string                 `json:"target"`
}

// HotpluggableCPU is one element of query-hotpluggable-cpus; qom-path is absent for a slot
// with no CPU plugged.
type HotpluggableCPU struct {
	qmp.QAPIOrder
	Type       string                `json:"type"`
	VcpusCount int64                 `json:"vcpus-count"`
	Props      CpuInstanceProperties `json:"props"`
	QOMPath    string                `json:"qom-path,omitempty"`
}

// MemoryInfo is query-memory-size-summary's reply.
type MemoryInfo struct {
	qmp.QAPIOrder
	BaseMemory    uint64  `json:"base-memory"`
	PluggedMemory *uint64 `json:"plugged-memory,omitempty"` // x86 QEMU always has it
}

// IOThreadInfo is one element of query-iothreads (the iothread objects, object.go).
type IOThreadInfo struct {
	qmp.QAPIOrder
	ID          string `json:"id"`
	ThreadID    int64  `json:"thread-id"`
	PollMaxNs   int64  `json:"poll-max-ns"`
	PollGrow    int64  `json:"poll-grow"`
	PollShrink  int64  `json:"poll-shrink"`
	AioMaxBatch int64  `json:"aio-max-batch"`
}

// ChardevInfo is one element of query-chardev.
type ChardevInfo struct {
	qmp.QAPIOrder
	Label        string `json:"label"`
	Filename     string `json:"filename"`
	FrontendOpen bool   `json:"frontend-open"`
}

func props(p machine.CPUProps) CpuInstanceProperties {
	v := func(x int) *int64 { y := int64(x); return &y }
	out := CpuInstanceProperties{CoreID: v(p.CoreID), ThreadID: v(p.ThreadID), SocketID: v(p.SocketID)}
	if p.HasDie {
		out.DieID = v(p.DieID)
	}
	if p.NodeID >= 0 {
		out.NodeID = v(p.NodeID)
	}
	return out
}

func registerInfo(r *qmp.Registry, d *Deps) {
	m := d.Machine
	r.Register(
		qmp.Command{Name: "query-version", Returns: qmp.VersionInfo{}, AllowPreconfig: true,
			Run: func(*qmp.Call) (any, error) { return d.Version, nil }},
		qmp.Command{Name: "query-name", Returns: NameInfo{}, AllowPreconfig: true,
			Run: func(*qmp.Call) (any, error) { return NameInfo{Name: d.Name}, nil }},
		qmp.Command{Name: "query-uuid", Returns: UuidInfo{}, AllowPreconfig: true,
			Run: func(*qmp.Call) (any, error) {
				u := d.UUID
				if u == "" {
					u = "00000000-0000-0000-0000-000000000000"
				}
				return UuidInfo{UUID: u}, nil
			}},
		qmp.Command{Name: "query-kvm", Returns: KvmInfo{}, AllowPreconfig: true,
			Run: func(*qmp.Call) (any, error) { return KvmInfo{Enabled: d.KVM, Present: true}, nil }},
		qmp.Command{Name: "query-target", Returns: TargetInfo{}, AllowPreconfig: true,
			Run: func(*qmp.Call) (any, error) { return TargetInfo{Arch: "x86_64"}, nil }},
		qmp.Command{Name: "query-cpus-fast", Returns: []CpuInfoFast{},
			Run: func(*qmp.Call) (any, error) {
				out := []CpuInfoFast{}
				for _, c := range m.CPUs() {
					if !c.Plugged {
						continue
					}
					p := props(c.Props)
					out = append(out, CpuInfoFast{ThreadID: int64(c.ThreadID), Props: &p,
						QOMPath: c.QOMPath, CPUIndex: int64(c.Index), Target: "x86_64"})
				}
				return out, nil
			}},
		qmp.Command{Name: "query-hotpluggable-cpus", Returns: []HotpluggableCPU{}, AllowPreconfig: true,
			Run: func(*qmp.Call) (any, error) {
				if d.MachineType == "none" { // a machine class without possible_cpu_arch_ids
					return nil, qmp.GenericError("The feature 'query-hotpluggable-cpus' is not enabled")
				}
				cpus := m.CPUs()
				out := []HotpluggableCPU{}
				// QEMU lists the possible CPUs from the last slot to the first.
				for i := len(cpus) - 1; i >= 0; i-- {
					c := cpus[i]
					h := HotpluggableCPU{Props: props(c.Props), VcpusCount: 1, Type: c.Type}
					if c.Plugged {
						h.QOMPath = c.QOMPath
					}
					out = append(out, h)
				}
				return out, nil
			}},
		qmp.Command{Name: "query-memory-size-summary", Returns: MemoryInfo{},
			Run: func(*qmp.Call) (any, error) {
				var plugged uint64
				if d.MemoryDevices != nil {
					plugged = d.MemoryDevices.Plugged()
				}
				return MemoryInfo{BaseMemory: m.RAMSize(), PluggedMemory: &plugged}, nil
			}},
		qmp.Command{Name: "query-iothreads", Returns: []IOThreadInfo{}, AllowPreconfig: true,
			Run: func(*qmp.Call) (any, error) { return iothreads(d), nil }},
		qmp.Command{Name: "query-chardev", Returns: []ChardevInfo{}, AllowPreconfig: true,
			Run: func(*qmp.Call) (any, error) {
				// QEMU walks the /chardevs container's hash table and prepends each entry.
				cs := d.Chardevs()
				byLabel := map[string]ChardevInfo{}
				labels := make([]string, len(cs))
				for i, c := range cs {
					byLabel[c.Label], labels[i] = c, c.Label
				}
				walk := ghash.Order(labels)
				out := make([]ChardevInfo, 0, len(cs))
				for i := len(walk) - 1; i >= 0; i-- {
					out = append(out, byLabel[walk[i]])
				}
				return out, nil
			}},
	)
}
