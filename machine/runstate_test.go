package machine_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"tlcvm/machine"
)

// legal is runstate_transitions_def of QEMU 7.2, written out independently as
// "from -> to" for the whole table.
var legal = map[string][]string{
	"prelaunch":      {"inmigrate", "running", "finish-migrate"},
	"debug":          {"running", "finish-migrate", "prelaunch", "suspended"},
	"inmigrate":      {"internal-error", "io-error", "paused", "running", "shutdown", "suspended", "watchdog", "guest-panicked", "finish-migrate", "prelaunch", "postmigrate", "colo"},
	"internal-error": {"paused", "finish-migrate", "prelaunch"},
	"io-error":       {"running", "finish-migrate", "prelaunch"},
	"paused":         {"running", "finish-migrate", "postmigrate", "prelaunch", "colo"},
	"postmigrate":    {"running", "finish-migrate", "prelaunch"},
	"finish-migrate": {"running", "paused", "postmigrate", "prelaunch", "colo"},
	"restore-vm":     {"running", "prelaunch"},
	"colo":           {"running", "prelaunch", "shutdown"},
	"running":        {"debug", "internal-error", "io-error", "paused", "finish-migrate", "restore-vm", "save-vm", "shutdown", "watchdog", "guest-panicked", "colo", "suspended"},
	"save-vm":        {"running"},
	"shutdown":       {"paused", "finish-migrate", "prelaunch", "colo"},
	"suspended":      {"running", "finish-migrate", "prelaunch", "colo"},
	"watchdog":       {"running", "finish-migrate", "prelaunch", "colo"},
	"guest-panicked": {"running", "finish-migrate", "prelaunch"},
}

func TestRunStateNames(t *testing.T) {
	want := []string{"debug", "inmigrate", "internal-error", "io-error", "paused", "postmigrate",
		"prelaunch", "finish-migrate", "restore-vm", "running", "save-vm", "shutdown",
		"suspended", "watchdog", "guest-panicked", "colo"}
	var got []string
	for _, s := range machine.AllRunStates() {
		got = append(got, s.String())
		back, ok := machine.ParseRunState(s.String())
		if !ok || back != s {
			t.Errorf("ParseRunState(%q) = %v, %v", s, back, ok)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("names = %v, want %v", got, want)
	}
	if _, ok := machine.ParseRunState("bogus"); ok {
		t.Error("ParseRunState(bogus) succeeded")
	}
}

// TestTransitionTable checks every one of the 16×16 edges against the table above.
func TestTransitionTable(t *testing.T) {
	n := 0
	for _, from := range machine.AllRunStates() {
		for _, to := range machine.AllRunStates() {
			want := from == to
			for _, x := range legal[from.String()] {
				want = want || x == to.String()
			}
			if want && from != to {
				n++
			}
			if got := machine.ValidTransition(from, to); got != want {
				t.Errorf("ValidTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
	}
	if n != 71 {
		t.Errorf("%d legal edges, want 71 (QEMU 7.2 lists 72 entries, one duplicated)", n)
	}
}

// TestTransitionFunction drives the machine's one transition function along every edge:
// legal ones succeed (with STOP/RESUME exactly when leaving/entering running), illegal
// ones panic.
func TestTransitionFunction(t *testing.T) {
	m := newMachine(t, machine.Config{Type: "none"})
	s := newSink()
	m2 := newMachine(t, machine.Config{Type: "none", Events: s})
	_ = m
	for _, from := range machine.AllRunStates() {
		for _, to := range machine.AllRunStates() {
			if from == to {
				continue
			}
			name := fmt.Sprintf("%s->%s", from, to)
			// reach "from" by a legal path from prelaunch
			if !reach(m2, from) {
				t.Fatalf("%s: cannot reach %s", name, from)
			}
			s.take()
			panicked := func() (p bool) {
				defer func() { p = recover() != nil }()
				m2.SetState(to)
				return false
			}()
			if panicked == machine.ValidTransition(from, to) {
				t.Errorf("%s: panicked=%v", name, panicked)
				continue
			}
			if panicked {
				continue
			}
			var want []string
			switch {
			case from == machine.StateRunning && to != machine.StateSuspended:
				want = []string{"STOP"}
			case to == machine.StateRunning && from != machine.StateSuspended:
				want = []string{"RESUME"}
			}
			if got := names(s.take()); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: events %v, want %v", name, got, want)
			}
		}
	}
}

// reach moves m to state st along legal edges (breadth-first path search).
func reach(m *machine.Machine, st machine.RunState) bool {
	cur, _ := m.Status()
	prev := map[machine.RunState]machine.RunState{cur: cur}
	queue := []machine.RunState{cur}
	for len(queue) > 0 {
		if _, found := prev[st]; found {
			break
		}
		c := queue[0]
		queue = queue[1:]
		for _, n := range machine.AllRunStates() {
			if _, seen := prev[n]; !seen && n != c && machine.ValidTransition(c, n) {
				prev[n] = c
				queue = append(queue, n)
			}
		}
	}
	if _, ok := prev[st]; !ok {
		return false
	}
	var path []machine.RunState
	for x := st; x != cur; x = prev[x] {
		path = append([]machine.RunState{x}, path...)
	}
	for _, p := range path {
		m.SetState(p)
	}
	return true
}

func TestErrorsAreSentinels(t *testing.T) {
	m := newMachine(t, machine.Config{Type: "none"})
	m.SetState(machine.StateRunning)
	m.SetState(machine.StateShutdown)
	err := m.Cont()
	if !errors.Is(err, machine.ErrNeedsReset) || err.Error() != "Resetting the Virtual Machine is required" {
		t.Fatalf("Cont in shutdown = %v", err)
	}
}
