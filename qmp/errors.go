package qmp

import (
	"errors"
	"fmt"
	"slices"
)

// QMP error classes (qapi/error.json QapiErrorClass). Only these travel on the wire.
const (
	ClassGenericError      = "GenericError"
	ClassCommandNotFound   = "CommandNotFound"
	ClassDeviceNotActive   = "DeviceNotActive"
	ClassDeviceNotFound    = "DeviceNotFound"
	ClassKVMMissingCap     = "KVMMissingCap"
	ClassMigrationExpected = "MigrationExpected"
)

// Sentinel errors of this package, wrapped with %w by the functions that return them.
var (
	// ErrSyntax marks a message the JSON stream parser rejected (see SyntaxError).
	ErrSyntax = errors.New("qmp: JSON syntax error")
	// ErrNoFD is returned when a command needed a descriptor passed with SCM_RIGHTS and none came.
	ErrNoFD = errors.New("qmp: no file descriptor supplied via SCM_RIGHTS")
	// ErrFDNotFound is returned for an unknown getfd name or fd set.
	ErrFDNotFound = errors.New("qmp: file descriptor not found")
	// ErrClosed is returned by Execute and Do after Close.
	ErrClosed = errors.New("qmp: server closed")
)

// Error is a QMP error: {"class": ..., "desc": ...}, in QEMU's key order. It implements error.
type Error struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`

	cause error // optional sentinel for errors.Is; never on the wire
}

func (e *Error) Error() string { return e.Desc }

// Unwrap returns the sentinel the error was built with (see Wrap), if any.
func (e *Error) Unwrap() error { return e.cause }

// Wrap returns a copy of e that also matches sentinel with errors.Is, keeping e's text.
func (e *Error) Wrap(sentinel error) *Error {
	c := *e
	c.cause = sentinel
	return &c
}

// Errorf builds an Error of the given class with a formatted description.
func Errorf(class, format string, a ...any) *Error {
	return &Error{Class: class, Desc: fmt.Sprintf(format, a...)}
}

// GenericError is Errorf(ClassGenericError, ...), the class of nearly every QEMU error.
func GenericError(format string, a ...any) *Error { return Errorf(ClassGenericError, format, a...) }

// CommandNotFound is the error for an unknown command: "The command foo has not been found".
func CommandNotFound(name string) *Error {
	return Errorf(ClassCommandNotFound, "The command %s has not been found", name)
}

// DeviceNotFound is QEMU's QERR_DEVICE_NOT_FOUND: "Device 'x' not found".
func DeviceNotFound(id string) *Error {
	return Errorf(ClassDeviceNotFound, "Device '%s' not found", id)
}

// DeviceNotActive is QEMU's DeviceNotActive class, used for a missing balloon or KVM-only feature.
func DeviceNotActive(format string, a ...any) *Error {
	return Errorf(ClassDeviceNotActive, format, a...)
}

// ErrorClass gives the errors that wrap Sentinel (errors.Is) the QMP class Class.
type ErrorClass struct {
	Sentinel error
	Class    string
}

// ErrorClasses is the table that maps the sentinel errors of other packages to QMP classes.
// The composition root builds it once (cmds.ErrorClasses is tlcvm's) and hands it to the
// command table with Registry.SetErrorClasses; it is read-only afterwards. The nil table
// maps nothing.
type ErrorClasses struct {
	m []ErrorClass // in the order given; the first match wins
}

// NewErrorClasses builds the table. A mistake panics, so that it shows at start-up: a nil
// sentinel, a class that is not one of QEMU's (the Class* constants), a sentinel twice.
func NewErrorClasses(m ...ErrorClass) *ErrorClasses {
	seen := make(map[error]bool, len(m))
	for _, e := range m {
		switch {
		case e.Sentinel == nil:
			panic(fmt.Sprintf("qmp: error class %q without a sentinel", e.Class))
		case !knownClass(e.Class):
			panic(fmt.Sprintf("qmp: %q is not a QMP error class (sentinel %q)", e.Class, e.Sentinel))
		case seen[e.Sentinel]:
			panic(fmt.Sprintf("qmp: sentinel %q given a class twice", e.Sentinel))
		}
		seen[e.Sentinel] = true
	}
	return &ErrorClasses{m: slices.Clone(m)}
}

func knownClass(c string) bool {
	switch c {
	case ClassGenericError, ClassCommandNotFound, ClassDeviceNotActive, ClassDeviceNotFound,
		ClassKVMMissingCap, ClassMigrationExpected:
		return true
	}
	return false
}

// ToError is the one place that maps any error to a QMP error. An *Error anywhere in the chain
// (errors.As) passes through unchanged; an error wrapping a sentinel of t gets that class;
// anything else is a GenericError with err.Error() as desc. ToError(nil) is nil.
func (t *ErrorClasses) ToError(err error) *Error {
	if err == nil {
		return nil
	}
	var qe *Error
	if errors.As(err, &qe) {
		return qe
	}
	if t != nil {
		for _, e := range t.m {
			if errors.Is(err, e.Sentinel) {
				return &Error{Class: e.Class, Desc: err.Error(), cause: err}
			}
		}
	}
	// The cause stays reachable (never on the wire): HMP prints its hint lines, as QEMU's
	// hmp_handle_error does.
	return &Error{Class: ClassGenericError, Desc: err.Error(), cause: err}
}

// ToError is ToError of the empty table: what the protocol layer uses for errors of its own
// (parsing, argument decoding), where no other package's sentinel can appear. Handler errors
// pass through the registry's table first (Registry.SetErrorClasses).
func ToError(err error) *Error { return (*ErrorClasses)(nil).ToError(err) }

// SyntaxError is what the stream parser reports for input it rejects; Msg is QEMU's text
// ("JSON parse error, expecting value", "JSON nesting depth limit exceeded", ...).
type SyntaxError struct{ Msg string }

func (e *SyntaxError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrSyntax) true.
func (e *SyntaxError) Is(target error) bool { return target == ErrSyntax }
