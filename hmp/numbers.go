package hmp

import (
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// strtod returns the longest prefix of s[pos:] that C's strtod would convert, and its
// value. end == pos means no conversion. Accepted: decimal and hexadecimal floating
// constants with optional sign and exponent, "inf", "infinity", "nan", "nan(...)".
func strtod(s string, pos int) (val float64, end int) {
	i := pos
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	rest := strings.ToLower(s[i:])
	sign := 1.0
	if neg {
		sign = -1
	}
	switch {
	case strings.HasPrefix(rest, "infinity"):
		return sign * math.Inf(1), i + 8
	case strings.HasPrefix(rest, "inf"):
		return sign * math.Inf(1), i + 3
	case strings.HasPrefix(rest, "nan"):
		j := i + 3
		if j < len(s) && s[j] == '(' {
			k := j + 1
			for k < len(s) && (isAlnum(s[k]) || s[k] == '_') {
				k++
			}
			if k < len(s) && s[k] == ')' {
				j = k + 1
			}
		}
		return math.NaN(), j
	}
	hex := len(rest) >= 2 && rest[0] == '0' && rest[1] == 'x'
	digit := func(c byte) bool { return c >= '0' && c <= '9' }
	expChar := byte('e')
	mant := i
	if hex {
		digit = func(c byte) bool { return hexVal(c) >= 0 }
		expChar = 'p'
		mant = i + 2
	}
	j, nd := mant, 0
	for j < len(s) && digit(s[j]) {
		j++
		nd++
	}
	if j < len(s) && s[j] == '.' {
		j++
		for j < len(s) && digit(s[j]) {
			j++
			nd++
		}
	}
	if nd == 0 {
		if hex { // "0x" alone converts the "0"
			return 0, i + 1
		}
		return 0, pos
	}
	mantEnd := j
	if j < len(s) && (s[j]|0x20) == expChar {
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
		}
		if k < len(s) && s[k] >= '0' && s[k] <= '9' {
			for k < len(s) && s[k] >= '0' && s[k] <= '9' {
				k++
			}
			j = k
		}
	}
	text := s[i:j]
	if hex && j == mantEnd {
		text += "p0" // Go insists on the binary exponent
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil && !isRangeErr(err) {
		return 0, pos
	}
	return sign * v, j
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// suffixMul is QEMU's suffix_mul: the multiplier of a size suffix, or -1.
func suffixMul(c byte, unit int64) int64 {
	switch c &^ 0x20 { // toupper for letters
	case 'B':
		return 1
	case 'K':
		return unit
	case 'M':
		return unit * unit
	case 'G':
		return unit * unit * unit
	case 'T':
		return unit * unit * unit * unit
	case 'P':
		return unit * unit * unit * unit * unit
	case 'E':
		return unit * unit * unit * unit * unit * unit
	}
	return -1
}

// strtoszMiB ports QEMU 7.2's qemu_strtosz_MiB (util/cutils.c do_strtosz with default
// suffix 'M', unit 1024): "1.5G", "512", "4k", "0x1000". It returns the value, the end
// of the parsed text, whether hex was combined with a suffix (QEMU warns that this is
// deprecated), and ok=false for invalid or overflowing input.
func strtoszMiB(s string, pos int) (val uint64, end int, hexSuffix, ok bool) {
	// qemu_strtou64(nptr, &endptr, 10): blanks and a sign are accepted by strtoull.
	i := pos
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	negative := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		negative = s[i] == '-'
		i++
	}
	v, e, overflow := strtoullBase(s, i, 10)
	if e == i || overflow {
		return 0, pos, false, false
	}
	if negative {
		return 0, pos, false, false
	}
	val, end = v, e
	hex := false
	var valf uint64
	at := func(k int) byte {
		if k < len(s) {
			return s[k]
		}
		return 0
	}
	switch {
	case val == 0 && (at(end) == 'x' || at(end) == 'X'):
		v, e, overflow := strtoullBase(s, end+1, 16)
		if e == end+1 { // strtoull(base 16) stops after the "0"
			v, e = 0, end
		}
		if overflow {
			return 0, pos, false, false
		}
		val, end = v, e
		if at(end) == '.' {
			return 0, pos, false, false
		}
		hex = true
	case at(end) == '.':
		f := end
		fraction, fe := strtod(s, f)
		if fe == f || math.IsInf(fraction, 0) || math.IsNaN(fraction) {
			end = f + 1
		} else if strings.ContainsAny(s[f:fe], "eE") {
			return 0, pos, false, false
		} else {
			end = fe
			if fraction >= 1 {
				valf = math.MaxUint64
			} else {
				valf = uint64(fraction * 0x1p64)
			}
		}
	}
	mul := suffixMul(at(end), 1024)
	if mul > 0 {
		hexSuffix = hex
		end++
	} else {
		mul = suffixMul('M', 1024)
	}
	if mul == 1 {
		if valf != 0 {
			return 0, pos, false, false
		}
		return val, end, hexSuffix, true
	}
	// 64.64 x 64.0 -> 128.64 fixed point, rounding 0.5 upward.
	valh, lo := bits.Mul64(val, uint64(mul))
	tmp, _ := bits.Mul64(valf, uint64(mul))
	var c uint64
	lo, c = bits.Add64(lo, tmp, 0)
	valh += c
	valfLo := valf * uint64(mul)
	lo, c = bits.Add64(lo, valfLo>>63, 0)
	valh += c
	if valh != 0 {
		return 0, pos, false, false
	}
	return lo, end, hexSuffix, true
}

// strtoullBase parses digits of base at s[pos:] (no prefix handling except "0x" for
// base 16, as strtoull does).
func strtoullBase(s string, pos int, base uint64) (val uint64, end int, overflow bool) {
	i := pos
	if base == 16 && i+2 < len(s) && s[i] == '0' && (s[i+1]|0x20) == 'x' && hexVal(s[i+2]) >= 0 {
		i += 2
	}
	start := i
	for i < len(s) {
		d := hexVal(s[i])
		if d < 0 || uint64(d) >= base {
			break
		}
		if val > (math.MaxUint64-uint64(d))/base {
			overflow = true
		}
		val = val*base + uint64(d)
		i++
	}
	if i == start {
		return 0, pos, false
	}
	return val, i, overflow
}
