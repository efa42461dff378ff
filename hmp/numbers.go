package hmp

import (
	"math"
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
