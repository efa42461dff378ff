package dump

import (
	"encoding/binary"
	"errors"
)

// LZO1X, the stream kdump-lzo pages hold (lzo1x_1_compress in QEMU, lzo1x_decompress in
// crash and makedumpfile). No Go module for LZO is well kept (the maintained ones wrap
// liblzo2 through cgo), so the format is implemented here from its specification
// (Linux's Documentation/staging/lzo.rst): the encoder emits a subset of the instructions
// (literal runs, M3 matches for every match, and the end marker), which any LZO1X
// decoder accepts; the decoder is the full format, used by the tests and by ReadKdump.
//
//	first byte 18..255        copy byte-17 literals (1..238)
//	0000LLLL (after a match    copy 3+L literals; L=0: 15 + 255 per zero byte + next byte
//	          without trailing
//	          literals)
//	001LLLLL DDDDDDSS DDDDDDDD  match of 2+L bytes (L=0: 31 + 255·zeros + next byte) at
//	                            distance D+1 (D: LE16>>2); then SS (0..3) literals
//	0001HLLL …                 M4 match; 0x11 0x00 0x00 ends the stream
//	01LDDDSS HHHHHHHH          M2 match of 3+L bytes at distance (H<<3)+D+1
//	1LLDDDSS HHHHHHHH          M2 match of 5+L bytes at distance (H<<3)+D+1
//	0000DDSS HHHHHHHH          M1 match (after literals): 2 bytes at (H<<2)+D+1, or 3
//	                            bytes at (H<<2)+D+2049 after a run of 4 or more

const (
	lzoMinMatch = 4
	lzoMaxDist  = 1 << 14 // M3 reaches 16 KiB
	lzoHashBits = 12
)

// errLZO is a malformed LZO1X stream.
var errLZO = errors.New("lzo: corrupt input")

// lzoMaxOut is the most lzoAppend adds for a page.
const lzoMaxOut = PageSize + PageSize/16 + 64 + 3

// lzoCompress returns src compressed as an LZO1X stream.
func lzoCompress(src []byte) []byte {
	return lzoAppend(make([]byte, 0, len(src)+len(src)/16+64+3), src)
}

// lzoAppend appends src compressed as an LZO1X stream to out.
func lzoAppend(out, src []byte) []byte {
	start := len(out)
	var table [1 << lzoHashBits]int32
	for i := range table {
		table[i] = -1
	}
	hash := func(i int) uint32 {
		return (binary.LittleEndian.Uint32(src[i:]) * 2654435761) >> (32 - lzoHashBits)
	}
	lit := 0           // start of the pending literals
	lastMatch := false // the previous instruction was a match (state 0 unless it carried literals)
	var pendingSS *byte
	emitLiterals := func(end int) {
		n := end - lit
		if n == 0 {
			return
		}
		switch {
		case !lastMatch && len(out) == start && n <= 238:
			out = append(out, byte(17+n))
		case lastMatch && n <= 3:
			*pendingSS |= byte(n) // carried by the match's distance bytes
		default:
			out = appendLen(out, 0, n-3, 15)
		}
		out = append(out, src[lit:end]...)
		lit = end
		lastMatch = false
	}
	i := 0
	for i+lzoMinMatch <= len(src) {
		h := hash(i)
		cand := int(table[h])
		table[h] = int32(i)
		if cand < 0 || i-cand > lzoMaxDist || binary.LittleEndian.Uint32(src[cand:]) != binary.LittleEndian.Uint32(src[i:]) {
			i++
			continue
		}
		n := lzoMinMatch
		for i+n < len(src) && src[cand+n] == src[i+n] {
			n++
		}
		if i == 0 {
			i++ // the stream must begin with literals
			continue
		}
		emitLiterals(i)
		out = appendLen(out, 32, n-2, 31)
		d := uint16(i-cand-1) << 2
		out = append(out, byte(d), byte(d>>8))
		pendingSS = &out[len(out)-2]
		lastMatch = true
		i += n
		lit = i
	}
	emitLiterals(len(src))
	return append(out, 0x11, 0, 0)
}

// appendLen appends an opcode whose low bits hold n when 1 <= n <= max, or 0 followed by
// the extension: 255 per zero byte, then a final non-zero byte (n - max in all).
func appendLen(out []byte, op byte, n, max int) []byte {
	if n <= max {
		return append(out, op|byte(n))
	}
	out = append(out, op)
	n -= max
	for n > 255 {
		out = append(out, 0)
		n -= 255
	}
	return append(out, byte(n))
}

// lzoDecompress decodes an LZO1X stream of at most max bytes of output.
func lzoDecompress(src []byte, max int) ([]byte, error) {
	out := make([]byte, 0, max)
	ip := 0
	get := func() (int, error) {
		if ip >= len(src) {
			return 0, errLZO
		}
		ip++
		return int(src[ip-1]), nil
	}
	ext := func(t, base int) (int, error) {
		if t != 0 {
			return t, nil
		}
		for {
			b, err := get()
			if err != nil {
				return 0, err
			}
			if b != 0 {
				return t + base + b, nil
			}
			t += 255
			if t > 1<<24 {
				return 0, errLZO
			}
		}
	}
	literals := func(n int) error {
		if ip+n > len(src) || len(out)+n > max {
			return errLZO
		}
		out = append(out, src[ip:ip+n]...)
		ip += n
		return nil
	}
	copyMatch := func(dist, n int) error {
		if dist <= 0 || dist > len(out) || len(out)+n > max {
			return errLZO
		}
		from := len(out) - dist
		for k := 0; k < n; k++ {
			out = append(out, out[from+k])
		}
		return nil
	}
	// lenDist reads a length (extended as ext does) and the LE16 distance of M3 and M4.
	lenDist := func(t, base int) (n, d int, err error) {
		if n, err = ext(t, base); err != nil {
			return 0, 0, err
		}
		if ip+2 > len(src) {
			return 0, 0, errLZO
		}
		d = int(binary.LittleEndian.Uint16(src[ip:]))
		ip += 2
		return n, d, nil
	}
	state := 0 // literals copied by the last instruction: 0, 1..3, or 4 for a run
	if len(src) > 0 && src[0] > 17 {
		ip = 1
		n := int(src[0]) - 17
		if err := literals(n); err != nil {
			return nil, err
		}
		state = min(n, 4)
	}
	for {
		t, err := get()
		if err != nil {
			return nil, err
		}
		switch {
		case t < 16 && state == 0: // literal run
			n, err := ext(t, 15)
			if err != nil {
				return nil, err
			}
			if err := literals(n + 3); err != nil {
				return nil, err
			}
			state = 4
			continue
		case t < 16: // M1
			h, err := get()
			if err != nil {
				return nil, err
			}
			if state == 4 {
				err = copyMatch(h<<2+t>>2+2049, 3)
			} else {
				err = copyMatch(h<<2+t>>2+1, 2)
			}
			if err != nil {
				return nil, err
			}
		case t >= 64: // M2
			h, err := get()
			if err != nil {
				return nil, err
			}
			if err := copyMatch(h<<3+(t>>2)&7+1, t>>5+1); err != nil {
				return nil, err
			}
		case t >= 32: // M3
			n, d, err := lenDist(t&31, 31)
			if err != nil {
				return nil, err
			}
			if err := copyMatch(d>>2+1, n+2); err != nil {
				return nil, err
			}
		default: // M4 or the end of the stream
			n, d, err := lenDist(t&7, 7)
			if err != nil {
				return nil, err
			}
			dist := (t&8)<<11 + d>>2
			if dist == 0 {
				if ip != len(src) {
					return nil, errLZO
				}
				return out, nil
			}
			if err := copyMatch(dist+16384, n+2); err != nil {
				return nil, err
			}
		}
		// The two low bits of the byte before last give the literals that follow (the
		// opcode of M1 and M2, the first distance byte of M3 and M4).
		state = int(src[ip-2] & 3)
		if err := literals(state); err != nil {
			return nil, err
		}
	}
}
