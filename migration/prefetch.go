package migration

import (
	"io"
	"sync"

	"tlcvm/migration/stream"
)

// prefetchSize is a prefetchReader's buffer: the headroom, then up to 1 MiB of stream.
const prefetchSize = stream.RefillHeadroom + 1<<20

// prefetchReader reads an incoming channel ahead on a goroutine of its own, so that the
// next system call's copy overlaps the loader's decoding and copying of what came before.
// It hands whole buffers to the stream reader (stream.Refiller: no copy); each read goes
// out as soon as it returns, so a small message (a command the destination must answer) is
// never held back. The first error ends the goroutine, after the data before it; stop ends
// it early (a loader that gives up), without waiting for a read in progress.
//
//	goroutine:   read A │ read B │ (waits for a free buffer) │ read A …
//	loader:             │ decode A        │ decode B         │ …
type prefetchReader struct {
	full     chan prefetched // read, in order
	free     chan []byte     // given back, for reuse
	stopCh   chan struct{}
	stopOnce sync.Once

	// Used by the loader's goroutine only.
	cur []byte // Read's: the unread part of buf
	buf []byte // the buffer cur is in
	err error  // sticky: the input's error, once reached
}

type prefetched struct {
	buf []byte // data in buf[stream.RefillHeadroom:]
	err error
}

var _ stream.Refiller = (*prefetchReader)(nil)

func newPrefetchReader(r io.Reader) *prefetchReader {
	p := &prefetchReader{full: make(chan prefetched, 2), free: make(chan []byte, 4), stopCh: make(chan struct{})}
	go p.run(r)
	return p
}

func (p *prefetchReader) run(r io.Reader) {
	for {
		var b []byte
		select {
		case b = <-p.free:
		default:
			b = make([]byte, prefetchSize)
		}
		n, err := r.Read(b[stream.RefillHeadroom:prefetchSize])
		if n > 0 && !p.send(prefetched{buf: b[:stream.RefillHeadroom+n]}) {
			return
		}
		if err != nil {
			p.send(prefetched{err: err})
			return
		}
	}
}

// send queues x; false when stopped.
func (p *prefetchReader) send(x prefetched) bool {
	select {
	case p.full <- x:
		return true
	case <-p.stopCh:
		return false
	}
}

// next takes the next buffer read, or the input's error.
func (p *prefetchReader) next() ([]byte, error) {
	if p.err != nil {
		return nil, p.err
	}
	x := <-p.full
	if x.err != nil {
		p.err = x.err
		return nil, x.err
	}
	return x.buf, nil
}

// give puts a buffer back for reuse (one of ours only; dropped when enough are waiting).
func (p *prefetchReader) give(b []byte) {
	if cap(b) != prefetchSize {
		return
	}
	select {
	case p.free <- b[:prefetchSize]:
	default:
	}
}

// Refill returns the next data in a buffer of its own: what Read left of the current one
// first, else the next buffer read.
func (p *prefetchReader) Refill(done []byte) ([]byte, error) {
	p.give(done)
	if len(p.cur) > 0 {
		// cur starts at least RefillHeadroom into buf: the bytes before it are read.
		off := len(p.buf) - len(p.cur)
		b := p.buf[off-stream.RefillHeadroom:]
		p.cur, p.buf = nil, nil
		return b, nil
	}
	if p.buf != nil {
		p.give(p.buf)
		p.buf = nil
	}
	return p.next()
}

// Read copies the next data into b.
func (p *prefetchReader) Read(b []byte) (int, error) {
	if len(p.cur) == 0 {
		if p.buf != nil {
			p.give(p.buf)
			p.buf = nil
		}
		buf, err := p.next()
		if err != nil {
			return 0, err
		}
		p.buf, p.cur = buf, buf[stream.RefillHeadroom:]
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// stop ends the goroutine (now, or once its read in progress returns).
func (p *prefetchReader) stop() { p.stopOnce.Do(func() { close(p.stopCh) }) }
