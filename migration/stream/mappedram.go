package stream

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"sync"
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
	mappedTableVersion = 2
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
	prev     map[string]*MappedData

	// Page writers (SetWriters > 1): runs go to them through jobs; their buffers come
	// back through free. A pass (a PART or the END section) ends with every run written
	// (drain), so two writes of one page never overlap.
	jobs    chan runJob
	free    chan []byte
	pending sync.WaitGroup // runs handed out and not yet written
	workers sync.WaitGroup
	errMu   sync.Mutex
	werr    error
}

type runJob struct {
	buf []byte
	off int64
}

// SetWriters makes a mapped-ram Writer write its runs of pages with n goroutines at their
// own offsets (QEMU's multifd channels with mapped-ram); n <= 1 writes them on the
// caller's goroutine. Call it before Begin; Close stops the goroutines. The underlying
// WriterAt must allow concurrent writes at different offsets (an *os.File does).
func (w *Writer) SetWriters(n int) {
	m := w.mr
	if m == nil || n <= 1 || m.jobs != nil {
		return
	}
	m.jobs = make(chan runJob, n)
	m.free = make(chan []byte, 2*n)
	for range 2 * n {
		m.free <- make([]byte, 0, runMax)
	}
	for range n {
		m.workers.Add(1)
		go m.writeRuns()
	}
}

func (m *mappedWriter) writeRuns() {
	defer m.workers.Done()
	for j := range m.jobs {
		if m.failed() == nil {
			if _, err := m.f.WriteAt(j.buf, j.off); err != nil {
				m.errMu.Lock()
				if m.werr == nil {
					m.werr = err
				}
				m.errMu.Unlock()
			}
		}
		m.free <- j.buf[:0]
		m.pending.Done()
	}
}

func (m *mappedWriter) failed() error {
	m.errMu.Lock()
	defer m.errMu.Unlock()
	return m.werr
}

// drain waits until every run handed to the page writers is written.
func (w *Writer) drain() error {
	m := w.mr
	if m.jobs == nil {
		return w.err
	}
	m.pending.Wait()
	if err := m.failed(); err != nil && w.err == nil {
		w.err = err
	}
	return w.err
}

// Close stops the page writers (SetWriters), waiting for the runs handed out. Idempotent;
// a Writer without them has nothing to stop.
func (w *Writer) Close() {
	m := w.mr
	if m == nil || m.jobs == nil {
		return
	}
	close(m.jobs)
	m.workers.Wait()
	m.jobs = nil
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

// NewMappedWriterFrom is NewMappedWriter for an incremental checkpoint: the blocks named in
// prev (the previous checkpoint of the same file, read by Reader.MappedData) start with its
// bitmap and page digests, so only the pages given to RAMPage are written; the others keep
// their place and digest. f is normally a Journal over the file, so that the new checkpoint
// replaces the old one atomically.
func NewMappedWriterFrom(f io.WriterAt, base uint64, machineType string, prev []*MappedData) *Writer {
	w := NewMappedWriter(f, base, machineType)
	w.mr.prev = map[string]*MappedData{}
	for _, d := range prev {
		w.mr.prev[d.Name] = d
	}
	return w
}

// FileEnd is the absolute file offset just past the last byte written (after Finish: the
// checkpoint's end; a sequential Writer: its stream length).
func (w *Writer) FileEnd() uint64 {
	if w.mr != nil {
		return w.mr.cur.pos + uint64(len(w.buf))
	}
	return w.streamBytes()
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
	st := mappedBlockState{name: bl.Name, size: bl.Size, MappedBlock: lay,
		bmap: make([]uint64, (pages+63)/64), crcs: make([]uint32, pages)}
	if d := m.prev[bl.Name]; d != nil && d.Size == bl.Size && d.MappedBlock == lay {
		copy(st.bmap, d.Bitmap)
		for p := range st.crcs {
			st.crcs[p] = d.CRC(uint64(p))
		}
	}
	m.blocks = append(m.blocks, st)
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
		w.zero++
		if b.bmap[p/64]&(1<<(p%64)) == 0 {
			return nil
		}
		// The page's place held data: zero it, so that an absent page always reads as
		// zero in the file (restore by mapping relies on it).
		b.bmap[p/64] &^= 1 << (p % 64)
		b.crcs[p] = 0
		page = zeroPage[:]
	} else {
		b.bmap[p/64] |= 1 << (p % 64)
		b.crcs[p] = crc32.Checksum(page, castagnoli)
		w.normal++
	}
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
	off := int64(b.PagesOffset + m.runOff)
	m.bytes += uint64(len(m.run))
	if m.jobs != nil {
		if err := m.failed(); err != nil {
			w.err = err
			return err
		}
		m.pending.Add(1)
		m.jobs <- runJob{buf: m.run, off: off}
		m.run = <-m.free
		return nil
	}
	if _, err := m.f.WriteAt(m.run, off); err != nil {
		w.err = err
		return err
	}
	m.run = m.run[:0]
	return nil
}

// mappedFinish writes the bitmaps at their offsets and returns the digest table.
func (w *Writer) mappedFinish() ([]byte, error) {
	m := w.mr
	if err := w.flushRun(); err != nil {
		return nil, err
	}
	if err := w.drain(); err != nil {
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
		for p, c := range b.crcs {
			if b.bmap[p/64]&(1<<(p%64)) == 0 {
				c = 0
			}
			table = binary.BigEndian.AppendUint32(table, c)
		}
	}
	return table, nil
}

// tableSize is the digest table's size for blocks: per block the bitmap's CRC32C and one
// CRC32C per page.
func tableSize(blocks []Block) uint64 {
	var n uint64
	for _, b := range blocks {
		n += 4 + 4*(b.Size/PageSize)
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
