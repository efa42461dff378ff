// Package pack is the compact index encoding shared by the catalogue and its
// generator: a list of small non-negative integers written as a string, two
// characters per integer, each character one base-64 digit (most significant
// first). Two digits address 4096 entries, which is more than any pool of the
// catalogue holds; Encode panics beyond that so the generator fails loudly.
//
//	index 1234 = 19*64 + 18  ->  Digits[19] Digits[18]  ->  "JI"
//
// Strings of this form are embedded in the generated Go source; they are
// smaller than []uint16 literals by about three times and decode in one pass.
package pack

import (
	"errors"
	"fmt"
	"strings"
)

// Digits is the alphabet, in value order. It contains no character that
// needs escaping inside a Go string literal.
const Digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+/"

// Max is the largest value Encode accepts.
const Max = 64*64 - 1

// ErrCorrupt reports a string that is not a valid encoding.
var ErrCorrupt = errors.New("pack: corrupt index string")

var value [256]int8

func init() {
	for i := range value {
		value[i] = -1
	}
	for i := 0; i < len(Digits); i++ {
		value[Digits[i]] = int8(i)
	}
}

// Encode writes vs two digits each. It panics on a value outside [0, Max]:
// only the generator calls it, and a catalogue that does not fit must stop it.
func Encode(vs []int) string {
	var b strings.Builder
	b.Grow(2 * len(vs))
	for _, v := range vs {
		if v < 0 || v > Max {
			panic(fmt.Sprintf("pack: value %d out of range [0,%d]", v, Max))
		}
		b.WriteByte(Digits[v/64])
		b.WriteByte(Digits[v%64])
	}
	return b.String()
}

// Decode reverses Encode. It fails with ErrCorrupt on an odd length or a
// character outside Digits.
func Decode(s string) ([]int, error) {
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("%w: odd length %d", ErrCorrupt, len(s))
	}
	out := make([]int, len(s)/2)
	for i := range out {
		hi, lo := value[s[2*i]], value[s[2*i+1]]
		if hi < 0 || lo < 0 {
			return nil, fmt.Errorf("%w: bad digit at offset %d", ErrCorrupt, 2*i)
		}
		out[i] = int(hi)*64 + int(lo)
	}
	return out, nil
}
