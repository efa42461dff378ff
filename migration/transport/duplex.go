package transport

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
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

// Expect tells an incoming tcp:/unix: source that multifd channels will come besides the
// main channel (call before Accept): connections are then sorted by their first four
// bytes. n gives their number when the first connection arrives, as QEMU reads
// multifd-channels then (a migrate-set-parameters after migrate-incoming counts); Channels
// says what it was. Without Expect the first connection is the main channel and the
// listener closes.
func Expect(s Source, n func() int) {
	if src, ok := s.(*source); ok {
		src.mu.Lock()
		src.channelsFn = n
		src.mu.Unlock()
	}
}

// Channels is the number of multifd channels s sorts (Expect), fixed when its first
// connection arrived; 0 before that or without Expect.
func Channels(s Source) int {
	src, ok := s.(*source)
	if !ok {
		return 0
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	return src.channels
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
	ln, wantFn := s.ln, s.channelsFn
	s.mu.Unlock()
	want := -1 // read at the first connection
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
			if want < 0 {
				want = wantFn()
				s.mu.Lock()
				s.channels = want
				s.mu.Unlock()
			}
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
// (true) or a multifd channel: 0x11223344 is a multifd channel, anything else the main
// channel unless the main channel is already there (then its init packet's check says what
// it is). It waits for those bytes however late they come (a busy host), but never hands c
// over while the peek still reads it: a reader shared by the peek and the load lost bytes
// to one or the other, and the load hung (TestMultifd). Closing the source ends the wait.
func (s *source) classify(c net.Conn) bool {
	r := newReader(c, "socket", nil, s.log)
	multifd := make(chan bool, 1)
	go func() {
		head, err := r.br.Peek(4)
		multifd <- err == nil && binary.BigEndian.Uint32(head) == multifdMagic
	}()
	var m bool
	select {
	case m = <-multifd:
	case <-s.closed:
		c.Close() //nolint:errcheck // the migration is over; the peek returns
		<-multifd
		return false
	}
	if m {
		s.extra <- sorted{r: r}
		return false
	}
	isMain := false
	s.mainOnce.Do(func() {
		s.log.Debug().Str("uri", s.uri).Str("peer", c.RemoteAddr().String()).Msg("migration connection accepted")
		s.main <- sorted{r: r}
		isMain = true
	})
	if !isMain {
		s.extra <- sorted{r: r}
	}
	return isMain
}

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
