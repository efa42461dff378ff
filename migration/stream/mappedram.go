package stream

import (
	"encoding/binary"
	"hash/crc32"
	"io"
)

// QEMU 9.0's mapped-ram layout (migration/ram.c, docs/devel/migration/mapped-ram.rst) and
// tlcvm's integrity for it. See the package doc, "Mapped RAM".

// Mapped-ram constants.
const (
	// CapMappedRAM is the capability's name in the configuration section.
	CapMappedRAM = "mapped-ram"
	// MappedAlign is MAPPED_RAM_FILE_OFFSET_ALIGNMENT: every block's pages start at a
	// multiple of it (absolute file offset).
	MappedAlign = 1 << 20
	// MappedChunk is the span of guest RAM one integrity digest covers.
	MappedChunk = 1 << 20
	// MappedTableIDStr names tlcvm's device section with the mapped-ram digests.
	MappedTableIDStr = "tlcvm/mapped-ram"

	mappedHdrVersion   = 1
	mappedTableVersion = 1
	maxCaps            = 64
	mappedHdrSize      = 4 + 8 + 8 + 8 // QEMU_PACKED MappedRamHeader
	capsIDStr          = "configuration/capabilities"
	capsVersion        = 1
	chunkPages         = MappedChunk / PageSize
	runMax             = 1 << 20 // contiguous pages gathered into one pwrite
)

// MappedBlock is where one RAM block lives in a mapped-ram file (absolute offsets).
type MappedBlock struct {
	BitmapOffset uint64 // the bitmap of present pages: little-endian 64-bit words
	PagesOffset  uint64 // page p of the block is at PagesOffset + p*PageSize
}

// BitmapSize is QEMU's BITS_TO_LONGS(pages) * sizeof(unsigned long) on a 64-bit host.
func BitmapSize(pages uint64) uint64 { return (pages + 63) / 64 * 8 }

// mappedLayout places a block whose MappedRamHeader starts at file offset hdr.
func mappedLayout(hdr, size uint64) MappedBlock {
	bm := hdr + mappedHdrSize
	pages := (bm + BitmapSize(size/PageSize) + MappedAlign - 1) &^ (MappedAlign - 1)
	return MappedBlock{BitmapOffset: bm, PagesOffset: pages}
}

// fileCursor writes the sequential part of a mapped-ram stream at its own position of an
// io.WriterAt; skipping leaves a block's pages region to the page writes.
type fileCursor struct {
	f   io.WriterAt
	pos uint64 // absolute file offset of the next sequential byte
}

func (c *fileCursor) Write(p []byte) (int, error) {
	n, err := c.f.WriteAt(p, int64(c.pos))
	c.pos += uint64(n)
	return n, err
}

// mappedBlockState is a block being written.
type mappedBlockState struct {
	name string
	size uint64
	MappedBlock
	bmap []uint64 // present pages
	crcs []uint32 // CRC32C of each present page as last written
}

// mappedWriter is the Writer's mapped-ram state.
type mappedWriter struct {
	f      io.WriterAt
	cur    *fileCursor
	blocks []mappedBlockState
	byName map[string]int

	// The pending run of contiguous pages: block run, from runOff, bytes in run.
	runBlock int
	runOff   uint64
	run      []byte
	bytes    uint64 // page and bitmap bytes written at fixed offsets
}

// NewMappedWriter returns a Writer of QEMU 9.0's mapped-ram layout into f, a seekable
// file whose stream starts at absolute offset base (file:PATH,offset=N). The sequential
// part of the stream is written with WriteAt at increasing offsets; RAMPage writes each
// page at its block's PagesOffset + offset (contiguous pages gathered into 1 MiB writes) and
// zero pages are only cleared from the bitmap, so repeated passes overwrite in place and
// the file stays bounded by the RAM size. Finish writes the bitmaps and the digest table.
func NewMappedWriter(f io.WriterAt, base uint64, machineType string) *Writer {
	c := &fileCursor{f: f, pos: base}
	w := NewWriter(c, machineType)
	w.mr = &mappedWriter{f: f, cur: c, run: make([]byte, 0, runMax), runBlock: -1}
	return w
}

// appendCaps appends the configuration's "configuration/capabilities" subsection (QEMU
// 9.0's vmstate_capabilites): 0x05, idstr, be32 version 1, be32 count, u8-length names.
func appendCaps(b []byte) []byte {
	b = append(b, secSubsection, byte(len(capsIDStr)))
	b = append(b, capsIDStr...)
	b = binary.BigEndian.AppendUint32(b, capsVersion)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = append(b, byte(len(CapMappedRAM)))
	return append(b, CapMappedRAM...)
}

// mappedSetup appends block bl's MappedRamHeader (the block's idstr and size were just
// appended), flushes and moves the cursor past the block's pages region.
func (w *Writer) mappedSetup(bl Block) {
	m := w.mr
	hdr := m.cur.pos + uint64(len(w.buf))
	lay := mappedLayout(hdr, bl.Size)
	b := binary.BigEndian.AppendUint32(w.buf, mappedHdrVersion)
	b = binary.BigEndian.AppendUint64(b, PageSize)
	b = binary.BigEndian.AppendUint64(b, lay.BitmapOffset)
	w.buf = binary.BigEndian.AppendUint64(b, lay.PagesOffset)
	w.flushBuf()
	m.cur.pos = lay.PagesOffset + bl.Size
	pages := bl.Size / PageSize
	if m.byName == nil {
		m.byName = map[string]int{}
	}
	m.byName[bl.Name] = len(m.blocks)
	m.blocks = append(m.blocks, mappedBlockState{name: bl.Name, size: bl.Size, MappedBlock: lay,
		bmap: make([]uint64, (pages+63)/64), crcs: make([]uint32, pages)})
}

// mappedPage records one page: a zero page (page nil or all zero) is cleared from the
// bitmap; any other is written at its fixed offset.
func (w *Writer) mappedPage(block string, offset uint64, page []byte) error {
	m := w.mr
	bi, ok := m.byName[block]
	if !ok {
		return w.usage("unknown RAM block %q", block)
	}
	b := &m.blocks[bi]
	if offset%PageSize != 0 || offset >= b.size {
		return w.usage("offset 0x%x outside RAM block %q of 0x%x bytes or not page aligned", offset, block, b.size)
	}
	p := offset / PageSize
	if page == nil || IsZero(page) {
		b.bmap[p/64] &^= 1 << (p % 64)
		w.zero++
		return nil
	}
	b.bmap[p/64] |= 1 << (p % 64)
	b.crcs[p] = crc32.Checksum(page, castagnoli)
	w.normal++
	if m.runBlock != bi || m.runOff+uint64(len(m.run)) != offset || len(m.run)+PageSize > cap(m.run) {
		if err := w.flushRun(); err != nil {
			return err
		}
		m.runBlock, m.runOff = bi, offset
	}
	m.run = append(m.run, page...)
	return nil
}

// flushRun writes the pending run of pages.
func (w *Writer) flushRun() error {
	m := w.mr
	if w.err != nil {
		return w.err
	}
	if len(m.run) == 0 {
		return nil
	}
	b := &m.blocks[m.runBlock]
	if _, err := m.f.WriteAt(m.run, int64(b.PagesOffset+m.runOff)); err != nil {
		w.err = err
		return err
	}
	m.bytes += uint64(len(m.run))
	m.run = m.run[:0]
	return nil
}

// mappedFinish writes the bitmaps at their offsets and returns the digest table.
func (w *Writer) mappedFinish() ([]byte, error) {
	m := w.mr
	if err := w.flushRun(); err != nil {
		return nil, err
	}
	var table []byte
	for i := range m.blocks {
		b := &m.blocks[i]
		bm := make([]byte, 0, len(b.bmap)*8)
		for _, word := range b.bmap {
			bm = binary.LittleEndian.AppendUint64(bm, word)
		}
		if _, err := m.f.WriteAt(bm, int64(b.BitmapOffset)); err != nil {
			w.err = err
			return nil, err
		}
		m.bytes += uint64(len(bm))
		table = binary.BigEndian.AppendUint32(table, crc32.Checksum(bm, castagnoli))
		for c := uint64(0); c*MappedChunk < b.size; c++ {
			table = binary.BigEndian.AppendUint32(table, chunkDigest(b.bmap, b.crcs, c, b.size/PageSize))
		}
	}
	return table, nil
}

// chunkDigest is the digest of chunk c: CRC32C over the be32 CRC32C of each page of the
// chunk in order, 0 for an absent page.
func chunkDigest(bmap []uint64, crcs []uint32, c, pages uint64) uint32 {
	var buf [chunkPages * 4]byte
	first := c * chunkPages
	n := min(pages-first, chunkPages)
	for i := uint64(0); i < n; i++ {
		p := first + i
		if bmap[p/64]&(1<<(p%64)) != 0 {
			binary.BigEndian.PutUint32(buf[i*4:], crcs[p])
		}
	}
	return crc32.Checksum(buf[:n*4], castagnoli)
}

// tableSize is the digest table's size for blocks.
func tableSize(blocks []Block) uint64 {
	var n uint64
	for _, b := range blocks {
		n += 4 + 4*((b.Size+MappedChunk-1)/MappedChunk)
	}
	return n
}

// configDesc is the vmdesc's "configuration" member for a mapped-ram stream (QEMU 9.0's
// vmstate_configuration with its capabilities subsection), so that the analyser decodes
// the configuration section and learns that the RAM section is mapped.
func configDesc(nameLen int) []byte {
	b := []byte(`{"vmsd_name": "configuration", "version": 1, "fields": [`)
	b = appendField(b, "len", "uint32", 4)
	b = append(b, ", "...)
	b = appendField(b, "name", "buffer", uint64(nameLen))
	b = append(b, `], "subsections": [{"vmsd_name": "`+capsIDStr+`", "version": 1, "fields": [`...)
	b = appendField(b, "caps_count", "uint32", 4)
	b = append(b, ", "...)
	b = appendField(b, "capabilities", "capability", 4)
	return append(b, "]}]}"...)
}
