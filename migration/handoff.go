package migration

import (
	"io"

	"tlcvm/migration/stream"
)

// handoffWriter lets the checkpoint thread encode the next stream buffer while the
// previous one is being sent: the stream writer hands it each full buffer
// (stream.Handoff) and gets the other one back, and a goroutine of its own writes the
// handed-off buffer to w (the rate limit, the transport, the socket's system call). Two
// buffers, no copy; at most one write in flight, so the stream's order is kept.
//
// Everything below it (w, and what w writes to) is used by the goroutine while a write is
// in flight and by the checkpoint thread otherwise: the thread calls idle before it
// touches them (a flush, a change of rate or channel). Write and Flush wait for the
// write in flight first. Not safe for concurrent use by several callers.
//
//	checkpoint thread:  encode A │ encode B          │ encode A          │ …
//	handoff goroutine:           │ write A (syscall) │ write B (syscall) │ …
type handoffWriter struct {
	w        io.Writer
	reqs     chan []byte
	done     chan error
	inflight []byte // the buffer being written, nil when idle
	spare    []byte // the buffer to give back next
	err      error  // sticky: a write failed
}

var _ stream.Handoff = (*handoffWriter)(nil)

func newHandoffWriter(w io.Writer) *handoffWriter {
	h := &handoffWriter{w: w, reqs: make(chan []byte), done: make(chan error)}
	go func() {
		for p := range h.reqs {
			n, err := h.w.Write(p)
			if err == nil && n != len(p) {
				err = io.ErrShortWrite
			}
			h.done <- err
		}
	}()
	return h
}

// idle waits for the write in flight and returns the first error a write met.
func (h *handoffWriter) idle() error {
	if h.inflight != nil {
		if err := <-h.done; err != nil && h.err == nil {
			h.err = err
		}
		h.spare, h.inflight = h.inflight, nil
	}
	return h.err
}

// Handoff starts writing p and returns the other buffer.
func (h *handoffWriter) Handoff(p []byte) ([]byte, error) {
	if err := h.idle(); err != nil {
		return nil, err
	}
	next := h.spare
	if next == nil {
		next = make([]byte, 0, cap(p))
	}
	h.spare, h.inflight = nil, p
	h.reqs <- p
	return next[:0], nil
}

// Write writes p itself, once the write in flight is done.
func (h *handoffWriter) Write(p []byte) (int, error) {
	if err := h.idle(); err != nil {
		return 0, err
	}
	n, err := h.w.Write(p)
	if err != nil {
		h.err = err
	}
	return n, err
}

// Flush waits for the write in flight, then flushes w when it can.
func (h *handoffWriter) Flush() error {
	if err := h.idle(); err != nil {
		return err
	}
	if f, ok := h.w.(interface{ Flush() error }); ok {
		if err := f.Flush(); err != nil {
			h.err = err
		}
	}
	return h.err
}

// close ends the goroutine after the write in flight (its error is dropped: the stream
// is over, or failed already).
func (h *handoffWriter) close() {
	_ = h.idle()
	close(h.reqs)
}
