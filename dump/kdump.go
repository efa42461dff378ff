package dump

import (
	"encoding/binary"
	"fmt"

	"tlcvm/compat/qerror"
)

// The kdump-compressed format (makedumpfile's diskdump), in the flattened form QEMU 7.2
// always writes: a 4 KiB makedumpfile header, then (offset, size, data) records, each
// putting data at an offset of the rearranged file, ending with offset = size = -1.
// `makedumpfile -R` rearranges it into the standard file drawn in doc.go.

const (
	flatHeaderSize = 4096
	dhCompressZlib = 0x1
	dhCompressLZO  = 0x2
	dhCompressSnap = 0x4
	kdumpDumpLevel = 1
	dhSize64       = 464 // DiskDumpHeader64
	dhSize32       = 452 // DiskDumpHeader32
	khSize64       = 104 // KdumpSubHeader64
	khSize32       = 80  // KdumpSubHeader32
	pageDescSize   = 24
	dataCacheSize  = 4 * PageSize
)

// kdumpLayout is what dump_init and create_header compute for the kdump format.
type kdumpLayout struct {
	class64       bool
	noteSize      uint64
	maxMapnr      uint64
	lenBitmap     uint64
	subHdrBlocks  uint64
	bitmapBlocks  uint64
	offsetBitmap  uint64
	offsetPage    uint64
	total         uint64
	flagsCompress uint32
	cpus          int
}

func newKdumpLayout(m *Machine, flag uint32) kdumpLayout {
	_, class64 := arch(m)
	l := kdumpLayout{class64: class64, flagsCompress: flag, total: m.totalSize(filter{}), cpus: len(m.CPUs)}
	l.noteSize = uint64(notesSize(len(m.CPUs) > 0 && m.CPUs[0].LMA(), len(m.CPUs)))
	if n := len(m.Blocks); n > 0 {
		l.maxMapnr = m.Blocks[n-1].End() / PageSize
	}
	l.lenBitmap = (l.maxMapnr + 7) / 8
	l.lenBitmap = (l.lenBitmap + PageSize - 1) / PageSize * PageSize
	kh := uint64(khSize32)
	if class64 {
		kh = khSize64
	}
	l.subHdrBlocks = (kh + l.noteSize + PageSize - 1) / PageSize
	l.bitmapBlocks = (l.lenBitmap + PageSize - 1) / PageSize * 2
	l.offsetBitmap = (1 + l.subHdrBlocks) * PageSize
	l.offsetPage = (1 + l.subHdrBlocks + l.bitmapBlocks) * PageSize
	return l
}

// flatWriter writes makedumpfile flattened records.
type flatWriter struct{ o *output }

func (f flatWriter) record(offset uint64, data []byte) {
	var h [16]byte
	binary.BigEndian.PutUint64(h[0:], offset)
	binary.BigEndian.PutUint64(h[8:], uint64(len(data)))
	f.o.write(h[:])
	f.o.write(data)
}

// writeKdump is create_kdump_vmcore.
func writeKdump(o *output, m *Machine, l *kdumpLayout, p *progress) error {
	for _, b := range m.Blocks {
		if b.Start%PageSize != 0 || b.Size%PageSize != 0 {
			return fmt.Errorf("dump: block %s at 0x%x is not page aligned", b.Name, b.Start)
		}
	}
	f := flatWriter{o}
	mh := make([]byte, flatHeaderSize)
	copy(mh, "makedumpfile\x00")
	binary.BigEndian.PutUint64(mh[16:], 1) // TYPE_FLAT_HEADER
	binary.BigEndian.PutUint64(mh[24:], 1) // VERSION_FLAT_HEADER
	o.write(mh)
	if o.flush(); o.err != nil {
		return qerror.New(ErrDump, "dump: failed to write start flat header")
	}

	dh, kh := l.headers()
	f.record(0, dh)
	f.record(PageSize, kh)
	offNote := PageSize + uint64(len(kh))
	f.record(offNote, appendNotes(nil, m.CPUs))

	num := l.writeBitmaps(f, m)
	if err := l.writePages(f, m, num, p); err != nil {
		return err
	}
	var end [16]byte
	for i := range end {
		end[i] = 0xff // END_FLAG_FLAT_HEADER, offset and size
	}
	o.write(end[:])
	return o.finish()
}

// headers builds disk_dump_header and kdump_sub_header (create_header64/32).
func (l *kdumpLayout) headers() (dh, kh []byte) {
	le := binary.LittleEndian
	if l.class64 {
		dh = make([]byte, dhSize64)
	} else {
		dh = make([]byte, dhSize32)
	}
	copy(dh, "KDUMP   ")
	le.PutUint32(dh[8:], 6)      // header_version
	copy(dh[12+65*4:], "x86_64") // utsname.machine (ELF_MACHINE_UNAME)
	st := 12 + 390 + 10          // after the timestamp (10 bytes in the 32-bit header)
	if l.class64 {
		st = 12 + 390 + 22
	}
	le.PutUint32(dh[st:], l.flagsCompress)
	le.PutUint32(dh[st+4:], PageSize)
	le.PutUint32(dh[st+8:], uint32(l.subHdrBlocks))
	le.PutUint32(dh[st+12:], uint32(l.bitmapBlocks))
	le.PutUint32(dh[st+16:], uint32(min(l.maxMapnr, 0xffffffff)))
	le.PutUint32(dh[st+36:], uint32(l.cpus))

	offNote := uint64(PageSize)
	if l.class64 {
		kh = make([]byte, khSize64)
		offNote += khSize64
		// phys_base 0, dump_level, split 0, start/end_pfn 0, no vmcoreinfo
		le.PutUint32(kh[8:], kdumpDumpLevel)
		le.PutUint64(kh[48:], offNote)
		le.PutUint64(kh[56:], l.noteSize)
		le.PutUint64(kh[96:], l.maxMapnr)
		return dh, kh
	}
	kh = make([]byte, khSize32)
	offNote += khSize32
	le.PutUint32(kh[4:], kdumpDumpLevel)
	le.PutUint64(kh[32:], offNote)
	le.PutUint32(kh[40:], uint32(l.noteSize))
	le.PutUint64(kh[72:], l.maxMapnr)
	return dh, kh
}

// writeBitmaps is write_dump_bitmap: both bitmaps (identical at dump level 1), written
// one page-sized buffer at a time, each buffer twice, from the first up to the one
// holding the last dumpable pfn (buffers between blocks too). It returns the number of
// dumpable pages: every page of every block (QEMU 7.2 sets the bit of a zero page as
// well, and describes it by the shared zero page).
func (l *kdumpLayout) writeBitmaps(f flatWriter, m *Machine) uint64 {
	buf := make([]byte, PageSize)
	const bitsPerBuf = PageSize * 8
	var num, last uint64 // last: the last pfn set
	// flushTo writes the buffers before the one of pfn, from the one of last.
	flushTo := func(pfn uint64) {
		for old := last / bitsPerBuf * PageSize; old < pfn/bitsPerBuf*PageSize; old += PageSize {
			f.record(l.offsetBitmap+old, buf)
			f.record(l.offsetBitmap+l.lenBitmap+old, buf)
			clear(buf)
		}
	}
	for _, b := range m.Blocks {
		for a, end := b.Start/PageSize, b.End()/PageSize; a < end; {
			flushTo(a)
			e := min(end, (a/bitsPerBuf+1)*bitsPerBuf)
			setBits(buf, a%bitsPerBuf, e-a)
			num += e - a
			last, a = e-1, e
		}
	}
	if num > 0 {
		flushTo(last + bitsPerBuf)
	}
	return num
}

// setBits sets n bits of buf from bit i (LSB first in each byte).
func setBits(buf []byte, i, n uint64) {
	for ; n > 0 && i%8 != 0; i, n = i+1, n-1 {
		buf[i/8] |= 1 << (i % 8)
	}
	for ; n >= 8; i, n = i+8, n-8 {
		buf[i/8] = 0xff
	}
	for ; n > 0; i, n = i+1, n-1 {
		buf[i/8] |= 1 << (i % 8)
	}
}
