package compat

import (
	"tlcvm/compat/optval"
	"tlcvm/compat/qerror"
)

// Values are read by compat/optval, QEMU's value syntax in one place; these give its
// errors compat's kind, ErrBadValue.

// parseBool is qapi_bool_parse: on/yes/true/y and off/no/false/n.
func parseBool(name, value string) (bool, *qerror.Error) {
	v, err := optval.ParseBool(ErrBadValue, name, value)
	return v, asQerr(err)
}

// parseNumber is QemuOpts' QEMU_OPT_NUMBER (parse_option_number).
func parseNumber(name, value string) (uint64, *qerror.Error) {
	v, err := optval.ParseNumber(ErrBadValue, name, value)
	return v, asQerr(err)
}

// parseSize is QemuOpts' QEMU_OPT_SIZE (parse_option_size).
func parseSize(name, value string) (uint64, *qerror.Error) {
	v, err := optval.ParseSize(ErrBadValue, name, value)
	return v, asQerr(err)
}

// parseInt64 is qemu_strtoi64(str, NULL, 0): the keyval visitor's integers.
func parseInt64(s string) (int64, bool) {
	v, err := optval.Int64(s)
	return v, err == nil
}

// asQerr is an error of optval's Parse functions (always a *qerror.Error) as one.
func asQerr(err error) *qerror.Error {
	if err == nil {
		return nil
	}
	return err.(*qerror.Error)
}
