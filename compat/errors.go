package compat

import (
	"errors"

	"tlcvm/compat/qerror"
)

// Sentinel errors; every error of this package wraps exactly one of them.
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

// Parse, ApplyDefaults and Check fail with a *qerror.Error reading exactly as QEMU 7.2
// reports the failure on stderr: Msg is "prog: location: message" (any warnings printed
// before the error included, each line ending in "\n"), Hint the lines that follow it;
// qerror.Report(err) is the whole text. QEMU then exits with status 1.

// newErr is QEMU's Error object still lacking its program name and location (error_setg).
func newErr(kind error, msg string) *qerror.Error { return qerror.New(kind, msg) }

// render formats e the way error_report_err does: "prog: loc: msg\nhint".
func render(prog, loc string, e *qerror.Error) string {
	return prefix(prog, loc) + qerror.Report(e)
}

func prefix(prog, loc string) string {
	if loc == "" {
		return prog + ": "
	}
	return prog + ": " + loc + ": "
}

// Msg texts shared by several parsers (qapi/qmp/qerror.h).
func errInvalidParameter(name string) *qerror.Error {
	return newErr(ErrInvalidParameter, "Invalid parameter '"+name+"'")
}

func errExpects(name, what string) *qerror.Error {
	return newErr(ErrBadValue, "Parameter '"+name+"' expects "+what)
}

func errMissing(name string) *qerror.Error {
	return newErr(ErrMissingParameter, "Parameter '"+name+"' is missing")
}

func errNotAccept(name, value string) *qerror.Error {
	return newErr(ErrBadValue, "Parameter '"+name+"' does not accept value '"+value+"'")
}

func errUnexpected(name string) *qerror.Error {
	return newErr(ErrInvalidParameter, "Parameter '"+name+"' is unexpected")
}
