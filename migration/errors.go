package migration

import (
	"errors"

	"tlcvm/compat/qerror"
)

// Sentinel errors. Every error the engine returns is a *qerror.Error wrapping one of them
// (errors.Is) and has QEMU 7.2's text as its Error() string, so the QMP layer passes it
// through unchanged.
var (
	// ErrInvalid: an argument QEMU rejects (unknown capability, parameter out of range,
	// unknown migration protocol).
	ErrInvalid = errors.New("migration: invalid argument")
	// ErrUnsupported: a capability or feature tlcvm does not implement.
	ErrUnsupported = errors.New("migration: not supported")
	// ErrActive: a migration is already in progress.
	ErrActive = errors.New("migration: a migration is in progress")
	// ErrState: the VM or the engine is in a state that forbids the request.
	ErrState = errors.New("migration: wrong state")
	// ErrCancelled: the migration was cancelled.
	ErrCancelled = errors.New("migration: cancelled")
	// ErrSave: the outgoing migration failed (which phase is in the text).
	ErrSave = errors.New("migration: save failed")
	// ErrLoad: the incoming migration failed.
	ErrLoad = errors.New("migration: load failed")
)

// kinds are the sentinels above, for isEngineError.
var kinds = []error{ErrInvalid, ErrUnsupported, ErrActive, ErrState, ErrCancelled, ErrSave, ErrLoad}

// isEngineError reports whether err's chain holds an error the engine built (one of its
// own texts), not only one of a transport or the stream.
func isEngineError(err error) bool { return qerror.Find(err, kinds...) != nil }

func errorf(sentinel error, format string, a ...any) error {
	return qerror.Errorf(sentinel, format, a...)
}

// wrapf is errorf keeping cause reachable with errors.Is/As.
func wrapf(sentinel, cause error, format string, a ...any) error {
	return qerror.Wrapf(sentinel, cause, format, a...)
}
