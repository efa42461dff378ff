package dump

import (
	"io"
	"sync/atomic"
)

// output writes a dump, buffered. skip moves forward without writing: over a seekable
// file it seeks (never-written guest RAM becomes a hole in a sparse file); over a pipe or
// a socket it writes zeros.
type output struct {
	w       io.Writer
	seeker  io.Seeker // nil: not seekable
	buf     []byte
	off     uint64 // bytes written or skipped so far
	pending uint64 // bytes skipped but not yet sought over
	err     error
}

const outBuf = 1 << 20

func newOutput(w io.Writer) *output {
	o := &output{w: w, buf: make([]byte, 0, outBuf)}
	if s, ok := w.(io.Seeker); ok {
		// A descriptor handed over by libvirt may be a pipe: probe before relying on it.
		if _, err := s.Seek(0, io.SeekCurrent); err == nil {
			o.seeker = s
		}
	}
	return o
}

func (o *output) write(p []byte) {
	if o.err != nil {
		return
	}
	o.seekPending()
	o.off += uint64(len(p))
	for len(p) > 0 && o.err == nil {
		n := copy(o.buf[len(o.buf):cap(o.buf)], p)
		o.buf = o.buf[:len(o.buf)+n]
		p = p[n:]
		if len(o.buf) == cap(o.buf) {
			o.flush()
		}
	}
}

var zeroPage [PageSize]byte

// skip advances n bytes that read as zero.
func (o *output) skip(n uint64) {
	if o.err != nil || n == 0 {
		return
	}
	if o.seeker == nil {
		for n > 0 && o.err == nil {
			k := min(n, PageSize)
			o.write(zeroPage[:k])
			n -= k
		}
		return
	}
	o.off += n
	o.pending += n
}

func (o *output) seekPending() {
	if o.pending == 0 || o.err != nil {
		return
	}
	o.flush()
	if o.err != nil {
		return
	}
	if _, err := o.seeker.Seek(int64(o.pending), io.SeekCurrent); err != nil {
		o.err = err
	}
	o.pending = 0
}

func (o *output) flush() {
	if o.err != nil || len(o.buf) == 0 {
		o.buf = o.buf[:0]
		return
	}
	if _, err := o.w.Write(o.buf); err != nil {
		o.err = err
	}
	o.buf = o.buf[:0]
}

// finish flushes; a file that ends in a hole gets its length from one zero byte written
// at the end (the ELF writer never ends in a hole: the section string table comes last).
func (o *output) finish() error {
	if o.pending > 0 && o.err == nil {
		o.pending--
		o.seekPending()
		o.write([]byte{0})
		o.off-- // counted once by skip already
	}
	o.flush()
	return o.err
}

// progress is QEMU's DumpState written_size: bytes of guest memory written so far,
// read by query-dump from another goroutine.
type progress struct{ n atomic.Int64 }

func (p *progress) add(n uint64) {
	if p != nil {
		p.n.Add(int64(n))
	}
}
