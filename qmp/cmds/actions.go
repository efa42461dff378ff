package cmds

import (
	"tlcvm/machine"
	"tlcvm/qmp"
)

// set-action and watchdog-set-action (qapi/run-state.json): the run-state actions of
// machine/actions.go. libvirt sends set-action (or, to a QEMU without it,
// watchdog-set-action) when it hotplugs a watchdog.

// Actor is what these handlers need of the VM.
type Actor interface{ SetActions(machine.Actions) }

// RebootAction is what a reboot request does.
type RebootAction string

// EnumValues implements qmp.Enum.
func (RebootAction) EnumValues() []string { return []string{"reset", "shutdown"} }

// ShutdownAction is what a guest shutdown does.
type ShutdownAction string

// EnumValues implements qmp.Enum.
func (ShutdownAction) EnumValues() []string { return []string{"poweroff", "pause"} }

// PanicAction is what a guest panic does.
type PanicAction string

// EnumValues implements qmp.Enum.
func (PanicAction) EnumValues() []string {
	return []string{"pause", "shutdown", "exit-failure", "none"}
}

// WatchdogAction is what a watchdog expiry does.
type WatchdogAction string

// EnumValues implements qmp.Enum.
func (WatchdogAction) EnumValues() []string {
	return []string{"reset", "shutdown", "poweroff", "pause", "debug", "none", "inject-nmi"}
}

// SetActionArgs are set-action's arguments.
type SetActionArgs struct {
	Reboot   *RebootAction   `json:"reboot,omitempty"`
	Shutdown *ShutdownAction `json:"shutdown,omitempty"`
	Panic    *PanicAction    `json:"panic,omitempty"`
	Watchdog *WatchdogAction `json:"watchdog,omitempty"`
}

// WatchdogSetActionArgs are watchdog-set-action's arguments.
type WatchdogSetActionArgs struct {
	Action WatchdogAction `json:"action"`
}

func registerActions(r *qmp.Registry, a Actor) {
	r.Register(
		qmp.Command{Name: "watchdog-set-action", Args: &WatchdogSetActionArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a.SetActions(machine.Actions{Watchdog: string(c.Args.(*WatchdogSetActionArgs).Action)})
				return nil, nil
			}},
		qmp.Command{Name: "set-action", Args: &SetActionArgs{}, AllowPreconfig: true,
			Run: func(c *qmp.Call) (any, error) {
				x := c.Args.(*SetActionArgs)
				var m machine.Actions
				if x.Reboot != nil {
					m.Reboot = string(*x.Reboot)
				}
				if x.Shutdown != nil {
					m.Shutdown = string(*x.Shutdown)
				}
				if x.Panic != nil {
					m.Panic = string(*x.Panic)
				}
				if x.Watchdog != nil {
					m.Watchdog = string(*x.Watchdog)
				}
				a.SetActions(m)
				return nil, nil
			}},
	)
}
