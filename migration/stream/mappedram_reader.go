package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// mappedReader is the Reader's mapped-ram state.
type mappedReader struct {
	seek     io.Seeker // nil: the input cannot skip a pages region
	fileBase uint64    // absolute file offset of the stream's first byte
	skipped  uint64    // bytes of pages regions skipped so far
	on       bool      // the configuration lists mapped-ram
	blocks   []MappedBlock
	table    []byte // the tlcvm/mapped-ram digests, once read
}

// NewFileReader returns a Reader of a stream in a seekable file, f positioned at absolute
// offset base where the stream starts (file:PATH,offset=N). It reads QEMU's sequential
// streams as NewReader does and also mapped-ram ones: the pages regions are skipped by
// seeking, and ReadMapped reads them once the stream has been verified.
func NewFileReader(f io.ReadSeeker, base uint64) *Reader {
	r := NewReader(f)
	r.mr.seek, r.mr.fileBase = f, base
	return r
}

// Mapped reports whether the stream uses the mapped-ram layout (known after Config).
func (r *Reader) Mapped() bool { return r.mr.on }

// filePos is the absolute file offset of the next unconsumed byte.
func (r *Reader) filePos() uint64 { return r.mr.fileBase + r.Offset() + r.mr.skipped }

// capabilities reads the configuration's "configuration/capabilities" subsection.
func (r *Reader) capabilities() ([]string, error) {
	if _, err := r.u8(); err != nil { // secSubsection, peeked by the caller
		return nil, err
	}
	name, err := r.str("subsection name")
	if err != nil {
		return nil, err
	}
	if string(name) != capsIDStr {
		return nil, r.fail(ErrFormat, "unknown configuration subsection %q", name)
	}
	version, err := r.u32()
	if err != nil {
		return nil, err
	}
	if version != capsVersion {
		return nil, r.fail(ErrFormat, "configuration capabilities version %d, want %d", version, capsVersion)
	}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	if n > maxCaps {
		return nil, r.fail(ErrFormat, "%d capabilities (max %d)", n, maxCaps)
	}
	var caps []string
	for range n {
		c, err := r.str("capability")
		if err != nil {
			return nil, err
		}
		if string(c) != CapMappedRAM {
			return nil, r.fail(ErrFormat, "unsupported capability %q in the configuration", c)
		}
		caps = append(caps, string(c))
	}
	if len(caps) > 0 {
		if r.mr.seek == nil {
			return nil, r.fail(ErrFormat, "mapped-ram stream on a channel that cannot seek")
		}
		r.mr.on = true
	}
	return caps, nil
}

// mappedBlock reads the MappedRamHeader after a block's size, checks that it places the
// bitmap and pages exactly where QEMU would, and skips the pages region.
func (r *Reader) mappedBlock(size uint64) error {
	hdr := r.filePos()
	f, err := r.peek(mappedHdrSize)
	if err != nil {
		return err
	}
	version := binary.BigEndian.Uint32(f)
	pageSize := binary.BigEndian.Uint64(f[4:])
	got := MappedBlock{BitmapOffset: binary.BigEndian.Uint64(f[12:]), PagesOffset: binary.BigEndian.Uint64(f[20:])}
	switch want := mappedLayout(hdr, size); {
	case version != mappedHdrVersion:
		return r.fail(ErrFormat, "Migration mapped-ram capability version not supported (expected <= %d, got %d)", mappedHdrVersion, version)
	case pageSize != PageSize:
		return r.fail(ErrFormat, "Migration mapped-ram capability page size mismatch")
	case got != want:
		return r.fail(ErrFormat, "mapped-ram header: bitmap at 0x%x and pages at 0x%x, want 0x%x and 0x%x", got.BitmapOffset, got.PagesOffset, want.BitmapOffset, want.PagesOffset)
	}
	r.mr.blocks = append(r.mr.blocks, got)
	return r.skipTo(got.PagesOffset + size)
}

// skipTo drops the buffer and seeks the input to absolute file offset abs; the skipped
// bytes are not part of the stream (Offset, CRC).
func (r *Reader) skipTo(abs uint64) error {
	cur := r.filePos()
	if abs < cur || abs > 1<<62 {
		return r.fail(ErrFormat, "skip to 0x%x from 0x%x", abs, cur)
	}
	r.crc = crc32.Update(r.crc, castagnoli, r.buf[r.crcPos:r.r])
	r.base += uint64(r.r)
	r.r, r.w, r.crcPos = 0, 0, 0
	if _, err := r.mr.seek.Seek(int64(abs), io.SeekStart); err != nil {
		return err
	}
	r.mr.skipped += abs - cur
	return nil
}

// mappedTable reads the tlcvm/mapped-ram section: per block, the CRC32C of its bitmap and
// the CRC32C of each page (0 for an absent page). Its exact size follows from the RAM
// blocks, so a lying length is refused before anything is allocated.
func (r *Reader) mappedTable(id, instance, version uint32) error {
	if !r.mr.on || r.ram == ramNone || r.mr.table != nil {
		return r.fail(ErrFormat, "unexpected %s section", MappedTableIDStr)
	}
	if instance != 0 || version != mappedTableVersion {
		return r.fail(ErrFormat, "%s instance %d version %d, want 0 and %d", MappedTableIDStr, instance, version, mappedTableVersion)
	}
	want := tableSize(r.blocks)
	if want > 1<<32-1 {
		return r.fail(ErrFormat, "%s of %d bytes does not fit a section", MappedTableIDStr, want)
	}
	rec, err := r.device(id, instance, version, uint32(want))
	if err != nil {
		return err
	}
	if uint64(len(rec.State)) != want {
		return r.fail(ErrFormat, "%s of %d bytes, want %d", MappedTableIDStr, len(rec.State), want)
	}
	r.mr.table = rec.State
	return nil
}

// MappedData is one RAM block of a verified mapped-ram checkpoint: where its pages are,
// which are present and the CRC32C each present page must have.
type MappedData struct {
	Name string
	Size uint64
	MappedBlock
	Bitmap []uint64 // bit p of word p/64: page p is present
	crcs   []byte   // be32 CRC32C of each page (0 for absent ones), the table's own bytes
}

// CRC is the recorded CRC32C of page p (0 for an absent page).
func (d *MappedData) CRC(p uint64) uint32 { return binary.BigEndian.Uint32(d.crcs[p*4:]) }

// Present reports whether page p is in the file.
func (d *MappedData) Present(p uint64) bool { return d.Bitmap[p/64]&(1<<(p%64)) != 0 }

// Check verifies the present pages among the pages of mem, the block's memory from page
// first on (a whole number of pages): each must have its recorded CRC32C. The error wraps
// ErrIntegrity and names the first bad page.
func (d *MappedData) Check(first uint64, mem []byte) error {
	n := uint64(len(mem)) / PageSize
	if first > d.Size/PageSize || n > d.Size/PageSize-first {
		return fmt.Errorf("%w: pages 0x%x+%d outside RAM block %q", ErrUsage, first, n, d.Name)
	}
	for k := range n {
		p := first + k
		if !d.Present(p) {
			continue
		}
		if got, want := crc32.Checksum(mem[k*PageSize:(k+1)*PageSize], castagnoli), d.CRC(p); got != want {
			return fmt.Errorf("%w: RAM block %q page at 0x%x: CRC32C 0x%08x, 0x%08x recorded", ErrIntegrity, d.Name, p*PageSize, got, want)
		}
	}
	return nil
}

// MappedData reads block i of a verified mapped-ram stream (Next has returned End) from f,
// the same file: its bitmap, checked against the digest table, and the page digests. Pages
// are not read: Check verifies them where they are (in a mapping, or as ReadMapped reads).
func (r *Reader) MappedData(f io.ReaderAt, i int) (*MappedData, error) {
	if r.state != rDone || !r.mr.on || i < 0 || i >= len(r.blocks) {
		return nil, fmt.Errorf("%w: MappedData(%d) before the stream's end or without mapped-ram", ErrUsage, i)
	}
	b, mb := r.blocks[i], r.mr.blocks[i]
	table := r.mr.table
	for _, prev := range r.blocks[:i] {
		table = table[4+4*(prev.Size/PageSize):]
	}
	pages := b.Size / PageSize
	raw := make([]byte, BitmapSize(pages))
	if err := readAt(f, raw, mb.BitmapOffset, "bitmap of "+b.Name); err != nil {
		return nil, err
	}
	if got, want := crc32.Checksum(raw, castagnoli), binary.BigEndian.Uint32(table); got != want {
		return nil, fmt.Errorf("%w: bitmap of RAM block %q: CRC32C 0x%08x, 0x%08x recorded", ErrIntegrity, b.Name, got, want)
	}
	table = table[4:]
	d := &MappedData{Name: b.Name, Size: b.Size, MappedBlock: mb,
		Bitmap: make([]uint64, len(raw)/8), crcs: table[:4*pages]}
	for w := range d.Bitmap {
		d.Bitmap[w] = binary.LittleEndian.Uint64(raw[w*8:])
	}
	if pages%64 != 0 && d.Bitmap[len(d.Bitmap)-1]>>(pages%64) != 0 {
		return nil, fmt.Errorf("%w: bitmap of RAM block %q has bits past its %d pages", ErrFormat, b.Name, pages)
	}
	return d, nil
}

// ReadMapped reads block i of a verified mapped-ram stream from f (the same file): its
// bitmap, checked against the digest table, then chunk by chunk (MappedChunk bytes of RAM)
// the present pages, each checked against its CRC32C before fn sees any page of the chunk.
// fn is called for every page of the block in order, with the page's data (valid during
// the call) or nil for a page absent from the file (zero). Errors wrap ErrIntegrity (a
// digest differs), ErrTruncated (the file ends inside a pages region or bitmap) or
// ErrFormat.
func (r *Reader) ReadMapped(f io.ReaderAt, i int, fn func(page uint64, data []byte)) error {
	d, err := r.MappedData(f, i)
	if err != nil {
		return err
	}
	pages := d.Size / PageSize
	buf := make([]byte, MappedChunk)
	for first := uint64(0); first < pages; first += chunkPages {
		n := min(pages-first, chunkPages)
		lo, hi := n, uint64(0)
		for k := range n {
			if d.Present(first + k) {
				lo, hi = min(lo, k), k+1
			}
		}
		if lo < hi {
			span := buf[lo*PageSize : hi*PageSize]
			if err := readAt(f, span, d.PagesOffset+(first+lo)*PageSize, "pages of "+d.Name); err != nil {
				return err
			}
			if err := d.Check(first+lo, span); err != nil {
				return err
			}
		}
		for k := range n {
			if d.Present(first + k) {
				fn(first+k, buf[k*PageSize:(k+1)*PageSize])
			} else {
				fn(first+k, nil)
			}
		}
	}
	return nil
}

// readAt fills p from f at off; a short file is ErrTruncated.
func readAt(f io.ReaderAt, p []byte, off uint64, what string) error {
	if off > 1<<62 {
		return fmt.Errorf("%w: %s at 0x%x", ErrFormat, what, off)
	}
	n, err := f.ReadAt(p, int64(off))
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s at 0x%x: file ends %d bytes short", ErrTruncated, what, off, len(p)-n)
	}
	return err
}
