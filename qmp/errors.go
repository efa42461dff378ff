package qmp

import (
	"errors"
	"fmt"
	"sync"
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

var errorClasses struct {
	mu sync.RWMutex
	m  []classEntry // +checklocks:mu; registration order, first match wins
}

type classEntry struct {
	sentinel error
	class    string
}

// RegisterErrorClass maps a sentinel error of another package to a QMP class. ToError then gives
// every error that wraps sentinel (errors.Is) that class, keeping err.Error() as the description.
// Call it from init; it panics on a nil sentinel or an empty class.
func RegisterErrorClass(sentinel error, class string) {
	if sentinel == nil || class == "" {
		panic("qmp: RegisterErrorClass needs a sentinel and a class")
	}
	errorClasses.mu.Lock()
	defer errorClasses.mu.Unlock()
	errorClasses.m = append(errorClasses.m, classEntry{sentinel, class})
}

// ToError is the one place that maps any error to a QMP error. An *Error anywhere in the chain
// (errors.As) passes through unchanged; an error wrapping a registered sentinel gets that class;
// anything else is a GenericError with err.Error() as desc. ToError(nil) is nil.
func ToError(err error) *Error {
	if err == nil {
		return nil
	}
	var qe *Error
	if errors.As(err, &qe) {
		return qe
	}
	errorClasses.mu.RLock()
	defer errorClasses.mu.RUnlock()
	for _, e := range errorClasses.m {
		if errors.Is(err, e.sentinel) {
			return &Error{Class: e.class, Desc: err.Error()}
		}
	}
	return &Error{Class: ClassGenericError, Desc: err.Error()}
}

// SyntaxError is what the stream parser reports for input it rejects; Msg is QEMU's text
// ("JSON parse error, expecting value", "JSON nesting depth limit exceeded", ...).
type SyntaxError struct{ Msg string }

func (e *SyntaxError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrSyntax) true.
func (e *SyntaxError) Is(target error) bool { return target == ErrSyntax }
