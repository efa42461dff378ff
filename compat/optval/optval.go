// Package optval reads QEMU 7.2's option values: booleans, numbers and sizes, exactly as
// QEMU's own parsers do (util/cutils.c qemu_strtou64, qemu_strtoi64, qemu_strtosz;
// util/qemu-option.c parse_option_number, parse_option_size; qapi/qapi-util.c
// qapi_bool_parse), with QEMU's error texts. Every tlcvm package that reads a QEMU value
// reads it here: QemuOpts and keyval (compat), -chardev, -drive, -vnc, -global,
// migrate_set_parameter, migration URIs, the guest workload.
//
//	function        QEMU                               accepts
//	ScanUint64      qemu_strtou64(s, &end, base)       blanks, sign ('-' negates mod 2^64), 0x/0 prefixes
//	Uint64          qemu_strtou64(s, NULL, 0)          the same, all of s
//	Int64           qemu_strtoi64(s, NULL, 0)          the same, signed range
//	ScanSize        do_strtosz(s, &end, unit)          "1.5G", "512", "4k", "0x1000", suffixes B K M G T P E
//	Size            qemu_strtosz(s, NULL)              the same, all of s, bytes by default
//	Bool            (the words of qapi_bool_parse)     on/yes/true/y, off/no/false/n; or on/off only
//	ParseBool       qapi_bool_parse                    … with "Parameter 'x' expects 'on' or 'off'"
//	ParseNumber     parse_option_number                … with "Parameter 'x' expects a number"
//	ParseSize       parse_option_size                  … with "… a non-negative number below 2^64" and hint
//	ID              id_wellformed                      a letter, then letters, digits, '-', '.', '_'
//	SizeString      size_to_str                        (the other way) 4096 → "4 KiB", 0 → "0 B"
//
// The scanning functions fail as QEMU's do, with syscall.EINVAL (no number, junk after it)
// or syscall.ERANGE (does not fit), so qerror.Errno renders them as QEMU's error_setg_errno
// does. The Parse functions return a *qerror.Error of the caller's kind with QEMU's text.
//
// The package lives under compat, which may import no other tlcvm package (DESIGN.md), and
// imports only compat/qerror, so every package may import it.
package optval

import (
	"math"
	"math/bits"
	"strconv"
	"strings"
	"syscall"

	"tlcvm/compat/qerror"
)

// ScanUint64 is qemu_strtou64 with an end pointer: leading blanks, an optional sign (a
// minus negates modulo 2^64, as strtoull does), then digits of base: base 0 reads "0x" as
// hex and a leading "0" as octal; base 16 also skips "0x". It returns the value and the
// rest of s; EINVAL (rest is s) when there are no digits, ERANGE (value MaxUint64, rest
// after the digits) when the value does not fit.
func ScanUint64(s string, base int) (v uint64, rest string, err error) {
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
		if i+2 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && digit(s[i+2]) < 16 {
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
		d := digit(s[i])
		if d >= base {
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
	switch {
	case i == start:
		return 0, s, syscall.EINVAL
	case overflow:
		return math.MaxUint64, s[i:], syscall.ERANGE
	case neg:
		v = -v
	}
	return v, s[i:], nil
}

// Uint64 is qemu_strtou64(s, NULL, 0, &v): ScanUint64 over all of s. Anything after the
// digits is EINVAL, even after digits that overflow (check_strtox_error's order).
func Uint64(s string) (uint64, error) {
	v, rest, err := ScanUint64(s, 0)
	if rest != "" {
		return 0, syscall.EINVAL
	}
	return v, err
}

// Int64 is qemu_strtoi64(s, NULL, 0, &v): Uint64's syntax, in the range of int64 (a minus
// sign makes a negative number; ERANGE outside the range).
func Int64(s string) (int64, error) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := i < len(s) && s[i] == '-'
	v, err := Uint64(s)
	switch {
	case err != nil:
		if err == syscall.ERANGE {
			if neg {
				return math.MinInt64, err
			}
			return math.MaxInt64, err
		}
		return 0, err
	case neg && v != 0 && -v > 1<<63:
		return math.MinInt64, syscall.ERANGE
	case !neg && v > math.MaxInt64:
		return math.MaxInt64, syscall.ERANGE
	}
	return int64(v), nil
}

// ScanSize is QEMU 7.2's do_strtosz with an end pointer: a decimal integer, optionally
// with a fraction (which needs a suffix other than B), or a "0x" hex integer, followed by
// an optional suffix B, K, M, G, T, P or E (either case, powers of 1024); unit is the
// suffix assumed when there is none ('B' for qemu_strtosz, 'M' for qemu_strtosz_MiB).
// Negative numbers and exponents are refused. hexSuffix reports a suffix after a hex
// number, which QEMU 7.2 accepts with a deprecation warning the caller prints. It fails
// with EINVAL (rest is s) or ERANGE (2^64 or more; rest follows what was read, as QEMU's
// end pointer does).
func ScanSize(s string, unit byte) (v uint64, rest string, hexSuffix bool, err error) {
	v, rest, err = ScanUint64(s, 10)
	if err != nil {
		return 0, rest, false, err
	}
	if strings.Contains(s[:len(s)-len(rest)], "-") {
		return 0, s, false, syscall.EINVAL
	}
	hex := false
	var frac float64
	if v == 0 && rest != "" && (rest[0] == 'x' || rest[0] == 'X') {
		v, rest, err = ScanUint64(s, 16)
		if err != nil {
			return 0, rest, false, err
		}
		if strings.HasPrefix(rest, ".") {
			return 0, s, false, syscall.EINVAL
		}
		hex = true
	} else if strings.HasPrefix(rest, ".") {
		// A fraction; "1.k" works without fractional digits. An exponent makes the whole
		// input invalid.
		n := fracLen(rest)
		if n == 0 {
			rest = rest[1:]
		} else {
			f := rest[:n]
			if strings.ContainsAny(f, "eE") {
				return 0, s, false, syscall.EINVAL
			}
			frac, _ = strconv.ParseFloat("0"+f, 64)
			rest = rest[n:]
		}
	}
	mul := suffixMul(unit)
	if rest != "" {
		if m := suffixMul(rest[0]); m > 0 {
			mul = m
			rest = rest[1:]
			hexSuffix = hex
		}
	}
	valf := fracToFixed(frac)
	if mul == 1 {
		if valf != 0 {
			return 0, s, false, syscall.EINVAL
		}
		return v, rest, hexSuffix, nil
	}
	// 64.64 fixed point times mul, rounded half up, as QEMU does.
	hi, lo := bits.Mul64(v, mul)
	fhi, flo := bits.Mul64(valf, mul)
	var c uint64
	lo, c = bits.Add64(lo, fhi, 0)
	hi += c
	lo, c = bits.Add64(lo, flo>>63, 0)
	hi += c
	if hi != 0 {
		return 0, rest, false, syscall.ERANGE
	}
	return lo, rest, hexSuffix, nil
}

// Size is qemu_strtosz(s, NULL, &v): ScanSize in bytes over all of s. Anything after the
// size is EINVAL, even after a size too large.
func Size(s string) (uint64, error) {
	v, rest, _, err := ScanSize(s, 'B')
	if rest != "" {
		return 0, syscall.EINVAL
	}
	return v, err
}

// BoolWords says which words a boolean value may be.
type BoolWords int

const (
	// QAPIWords are qapi_bool_parse's: on, yes, true, y and off, no, false, n. QemuOpts,
	// keyval, -global and the string input visitor (HMP) read booleans so.
	QAPIWords BoolWords = iota
	// OnOff is "on" and "off" only: inet_parse_flag's ",ipv4=on" in socket addresses, HMP's
	// 'b' arguments (migrate_set_capability x on).
	OnOff
)

// Bool reads value as a boolean made of words; ok is false for any other text.
func Bool(value string, words BoolWords) (v, ok bool) {
	switch value {
	case "on":
		return true, true
	case "off":
		return false, true
	}
	if words == QAPIWords {
		switch value {
		case "yes", "true", "y":
			return true, true
		case "no", "false", "n":
			return false, true
		}
	}
	return false, false
}

// ParseBool is qapi_bool_parse: Bool with QAPIWords, failing with QEMU's "Parameter 'name'
// expects 'on' or 'off'" as an error of kind.
func ParseBool(kind error, name, value string) (bool, error) {
	if v, ok := Bool(value, QAPIWords); ok {
		return v, nil
	}
	return false, qerror.Wrapf(kind, syscall.EINVAL, "Parameter '%s' expects 'on' or 'off'", name)
}

// ParseNumber is parse_option_number (QemuOpts' QEMU_OPT_NUMBER): Uint64, failing with
// QEMU's texts as an error of kind.
func ParseNumber(kind error, name, value string) (uint64, error) {
	v, err := Uint64(value)
	switch {
	case err == syscall.ERANGE:
		return 0, qerror.Wrapf(kind, err, "Value '%s' is too large for parameter '%s'", value, name)
	case err != nil:
		return 0, qerror.Wrapf(kind, err, "Parameter '%s' expects a number", name)
	}
	return v, nil
}

// SizeHint is the hint QEMU prints after a size it cannot read (parse_option_size).
const SizeHint = "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.\n"

// ParseSize is parse_option_size (QemuOpts' QEMU_OPT_SIZE, the string input visitor's
// sizes): Size, failing with QEMU's texts, and its hint, as an error of kind.
func ParseSize(kind error, name, value string) (uint64, error) {
	v, err := Size(value)
	switch {
	case err == syscall.ERANGE:
		return 0, qerror.Wrapf(kind, err, "Value '%s' is out of range for parameter '%s'", value, name)
	case err != nil:
		return 0, qerror.Wrapf(kind, err, "Parameter '%s' expects a non-negative number below 2^64", name).
			AppendHint(SizeHint)
	}
	return v, nil
}

// ID is util/id.c id_wellformed: an identifier (id=, node-name, job-id) is a letter, then
// letters, digits, '-', '.' and '_'.
func ID(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlpha(c) && !(c >= '0' && c <= '9') && c != '-' && c != '.' && c != '_' {
			return false
		}
	}
	return true
}

// IDHint is the hint QEMU prints after "Parameter 'id' expects an identifier".
const IDHint = "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.\n"

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// suffixMul is QEMU's suffix_mul with unit 1024: the multiplier of a size suffix, 0 if c
// is none.
func suffixMul(c byte) uint64 {
	if i := strings.IndexByte("BKMGTPE", c&^0x20); i >= 0 && c >= 'A' {
		return 1 << (10 * uint(i))
	}
	return 0
}

func fracToFixed(f float64) uint64 {
	x := f * 0x1p64
	if x >= 0x1p64 {
		return math.MaxUint64
	}
	return uint64(x)
}

// fracLen is the length of the strtod match of ".digits[e[+-]digits]" at the start of s;
// 0 when strtod would convert nothing.
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

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }

// digit is c's value as a digit of any base up to 36; 36 or more when it is none.
func digit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	}
	return 36
}

// SizeString is QEMU's size_to_str (util/cutils.c), a size as info qtree, info block and
// qemu-img print it: three significant digits and a binary unit, switching to the next unit
// from 1000 of this one ("512 B", "0.977 KiB", "2 GiB", "16 EiB").
func SizeString(v uint64) string {
	suffixes := []string{"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"}
	_, e := math.Frexp(float64(v) / (1000.0 / 1024.0))
	i := min(max((e-1)/10, 0), len(suffixes)-1)
	return strconv.FormatFloat(float64(v)/float64(uint64(1)<<(10*i)), 'g', 3, 64) + " " + suffixes[i] + "B"
}
