// Package qerror is QEMU's Error object (include/qapi/error.h) for every tlcvm package: one
// type carrying QEMU's exact text, the sentinel a package classifies the failure with, the
// underlying cause, and the hint lines QEMU prints after the message on the command line.
//
//	QEMU                                     qerror
//	error_setg(errp, fmt, ...)               Errorf(kind, fmt, ...)
//	error_setg_errno(errp, errno, fmt, ...)  Errno(kind, cause, fmt, ...)
//	error_prepend(errp, fmt, ...)            Prepend(err, fmt, ...)
//	error_append_hint(errp, fmt, ...)        (*Error).AppendHint(fmt, ...)
//	error_get_pretty(err)                    err.Error()
//	error_report_err(err) (after "prog: ")   Report(err)
//
// Each package keeps its own exported sentinels (its API, tested with errors.Is) and builds
// its errors here; the text is byte for byte QEMU 7.2's, because QMP sends it as the
// GenericError desc and the command line prints it. The hint never travels over QMP
// (QEMU's monitor drops it).
//
// The package lives under compat because compat, QEMU's command-line language, may import
// no other tlcvm package (DESIGN.md) and yet reports QEMU's errors too; it imports only the
// standard library, so every package may import it.
package qerror

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// Error is a QEMU error: Msg is QEMU's text, Kind the sentinel that classifies it, Cause
// what went wrong underneath (an errno, a *net.OpError, another package's error), Hint the
// lines printed after Msg on the command line.
type Error struct {
	// Msg is the whole message, as QEMU's error_get_pretty returns it (no newline at the end).
	Msg string
	// Kind is the owning package's sentinel; errors.Is(err, Kind) holds. Nil only for errors
	// that no caller needs to tell apart (the composition root's own start-up failures).
	Kind error
	// Cause is reachable with errors.Is and errors.As; it never changes the text. May be nil.
	Cause error
	// Hint is error_append_hint's text: zero or more lines, each ending in "\n".
	Hint string
}

// Error returns QEMU's text.
func (e *Error) Error() string { return e.Msg }

// Unwrap returns the kind and the cause, those that are set.
func (e *Error) Unwrap() []error {
	switch {
	case e.Kind == nil && e.Cause == nil:
		return nil
	case e.Cause == nil:
		return []error{e.Kind}
	case e.Kind == nil:
		return []error{e.Cause}
	}
	return []error{e.Kind, e.Cause}
}

// AppendHint adds a line (or lines) to the hint, as error_append_hint does, and returns e.
// The text should end in "\n".
func (e *Error) AppendHint(format string, a ...any) *Error {
	e.Hint += fmt.Sprintf(format, a...)
	return e
}

// New is Errorf with a fixed text.
func New(kind error, msg string) *Error { return &Error{Msg: msg, Kind: kind} }

// Errorf is QEMU's error_setg: an error of the given kind with a formatted text.
func Errorf(kind error, format string, a ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, a...), Kind: kind}
}

// Wrapf is Errorf keeping cause reachable with errors.Is and errors.As.
func Wrapf(kind, cause error, format string, a ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, a...), Kind: kind, Cause: cause}
}

// Errno is QEMU's error_setg_errno: the formatted text, ": " and Strerror(cause); cause
// stays reachable.
func Errno(kind, cause error, format string, a ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, a...) + ": " + Strerror(cause), Kind: kind, Cause: cause}
}

// Prepend is QEMU's error_prepend: err with the formatted text before its message. An
// *Error keeps its kind, cause and hint; any other error becomes the cause of a new *Error
// of no kind that keeps the hint found in its chain. err itself is not changed.
// Prepend(nil, ...) is nil.
func Prepend(err error, format string, a ...any) error {
	if err == nil {
		return nil
	}
	p := fmt.Sprintf(format, a...)
	if e, ok := err.(*Error); ok {
		c := *e
		c.Msg = p + e.Msg
		return &c
	}
	return &Error{Msg: p + err.Error(), Cause: err, Hint: Hint(err)}
}

// Hint returns the hint of the first *Error in err's chain ("" if none).
func Hint(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Hint
	}
	return ""
}

// Report is what QEMU's error_report_err prints after its "prog: location: " prefix: the
// message, a newline, then the hint lines.
func Report(err error) string { return err.Error() + "\n" + Hint(err) }

// Find returns the first *Error in err's chain (depth first, as errors.As walks it) whose
// Kind is one of kinds, or nil. It tells which layer's text a chain carries when several
// layers built an *Error.
func Find(err error, kinds ...error) *Error {
	var found *Error
	walk(err, func(x error) bool {
		e, ok := x.(*Error)
		if !ok {
			return false
		}
		for _, k := range kinds {
			if e.Kind == k {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// walk calls f on err and the errors it wraps, depth first, until f returns true.
func walk(err error, f func(error) bool) bool {
	if err == nil {
		return false
	}
	if f(err) {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return walk(u.Unwrap(), f)
	case interface{ Unwrap() []error }:
		for _, c := range u.Unwrap() {
			if walk(c, f) {
				return true
			}
		}
	}
	return false
}

// Strerror renders err as glibc's strerror(3) renders its errno ("No such file or
// directory", "Broken pipe"), for the text error_setg_errno appends: the errno inside err
// when there is one (Go's texts are glibc's with a lower-case first letter), "Bad file
// descriptor" for Go's use of a closed file or connection, "Success" for nil, and err's own
// text, with a capital like strerror's, otherwise.
func Strerror(err error) string {
	if err == nil {
		return "Success"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return capitalize(errno.Error())
	}
	if errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) {
		return "Bad file descriptor"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return capitalize(err.Error())
}

// capitalize upper-cases s's first letter when it is an ASCII lower-case one.
func capitalize(s string) string {
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		return string(s[0]-'a'+'A') + s[1:]
	}
	return s
}
