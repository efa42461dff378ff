package chardev

import (
	"io"
	"sync"
)

// ring is QEMU's ringbuf chardev: output (the front end's, and RingbufWrite's) lands in a
// power-of-two ring that keeps the newest bytes; it gives its front end no input.
type ring struct {
	mu         sync.Mutex
	cond       *sync.Cond
	buf        []byte
	prod, cons uint64 // QEMU's producer/consumer counters (mu)
	closed     bool   // (mu)
}

func openRingbuf(c *Chardev) (backend, error) {
	size := c.spec.Size
	if size&(size-1) != 0 || size < 0 {
		return nil, newErr(ErrInvalid, "size of ringbuf chardev must be power of two")
	}
	r := &ring{buf: make([]byte, size)}
	r.cond = sync.NewCond(&r.mu)
	c.ring = r
	return newSingle(c, r, false, "ringbuf"), nil
}

// Write stores output, overwriting the oldest bytes (ringbuf_chr_write).
func (r *ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	size := uint64(len(r.buf))
	if size == 0 {
		return len(p), nil
	}
	for _, b := range p {
		r.buf[r.prod&(size-1)] = b
		r.prod++
		if r.prod-r.cons > size {
			r.cons = r.prod - size
		}
	}
	return len(p), nil
}

// Read blocks until the chardev closes: a ringbuf has no input.
func (r *ring) Read([]byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for !r.closed {
		r.cond.Wait()
	}
	return 0, io.EOF
}

func (r *ring) Close() error {
	r.mu.Lock()
	r.closed = true
	r.cond.Broadcast()
	r.mu.Unlock()
	return nil
}

// RingbufRead takes up to size bytes of output from a ringbuf chardev, oldest
// first (QMP ringbuf-read). Error: "ID is not a ringbuf device".
func (c *Chardev) RingbufRead(size int) ([]byte, error) {
	r := c.ring
	if r == nil {
		return nil, newErr(ErrInvalid, "%s is not a ringbuf device", c.spec.ID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.prod - r.cons
	if uint64(size) < n {
		n = uint64(size)
	}
	out := make([]byte, n)
	for i := range out {
		out[i] = r.buf[(r.cons+uint64(i))&uint64(len(r.buf)-1)]
	}
	r.cons += n
	return out, nil
}

// RingbufWrite stores p in the ring as output is stored (QMP ringbuf-write, which calls
// ringbuf_chr_write): ringbuf-read returns it.
func (c *Chardev) RingbufWrite(p []byte) error {
	r := c.ring
	if r == nil {
		return newErr(ErrInvalid, "%s is not a ringbuf device", c.spec.ID)
	}
	_, err := r.Write(p)
	return err
}
