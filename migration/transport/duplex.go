package transport

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// Channels in both directions and more than one channel per migration:
//
//	return path   a socket carries the destination's messages back to the source on
//	              the same connection (ReturnPath on the source, Reply on the destination);
//	              a pipe, a file or a command cannot (ErrNoReturnPath)
//	multifd       the source connects to the same tcp:/unix: address again per channel
//	              (Open); the destination's source sorts what it accepts by the first
//	              four bytes: "QEVM" is the main channel (Accept), 0x11223344 a multifd
//	              channel (AcceptChannel), until the main channel and Expect(n) channels
//	              have come, then stops listening

// ErrNoReturnPath: the channel is not a socket, so no return path can be opened on it.
var ErrNoReturnPath = errors.New("migration channel has no return path")

// Magics of the first four bytes of a connection.
const (
	fileMagic    = 0x5145564d // "QEVM"
	multifdMagic = 0x11223344
)

// ReturnPath returns a reader of what the destination sends back on w's channel (w from
// Open, once Connected). Reads fail with QEMU's "Unable to read from socket: …"; the
// reader does not own the channel (Close is a no-op: w's Close or Abort ends both ways).
func ReturnPath(w io.Writer) (io.ReadCloser, error) {
	ow, ok := w.(*writer)
	if !ok {
		return nil, newError("Unable to open return-path for postcopy", ErrNoReturnPath, nil)
	}
	if err := ow.wait(); err != nil {
		return nil, err
	}
	ow.mu.Lock()
	raw, kind := ow.raw, ow.kind
	ow.mu.Unlock()
	rd, ok := raw.(io.Reader)
	if kind != "socket" || !ok {
		return nil, newError("Unable to open return-path for postcopy", ErrNoReturnPath, nil)
	}
	return &rpReader{r: rd, aborted: ow.aborted.Load}, nil
}

type rpReader struct {
	r       io.Reader
	aborted func() bool
}

func (r *rpReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return n, err
	case r.aborted():
		return n, newError("Unable to read from socket: Operation canceled", ErrAborted, syscall.ECANCELED)
	}
	return n, withErrno("Unable to read from socket", ErrRead, err)
}

func (r *rpReader) Close() error { return nil }

// Reply returns a writer to the source on r's channel (r from Accept or AcceptChannel):
// the return path. Writes are not buffered; they fail with QEMU's "Unable to write to
// socket: …". The writer does not own the channel.
func Reply(r io.Reader) (io.Writer, error) {
	rd, ok := r.(*reader)
	if !ok || rd.kind != "socket" {
		return nil, newError("Unable to open return-path for postcopy", ErrNoReturnPath, nil)
	}
	w, ok := rd.raw.(io.Writer)
	if !ok {
		return nil, newError("Unable to open return-path for postcopy", ErrNoReturnPath, nil)
	}
	return &rpWriter{w: w, rd: rd}, nil
}

type rpWriter struct {
	w  io.Writer
	rd *reader
}

func (w *rpWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		if w.rd.aborted.Load() {
			return n, newError("Unable to write to socket: Operation canceled", ErrAborted, syscall.ECANCELED)
		}
		return n, withErrno("Unable to write to socket", ErrWrite, err)
	}
	return n, nil
}

// Expect tells an incoming tcp:/unix: source that n multifd channels will come besides
// the main channel (call before Accept): connections are then sorted by their first four
// bytes. Without it the first connection is the main channel and the listener closes.
func Expect(s Source, n int) {
	if src, ok := s.(*source); ok {
		src.mu.Lock()
		src.channels = n
		src.mu.Unlock()
	}
}

// AcceptChannel blocks until the next multifd channel of s has connected (Expect) and
// hands it over, positioned at its init packet.
func AcceptChannel(s Source) (io.ReadCloser, error) {
	src, ok := s.(*source)
	if !ok || (src.addr.Scheme != SchemeTCP && src.addr.Scheme != SchemeUnix) {
		return nil, newError("multifd is not supported by current protocol", ErrUnsupported, nil)
	}
	src.startSorting()
	select {
	case c := <-src.extra:
		return c.r, c.err
	case <-src.closed:
		return nil, newError("Unable to accept connection: Operation canceled", ErrAborted, syscall.ECANCELED)
	}
}

// sorted is one connection the sorter classified.
type sorted struct {
	r   io.ReadCloser
	err error
}

// startSorting starts (once) the loop that accepts the main channel and the multifd
// channels of a source that expects some.
func (s *source) startSorting() {
	s.sortOnce.Do(func() {
		s.main = make(chan sorted, 1)
		s.extra = make(chan sorted, 256)
		go s.sort()
	})
}

// sort accepts connections until the main channel and every expected multifd channel
// have come (or the source is closed), and sorts them by their magic, each on its own
// goroutine so that a connection whose first bytes are late holds up no other.
func (s *source) sort() {
	s.mu.Lock()
	ln, want := s.ln, s.channels
	s.mu.Unlock()
	defer func() {
		ln.Close() //nolint:errcheck // done listening
		s.mu.Lock()
		s.ln = nil
		s.mu.Unlock()
	}()
	kinds := make(chan bool, 16) // per connection classified: main (true) or multifd
	gotMain, got := false, 0
	accepted := make(chan net.Conn)
	acceptErr := make(chan error, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			select {
			case accepted <- c:
			case <-done:
				c.Close() //nolint:errcheck // after the last expected channel
				return
			}
		}
	}()
	for !gotMain || got < want {
		select {
		case c := <-accepted:
			go func() { kinds <- s.classify(c) }()
		case isMain := <-kinds:
			if isMain {
				gotMain = true
			} else {
				got++
			}
		case err := <-acceptErr:
			select {
			case <-s.closed:
				err = newError("Unable to accept connection: Operation canceled", ErrAborted, syscall.ECANCELED)
			default:
				err = withErrno("Unable to accept connection", ErrConnect, err)
			}
			if !gotMain {
				s.main <- sorted{err: err}
			}
			s.extra <- sorted{err: err}
			return
		}
	}
}

// classify peeks at the first four bytes of c and hands it over as the main channel
// (true) or a multifd channel. A connection that says nothing for sortWait is taken as
// the main channel (QEMU's main channel speaks first once connected) unless the main
// channel is already there: then it is a multifd channel.
func (s *source) classify(c net.Conn) bool {
	r := newReader(c, "socket", nil, s.log)
	multifd := make(chan bool, 1)
	go func() {
		head, err := r.br.Peek(4)
		multifd <- err == nil && binary.BigEndian.Uint32(head) == multifdMagic
	}()
	select {
	case m := <-multifd:
		if m {
			s.extra <- sorted{r: r}
			return false
		}
	case <-time.After(sortWait):
	}
	s.mainOnce.Do(func() {
		s.log.Debug().Str("uri", s.uri).Str("peer", c.RemoteAddr().String()).Msg("migration connection accepted")
		s.main <- sorted{r: r}
		r = nil
	})
	if r != nil {
		// The main channel is taken: only multifd channels come after it. One whose first
		// bytes were late (a busy host) is handed over all the same; its init packet's
		// check says what it is. Closing it lost a channel and hung the load.
		s.extra <- sorted{r: r}
		return false
	}
	return true
}

// sortWait bounds the wait for a connection's first bytes while sorting.
const sortWait = 5 * time.Second

// Flush pushes what w (from Open) has buffered to its channel without closing it: a
// source with a return path keeps the channel open until the destination's SHUT.
func Flush(w io.Writer) error {
	ow, ok := w.(*writer)
	if !ok {
		return nil
	}
	ow.ioMu.Lock()
	defer ow.ioMu.Unlock()
	if ow.closed {
		return withErrno("Unable to write to "+ow.kindOr(), ErrWrite, os.ErrClosed)
	}
	if err := ow.wait(); err != nil {
		return err
	}
	if err := ow.bw.Flush(); err != nil {
		return ow.writeErr(err)
	}
	return nil
}
