package chardev

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// Sentinel errors. Every error this package returns wraps exactly one of them
// (test with errors.Is) and carries QEMU 7.2's text as its Error() string.
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

// Error is a chardev error with QEMU's exact message. Hint is QEMU's optional
// second part (error_append_hint), printed by QEMU on the following line(s).
type Error struct {
	Msg  string
	Hint string
	Err  error // one of the sentinels
	// Silent: QEMU prints no message of its own for this failure (a legacy
	// string it cannot parse); the caller prints only its context message,
	// e.g. "could not connect serial device to character backend 'tcp:'".
	Silent bool
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

func newErr(sentinel error, format string, a ...any) error {
	return &Error{Msg: fmt.Sprintf(format, a...), Err: sentinel}
}

// Silent reports whether err is an *Error for which QEMU prints nothing.
func Silent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Silent
}

// Hint returns the hint text of err, if it is (or wraps) an *Error with one.
func Hint(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Hint
	}
	return ""
}

// strerror renders err as glibc's strerror(errno) would ("No such file or
// directory"): Go's errno texts are glibc's with a lower-case first letter.
func strerror(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		s := errno.Error()
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return strerror(pe.Err)
	}
	return err.Error()
}
