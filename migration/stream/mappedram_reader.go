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
// one digest per MappedChunk of RAM (see chunkDigest).
func (r *Reader) mappedTable(id, instance, version uint32) error {
	if !r.mr.on || r.ram == ramNone || r.mr.table != nil {
		return r.fail(ErrFormat, "unexpected %s section", MappedTableIDStr)
	}
	if instance != 0 || version != mappedTableVersion {
		return r.fail(ErrFormat, "%s instance %d version %d, want 0 and %d", MappedTableIDStr, instance, version, mappedTableVersion)
	}
	rec, err := r.device(id, instance, version)
	if err != nil {
		return err
	}
	if want := tableSize(r.blocks); uint64(len(rec.State)) != want {
		return r.fail(ErrFormat, "%s of %d bytes, want %d", MappedTableIDStr, len(rec.State), want)
	}
	r.mr.table = rec.State
	return nil
}

// ReadMapped reads block i of a verified mapped-ram stream from f (the same file): its
// bitmap, checked against the digest table, then chunk by chunk (MappedChunk bytes of RAM)
// the present pages, each chunk checked against its digest before fn sees any of it. fn
// is called for every page of the block in order, with the page's data (valid during the
// call) or nil for a page absent from the file (zero). Errors wrap ErrIntegrity (a digest
// differs), ErrTruncated (the file ends inside a pages region or bitmap) or ErrFormat.
func (r *Reader) ReadMapped(f io.ReaderAt, i int, fn func(page uint64, data []byte)) error {
	if r.state != rDone || !r.mr.on || i < 0 || i >= len(r.blocks) {
		return fmt.Errorf("%w: ReadMapped(%d) before the stream's end or without mapped-ram", ErrUsage, i)
	}
	b, mb := r.blocks[i], r.mr.blocks[i]
	table := r.mr.table
	for _, prev := range r.blocks[:i] {
		table = table[4+4*((prev.Size+MappedChunk-1)/MappedChunk):]
	}
	pages := b.Size / PageSize
	raw := make([]byte, BitmapSize(pages))
	if err := readAt(f, raw, mb.BitmapOffset, "bitmap of "+b.Name); err != nil {
		return err
	}
	if got, want := crc32.Checksum(raw, castagnoli), binary.BigEndian.Uint32(table); got != want {
		return fmt.Errorf("%w: bitmap of RAM block %q: CRC32C 0x%08x, 0x%08x recorded", ErrIntegrity, b.Name, got, want)
	}
	table = table[4:]
	bmap := make([]uint64, len(raw)/8)
	for w := range bmap {
		bmap[w] = binary.LittleEndian.Uint64(raw[w*8:])
	}
	if pages%64 != 0 && bmap[len(bmap)-1]>>(pages%64) != 0 {
		return fmt.Errorf("%w: bitmap of RAM block %q has bits past its %d pages", ErrFormat, b.Name, pages)
	}
	present := func(p uint64) bool { return bmap[p/64]&(1<<(p%64)) != 0 }
	buf := make([]byte, MappedChunk)
	for c := uint64(0); c*chunkPages < pages; c++ {
		first := c * chunkPages
		n := min(pages-first, chunkPages)
		lo, hi := n, uint64(0)
		for k := range n {
			if present(first + k) {
				lo, hi = min(lo, k), k+1
			}
		}
		var digest [chunkPages * 4]byte
		if lo < hi {
			span := buf[lo*PageSize : hi*PageSize]
			if err := readAt(f, span, mb.PagesOffset+(first+lo)*PageSize, "pages of "+b.Name); err != nil {
				return err
			}
			for k := lo; k < hi; k++ {
				if present(first + k) {
					binary.BigEndian.PutUint32(digest[k*4:], crc32.Checksum(buf[k*PageSize:(k+1)*PageSize], castagnoli))
				}
			}
		}
		if got, want := crc32.Checksum(digest[:n*4], castagnoli), binary.BigEndian.Uint32(table[c*4:]); got != want {
			return fmt.Errorf("%w: RAM block %q at 0x%x: chunk digest 0x%08x, 0x%08x recorded", ErrIntegrity, b.Name, first*PageSize, got, want)
		}
		for k := range n {
			if present(first + k) {
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
