package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// ErrTimeout is wrapped when a wait gives up. Timeouts here only stop a hung
// test; they are generous and never assert on how long something took.
var ErrTimeout = errors.New("harness: timed out")

// ErrClosed is wrapped when a stream ended before what was awaited arrived.
var ErrClosed = errors.New("harness: stream closed")

// Stream collects everything a reader produces (a child's stdout or stderr)
// and lets a test wait for a marker in it. It is safe for concurrent use.
type Stream struct {
	mu   sync.Mutex
	cond *sync.Cond
	buf  []byte // everything read so far; guarded by mu
	off  int    // start of the unconsumed part; guarded by mu
	err  error  // set once the reader ends; guarded by mu
	done chan struct{}
}

// NewStream starts copying r into a new Stream.
func NewStream(r io.Reader) *Stream {
	s := &Stream{done: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	go s.pump(r)
	return s
}

func (s *Stream) pump(r io.Reader) {
	defer close(s.done)
	b := make([]byte, 32<<10)
	for {
		n, err := r.Read(b)
		s.mu.Lock()
		s.buf = append(s.buf, b[:n]...)
		if err != nil {
			s.err = err
		}
		s.cond.Broadcast()
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Done is closed when the underlying reader has ended.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Bytes returns a copy of everything read so far.
func (s *Stream) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.buf)
}

// ReadUntil waits until marker appears in the unconsumed data and returns
// (and consumes) the data up to and including it.
func (s *Stream) ReadUntil(marker []byte, timeout time.Duration) ([]byte, error) {
	stop := time.AfterFunc(timeout, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop.Stop()
	deadline := time.Now().Add(timeout)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if i := bytes.Index(s.buf[s.off:], marker); i >= 0 {
			out := bytes.Clone(s.buf[s.off : s.off+i+len(marker)])
			s.off += i + len(marker)
			return out, nil
		}
		if s.err != nil {
			rest := bytes.Clone(s.buf[s.off:])
			s.off = len(s.buf)
			return rest, fmt.Errorf("%w waiting for %q", ErrClosed, marker)
		}
		if !time.Now().Before(deadline) {
			return bytes.Clone(s.buf[s.off:]), fmt.Errorf("%w waiting for %q", ErrTimeout, marker)
		}
		s.cond.Wait()
	}
}

// ReadAll waits for the end of the stream and returns (and consumes) the
// rest of the data.
func (s *Stream) ReadAll(timeout time.Duration) ([]byte, error) {
	select {
	case <-s.done:
	case <-time.After(timeout):
		s.mu.Lock()
		defer s.mu.Unlock()
		return bytes.Clone(s.buf[s.off:]), fmt.Errorf("%w waiting for end of stream", ErrTimeout)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := bytes.Clone(s.buf[s.off:])
	s.off = len(s.buf)
	return out, nil
}
