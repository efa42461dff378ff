package machine

import "fmt"

// RunState is QEMU's RunState enum (qapi/run-state.json). The numeric order is the
// QAPI declaration order, so String and ParseRunState are table lookups.
type RunState int

// The run states, in QAPI order.
const (
	StateDebug RunState = iota
	StateInMigrate
	StateInternalError
	StateIOError
	StatePaused
	StatePostMigrate
	StatePrelaunch
	StateFinishMigrate
	StateRestoreVM
	StateRunning
	StateSaveVM
	StateShutdown
	StateSuspended
	StateWatchdog
	StateGuestPanicked
	StateColo
	numRunStates
)

var runStateNames = [numRunStates]string{
	"debug", "inmigrate", "internal-error", "io-error", "paused", "postmigrate",
	"prelaunch", "finish-migrate", "restore-vm", "running", "save-vm", "shutdown",
	"suspended", "watchdog", "guest-panicked", "colo",
}

// String returns the QAPI name ("running", "inmigrate", …).
func (s RunState) String() string {
	if s < 0 || s >= numRunStates {
		return fmt.Sprintf("RunState(%d)", int(s))
	}
	return runStateNames[s]
}

// ParseRunState is the inverse of String.
func ParseRunState(name string) (RunState, bool) {
	for i, n := range runStateNames {
		if n == name {
			return RunState(i), true
		}
	}
	return 0, false
}

// AllRunStates lists every state in QAPI order.
func AllRunStates() []RunState {
	out := make([]RunState, numRunStates)
	for i := range out {
		out[i] = RunState(i)
	}
	return out
}

// transitions is QEMU 7.2's runstate_transitions_def (softmmu/runstate.c), verbatim in
// content and order. A transition to the current state is always a no-op (runstate_set).
var transitions = [...][2]RunState{
	{StatePrelaunch, StateInMigrate},

	{StateDebug, StateRunning},
	{StateDebug, StateFinishMigrate},
	{StateDebug, StatePrelaunch},

	{StateInMigrate, StateInternalError},
	{StateInMigrate, StateIOError},
	{StateInMigrate, StatePaused},
	{StateInMigrate, StateRunning},
	{StateInMigrate, StateShutdown},
	{StateInMigrate, StateSuspended},
	{StateInMigrate, StateWatchdog},
	{StateInMigrate, StateGuestPanicked},
	{StateInMigrate, StateFinishMigrate},
	{StateInMigrate, StatePrelaunch},
	{StateInMigrate, StatePostMigrate},
	{StateInMigrate, StateColo},

	{StateInternalError, StatePaused},
	{StateInternalError, StateFinishMigrate},
	{StateInternalError, StatePrelaunch},

	{StateIOError, StateRunning},
	{StateIOError, StateFinishMigrate},
	{StateIOError, StatePrelaunch},

	{StatePaused, StateRunning},
	{StatePaused, StateFinishMigrate},
	{StatePaused, StatePostMigrate},
	{StatePaused, StatePrelaunch},
	{StatePaused, StateColo},

	{StatePostMigrate, StateRunning},
	{StatePostMigrate, StateFinishMigrate},
	{StatePostMigrate, StatePrelaunch},

	{StatePrelaunch, StateRunning},
	{StatePrelaunch, StateFinishMigrate},
	{StatePrelaunch, StateInMigrate},

	{StateFinishMigrate, StateRunning},
	{StateFinishMigrate, StatePaused},
	{StateFinishMigrate, StatePostMigrate},
	{StateFinishMigrate, StatePrelaunch},
	{StateFinishMigrate, StateColo},

	{StateRestoreVM, StateRunning},
	{StateRestoreVM, StatePrelaunch},

	{StateColo, StateRunning},
	{StateColo, StatePrelaunch},
	{StateColo, StateShutdown},

	{StateRunning, StateDebug},
	{StateRunning, StateInternalError},
	{StateRunning, StateIOError},
	{StateRunning, StatePaused},
	{StateRunning, StateFinishMigrate},
	{StateRunning, StateRestoreVM},
	{StateRunning, StateSaveVM},
	{StateRunning, StateShutdown},
	{StateRunning, StateWatchdog},
	{StateRunning, StateGuestPanicked},
	{StateRunning, StateColo},

	{StateSaveVM, StateRunning},

	{StateShutdown, StatePaused},
	{StateShutdown, StateFinishMigrate},
	{StateShutdown, StatePrelaunch},
	{StateShutdown, StateColo},

	{StateDebug, StateSuspended},
	{StateRunning, StateSuspended},
	{StateSuspended, StateRunning},
	{StateSuspended, StateFinishMigrate},
	{StateSuspended, StatePrelaunch},
	{StateSuspended, StateColo},

	{StateWatchdog, StateRunning},
	{StateWatchdog, StateFinishMigrate},
	{StateWatchdog, StatePrelaunch},
	{StateWatchdog, StateColo},

	{StateGuestPanicked, StateRunning},
	{StateGuestPanicked, StateFinishMigrate},
	{StateGuestPanicked, StatePrelaunch},
}

var validTransition = func() (t [numRunStates][numRunStates]bool) {
	for _, e := range transitions {
		t[e[0]][e[1]] = true
	}
	return t
}()

// ValidTransition reports whether QEMU allows runstate_set(to) in state from.
// Setting the current state again is always allowed (and does nothing).
func ValidTransition(from, to RunState) bool {
	if from < 0 || from >= numRunStates || to < 0 || to >= numRunStates {
		return false
	}
	return from == to || validTransition[from][to]
}
