package machine

// Run-state actions, QEMU 7.2's softmmu/runstate-action.c: what a reboot request, a guest
// shutdown, a guest panic and a watchdog expiry do. -no-reboot, -no-shutdown, -action and
// -watchdog-action set them on the command line (Config.NoReboot, Config.NoShutdown),
// set-action and watchdog-set-action at run time (SetActions). reboot=shutdown turns a
// reset request into a shutdown; shutdown=pause stops the VM in the shutdown state instead
// of exiting. tlcvm's guest never panics and no watchdog of tlcvm's expires, so the panic
// and watchdog actions are kept (as QEMU keeps them) and have nothing to act on.

// Actions are the run-state actions; "" leaves one unchanged in SetActions.
type Actions struct {
	Reboot   string // "reset" (default) or "shutdown"
	Shutdown string // "poweroff" (default) or "pause"
	Panic    string // "shutdown" (default), "pause", "exit-failure", "none"
	Watchdog string // "reset" (default), "shutdown", "poweroff", "pause", "debug", "none", "inject-nmi"
}

// SetActions is set-action (and watchdog-set-action with only Watchdog set): each action
// given replaces the current one, the shutdown action last, as QEMU processes them.
func (m *Machine) SetActions(a Actions) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a.Reboot != "" {
		m.actions.Reboot = a.Reboot
	}
	if a.Panic != "" {
		m.actions.Panic = a.Panic
	}
	if a.Watchdog != "" {
		m.actions.Watchdog = a.Watchdog
	}
	if a.Shutdown != "" {
		m.actions.Shutdown = a.Shutdown
	}
}

// CurrentActions returns the run-state actions in force.
func (m *Machine) CurrentActions() Actions {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.actions
}

// initialActions are the actions of a machine built from cfg.
func initialActions(cfg Config) Actions {
	a := Actions{Reboot: "reset", Shutdown: "poweroff", Panic: "shutdown", Watchdog: "reset"}
	for _, kv := range [][2]*string{{&a.Reboot, &cfg.Actions.Reboot}, {&a.Shutdown, &cfg.Actions.Shutdown},
		{&a.Panic, &cfg.Actions.Panic}, {&a.Watchdog, &cfg.Actions.Watchdog}} {
		if *kv[1] != "" {
			*kv[0] = *kv[1]
		}
	}
	if cfg.NoReboot {
		a.Reboot = "shutdown"
	}
	if cfg.NoShutdown {
		a.Shutdown = "pause"
	}
	return a
}
