package stream

import (
	"encoding/binary"
	"unicode/utf8"
)

// The "dirty-bitmap" section (QEMU 7.2's migration/block-dirty-bitmap.c, capability
// dirty-bitmaps): the block layer's named dirty bitmaps, set up in a START section after
// the RAM setup and sent, with the guest stopped, in an END section after RAM's:
//
//	START "dirty-bitmap" instance 0 version 1:
//	  per bitmap: flags START [|DEVICE_NAME u8 len node alias] [|BITMAP_NAME u8 len alias]
//	              be32 granularity  u8 flags (0x01 enabled, 0x02 persistent)
//	  u8 EOS (0x01)                                              footer
//	END:
//	  per bitmap, per chunk of 8192 granules:
//	     flags BITS[|ZEROES] [names]  be64 first sector  be32 sectors
//	     [be64 n, n bytes: the granules as little-endian 64-bit words, n a multiple of 32]
//	                                   (no buffer with ZEROES: every granule clean)
//	  per bitmap: flags COMPLETE [names]
//	  u8 EOS                                                     footer
//
// Chunk flags: EOS 0x01, ZEROES 0x02, BITMAP_NAME 0x04, DEVICE_NAME 0x08, START 0x10,
// COMPLETE 0x20, BITS 0x40; 0x80 announces a second flags byte (never sent, refused). A
// chunk names its node and bitmap only when they differ from the previous chunk's (in
// the whole stream, START section included). Sectors are 512 bytes of the node.

// BitmapsIDStr is the dirty-bitmaps section's name.
const BitmapsIDStr = "dirty-bitmap"

const (
	bitmapsVersion = 1

	bmEOS        = 0x01
	bmZeroes     = 0x02
	bmBitmapName = 0x04
	bmDeviceName = 0x08
	bmStart      = 0x10
	bmComplete   = 0x20
	bmBits       = 0x40
	bmExtra      = 0x80

	bmStartEnabled    = 0x01
	bmStartPersistent = 0x02
	bmStartReserved   = 0xf8

	// MaxBitmapChunk bounds a chunk's buffer, as QEMU's loader does (10 × CHUNK_SIZE).
	MaxBitmapChunk = 10 << 10
	// BitmapChunkGranules is the granules one chunk carries (CHUNK_SIZE bytes of bits).
	BitmapChunkGranules = 1 << 10 * 8
	// MaxBitmaps bounds the bitmaps of one stream.
	MaxBitmaps = 1 << 16
)

// DirtyBitmap is one bitmap of the section: its node and bitmap aliases, its header, and
// (END section) its bits.
type DirtyBitmap struct {
	Node, Name          string
	Granularity         uint32
	Enabled, Persistent bool
	Chunks              []BitmapChunk
	Complete            bool // the END section's COMPLETE chunk was read (Reader)
}

// BitmapChunk is a range of a bitmap's granules: Sectors sectors from Start. Bits nil:
// every granule clean.
type BitmapChunk struct {
	Start   uint64
	Sectors uint32
	Bits    []byte
}

// bitmapNames tracks the names of the previous chunk (Writer and Reader).
type bitmapNames struct{ node, name string }

// bitmapHeader writes a chunk's flags and the names that changed: the node's when it is
// another node, the bitmap's when it is another bitmap (QEMU compares the objects: a
// bitmap of another node is another bitmap even of the same name).
func (w *Writer) bitmapHeader(flags byte, b *DirtyBitmap) {
	if b.Node != w.bmPrev.node {
		flags |= bmDeviceName | bmBitmapName
	}
	if b.Name != w.bmPrev.name {
		flags |= bmBitmapName
	}
	w.reserve(1 + 2*(1+MaxIDStr))
	w.buf = append(w.buf, flags)
	if flags&bmDeviceName != 0 {
		w.buf = append(append(w.buf, byte(len(b.Node))), b.Node...)
	}
	if flags&bmBitmapName != 0 {
		w.buf = append(append(w.buf, byte(len(b.Name))), b.Name...)
	}
	w.bmPrev = bitmapNames{b.Node, b.Name}
}

func checkBitmapNames(b *DirtyBitmap) bool {
	ok := func(s string) bool { return len(s) > 0 && len(s) <= MaxIDStr && utf8.ValidString(s) }
	return ok(b.Node) && ok(b.Name)
}

// BitmapsSetup writes the START section "dirty-bitmap": every bitmap's header. Call it
// between sections (after RAMSetup), once, and only with bitmaps to send.
func (w *Writer) BitmapsSetup(bms []DirtyBitmap) error {
	if err := w.check("BitmapsSetup", wBetween); err != nil {
		return err
	}
	if w.bmState != 0 {
		return w.usage("BitmapsSetup called twice")
	}
	if len(bms) == 0 || len(bms) > MaxBitmaps {
		return w.usage("%d bitmaps (1..%d)", len(bms), MaxBitmaps)
	}
	for i := range bms {
		if !checkBitmapNames(&bms[i]) {
			return w.usage("bitmap %q of node %q: names must be UTF-8 of 1..%d bytes", bms[i].Name, bms[i].Node, MaxIDStr)
		}
	}
	w.bmID = w.sectionHeader(secStart, BitmapsIDStr, 0, bitmapsVersion)
	for i := range bms {
		b := &bms[i]
		w.bitmapHeader(bmStart, b)
		var f byte
		if b.Enabled {
			f |= bmStartEnabled
		}
		if b.Persistent {
			f |= bmStartPersistent
		}
		w.reserve(5)
		w.buf = append(binary.BigEndian.AppendUint32(w.buf, b.Granularity), f)
	}
	w.reserve(1)
	w.buf = append(w.buf, bmEOS)
	w.footer(w.bmID)
	w.bmState = 1
	return w.err
}

// BitmapsComplete writes the END section "dirty-bitmap": every bitmap's chunks, then
// their COMPLETE chunks. Call it between sections after BitmapsSetup, once.
func (w *Writer) BitmapsComplete(bms []DirtyBitmap) error {
	if err := w.check("BitmapsComplete", wBetween); err != nil {
		return err
	}
	if w.bmState != 1 {
		return w.usage("BitmapsComplete without BitmapsSetup or twice")
	}
	for i := range bms {
		if !checkBitmapNames(&bms[i]) {
			return w.usage("bitmap %q of node %q: names must be UTF-8 of 1..%d bytes", bms[i].Name, bms[i].Node, MaxIDStr)
		}
		for _, c := range bms[i].Chunks {
			if len(c.Bits) > MaxBitmapChunk || len(c.Bits)%32 != 0 {
				return w.usage("bitmap chunk of %d bytes (a multiple of 32, at most %d)", len(c.Bits), MaxBitmapChunk)
			}
		}
	}
	w.reserve(5)
	w.buf = binary.BigEndian.AppendUint32(append(w.buf, secEnd), w.bmID)
	for i := range bms {
		b := &bms[i]
		for _, c := range b.Chunks {
			flags := byte(bmBits)
			if c.Bits == nil {
				flags |= bmZeroes
			}
			w.bitmapHeader(flags, b)
			w.reserve(12)
			w.buf = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(w.buf, c.Start), c.Sectors)
			if c.Bits != nil {
				w.reserve(8)
				w.buf = binary.BigEndian.AppendUint64(w.buf, uint64(len(c.Bits)))
				w.write(c.Bits)
			}
		}
	}
	for i := range bms {
		w.bitmapHeader(bmComplete, &bms[i])
	}
	w.reserve(1)
	w.buf = append(w.buf, bmEOS)
	w.footer(w.bmID)
	w.bmState = 2
	return w.err
}

// bitmapsSection reads the chunks of the open "dirty-bitmap" section up to EOS and its
// footer (dirty_bitmap_load): the START section's headers, or the END section's bits.
func (r *Reader) bitmapsSection(end bool) (Record, error) {
	rec := Record{Kind: BitmapsSetup}
	if end {
		rec.Kind = BitmapsData
	}
	index := map[bitmapNames]int{}
	for {
		flags, err := r.u8()
		if err != nil {
			return Record{}, err
		}
		if flags&bmExtra != 0 {
			return Record{}, r.fail(ErrFormat, "dirty bitmap chunk with extra flags 0x%02x", flags)
		}
		if flags&bmDeviceName != 0 {
			n, err := r.str("node alias")
			if err != nil {
				return Record{}, err
			}
			r.bmPrev.node = string(n)
		}
		if flags&bmBitmapName != 0 {
			n, err := r.str("bitmap alias")
			if err != nil {
				return Record{}, err
			}
			r.bmPrev.name = string(n)
		}
		kinds := flags & (bmStart | bmComplete | bmBits)
		if kinds == 0 {
			if flags&bmEOS == 0 {
				return Record{}, r.fail(ErrFormat, "dirty bitmap chunk of no kind (flags 0x%02x)", flags)
			}
			return rec, r.footer(r.bmID)
		}
		if kinds&(kinds-1) != 0 || (kinds == bmStart) == end {
			return Record{}, r.fail(ErrFormat, "dirty bitmap chunk flags 0x%02x in the %s section", flags, map[bool]string{false: "START", true: "END"}[end])
		}
		if r.bmPrev.node == "" || r.bmPrev.name == "" {
			return Record{}, r.fail(ErrFormat, "dirty bitmap chunk before any node and bitmap name")
		}
		i, seen := index[r.bmPrev]
		if !seen {
			if len(rec.Bitmaps) >= MaxBitmaps {
				return Record{}, r.fail(ErrFormat, "more than %d dirty bitmaps", MaxBitmaps)
			}
			i = len(rec.Bitmaps)
			index[r.bmPrev] = i
			rec.Bitmaps = append(rec.Bitmaps, DirtyBitmap{Node: r.bmPrev.node, Name: r.bmPrev.name})
		}
		b := &rec.Bitmaps[i]
		switch kinds {
		case bmStart:
			if seen {
				return Record{}, r.fail(ErrFormat, "dirty bitmap %q of %q started twice", b.Name, b.Node)
			}
			g, err := r.u32()
			if err != nil {
				return Record{}, err
			}
			f, err := r.u8()
			if err != nil {
				return Record{}, err
			}
			if f&bmStartReserved != 0 {
				return Record{}, r.fail(ErrFormat, "Unknown flags in migrated dirty bitmap header: %x", f)
			}
			b.Granularity, b.Enabled, b.Persistent = g, f&bmStartEnabled != 0, f&bmStartPersistent != 0
		case bmComplete:
			b.Complete = true
		case bmBits:
			start, err := r.u64()
			if err != nil {
				return Record{}, err
			}
			n, err := r.u32()
			if err != nil {
				return Record{}, err
			}
			c := BitmapChunk{Start: start, Sectors: n}
			if flags&bmZeroes == 0 {
				size, err := r.u64()
				if err != nil {
					return Record{}, err
				}
				if size > MaxBitmapChunk {
					return Record{}, r.fail(ErrFormat, "Bitmap migration stream buffer allocation request is too large")
				}
				if c.Bits, err = r.bytes(int(size)); err != nil {
					return Record{}, err
				}
			}
			b.Chunks = append(b.Chunks, c)
		}
		if flags&bmEOS != 0 {
			return rec, r.footer(r.bmID)
		}
	}
}
