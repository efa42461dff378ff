package compat

import (
	"errors"
	"strings"
)

// Sentinel errors; every *Error wraps exactly one of them.
var (
	// ErrInvalidOption: an argv element names no option ("-xyz: invalid option").
	ErrInvalidOption = errors.New("invalid option")
	// ErrMissingArgument: an option that takes an argument is last.
	ErrMissingArgument = errors.New("requires an argument")
	// ErrWrongTarget: the option exists for other QEMU targets only.
	ErrWrongTarget = errors.New("option not supported for this target")
	// ErrInvalidParameter: an unknown key in a QemuOpts or keyval string.
	ErrInvalidParameter = errors.New("invalid parameter")
	// ErrBadValue: a value of the wrong kind (bool, number, size, enum).
	ErrBadValue = errors.New("bad parameter value")
	// ErrDuplicateID: two option groups of one kind share an id.
	ErrDuplicateID = errors.New("duplicate id")
	// ErrMissingParameter: a mandatory key is absent.
	ErrMissingParameter = errors.New("missing parameter")
	// ErrJSON: a JSON-form argument does not parse.
	ErrJSON = errors.New("bad JSON argument")
	// ErrInvalid: any other check QEMU makes at start-up.
	ErrInvalid = errors.New("invalid configuration")
)

// Error is a start-up failure exactly as QEMU 7.2 reports it: Msg is the
// complete text QEMU writes to stderr (warnings printed before the error
// included, each line ending in "\n"); the exit status is 1.
type Error struct {
	Msg string
	err error
}

func (e *Error) Error() string { return strings.TrimSuffix(e.Msg, "\n") }

// Unwrap returns the sentinel that classifies the failure.
func (e *Error) Unwrap() error { return e.err }

// ExitStatus is the status QEMU exits with: always 1.
func (e *Error) ExitStatus() int { return 1 }

// qerr is an error still lacking its program name and location; it is the
// internal form of QEMU's Error object (message plus optional hint).
type qerr struct {
	msg  string
	hint string // printed on its own line(s) after the message, ends in "\n"
	kind error
}

func (e *qerr) Error() string { return e.msg }
func (e *qerr) Unwrap() error { return e.kind }

func newErr(kind error, msg string) *qerr { return &qerr{msg: msg, kind: kind} }

// render formats a qerr the way error_report_err does:
// "prog: loc: msg\nhint".
func render(prog, loc string, e *qerr) string {
	var b strings.Builder
	b.WriteString(prefix(prog, loc))
	b.WriteString(e.msg)
	b.WriteByte('\n')
	b.WriteString(e.hint)
	return b.String()
}

func prefix(prog, loc string) string {
	if loc == "" {
		return prog + ": "
	}
	return prog + ": " + loc + ": "
}

// Msg texts shared by several parsers (qapi/qmp/qerror.h).
func errInvalidParameter(name string) *qerr {
	return newErr(ErrInvalidParameter, "Invalid parameter '"+name+"'")
}

func errExpects(name, what string) *qerr {
	return newErr(ErrBadValue, "Parameter '"+name+"' expects "+what)
}

func errMissing(name string) *qerr {
	return newErr(ErrMissingParameter, "Parameter '"+name+"' is missing")
}

func errNotAccept(name, value string) *qerr {
	return newErr(ErrBadValue, "Parameter '"+name+"' does not accept value '"+value+"'")
}

func errUnexpected(name string) *qerr {
	return newErr(ErrInvalidParameter, "Parameter '"+name+"' is unexpected")
}
