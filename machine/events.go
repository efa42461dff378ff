package machine

import (
	"errors"

	"tlcvm/compat/qerror"
)

// EventSink receives the machine's QMP events. data is nil or a struct whose json tags
// are in QEMU's key order. Emit is called with the machine's lock held: it must not call
// back into the Machine (queue the event and return).
type EventSink interface{ Emit(name string, data any) }

// Event names, as QEMU sends them.
const (
	EventStop      = "STOP"
	EventResume    = "RESUME"
	EventReset     = "RESET"
	EventShutdown  = "SHUTDOWN"
	EventPowerdown = "POWERDOWN"
)

// ShutdownCause values (qapi/run-state.json ShutdownCause) used as "reason".
const (
	CauseHostError          = "host-error"
	CauseHostQMPQuit        = "host-qmp-quit"
	CauseHostQMPSystemReset = "host-qmp-system-reset"
	CauseHostSignal         = "host-signal"
	CauseHostUI             = "host-ui"
	CauseGuestShutdown      = "guest-shutdown"
	CauseGuestReset         = "guest-reset"
	CauseGuestPanic         = "guest-panic"
	CauseSubsystemReset     = "subsystem-reset"
)

// guestCause is QEMU's shutdown_caused_by_guest: every cause from guest-shutdown on.
func guestCause(reason string) bool {
	switch reason {
	case CauseGuestShutdown, CauseGuestReset, CauseGuestPanic, CauseSubsystemReset, "snapshot-load":
		return true
	}
	return false
}

// ShutdownEvent is the data of SHUTDOWN: {"guest": …, "reason": …}.
type ShutdownEvent struct {
	Guest  bool   `json:"guest"`
	Reason string `json:"reason"`
}

// ResetEvent is the data of RESET: {"guest": …, "reason": …}.
type ResetEvent struct {
	Guest  bool   `json:"guest"`
	Reason string `json:"reason"`
}

type nopSink struct{}

func (nopSink) Emit(string, any) {}

// Sentinel errors. Errors returned by the machine carry QEMU's exact text as their
// message (so a QMP layer can use err.Error() as the GenericError desc) and wrap one of
// these for errors.Is.
var (
	ErrNeedsReset        = errors.New("machine: reset required")
	ErrMigrationNotFinal = errors.New("machine: migration not finalized")
	ErrInvalidTransition = errors.New("machine: invalid run-state transition")
	ErrInvalidAddress    = errors.New("machine: invalid guest address")
	ErrNoCPU             = errors.New("machine: no such CPU")
	ErrWorkload          = errors.New("machine: bad workload configuration")
	ErrConfig            = errors.New("machine: bad configuration")
	ErrIO                = errors.New("machine: I/O error")
	ErrState             = errors.New("machine: bad device state")
	ErrClosed            = errors.New("machine: closed")
	ErrUnsupported       = errors.New("machine: not supported by this machine")
)

// qerr is an error of the given kind with QEMU's exact message (error_setg).
func qerr(kind error, format string, a ...any) error {
	return qerror.Errorf(kind, format, a...)
}
