package transport

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/rs/zerolog"
)

// Source is an incoming migration channel being prepared.
type Source interface {
	// Accept blocks until the stream is available and hands it over (once): a tcp:/unix:
	// connection accepted (the listener is closed then), or the exec'd command's output,
	// the fd, the file, opened by Listen. The reader is buffered; Read returns io.EOF at
	// the end, or for exec: the command's failure (ErrCommand) when it exited non-zero.
	Accept() (io.ReadCloser, error)
	// Close releases what Accept has not handed over; it makes a blocked Accept return
	// ErrAborted.
	Close() error
	// URI is the URI listened on, with the port bound for "tcp:…:0".
	URI() string
}

// Listen parses an incoming URI and prepares its source at once, as QEMU's
// qemu_start_incoming_migration does: a tcp:/unix: socket listens, an exec: command is
// started (/bin/sh -c CMD, its stdout read), fd:NAME is taken from the getfd table (or
// fd:N by number) and read from its current offset (libvirt's restore hands over its save
// file after its own header: nothing seeks), file:PATH[,offset=N] is opened at N.
// "defer" is not a URI: "unknown migration protocol: defer", as QEMU's migrate-incoming.
func Listen(uri string, env Env) (Source, error) {
	a, err := Parse(uri)
	if err != nil {
		return nil, err
	}
	return ListenAddress(a, env)
}

// ListenAddress is Listen for an address Parse has parsed already (the incoming path
// parses its URI once).
func ListenAddress(a Address, env Env) (Source, error) {
	uri := a.URI
	s := &source{uri: uri, addr: a, log: env.Log, closed: make(chan struct{})}
	switch a.Scheme {
	case SchemeExec:
		cmd, f, err := startCommand(a.Command, false, env)
		if err != nil {
			return nil, err
		}
		s.ready = newReader(f, "command", cmd, env.Log)
	case SchemeFD:
		f, kind, err := takeFD(a.FD, false, env)
		if err != nil {
			return nil, err
		}
		s.ready = newReader(f, kind, nil, env.Log)
	case SchemeFile:
		f, err := openFile(a.Path, a.Offset, env)
		if err != nil {
			return nil, err
		}
		s.ready = newReader(f, "file", nil, env.Log)
	case SchemeTCP, SchemeUnix:
		l, err := listen(a)
		if err != nil {
			return nil, err
		}
		s.ln = l
		s.addrs = listenAddresses(a, l)
		if la, ok := l.Addr().(*net.TCPAddr); ok && a.Port != strconv.Itoa(la.Port) {
			host := a.Host
			if la.IP.To4() == nil && host != "" {
				host = "[" + host + "]"
			}
			s.uri = "tcp:" + host + ":" + strconv.Itoa(la.Port)
		}
	}
	env.Log.Debug().Str("uri", s.uri).Msg("migration source ready")
	return s, nil
}

// SocketAddresses is what query-migrate shows under "socket-address" while s listens:
// nil for sources that are not tcp:/unix:.
func SocketAddresses(s Source) []SocketAddress {
	if src, ok := s.(*source); ok {
		return src.addrs
	}
	return nil
}

type source struct {
	uri   string
	addr  Address
	log   zerolog.Logger
	addrs []SocketAddress

	mu       sync.Mutex
	ln       net.Listener // tcp:/unix:, until Accept or Close
	ready    *reader      // exec:/fd:/file:, until Accept or Close
	accepted bool
	closed   chan struct{}
	isClosed bool

	channelsFn  func() int  // multifd channels expected besides the main one (Expect)
	channels    int         // channelsFn's answer at the first connection (Channels)
	sortOnce    sync.Once   // starts sort (duplex.go)
	mainOnce    sync.Once   // one connection becomes the main channel
	main, extra chan sorted // what sort accepted: the main channel, multifd channels
}

func (s *source) URI() string { return s.uri }

func (s *source) Accept() (io.ReadCloser, error) {
	s.mu.Lock()
	if s.accepted || s.isClosed {
		s.mu.Unlock()
		return nil, newError("Migration source already used", ErrAborted, nil)
	}
	s.accepted = true
	if r := s.ready; r != nil {
		s.ready = nil
		s.mu.Unlock()
		return r, nil
	}
	ln, sortConns := s.ln, s.channelsFn != nil
	s.mu.Unlock()
	if sortConns {
		s.startSorting()
		select {
		case c := <-s.main:
			return c.r, c.err
		case <-s.closed:
			return nil, newError("Unable to accept connection: Operation canceled", ErrAborted, syscall.ECANCELED)
		}
	}
	c, err := ln.Accept()
	ln.Close() //nolint:errcheck // one connection only
	s.mu.Lock()
	s.ln = nil
	s.mu.Unlock()
	if err != nil {
		select {
		case <-s.closed:
			return nil, newError("Unable to accept connection: Operation canceled", ErrAborted, syscall.ECANCELED)
		default:
		}
		return nil, withErrno("Unable to accept connection", ErrConnect, err)
	}
	s.log.Debug().Str("uri", s.uri).Str("peer", c.RemoteAddr().String()).Msg("migration connection accepted")
	return newReader(c, "socket", nil, s.log), nil
}

func (s *source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed {
		return nil
	}
	s.isClosed = true
	close(s.closed)
	var err error
	if s.ln != nil {
		err = s.ln.Close()
		s.ln = nil
	}
	if s.ready != nil {
		err = s.ready.Abort()
		s.ready = nil
	}
	return err
}

// reader is an incoming channel: buffered, with QEMU's read error texts.
type reader struct {
	kind string
	raw  io.ReadCloser
	br   *bufio.Reader
	cmd  *command
	log  zerolog.Logger

	eof       atomic.Bool // Read saw the end
	aborted   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

func newReader(raw io.ReadCloser, kind string, cmd *command, log zerolog.Logger) *reader {
	return &reader{kind: kind, raw: raw, br: bufio.NewReaderSize(raw, readBufferSize), cmd: cmd, log: log}
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.br.Read(p)
	switch {
	case err == nil:
		return n, nil
	case r.aborted.Load():
		return n, newError("Unable to read from "+r.kind+": Operation canceled", ErrAborted, syscall.ECANCELED)
	case errors.Is(err, io.EOF):
		r.eof.Store(true)
		if r.cmd != nil {
			if cerr := r.cmd.wait(); cerr != nil {
				return n, cerr
			}
		}
		return n, io.EOF
	}
	return n, withErrno("Unable to read from "+r.kind, ErrRead, err)
}

// Close closes the channel. An exec'd command gets a moment to exit by itself (it has
// usually written everything), then SIGTERM, then SIGKILL, and is reaped.
func (r *reader) Close() error {
	r.closeOnce.Do(func() {
		r.closeErr = r.raw.Close()
		if r.cmd != nil {
			r.cmd.end()
		}
		r.log.Debug().Str("kind", r.kind).Msg("migration source closed")
	})
	return r.closeErr
}

// Abort closes at once: a Read blocked on another goroutine returns ErrAborted, an exec'd
// command is killed and reaped.
func (r *reader) Abort() error {
	r.aborted.Store(true)
	r.closeOnce.Do(func() {
		r.closeErr = r.raw.Close()
		if r.cmd != nil {
			r.cmd.kill()
		}
	})
	if r.cmd != nil {
		<-r.cmd.done
	}
	return nil
}

var _ io.ReadCloser = (*reader)(nil)
