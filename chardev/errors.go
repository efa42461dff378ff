package chardev

import (
	"errors"

	"tlcvm/compat/qerror"
)

// Sentinel errors. Every error this package returns is a *qerror.Error wrapping exactly one
// of them (test with errors.Is) and carries QEMU 7.2's text as its Error() string.
var (
	// ErrInvalid: the spec or legacy string is malformed (missing path, bad
	// boolean, incompatible options, unknown driver).
	ErrInvalid = errors.New("chardev: invalid specification")
	// ErrOpen: the back-end could not be opened (bind, connect, open failed).
	ErrOpen = errors.New("chardev: open failed")
	// ErrInUse: the chardev (or stdio) is already used by a front end.
	ErrInUse = errors.New("chardev: in use")
	// ErrUnsupported: a QEMU back-end or option tlcvm does not implement.
	ErrUnsupported = errors.New("chardev: unsupported")
	// ErrClosed: the chardev has been closed.
	ErrClosed = errors.New("chardev: closed")
	// ErrNotFound: no chardev with that id (Registry).
	ErrNotFound = errors.New("chardev: not found")
	// ErrDuplicate: a chardev with that id exists already (Registry).
	ErrDuplicate = errors.New("chardev: duplicate id")
)

// newErr is an error of kind sentinel with QEMU's text (error_setg).
func newErr(sentinel error, format string, a ...any) *qerror.Error {
	return qerror.Errorf(sentinel, format, a...)
}

// errSilent marks (as the cause) an error for which QEMU prints no message of its own: a
// legacy string it cannot parse; the caller prints only its context message, e.g. "could
// not connect serial device to character backend 'tcp:'".
var errSilent = errors.New("chardev: QEMU prints no message")

// Silent reports whether err is one for which QEMU prints nothing.
func Silent(err error) bool { return errors.Is(err, errSilent) }
