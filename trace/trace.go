package trace

import (
	"errors"
	"strings"
	"sync"

	"tlcvm/compat/qerror"
)

// Sentinels of the failures, all GenericError on QMP.
var (
	ErrUnknownEvent = errors.New("unknown trace event")
	ErrNotVCPU      = errors.New("trace event is not vCPU-specific")
	ErrBadVCPU      = errors.New("invalid vCPU index")
	ErrUnavailable  = errors.New("trace event statically disabled")
)

// State is QAPI's TraceEventState.
type State string

// The states.
const (
	Unavailable State = "unavailable"
	Disabled    State = "disabled"
	Enabled     State = "enabled"
)

// EnumValues lists QAPI's TraceEventState, in its order.
func (State) EnumValues() []string { return []string{"unavailable", "disabled", "enabled"} }

// Info is QAPI's TraceEventInfo.
type Info struct {
	Name  string `json:"name"`
	VCPU  bool   `json:"vcpu"`
	State State  `json:"state"`
}

type event struct {
	name        string
	vcpu        bool
	unavailable bool
}

var (
	tableOnce sync.Once
	table     []event
	byName    map[string]int
)

// load parses the generated list on first use: start-up does no work for trace events.
func load() {
	tableOnce.Do(func() {
		lines := strings.Split(strings.TrimSpace(eventList), "\n")
		table = make([]event, 0, len(lines))
		byName = make(map[string]int, len(lines))
		for _, l := range lines {
			f := strings.Fields(l)
			e := event{name: f[0]}
			for _, flag := range f[1:] {
				switch flag {
				case "vcpu":
					e.vcpu = true
				case "unavailable":
					e.unavailable = true
				}
			}
			byName[e.name] = len(table)
			table = append(table, e)
		}
	})
}

// Names returns every event name, in the table's order.
func Names() []string {
	load()
	out := make([]string, len(table))
	for i, e := range table {
		out[i] = e.name
	}
	return out
}

// Events holds the dynamic state of every event: on or off for the plain events, a set of
// vCPU indexes for the per-vCPU ones. The zero value is not usable; use New.
type Events struct {
	mu   sync.Mutex
	on   map[int]bool         // plain events switched on, by table index
	vcpu map[int]map[int]bool // per-vCPU events: the vCPUs they are on for
}

// New returns the table with every event off, as QEMU starts without -trace.
func New() *Events {
	load()
	return &Events{on: map[int]bool{}, vcpu: map[int]map[int]bool{}}
}

// Enabled reports whether the named event is on (for any vCPU).
func (t *Events) Enabled(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := byName[name]
	return ok && t.enabled(i)
}

func (t *Events) enabled(i int) bool {
	if table[i].vcpu {
		return len(t.vcpu[i]) > 0
	}
	return t.on[i]
}

// isPattern is trace_event_is_pattern.
func isPattern(s string) bool { return strings.IndexByte(s, '*') >= 0 }

// glob is trace/control.c's pattern_glob ('*' matches any run, every other byte itself),
// matched greedily with one backtrack point so that a pattern of many stars costs
// O(len(pat)*len(ev)) rather than QEMU's exponential recursion.
func glob(pat, ev string) bool {
	p, e := 0, 0
	star, mark := -1, 0
	for e < len(ev) {
		switch {
		case p < len(pat) && pat[p] == '*':
			star, mark = p, e
			p++
		case p < len(pat) && pat[p] == ev[e]:
			p++
			e++
		case star >= 0:
			p = star + 1
			mark++
			e = mark
		default:
			return false
		}
	}
	return strings.TrimLeft(pat[p:], "*") == ""
}

// matches returns the indexes of the events the name or pattern selects, in table order.
func matches(name string) []int {
	if !isPattern(name) {
		if i, ok := byName[name]; ok {
			return []int{i}
		}
		return nil
	}
	var out []int
	for i, e := range table {
		if glob(name, e.name) {
			out = append(out, i)
		}
	}
	return out
}

// checkVCPU is qmp.c's get_cpu: v (trace-event-*'s vcpu argument, nil when absent) must be
// one of the machine's present vCPUs.
func checkVCPU(v *int64, cpus []int) error {
	if v == nil {
		return nil
	}
	for _, c := range cpus {
		if int64(c) == *v {
			return nil
		}
	}
	return qerror.Errorf(ErrBadVCPU, "invalid vCPU index %d", uint32(*v))
}

// check is qmp.c's check_events.
func check(v *int64, ignoreUnavailable bool, name string) error {
	if !isPattern(name) {
		i, ok := byName[name]
		if !ok {
			return qerror.Errorf(ErrUnknownEvent, "unknown event \"%s\"", name)
		}
		if v != nil && !table[i].vcpu {
			return qerror.Errorf(ErrNotVCPU, "event \"%s\" is not vCPU-specific", name)
		}
		if !ignoreUnavailable && table[i].unavailable {
			return qerror.Errorf(ErrUnavailable, "event \"%s\" is disabled", name)
		}
		return nil
	}
	for _, i := range matches(name) {
		if !ignoreUnavailable && table[i].unavailable {
			return qerror.Errorf(ErrUnavailable, "event \"%s\" is disabled", table[i].name)
		}
	}
	return nil
}

// Get is qmp_trace_event_get_state: the states of the events name selects; with a vCPU,
// only the per-vCPU events and their state for it. cpus are the present vCPUs' indexes.
func (t *Events) Get(name string, v *int64, cpus []int) ([]Info, error) {
	if err := checkVCPU(v, cpus); err != nil {
		return nil, err
	}
	if err := check(v, true, name); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []Info{}
	for _, i := range matches(name) {
		e := table[i]
		if v != nil && !e.vcpu {
			continue
		}
		st := Disabled
		switch {
		case e.unavailable:
			st = Unavailable
		case v != nil && t.vcpu[i][int(*v)], v == nil && t.enabled(i):
			st = Enabled
		}
		out = append(out, Info{Name: e.name, VCPU: e.vcpu, State: st})
	}
	return out, nil
}

// Set is qmp_trace_event_set_state: switch the events name selects, for one vCPU or (for
// the per-vCPU events) every present one of cpus.
func (t *Events) Set(name string, enable, ignoreUnavailable bool, v *int64, cpus []int) error {
	if err := checkVCPU(v, cpus); err != nil {
		return err
	}
	if err := check(v, ignoreUnavailable, name); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, i := range matches(name) {
		e := table[i]
		if e.unavailable || (v != nil && !e.vcpu) {
			continue
		}
		switch {
		case !e.vcpu:
			t.on[i] = enable
		case v != nil:
			t.setVCPU(i, int(*v), enable)
		default:
			for _, c := range cpus {
				t.setVCPU(i, c, enable)
			}
		}
	}
	return nil
}

func (t *Events) setVCPU(i, cpu int, enable bool) {
	m := t.vcpu[i]
	if m == nil {
		m = map[int]bool{}
		t.vcpu[i] = m
	}
	if enable {
		m[cpu] = true
	} else {
		delete(m, cpu)
	}
}
