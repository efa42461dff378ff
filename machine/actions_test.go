package machine_test

import (
	"reflect"
	"testing"

	"tlcvm/machine"
)

// TestActions: the command line's actions (NoReboot, Actions) and set-action's changes
// decide what a reset request does to a running VM.
func TestActions(t *testing.T) {
	for _, c := range []struct {
		name   string
		cfg    machine.Config
		set    machine.Actions
		want   machine.Actions
		events []string
		state  machine.RunState
	}{
		{"defaults", machine.Config{}, machine.Actions{},
			machine.Actions{Reboot: "reset", Shutdown: "poweroff", Panic: "shutdown", Watchdog: "reset"},
			[]string{"RESET"}, machine.StateRunning},
		{"-no-reboot -no-shutdown", machine.Config{NoReboot: true, NoShutdown: true}, machine.Actions{},
			machine.Actions{Reboot: "shutdown", Shutdown: "pause", Panic: "shutdown", Watchdog: "reset"},
			[]string{"SHUTDOWN", "STOP"}, machine.StateShutdown},
		{"-action panic=none,watchdog=debug", machine.Config{Actions: machine.Actions{Panic: "none", Watchdog: "debug"}},
			machine.Actions{}, machine.Actions{Reboot: "reset", Shutdown: "poweroff", Panic: "none", Watchdog: "debug"},
			[]string{"RESET"}, machine.StateRunning},
		{"set-action reboot=shutdown shutdown=pause", machine.Config{},
			machine.Actions{Reboot: "shutdown", Shutdown: "pause"},
			machine.Actions{Reboot: "shutdown", Shutdown: "pause", Panic: "shutdown", Watchdog: "reset"},
			[]string{"SHUTDOWN", "STOP"}, machine.StateShutdown},
		{"set-action reboot=reset after -no-reboot", machine.Config{NoReboot: true, NoShutdown: true},
			machine.Actions{Reboot: "reset"},
			machine.Actions{Reboot: "reset", Shutdown: "pause", Panic: "shutdown", Watchdog: "reset"},
			[]string{"RESET"}, machine.StateRunning},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSink()
			c.cfg.Events, c.cfg.FwCfg = s, idle()
			m := newMachine(t, c.cfg)
			m.Start()
			s.take() // RESUME
			m.SetActions(c.set)
			if got := m.CurrentActions(); !reflect.DeepEqual(got, c.want) {
				t.Errorf("actions %+v, want %+v", got, c.want)
			}
			m.Reset(machine.CauseHostQMPSystemReset)
			if got := names(s.take()); !reflect.DeepEqual(got, c.events) {
				t.Errorf("events %v, want %v", got, c.events)
			}
			if st, _ := m.Status(); st != c.state {
				t.Errorf("state %s, want %s", st, c.state)
			}
		})
	}
}
