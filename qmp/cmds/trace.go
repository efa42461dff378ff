package cmds

import (
	"tlcvm/qmp"
	"tlcvm/trace"
)

// trace-event-get-state and trace-event-set-state (trace/qmp.c): QEMU 7.2's trace events
// by name or '*' pattern, and their dynamic states, kept by package trace. tlcvm has no
// probes behind the names (docs/compatibility.md).

// TraceEventInfo is QAPI's TraceEventInfo.
type TraceEventInfo struct {
	qmp.QAPIOrder
	Name  string      `json:"name"`
	VCPU  bool        `json:"vcpu"`
	State trace.State `json:"state"`
}

// TraceEventGetStateArgs are trace-event-get-state's arguments.
type TraceEventGetStateArgs struct {
	Name string `json:"name"`
	VCPU *int64 `json:"vcpu,omitempty"`
}

// TraceEventSetStateArgs are trace-event-set-state's arguments.
type TraceEventSetStateArgs struct {
	Name              string `json:"name"`
	Enable            bool   `json:"enable"`
	IgnoreUnavailable *bool  `json:"ignore-unavailable,omitempty"`
	VCPU              *int64 `json:"vcpu,omitempty"`
}

// presentCPUs lists the indexes of the plugged vCPUs (qemu_get_cpu finds only those).
func presentCPUs(d *Deps) []int {
	if d.Machine == nil {
		return nil
	}
	var out []int
	for _, c := range d.Machine.CPUs() {
		if c.Plugged {
			out = append(out, c.Index)
		}
	}
	return out
}

func registerTrace(r *qmp.Registry, d *Deps) {
	ev := d.Trace
	if ev == nil {
		ev = trace.New()
	}
	r.Register(
		qmp.Command{Name: "trace-event-get-state", Args: &TraceEventGetStateArgs{}, Returns: []TraceEventInfo{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*TraceEventGetStateArgs)
				infos, err := ev.Get(a.Name, a.VCPU, presentCPUs(d))
				if err != nil {
					return nil, err
				}
				out := make([]TraceEventInfo, len(infos))
				for i, e := range infos {
					out[i] = TraceEventInfo{Name: e.Name, VCPU: e.VCPU, State: e.State}
				}
				return out, nil
			}},
		qmp.Command{Name: "trace-event-set-state", Args: &TraceEventSetStateArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*TraceEventSetStateArgs)
				ignore := a.IgnoreUnavailable != nil && *a.IgnoreUnavailable
				return nil, ev.Set(a.Name, a.Enable, ignore, a.VCPU, presentCPUs(d))
			}},
	)
}
