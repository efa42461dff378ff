package qtest

import (
	"errors"
	"math"
	"strings"
)

// Errors of the number parser: QEMU's qemu_strtou64 / qemu_strtoi64 results.
var (
	ErrInvalid = errors.New("invalid number") // -EINVAL: no digits, or trailing characters
	ErrRange   = errors.New("out of range")   // -ERANGE
)

// Split is g_strsplit(line, " ", 0): the words between single spaces; an empty line has
// none.
func Split(line string) []string {
	if line == "" {
		return nil
	}
	return strings.Split(line, " ")
}

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

// scan is strtoull's core: leading space, a sign, the base prefix (base 0), the digits.
// It returns the magnitude, whether it overflowed 64 bits, the sign, and the end offset
// (0 when there are no digits).
func scan(s string) (mag uint64, over, neg bool, end int) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	base := uint64(10)
	if i < len(s) && s[i] == '0' {
		base = 8
		if i+2 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X') && digit(s[i+2]) < 16 {
			base, i = 16, i+2
		}
	}
	start := i
	for ; i < len(s); i++ {
		d := digit(s[i])
		if d >= base {
			break
		}
		if mag > (math.MaxUint64-d)/base {
			over = true
		}
		mag = mag*base + d
	}
	if i == start {
		return 0, false, false, 0
	}
	return mag, over, neg, i
}

func digit(c byte) uint64 {
	switch {
	case c >= '0' && c <= '9':
		return uint64(c - '0')
	case c >= 'a' && c <= 'z':
		return uint64(c-'a') + 10
	case c >= 'A' && c <= 'Z':
		return uint64(c-'A') + 10
	}
	return 99
}

// ParseUint is qemu_strtou64(s, NULL, 0, &v) (and qemu_strtoul, unsigned long being 64
// bits): a negative number is negated modulo 2^64, as strtoull does.
func ParseUint(s string) (uint64, error) {
	mag, over, neg, end := scan(s)
	switch {
	case end == 0 || end != len(s):
		return 0, ErrInvalid
	case over:
		return math.MaxUint64, ErrRange
	case neg:
		return -mag, nil
	}
	return mag, nil
}

// ParseInt is qemu_strtoi64(s, NULL, 0, &v).
func ParseInt(s string) (int64, error) {
	mag, over, neg, end := scan(s)
	switch {
	case end == 0 || end != len(s):
		return 0, ErrInvalid
	case neg && (over || mag > 1<<63):
		return math.MinInt64, ErrRange
	case !neg && (over || mag > math.MaxInt64):
		return math.MaxInt64, ErrRange
	case neg:
		return -int64(mag), nil
	}
	return int64(mag), nil
}

// hex2nib is qtest.c's: a hex digit's value, -1 for anything else.
func hex2nib(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// decodeHex is the write command's decoding: byte i from characters 2+2i and 3+2i of
// data (the "0x" is skipped unread), zeros once data runs out; a non-hex character gives
// C's (-1 << 4 | nib) truncated to a byte, as QEMU computes it.
func decodeHex(data string, n uint64) []byte {
	out := make([]byte, n)
	for i := uint64(0); i < n && i*2+4 <= uint64(len(data)); i++ {
		out[i] = byte(hex2nib(data[i*2+2])<<4 | hex2nib(data[i*2+3]))
	}
	return out
}

// b64rank is GLib's mime_base64_rank: the alphabet's values, '=' counting as 0, 0xff for
// characters that are skipped.
var b64rank = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alpha); i++ {
		t[alpha[i]] = byte(i)
	}
	t['='] = 0
	return t
}()

// decodeB64 is g_base64_decode_inplace: GLib's lenient decoder (unknown characters are
// skipped, a trailing partial group is dropped), decoding into the text's own buffer. The
// result is that buffer: the decoded bytes, then the text's characters not overwritten,
// then its NUL; n is the number of bytes decoded.
func decodeB64(text string) (buf []byte, n int) {
	buf = append([]byte(text), 0)
	var v uint32
	var last [2]byte
	i := 0
	for k := 0; k < len(text); k++ {
		c := text[k]
		r := b64rank[c]
		if r == 0xff {
			continue
		}
		last[1], last[0] = last[0], c
		v = v<<6 | uint32(r)
		if i++; i == 4 {
			buf[n] = byte(v >> 16)
			n++
			if last[1] != '=' {
				buf[n] = byte(v >> 8)
				n++
			}
			if last[0] != '=' {
				buf[n] = byte(v)
				n++
			}
			i = 0
		}
	}
	return buf, n
}
