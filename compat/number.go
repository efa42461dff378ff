package compat

import (
	"math"
	"math/bits"
	"strconv"
	"strings"

	"tlcvm/compat/qerror"
)

// ParseSize parses a size the way QEMU 7.2's qemu_strtosz does: a decimal
// integer, optionally with a fraction, or a 0x hex integer, followed by an
// optional binary suffix B, K, M, G, T, P or E (either case; no suffix means
// bytes). A fraction needs a suffix other than B. Negative numbers,
// exponents and trailing junk are rejected with ErrBadValue; values of 2^64
// or more with ErrRange semantics (the error text differs, see Opts.Size).
func ParseSize(s string) (uint64, error) {
	v, _, err := parseSize(s)
	return v, err
}

// errSizeRange marks a size that does not fit in 64 bits.
type errSizeRange struct{}

func (errSizeRange) Error() string { return "size out of range" }
func (errSizeRange) Unwrap() error { return ErrBadValue }

type errSizeSyntax struct{}

func (errSizeSyntax) Error() string { return "invalid size" }
func (errSizeSyntax) Unwrap() error { return ErrBadValue }

func suffixMul(c byte) uint64 {
	switch c {
	case 'b', 'B':
		return 1
	case 'k', 'K':
		return 1 << 10
	case 'm', 'M':
		return 1 << 20
	case 'g', 'G':
		return 1 << 30
	case 't', 'T':
		return 1 << 40
	case 'p', 'P':
		return 1 << 50
	case 'e', 'E':
		return 1 << 60
	}
	return 0
}

// parseSize returns the value and whether a multiplier suffix was used on a
// hex number (QEMU 7.2 accepts that with a deprecation warning).
func parseSize(s string) (val uint64, hexSuffix bool, err error) {
	rest, v, perr := strtou64(s, 10)
	if perr != nil {
		if _, ok := perr.(errRange); ok {
			return 0, false, errSizeRange{}
		}
		return 0, false, errSizeSyntax{}
	}
	if strings.Contains(s[:len(s)-len(rest)], "-") {
		return 0, false, errSizeSyntax{}
	}
	hex := false
	var frac float64
	hasFrac := false
	if v == 0 && len(rest) > 0 && (rest[0] == 'x' || rest[0] == 'X') {
		r2, v2, perr := strtou64(s, 16)
		if perr != nil {
			if _, ok := perr.(errRange); ok {
				return 0, false, errSizeRange{}
			}
			return 0, false, errSizeSyntax{}
		}
		if strings.HasPrefix(r2, ".") {
			return 0, false, errSizeSyntax{}
		}
		rest, v, hex = r2, v2, true
	} else if strings.HasPrefix(rest, ".") {
		n := fracLen(rest)
		if n == 0 {
			rest = rest[1:] // "1.k": strtod failed, skip the dot
		} else {
			f := rest[:n]
			if strings.ContainsAny(f, "eE") {
				return 0, false, errSizeSyntax{}
			}
			frac, _ = strconv.ParseFloat("0"+f, 64)
			hasFrac = frac != 0
			rest = rest[n:]
		}
	}
	mul := uint64(1)
	if len(rest) > 0 {
		if m := suffixMul(rest[0]); m > 0 {
			mul = m
			rest = rest[1:]
			hexSuffix = hex
		}
	}
	if rest != "" {
		return 0, false, errSizeSyntax{}
	}
	if mul == 1 {
		if hasFrac {
			return 0, false, errSizeSyntax{}
		}
		return v, false, nil
	}
	// 64.64 fixed point times mul, rounded half up, as QEMU does.
	valf := fracToFixed(frac)
	hi, lo := bits.Mul64(v, mul)
	fhi, flo := bits.Mul64(valf, mul)
	var c uint64
	lo, c = bits.Add64(lo, fhi, 0)
	hi += c
	lo, c = bits.Add64(lo, flo>>63, 0)
	hi += c
	if hi != 0 {
		return 0, false, errSizeRange{}
	}
	return lo, hexSuffix, nil
}

func fracToFixed(f float64) uint64 {
	x := f * 0x1p64
	if x >= 0x1p64 {
		return math.MaxUint64
	}
	return uint64(x)
}

// fracLen is the length of the strtod match of ".digits[e[+-]digits]";
// 0 when strtod would not convert anything.
func fracLen(s string) int {
	i := 1
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 1 {
		return 0
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		k := j
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k > j {
			i = k
		}
	}
	return i
}

type errRange struct{}

func (errRange) Error() string { return "out of range" }

// strtou64 mimics qemu_strtou64 with an end pointer: leading white space,
// an optional sign (a minus negates modulo 2^64), base 0/10/16 prefixes.
// It returns the unparsed rest.
func strtou64(s string, base int) (rest string, v uint64, err error) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	if base == 0 || base == 16 {
		if i+1 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && i+2 < len(s) && hexDigit(s[i+2]) >= 0 {
			i += 2
			base = 16
		} else if base == 0 {
			if i < len(s) && s[i] == '0' {
				base = 8
			} else {
				base = 10
			}
		}
	}
	start := i
	overflow := false
	for i < len(s) {
		d := hexDigit(s[i])
		if d < 0 || d >= base {
			break
		}
		hi, lo := bits.Mul64(v, uint64(base))
		lo, c := bits.Add64(lo, uint64(d), 0)
		if hi != 0 || c != 0 {
			overflow = true
		}
		v = lo
		i++
	}
	if i == start {
		return s, 0, errSyntax{}
	}
	if overflow {
		return s[i:], math.MaxUint64, errRange{}
	}
	if neg {
		v = -v
	}
	return s[i:], v, nil
}

type errSyntax struct{}

func (errSyntax) Error() string { return "invalid number" }

func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	}
	return -1
}

// parseNumber is QemuOpts' QEMU_OPT_NUMBER: qemu_strtou64(value, NULL, 0).
func parseNumber(name, value string) (uint64, *qerror.Error) {
	rest, v, err := strtou64(value, 0)
	if _, ok := err.(errRange); ok {
		return 0, newErr(ErrBadValue, "Value '"+value+"' is too large for parameter '"+name+"'")
	}
	if err != nil || rest != "" {
		return 0, errExpects(name, "a number")
	}
	return v, nil
}

// parseInt64 is qemu_strtoi64(str, NULL, 0): the keyval visitor's integers.
func parseInt64(s string) (int64, bool) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := i < len(s) && s[i] == '-'
	rest, v, err := strtou64(s, 0)
	if err != nil || rest != "" {
		return 0, false
	}
	if neg {
		if v != 0 && -v > 1<<63 {
			return 0, false
		}
		return int64(v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// parseBool is qapi_bool_parse: on/yes/true/y and off/no/false/n.
func parseBool(name, value string) (bool, *qerror.Error) {
	switch value {
	case "on", "yes", "true", "y":
		return true, nil
	case "off", "no", "false", "n":
		return false, nil
	}
	return false, errExpects(name, "'on' or 'off'")
}

// sizeErr turns a ParseSize failure into QemuOpts' text for parameter name.
func sizeErr(name, value string, err error) *qerror.Error {
	if _, ok := err.(errSizeRange); ok {
		return newErr(ErrBadValue, "Value '"+value+"' is out of range for parameter '"+name+"'")
	}
	e := errExpects(name, "a non-negative number below 2^64")
	e.Hint = "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.\n"
	return e
}

// ParseInt is qemu_strtoi64(s, NULL, 0, &v): a whole-string integer in any base QEMU
// accepts (0x hex, leading-0 octal, decimal), as QEMU's string and keyval visitors read one.
func ParseInt(s string) (int64, bool) { return parseInt64(s) }

// ParseUint is qemu_strtou64(s, NULL, 0, &v): as ParseInt, but a leading minus negates
// modulo 2^64, as QEMU's does.
func ParseUint(s string) (uint64, bool) {
	rest, v, err := strtou64(s, 0)
	return v, err == nil && rest == ""
}

// ParseBool is qapi_bool_parse: on/yes/true/y and off/no/false/n.
func ParseBool(s string) (v, ok bool) {
	b, err := parseBool("", s)
	return b, err == nil
}
