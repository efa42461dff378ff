package nbd

import (
	"errors"

	"tlcvm/compat/qerror"
)

// Sentinel errors. The server's monitor-facing errors are *qerror.Error values wrapping one
// of them, with QEMU 7.2's texts.
var (
	// ErrNotRunning: the server is not started ("NBD server not running").
	ErrNotRunning = errors.New("nbd: server not running")
	// ErrRunning: the server is started already.
	ErrRunning = errors.New("nbd: server already running")
	// ErrExists: an export id or name in use.
	ErrExists = errors.New("nbd: export exists")
	// ErrNotFound: no export by that id.
	ErrNotFound = errors.New("nbd: export not found")
	// ErrInUse: an export clients still use (safe removal).
	ErrInUse = errors.New("nbd: export in use")
	// ErrInvalid: an invalid argument.
	ErrInvalid = errors.New("nbd: invalid argument")
	// ErrListen: the listening socket could not be opened.
	ErrListen = errors.New("nbd: cannot listen")

	// errProtocol: a client broke the protocol (the connection is closed).
	errProtocol = errors.New("nbd: protocol error")
)

func errf(kind error, format string, a ...any) *qerror.Error {
	return qerror.Errorf(kind, format, a...)
}

// Error is an error a Device returns with the NBD error value the client is to get
// (EPERM, EIO, ENOSPC, EINVAL, …); any other error reaches the client as EIO.
type Error struct {
	Errno uint32
	Err   error
}

func (e *Error) Error() string { return e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

// errnoOf is the NBD error value for err.
func errnoOf(err error) uint32 {
	var e *Error
	if errors.As(err, &e) && e.Errno != 0 {
		return e.Errno
	}
	return EIO
}
