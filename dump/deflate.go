package dump

import (
	"encoding/binary"
	"math/bits"
)

// A zlib encoder for single pages (RFC 1950 around one RFC 1951 block), the stream of a
// kdump-zlib page: QEMU compresses each page with compress2(Z_BEST_SPEED), and crash and
// makedumpfile read it with uncompress(), which takes any valid zlib stream. A general
// deflate library spends most of a 4 KiB page on per-call set-up (clearing a 128 KiB
// match table, building and sending a Huffman code fitted to the page); this one is made
// for small inputs:
//
//	78 01        zlib header (deflate, 32 KiB window, "fastest")
//	one block    BFINAL 1, BTYPE 01: the fixed Huffman code of RFC 1951 3.2.6 (no code
//	             to build or send per page; a code fitted to each page makes the
//	             benchmark's pages 40 % smaller, 824 bytes against 1,392, at three times
//	             the CPU with klauspost/compress's level 1)
//	adler32      big-endian
//
// Matching is greedy LZ77 over a 4,096-entry hash table of 4-byte prefixes (minimum match
// 4, at most 258, distances within the page), with a fast path for memory that repeats
// at a stride with a byte or two changed (strideRun: the benchmark's pages, one literal
// and one 7-byte match per 8-byte word, ~2 µs a page here). A page whose stream would
// not be shorter than the page is reported as such as soon as the output reaches the
// page size.

const (
	dfHashBits = 12
	dfMinMatch = 4
	dfMaxMatch = 258
)

// fixedTables is the fixed Huffman code (RFC 1951 3.2.6) ready to write LSB first: for a
// literal, for each match length (length symbol and extra bits) and for each distance
// within a page (distance symbol and extra bits), the bits and their count.
// Each entry is code | count<<16 (addBits).
type fixedTables struct {
	lit  [256]uint32
	mlen [512]uint32      // by length, up to dfMaxMatch (indexed &511: no bounds check)
	dist [PageSize]uint32 // by distance-1
	eob  uint32
}

// addBits appends a table entry's bits to the nb bits of acc (nb < 64; the mask spares
// Go's check for a shift past 63).
func addBits(acc uint64, nb uint, e uint32) (uint64, uint) {
	return acc | uint64(e&0xffff)<<(nb&63), nb + uint(e>>16)
}

var (
	lenBase   = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra  = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase  = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	fixed     fixedTables
)

func init() {
	// code lengths: literal/length 0-143 8 bits, 144-255 9, 256-279 7, 280-287 8; distance 5
	var lens [288]uint8
	for i := range lens {
		switch {
		case i < 144, i >= 280:
			lens[i] = 8
		case i < 256:
			lens[i] = 9
		default:
			lens[i] = 7
		}
	}
	codes := canonical(lens[:])
	for c := range 256 {
		fixed.lit[c] = uint32(codes[c]) | uint32(lens[c])<<16
	}
	fixed.eob = uint32(codes[256]) | uint32(lens[256])<<16
	for sym := range lenBase {
		end := dfMaxMatch
		if sym+1 < len(lenBase) {
			end = int(lenBase[sym+1]) - 1
		}
		for l := int(lenBase[sym]); l <= end; l++ {
			c, n := codes[257+sym], lens[257+sym]
			fixed.mlen[l] = uint32(c) | uint32(l-int(lenBase[sym]))<<n | uint32(n+lenExtra[sym])<<16
		}
	}
	var dlens [30]uint8
	for i := range dlens {
		dlens[i] = 5
	}
	dcodes := canonical(dlens[:])
	for sym := range distBase {
		for d := int(distBase[sym]); d < int(distBase[sym])+1<<distExtra[sym] && d <= PageSize; d++ {
			fixed.dist[d-1] = uint32(dcodes[sym]) | uint32(d-int(distBase[sym]))<<5 | uint32(5+distExtra[sym])<<16
		}
	}
}

// canonical is the canonical code of the code lengths (RFC 1951 3.2.2), each code
// bit-reversed for an LSB-first writer.
func canonical(lens []uint8) []uint16 {
	var count, next [16]uint16
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	code := uint16(0)
	for b := 1; b < 16; b++ {
		code = (code + count[b-1]) << 1
		next[b] = code
	}
	codes := make([]uint16, len(lens))
	for i, l := range lens {
		if l > 0 {
			codes[i] = bits.Reverse16(next[l]) >> (16 - l)
			next[l]++
		}
	}
	return codes
}

// deflater compresses pages; one per goroutine.
type deflater struct {
	table [1 << dfHashBits]uint16 // position+1 of the last 4-byte prefix with this hash
	out   [dfOutSize + 8]byte     // see strideRun
}

// dfOutSize bounds a stream while it is written: a page of literals takes at most 9/8 of
// a page; strideRun starts before a page's worth and adds at most 46 bits per 5 bytes.
const dfOutSize = 4 * PageSize

func dfHash(v uint32) uint32 { return (v * 2654435761) >> (32 - dfHashBits) }

// zlibPage returns page (PageSize bytes) as a zlib stream, or nil when the stream would
// not be shorter than the page. The result is valid until the next call. Before the
// hash table, each step tries the distance of the previous match at this byte and the
// next (memory repeats at a stride: arrays of records, page tables), as LZ4's and zstd's
// fast modes do; a run of misses moves faster the longer it gets.
func (d *deflater) zlibPage(src []byte) []byte {
	clear(d.table[:])
	out := d.out[:]
	out[0], out[1] = 0x78, 0x01
	pos := 2
	// acc holds nb < 35 bits between tokens: room for a match (at most 13 + 16 bits). The
	// writes are inline: closures here cost a fifth of the time.
	acc, nb := uint64(1|1<<1), uint(3) // BFINAL 1, BTYPE 01 (fixed code)
	n := len(src)
	limit := n - 4 - 8 // the stream must end shorter than the page, adler32 included
	s, lit, rep := 0, 0, 0
	cut := false // the last step was a match that ended on a mismatch at s with distance rep
	for {
		// the match at s, if any (none: the literals up to the end); cur: the prefixes at s, s+1
		cand, l := -1, 0
		switch cur := binary.LittleEndian.Uint64(src[min(s, n-8):]); {
		case s+8 > n:
			s = n
		case !cut && rep > 0 && s >= rep && binary.LittleEndian.Uint32(src[s-rep:]) == uint32(cur):
			cand = s - rep
		case rep > 0 && s+1 >= rep && binary.LittleEndian.Uint32(src[s+1-rep:]) == uint32(cur>>8):
			s++
			cand = s - rep
		default:
			h := dfHash(uint32(cur))
			cand = int(d.table[h]) - 1
			d.table[h] = uint16(s + 1)
			if cand < 0 || binary.LittleEndian.Uint32(src[cand:]) != uint32(cur) {
				cut = false
				s += 1 + (s-lit)>>5
				continue
			}
		}
		if cand >= 0 && s+dfMinMatch+8 <= n {
			x := binary.LittleEndian.Uint64(src[cand+dfMinMatch:]) ^ binary.LittleEndian.Uint64(src[s+dfMinMatch:])
			if x != 0 {
				l = dfMinMatch + bits.TrailingZeros64(x)/8
			}
		}
		if cand >= 0 && l == 0 {
			l = dfMinMatch + matchLen(src[cand+dfMinMatch:], src[s+dfMinMatch:min(n, s+dfMaxMatch)])
		}
		for _, c := range src[lit:s] {
			acc, nb = addBits(acc, nb, fixed.lit[c])
			if nb >= 35 {
				binary.LittleEndian.PutUint64(out[pos:], acc)
				pos += int(nb >> 3)
				acc >>= nb & 56
				nb &= 7
			}
		}
		if cand < 0 {
			break
		}
		dist := s - cand - 1
		acc, nb = addBits(acc, nb, fixed.mlen[l&511])
		acc, nb = addBits(acc, nb, fixed.dist[dist&(PageSize-1)])
		binary.LittleEndian.PutUint64(out[pos:], acc)
		pos += int(nb >> 3)
		acc >>= nb & 56
		nb &= 7
		if pos >= limit {
			return nil
		}
		rep = s - cand
		s += l
		lit = s
		cut = l < dfMaxMatch
		if !cut {
			continue
		}
		// The match ended on a mismatch at s: memory repeats at a stride with a byte or two
		// changed (an array of records; the benchmark's pages are one literal and one
		// 7-byte match per word).
		if s, pos, acc, nb = strideRun(src, s, rep, &d.out, pos, acc, nb); pos >= limit {
			return nil
		}
		lit, cut = s, false
	}
	acc, nb = addBits(acc, nb, fixed.eob)
	nb += 7 // pad to a byte
	binary.LittleEndian.PutUint64(out[pos:], acc)
	pos += int(nb >> 3)
	if pos+4 >= n {
		return nil
	}
	binary.BigEndian.PutUint32(out[pos:], adler32(src))
	return out[:pos+4]
}

// strideRun codes the bytes from s, which differs from the byte rep before it, as
// literal, match at distance rep, literal, match… while the next match is 4 to 7 bytes
// long (one 8-byte comparison finds it), then the last literal. It returns the first
// byte not coded and the writer's state; the caller checks the stream's length. Kept
// small on purpose: with more live values Go spills the loop's registers to the stack
// (x86's variable shifts all need CL, which the bit writer holds), and a version that
// found the differing bytes 8 at a time at fixed positions, or one with a table per
// distance, ran slower.
func strideRun(src []byte, s, rep int, out *[dfOutSize + 8]byte, pos int, acc uint64, nb uint) (int, int, uint64, uint) {
	if s+9 > len(src) {
		return s, pos, acc, nb
	}
	cur, prev := src[rep:], src[:len(src)-rep] // byte t of cur is rep after byte t of prev
	dc := fixed.dist[(rep-1)&(PageSize-1)]
	c := src[s] // the pending literal
	t := s + 1 - rep
	for t+8 <= len(cur) {
		x := binary.LittleEndian.Uint64(cur[t:t+8]) ^ binary.LittleEndian.Uint64(prev[t:t+8])
		l := bits.TrailingZeros64(x) >> 3
		if l < dfMinMatch || x == 0 {
			break // too short, or long: the general steps take it
		}
		acc, nb = addBits(acc, nb, fixed.lit[c])
		acc, nb = addBits(acc, nb, fixed.mlen[l&511])
		acc, nb = addBits(acc, nb, dc)
		o := pos & (dfOutSize - 1) // pos itself (see dfOutSize): no bounds check
		binary.LittleEndian.PutUint64(out[o:o+8], acc)
		pos += int(nb >> 3)
		acc >>= nb & 56
		nb &= 7
		t += l
		c = cur[t]
		t++
	}
	acc, nb = addBits(acc, nb, fixed.lit[c])
	return t + rep, pos, acc, nb
}

// matchLen is the length of the common prefix of a and b (len(b) <= len(a) or a shorter).
func matchLen(a, b []byte) int {
	n := 0
	for len(a) >= 8 && len(b) >= 8 {
		x := binary.LittleEndian.Uint64(a) ^ binary.LittleEndian.Uint64(b)
		if x != 0 {
			return n + bits.TrailingZeros64(x)/8
		}
		a, b, n = a[8:], b[8:], n+8
	}
	for i := 0; i < len(a) && i < len(b) && a[i] == b[i]; i++ {
		n++
	}
	return n
}

// adler32 is RFC 1950's checksum of p (any length a 64-bit sum holds: far more than a
// page), 64 bytes a step without a multiplication per word: the even and the odd bytes
// of each 8-byte word are added into 16-bit lanes (a), and a into b after every word,
// so that at the end of the step b holds each word's bytes weighted by the words left
// (8, 7, …, 1). Byte j of word k of the step then weighs 64 - 8k - j in s2: 8·b minus
// the bytes' positions in their words, summed by one multiplication per step. No lane
// passes 65,535 (b at most 255·36, a weighted sum of lanes at most 2,040·16). The words
// are written out (Go unrolls no loop) and the lane mask is a variable (Go would load
// the constant twice a word).
func adler32(p []byte) uint32 {
	const (
		mod   = 65521
		ones  = 0x0001000100010001
		jEven = 6 | 4<<16 | 2<<32 // lanes 0-3 hold bytes 0, 2, 4, 6
		jOdd  = 7 | 5<<16 | 3<<32 | 1<<48
	)
	lanes := adlerLanes
	s1, s2 := uint64(1), uint64(0)
	for len(p) >= 64 {
		q := (*[64]byte)(p)
		var ae, ao, be, bo uint64
		word := func(x uint64) {
			ae += x & lanes
			ao += (x >> 8) & lanes
			be += ae
			bo += ao
		}
		word(binary.LittleEndian.Uint64(q[0:]))
		word(binary.LittleEndian.Uint64(q[8:]))
		word(binary.LittleEndian.Uint64(q[16:]))
		word(binary.LittleEndian.Uint64(q[24:]))
		word(binary.LittleEndian.Uint64(q[32:]))
		word(binary.LittleEndian.Uint64(q[40:]))
		word(binary.LittleEndian.Uint64(q[48:]))
		word(binary.LittleEndian.Uint64(q[56:]))
		s2 += 64*s1 + 8*((be*ones)>>48+(bo*ones)>>48) - (ae*jEven)>>48 - (ao*jOdd)>>48
		s1 += ((ae + ao) * ones) >> 48
		p = p[64:]
	}
	for _, c := range p {
		s1 += uint64(c)
		s2 += s1
	}
	return uint32(s2%mod)<<16 | uint32(s1%mod)
}

// adlerLanes selects the even bytes of a word (see adler32).
var adlerLanes uint64 = 0x00ff00ff00ff00ff
