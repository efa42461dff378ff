package dump

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"

	"github.com/golang/snappy"
)

// The page part of a kdump file (write_dump_pages): a descriptor per dumpable page, then
// the data. Pages are compressed by worker goroutines a batch at a time while this
// goroutine walks the memory and writes finished batches in order, so reading, compressing
// and writing overlap; what is written, and its order, is what one thread would write.

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

// addRepeat adds n copies of item (n·len(item) bytes of rep, which holds copies of item
// and is a multiple of it in length), as n calls of add would.
func (c *dataCache) addRepeat(rep []byte, item int, n uint64) {
	for n > 0 {
		room := uint64((dataCacheSize - len(c.buf)) / item)
		if room == 0 {
			c.sync()
			continue
		}
		k := min(n, room, uint64(len(rep)/item))
		c.buf = append(c.buf, rep[:k*uint64(item)]...)
		n -= k
	}
}

func (c *dataCache) sync() {
	if len(c.buf) > 0 {
		c.f.record(c.offset, c.buf)
		c.offset += uint64(len(c.buf))
		c.buf = c.buf[:0]
	}
}

// nextWritten is the block offset of the first page at or after off, before end, that
// was written; end when none.
func nextWritten(mem Memory, off, end uint64) uint64 {
	if f, ok := mem.(WrittenFinder); ok {
		return f.NextWritten(off, end)
	}
	for ; off < end; off += PageSize {
		if mem.Written(off) {
			return off
		}
	}
	return end
}

// writePages is write_dump_pages: a page descriptor per dumpable page, the page data
// after them; every zero page (never written, or written with zeros) shares the first
// data page; a page that does not shrink when compressed is stored as it is (flags 0).
// The VM is stopped meanwhile, as in QEMU.
func (l *kdumpLayout) writePages(f flatWriter, m *Machine, num uint64, p *progress) error {
	offDesc := l.offsetPage
	offData := offDesc + pageDescSize*num
	desc := &dataCache{f: f, buf: make([]byte, 0, dataCacheSize), offset: offDesc}
	data := &dataCache{f: f, buf: make([]byte, 0, dataCacheSize), offset: offData}
	le := binary.LittleEndian
	pd := func(d []byte, off uint64, size, flags uint32) {
		le.PutUint64(d[0:], off)
		le.PutUint32(d[8:], size)
		le.PutUint32(d[12:], flags)
		clear(d[16:pageDescSize])
	}
	zeros := make([]byte, dataCacheSize/pageDescSize*pageDescSize) // the zero page's descriptors
	for i := 0; i < len(zeros); i += pageDescSize {
		pd(zeros[i:], offData, PageSize, 0)
	}
	data.add(zeroPage[:])
	offData += PageSize

	var d [pageDescSize]byte
	write := func(bt *pageBatch) {
		for _, e := range bt.order {
			if e < 0 {
				desc.addRepeat(zeros, pageDescSize, uint64(-e))
				continue
			}
			out, flag := bt.result(int(e))
			data.add(out)
			pd(d[:], offData, uint32(len(out)), flag)
			desc.add(d[:])
			offData += uint64(len(out))
		}
		p.add(bt.pages * PageSize)
	}
	pl := newPipeline(l, runtime.GOMAXPROCS(0), write)
	defer pl.stop()
	bt := pl.next()
	for i := range m.Blocks {
		b := &m.Blocks[i]
		for off := uint64(0); off < b.Size; {
			if f.o.err != nil {
				return fmt.Errorf("dump: failed to write page data: %w", f.o.err)
			}
			next := b.Size
			if b.Mem != nil {
				next = nextWritten(b.Mem, off, b.Size)
			}
			if next > off {
				bt.zeros((next - off) / PageSize)
				off = next
				continue
			}
			page := bt.nextPage()
			if err := b.Mem.ReadAt(page, off); err != nil {
				return fmt.Errorf("dump: failed to write page data: %w", err)
			}
			if bytes.Equal(page, zeroPage[:]) {
				bt.zeros(1)
			} else {
				bt.addPage()
			}
			off += PageSize
			if bt.full() {
				pl.submit(bt)
				bt = pl.next()
			}
		}
	}
	pl.submit(bt)
	pl.drain()
	desc.sync()
	data.sync()
	if f.o.err != nil {
		return fmt.Errorf("dump: failed to write page data: %w", f.o.err)
	}
	return nil
}

// batchPages is how many non-zero pages a batch holds: a worker's unit (~0.3 ms).
const batchPages = 64

// pageBatch is a run of dumpable pages in pfn order: runs of zero pages and up to
// batchPages pages to compress, and once compressed, what is written for each.
type pageBatch struct {
	order []int64 // in pfn order: -n, a run of n zero pages; i >= 0, page i of in
	pages uint64  // dumpable pages the batch covers
	n     int     // pages held
	in    []byte  // batchPages pages
	out   []byte  // batchPages slots of PageSize: the compressed page
	size  []int   // bytes in out's slot
	flags []uint32
	done  chan struct{}
}

func newPageBatch() *pageBatch {
	return &pageBatch{order: make([]int64, 0, 2*batchPages+1), in: make([]byte, batchPages*PageSize),
		out: make([]byte, batchPages*PageSize), size: make([]int, batchPages), flags: make([]uint32, batchPages),
		done: make(chan struct{}, 1)}
}

func (bt *pageBatch) reset() { bt.order, bt.pages, bt.n = bt.order[:0], 0, 0 }

// zeros adds a run of n zero pages.
func (bt *pageBatch) zeros(n uint64) {
	if n == 0 {
		return
	}
	bt.pages += n
	if k := len(bt.order); k > 0 && bt.order[k-1] < 0 {
		bt.order[k-1] -= int64(n)
		return
	}
	bt.order = append(bt.order, -int64(n))
}

// nextPage is the buffer of the next page; addPage keeps it.
func (bt *pageBatch) nextPage() []byte { return bt.in[bt.n*PageSize : (bt.n+1)*PageSize] }

func (bt *pageBatch) addPage() {
	bt.order = append(bt.order, int64(bt.n))
	bt.n++
	bt.pages++
}

func (bt *pageBatch) full() bool { return bt.n == batchPages }

// result is what is written for page i: its compressed form and the method, or the page
// itself and 0.
func (bt *pageBatch) result(i int) ([]byte, uint32) {
	if bt.flags[i] == 0 {
		return bt.in[i*PageSize : (i+1)*PageSize], 0
	}
	return bt.out[i*PageSize : i*PageSize+bt.size[i]], bt.flags[i]
}

// pipeline hands batches to the workers and writes them back in order.
type pipeline struct {
	work   chan *pageBatch
	queue  []*pageBatch // submitted, oldest first
	free   []*pageBatch
	write  func(*pageBatch)
	exited chan struct{}
	nw     int
}

func newPipeline(l *kdumpLayout, workers int, write func(*pageBatch)) *pipeline {
	workers = max(1, workers)
	pl := &pipeline{work: make(chan *pageBatch, 2*workers), write: write, exited: make(chan struct{}, workers), nw: workers}
	for range 2*workers + 1 {
		pl.free = append(pl.free, newPageBatch())
	}
	for range workers {
		go func() {
			c := newPageCompressor(l.flagsCompress)
			for bt := range pl.work {
				for i := 0; i < bt.n; i++ {
					page := bt.in[i*PageSize : (i+1)*PageSize]
					out := c.compress(page)
					if out == nil {
						bt.flags[i] = 0
						continue
					}
					bt.size[i], bt.flags[i] = copy(bt.out[i*PageSize:(i+1)*PageSize], out), l.flagsCompress
				}
				bt.done <- struct{}{}
			}
			pl.exited <- struct{}{}
		}()
	}
	return pl
}

// next is an empty batch: a free one, else the oldest submitted once written.
func (pl *pipeline) next() *pageBatch {
	if k := len(pl.free); k > 0 {
		bt := pl.free[k-1]
		pl.free = pl.free[:k-1]
		bt.reset()
		return bt
	}
	bt := pl.writeOldest()
	bt.reset()
	return bt
}

func (pl *pipeline) writeOldest() *pageBatch {
	bt := pl.queue[0]
	pl.queue = pl.queue[1:]
	<-bt.done
	pl.write(bt)
	return bt
}

func (pl *pipeline) submit(bt *pageBatch) {
	pl.queue = append(pl.queue, bt)
	pl.work <- bt
}

// drain writes every submitted batch.
func (pl *pipeline) drain() {
	for len(pl.queue) > 0 {
		pl.free = append(pl.free, pl.writeOldest())
	}
}

// stop ends the workers once they are done with what was submitted.
func (pl *pipeline) stop() {
	close(pl.work)
	for range pl.nw {
		<-pl.exited
	}
}

// pageCompressor is one worker's compression state for one method.
type pageCompressor struct {
	method uint32
	z      deflater
	buf    []byte
}

func newPageCompressor(method uint32) *pageCompressor {
	return &pageCompressor{method: method, buf: make([]byte, max(snappy.MaxEncodedLen(PageSize), lzoMaxOut))}
}

// compress returns page compressed, or nil when that does not shrink it.
func (c *pageCompressor) compress(page []byte) []byte {
	var out []byte
	switch c.method {
	case dhCompressZlib:
		return c.z.zlibPage(page)
	case dhCompressLZO:
		out = lzoAppend(c.buf[:0], page)
	case dhCompressSnap:
		out = snappy.Encode(c.buf, page)
	}
	if len(out) >= len(page) {
		return nil
	}
	return out
}
