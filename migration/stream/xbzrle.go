package stream

import (
	"encoding/binary"
	"fmt"
)

// XBZRLE (QEMU 7.2 migration/xbzrle.c): a page sent as its difference from the copy the
// destination already has, in runs. Runs alternate, starting with an unchanged one:
//
//	uleb128 zrun  (bytes equal to the old page; 0 only for the first run)
//	uleb128 nzrun (bytes that differ, at least 1), then those nzrun bytes of the new page
//	…                                     a final unchanged run is left out
//
// uleb128 values are QEMU's "small" form: one byte below 0x80, else two (14 bits). In the
// stream, a record with flag 0x40 (RAM_SAVE_FLAG_XBZRLE) carries u8 1
// (ENCODING_FLAG_XBZRLE), be16 length (at most a page), then the encoded bytes.

const xbzrleEncodingFlag = 1

// EncodeXBZRLE encodes new against old (both PageSize bytes) into dst (at least PageSize
// bytes). It returns the encoded length, 0 when the pages are equal, or -1 when the
// encoding would not fit in PageSize bytes (QEMU's xbzrle_encode_buffer).
func EncodeXBZRLE(old, new, dst []byte) int {
	slen, dlen := len(new), min(len(dst), PageSize)
	d, i := 0, 0
	for i < slen {
		if d+2 > dlen {
			return -1
		}
		z := i
		for i < slen && old[i] == new[i] {
			i++
		}
		if i-z == slen {
			return 0
		}
		if i == slen {
			return d
		}
		d += putUleb(dst[d:], i-z)
		if d+2 > dlen {
			return -1
		}
		nz := i
		for i < slen && old[i] != new[i] {
			i++
		}
		d += putUleb(dst[d:], i-nz)
		if d+(i-nz) > dlen {
			return -1
		}
		d += copy(dst[d:], new[nz:i])
	}
	return d
}

func putUleb(dst []byte, n int) int {
	if n < 0x80 {
		dst[0] = byte(n)
		return 1
	}
	dst[0] = byte(n&0x7f) | 0x80
	dst[1] = byte(n >> 7)
	return 2
}

// getUleb is uleb128_decode_small: -1 for a value of more than 14 bits.
func getUleb(src []byte) (int, int) {
	if src[0]&0x80 == 0 {
		return int(src[0]), 1
	}
	if src[1]&0x80 != 0 {
		return 0, -1
	}
	return int(src[0]&0x7f) | int(src[1])<<7, 2
}

// DecodeXBZRLE applies an encoding to dst (the old page, PageSize bytes) in place, with
// QEMU's xbzrle_decode_buffer checks; any malformed encoding fails with ErrFormat (dst may
// then be partly changed: the caller fails the migration).
func DecodeXBZRLE(src, dst []byte) error {
	slen, dlen := len(src), len(dst)
	bad := fmt.Errorf("%w: Failed to load XBZRLE page - decode error!", ErrFormat)
	d, i := 0, 0
	for i < slen {
		if slen-i < 2 {
			return bad
		}
		count, n := getUleb(src[i:])
		if n < 0 || (i != 0 && count == 0) {
			return bad
		}
		i += n
		d += count
		if d > dlen || slen-i < 2 {
			return bad
		}
		count, n = getUleb(src[i:])
		if n < 0 || count == 0 {
			return bad
		}
		i += n
		if d+count > dlen || i+count > slen {
			return bad
		}
		copy(dst[d:], src[i:i+count])
		d += count
		i += count
	}
	return nil
}

// RAMXBZRLE writes page offset of block as an XBZRLE record carrying encoded (from
// EncodeXBZRLE, 1..PageSize bytes) in the open PART or END section.
func (w *Writer) RAMXBZRLE(block string, offset uint64, encoded []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.state != wInPart && w.state != wInEnd || w.mr != nil {
		return w.usage("RAMXBZRLE outside a RAM section of a stream")
	}
	if len(encoded) == 0 || len(encoded) > PageSize {
		return w.usage("XBZRLE encoding of %d bytes", len(encoded))
	}
	if err := w.ramHeader(block, offset, flagXBZRLE, 3+len(encoded)); err != nil {
		return err
	}
	w.buf = append(w.buf, xbzrleEncodingFlag)
	w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(len(encoded)))
	w.buf = append(w.buf, encoded...)
	w.xbzrle++
	return nil
}

// Compressed pages (capability compress; QEMU 7.2's do_compress_ram_page): a record with
// flag 0x100 (RAM_SAVE_FLAG_COMPRESS_PAGE) carries be32 length, then the page deflated
// in the zlib format (compress-level), at most CompressBound bytes.

// CompressBound is zlib's compressBound(PageSize): the largest deflated page.
const CompressBound = PageSize + PageSize>>12 + PageSize>>14 + PageSize>>25 + 13

// RAMCompressed writes page offset of block as a compressed record carrying zdata.
func (w *Writer) RAMCompressed(block string, offset uint64, zdata []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.state != wInPart && w.state != wInEnd || w.mr != nil {
		return w.usage("RAMCompressed outside a RAM section of a stream")
	}
	if len(zdata) == 0 || len(zdata) > CompressBound {
		return w.usage("compressed page of %d bytes", len(zdata))
	}
	if err := w.ramHeader(block, offset, flagCompressPage, 4+len(zdata)); err != nil {
		return err
	}
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(len(zdata)))
	w.buf = append(w.buf, zdata...)
	w.compressed++
	return nil
}
