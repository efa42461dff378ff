package dump

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"

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
		if len(c.buf) == 0 && k == room {
			// a whole record of copies: written from rep, as the cache would have
			c.f.record(c.offset, rep[:k*uint64(item)])
			c.offset += k * uint64(item)
		} else {
			c.buf = append(c.buf, rep[:k*uint64(item)]...)
		}
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
	write := func(bt *pageBatch) error {
		if bt.err != nil {
			return fmt.Errorf("dump: failed to write page data: %w", bt.err)
		}
		for _, e := range bt.order {
			if e < 0 {
				desc.addRepeat(zeros, pageDescSize, uint64(-e))
				continue
			}
			out, flag, zero := bt.result(int(e))
			if zero {
				desc.add(zeros[:pageDescSize])
				continue
			}
			data.add(out)
			pd(d[:], offData, uint32(len(out)), flag)
			desc.add(d[:])
			offData += uint64(len(out))
		}
		p.add(bt.pages * PageSize)
		if f.o.err != nil {
			return fmt.Errorf("dump: failed to write page data: %w", f.o.err)
		}
		return nil
	}
	// a worker per CPU the process may use (the machine raises GOMAXPROCS above that)
	pl := newPipeline(l, min(runtime.GOMAXPROCS(0), runtime.NumCPU()), write)
	defer pl.stop()
	bt := pl.next()
	for i := range m.Blocks {
		b := &m.Blocks[i]
		for off := uint64(0); off < b.Size; {
			next := b.Size
			if b.Mem != nil {
				next = nextWritten(b.Mem, off, b.Size)
			}
			if next > off {
				bt.zeros((next - off) / PageSize)
				off = next
				continue
			}
			bt.addPage(b.Mem, off)
			off += PageSize
			if bt.full() {
				if bt = pl.submit(bt); bt == nil {
					return pl.err
				}
			}
		}
	}
	pl.submit(bt)
	if err := pl.drain(); err != nil {
		return err
	}
	desc.sync()
	data.sync()
	if f.o.err != nil {
		return fmt.Errorf("dump: failed to write page data: %w", f.o.err)
	}
	return nil
}

// batchPages is how many non-zero pages a batch holds: a worker's unit (~0.3 ms).
const batchPages = 64

// pageBatch is a run of dumpable pages in pfn order: runs of never-written pages and up to
// batchPages written pages, which a worker reads, tests for zeros and compresses.
type pageBatch struct {
	order []int64 // in pfn order: -n, a run of n zero pages; i >= 0, page i
	pages uint64  // dumpable pages the batch covers
	n     int     // written pages held
	mem   []Memory
	off   []uint64
	in    []byte // batchPages pages as read
	out   []byte // batchPages slots of PageSize: the compressed page
	size  []int  // bytes in out's slot
	flags []uint32
	err   error // the first read that failed
	done  chan struct{}
}

// flagZero marks a written page that reads as zeros: it gets the zero page's descriptor.
const flagZero = ^uint32(0)

func newPageBatch() *pageBatch {
	return &pageBatch{order: make([]int64, 0, 2*batchPages+1), mem: make([]Memory, batchPages), off: make([]uint64, batchPages),
		in: make([]byte, batchPages*PageSize), out: make([]byte, batchPages*PageSize), size: make([]int, batchPages),
		flags: make([]uint32, batchPages), done: make(chan struct{}, 1)}
}

func (bt *pageBatch) reset() { bt.order, bt.pages, bt.n, bt.err = bt.order[:0], 0, 0, nil }

// zeros adds a run of n never-written pages.
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

// addPage adds the written page at off of mem.
func (bt *pageBatch) addPage(mem Memory, off uint64) {
	bt.order = append(bt.order, int64(bt.n))
	bt.mem[bt.n], bt.off[bt.n] = mem, off
	bt.n++
	bt.pages++
}

func (bt *pageBatch) full() bool { return bt.n == batchPages }

// process is a worker's part: read, test and compress every page (stops at a failed read).
// Consecutive pages of a block are read with one ReadAt (one lock of the machine's RAM,
// not one a page).
func (bt *pageBatch) process(c *pageCompressor) {
	for i := 0; i < bt.n; {
		j := i + 1
		for j < bt.n && bt.mem[j] == bt.mem[i] && bt.off[j] == bt.off[i]+uint64(j-i)*PageSize {
			j++
		}
		if err := bt.mem[i].ReadAt(bt.in[i*PageSize:j*PageSize], bt.off[i]); err != nil {
			bt.err = err
			return
		}
		i = j
	}
	for i := 0; i < bt.n; i++ {
		page := bt.in[i*PageSize : (i+1)*PageSize]
		if bytes.Equal(page, zeroPage[:]) {
			bt.flags[i] = flagZero
			continue
		}
		out := c.compress(page)
		if out == nil {
			bt.flags[i] = 0
			continue
		}
		bt.size[i], bt.flags[i] = copy(bt.out[i*PageSize:(i+1)*PageSize], out), c.method
	}
}

// result is what is written for page i: its compressed form and the method, the page
// itself and 0, or zero: the page reads as zeros.
func (bt *pageBatch) result(i int) (out []byte, flag uint32, zero bool) {
	switch bt.flags[i] {
	case flagZero:
		return nil, 0, true
	case 0:
		return bt.in[i*PageSize : (i+1)*PageSize], 0, false
	}
	return bt.out[i*PageSize : i*PageSize+bt.size[i]], bt.flags[i], false
}

// pipeline hands batches to the workers and writes them back in order.
type pipeline struct {
	work   chan *pageBatch
	queue  []*pageBatch // submitted, oldest first
	free   []*pageBatch
	write  func(*pageBatch) error
	err    error // the first write's error: nothing more is written
	exited chan struct{}
	nw     int
}

func newPipeline(l *kdumpLayout, workers int, write func(*pageBatch) error) *pipeline {
	workers = max(1, workers)
	pl := &pipeline{work: make(chan *pageBatch, 2*workers+1), write: write, exited: make(chan struct{}, workers), nw: workers}
	for range 2*workers + 1 {
		bt, _ := batchPool.Get().(*pageBatch)
		if bt == nil {
			bt = newPageBatch()
		}
		pl.free = append(pl.free, bt)
	}
	for range workers {
		go func() {
			c := newPageCompressor(l.flagsCompress)
			for bt := range pl.work {
				bt.process(c)
				bt.done <- struct{}{}
			}
			pl.exited <- struct{}{}
		}()
	}
	return pl
}

// next is an empty batch: a free one, else the oldest submitted once written; nil once a
// write failed (pl.err).
func (pl *pipeline) next() *pageBatch {
	k := len(pl.free)
	if k == 0 {
		if !pl.writeOldest() {
			return nil
		}
		k = len(pl.free)
	}
	bt := pl.free[k-1]
	pl.free = pl.free[:k-1]
	bt.reset()
	return bt
}

// writeOldest waits for the oldest batch submitted and writes it.
func (pl *pipeline) writeOldest() bool {
	bt := pl.queue[0]
	pl.queue = pl.queue[1:]
	<-bt.done
	if pl.err == nil {
		pl.err = pl.write(bt)
	}
	pl.free = append(pl.free, bt)
	return pl.err == nil
}

// submit hands bt to the workers and returns the next batch to fill (nil: pl.err).
func (pl *pipeline) submit(bt *pageBatch) *pageBatch {
	pl.queue = append(pl.queue, bt)
	pl.work <- bt
	return pl.next()
}

// drain writes every submitted batch.
func (pl *pipeline) drain() error {
	for len(pl.queue) > 0 {
		pl.writeOldest()
	}
	return pl.err
}

// stop ends the workers once they are done with what was submitted; the batches go back
// to batchPool.
func (pl *pipeline) stop() {
	close(pl.work)
	for range pl.nw {
		<-pl.exited
	}
	for _, bt := range pl.queue {
		<-bt.done
		pl.free = append(pl.free, bt)
	}
	for _, bt := range pl.free {
		batchPool.Put(bt)
	}
}

// batchPool keeps the batches (3 MiB with two workers) from one dump to the next.
var batchPool sync.Pool

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
