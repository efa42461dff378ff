package migration

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the engine returns wraps one of them (errors.Is) and has
// QEMU 7.2's text as its Error() string, so the QMP layer passes it through unchanged.
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

// Error is an engine error: QEMU's text, plus the sentinel it matches.
type Error struct {
	sentinel error
	msg      string
	cause    error
}

func (e *Error) Error() string { return e.msg }

// Unwrap returns the sentinel and the underlying cause.
func (e *Error) Unwrap() []error {
	if e.cause != nil {
		return []error{e.sentinel, e.cause}
	}
	return []error{e.sentinel}
}

func errorf(sentinel error, format string, a ...any) error {
	return &Error{sentinel: sentinel, msg: fmt.Sprintf(format, a...)}
}

// wrapf is errorf keeping cause reachable with errors.Is/As.
func wrapf(sentinel, cause error, format string, a ...any) error {
	return &Error{sentinel: sentinel, msg: fmt.Sprintf(format, a...), cause: cause}
}
