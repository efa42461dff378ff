package dump

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zlib"

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

// pfns calls fn for every page of every block, in order (get_next_page over
// page-aligned blocks).
func pfns(m *Machine, fn func(b *Block, off uint64) bool) {
	for i := range m.Blocks {
		b := &m.Blocks[i]
		for off := uint64(0); off < b.Size; off += PageSize {
			if !fn(b, off) {
				return
			}
		}
	}
}

// writeBitmaps is write_dump_bitmap: both bitmaps (identical at dump level 1), written
// one page-sized buffer at a time, each buffer twice, from the first up to the one
// holding the last dumpable pfn. It returns the number of dumpable pages.
func (l *kdumpLayout) writeBitmaps(f flatWriter, m *Machine) uint64 {
	buf := make([]byte, PageSize)
	const bitsPerBuf = PageSize * 8
	var num, last uint64
	set := func(pfn uint64, v bool) {
		for old := last / bitsPerBuf * PageSize; old < pfn/bitsPerBuf*PageSize; old += PageSize {
			f.record(l.offsetBitmap+old, buf)
			f.record(l.offsetBitmap+l.lenBitmap+old, buf)
			clear(buf)
		}
		byteIdx, bit := (pfn%bitsPerBuf)/8, (pfn%bitsPerBuf)%8
		if v {
			buf[byteIdx] |= 1 << bit
		} else {
			buf[byteIdx] &^= 1 << bit
		}
	}
	pfns(m, func(b *Block, off uint64) bool {
		pfn := (b.Start + off) / PageSize
		set(pfn, true)
		last = pfn
		num++
		return true
	})
	if num > 0 {
		set(last+bitsPerBuf, false)
	}
	return num
}

// dataCache is QEMU's DataCache: records of up to 16 KiB.
type dataCache struct {
	f      flatWriter
	buf    []byte
	offset uint64
}

func (c *dataCache) add(p []byte) {
	if len(c.buf)+len(p) > dataCacheSize {
		c.sync()
	}
	c.buf = append(c.buf, p...)
}

func (c *dataCache) sync() {
	if len(c.buf) > 0 {
		c.f.record(c.offset, c.buf)
		c.offset += uint64(len(c.buf))
		c.buf = c.buf[:0]
	}
}

// writePages is write_dump_pages: a page descriptor per dumpable page, the page data
// after them; every zero page shares the first data page; a page that does not shrink
// when compressed is stored as it is (flags 0). Pages are compressed a batch at a time on
// every core (the VM is stopped meanwhile, as in QEMU); what is written, and its order,
// is what one thread would write.
func (l *kdumpLayout) writePages(f flatWriter, m *Machine, num uint64, p *progress) error {
	offDesc := l.offsetPage
	offData := offDesc + pageDescSize*num
	desc := &dataCache{f: f, buf: make([]byte, 0, dataCacheSize), offset: offDesc}
	data := &dataCache{f: f, buf: make([]byte, 0, dataCacheSize), offset: offData}
	le := binary.LittleEndian
	pd := func(off uint64, size, flags uint32) []byte {
		var d [pageDescSize]byte
		le.PutUint64(d[0:], off)
		le.PutUint32(d[8:], size)
		le.PutUint32(d[12:], flags)
		return d[:]
	}
	zero := pd(offData, PageSize, 0)
	data.add(zeroPage[:])
	offData += PageSize
	bt := newPageBatch(l, runtime.GOMAXPROCS(0))
	// order is the descriptors of the batch in pfn order: -1 a zero page, else the index of
	// a page in the batch.
	order := make([]int32, 0, 4*batchPages)
	flush := func() {
		bt.compress()
		for _, i := range order {
			if i < 0 {
				desc.add(zero)
				continue
			}
			out, flag := bt.result(int(i))
			data.add(out)
			desc.add(pd(offData, uint32(len(out)), flag))
			offData += uint64(len(out))
		}
		order, bt.n = order[:0], 0
	}
	var err error
	pfns(m, func(b *Block, off uint64) bool {
		p.add(PageSize)
		if b.Mem == nil || !b.Mem.Written(off) {
			order = append(order, -1)
		} else {
			page := bt.next()
			if err = b.Mem.ReadAt(page, off); err != nil {
				err = fmt.Errorf("dump: failed to write page data: %w", err)
				return false
			}
			if bytes.Equal(page, zeroPage[:]) {
				order = append(order, -1)
			} else {
				order = append(order, int32(bt.n))
				bt.n++
			}
		}
		if bt.n == batchPages || len(order) == cap(order) {
			flush()
		}
		return f.o.err == nil
	})
	if err != nil {
		return err
	}
	flush()
	desc.sync()
	data.sync()
	if f.o.err != nil {
		return fmt.Errorf("dump: failed to write page data: %w", f.o.err)
	}
	return nil
}

// batchPages is how many non-zero pages writePages compresses at once.
const batchPages = 256

// pageBatch holds up to batchPages pages and, once compressed, what is written for each.
type pageBatch struct {
	l     *kdumpLayout
	n     int    // pages held
	in    []byte // batchPages pages
	out   []byte // batchPages slots of PageSize: the compressed page
	size  []int  // bytes in out's slot; 0: stored as it is
	flags []uint32
	ws    []pageCompressor // one per worker
}

// pageCompressor is one worker's compression state.
type pageCompressor struct {
	zw   *zlib.Writer
	zbuf bytes.Buffer
}

func newPageBatch(l *kdumpLayout, workers int) *pageBatch {
	bt := &pageBatch{l: l, in: make([]byte, batchPages*PageSize), out: make([]byte, batchPages*PageSize),
		size: make([]int, batchPages), flags: make([]uint32, batchPages), ws: make([]pageCompressor, max(1, workers))}
	for i := range bt.ws {
		bt.ws[i].zw, _ = zlib.NewWriterLevel(&bt.ws[i].zbuf, zlib.BestSpeed)
	}
	return bt
}

// next returns the buffer of the next page to add (counted by the caller, bt.n++).
func (bt *pageBatch) next() []byte { return bt.in[bt.n*PageSize : (bt.n+1)*PageSize] }

// compress compresses the batch's pages, worker w taking pages w, w+workers, …
func (bt *pageBatch) compress() {
	workers := min(len(bt.ws), bt.n)
	if workers <= 1 {
		for i := 0; i < bt.n; i++ {
			bt.compressPage(&bt.ws[0], i)
		}
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(c *pageCompressor) {
			defer wg.Done()
			for i := w; i < bt.n; i += workers {
				bt.compressPage(c, i)
			}
		}(&bt.ws[w])
	}
	wg.Wait()
}

func (bt *pageBatch) compressPage(c *pageCompressor, i int) {
	out, flag := bt.l.compress(bt.in[i*PageSize:(i+1)*PageSize], c.zw, &c.zbuf)
	bt.size[i], bt.flags[i] = copy(bt.out[i*PageSize:(i+1)*PageSize], out), flag
}

// result is what is written for page i: its compressed form and the method, or the page
// itself and 0.
func (bt *pageBatch) result(i int) ([]byte, uint32) {
	if bt.flags[i] == 0 {
		return bt.in[i*PageSize : (i+1)*PageSize], 0
	}
	return bt.out[i*PageSize : i*PageSize+bt.size[i]], bt.flags[i]
}

// compress compresses a page with the layout's method; flag 0 when it does not shrink.
func (l *kdumpLayout) compress(page []byte, zw *zlib.Writer, zbuf *bytes.Buffer) ([]byte, uint32) {
	var out []byte
	switch l.flagsCompress {
	case dhCompressZlib:
		zbuf.Reset()
		zw.Reset(zbuf)
		_, _ = zw.Write(page)
		_ = zw.Close()
		out = zbuf.Bytes()
	case dhCompressLZO:
		out = lzoCompress(page)
	case dhCompressSnap:
		out = snappy.Encode(nil, page)
	}
	if len(out) >= len(page) {
		return nil, 0
	}
	return out, l.flagsCompress
}
