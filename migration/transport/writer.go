package transport

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// bufferSize is the buffer between the stream writer and the channel: large enough that a
// channel sees few, big system calls when it is written in small pieces. A write of at
// least directSize with nothing buffered goes to the channel as it is (the stream writer
// hands over whole 1 MiB buffers: copying them once more cost a memory pass per byte).
const (
	bufferSize = 1 << 20
	directSize = 64 << 10
)

// readBufferSize is the buffer between an incoming channel and the stream reader. The
// reader asks for at least half its own 1 MiB buffer at a time, so bufio.Reader reads
// those straight into it (a read at least as large as bufio's buffer bypasses it); the
// buffer serves the small reads (the first bytes, Peek).
const readBufferSize = 64 << 10

// Env is what a transport needs from its surroundings.
type Env struct {
	// LookupFD resolves fd:NAME in the monitor's getfd table and hands the descriptor over
	// (the transport closes it on Close). nil outside a monitor (-incoming on the command
	// line): then fd: takes only numbers, as QEMU's monitor_fd_param does without a monitor.
	LookupFD func(name string) (int, error)
	// Open opens file: paths as QEMU's qemu_open does, where "/dev/fdset/N" is a duplicate
	// of a descriptor of add-fd's set N whose access mode matches flag (the monitor's fd
	// sets). It returns a descriptor the caller owns, or an errno. nil: open(2).
	Open func(path string, flag int, perm uint32) (int, error)
	// Stderr receives an exec'd command's standard error (QEMU's children inherit
	// QEMU's); nil means os.Stderr. The last line is also kept for error texts.
	Stderr io.Writer
	// Log receives debug records; the zero value logs nothing.
	Log zerolog.Logger
}

func (e Env) log() *zerolog.Logger { return &e.Log }

// openFile opens path through e.Open (close-on-exec), as os.OpenFile does.
func (e Env) openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	if e.Open == nil {
		return os.OpenFile(path, flag, perm)
	}
	fd, err := e.Open(path, flag|syscall.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// Open parses an outgoing URI and opens its destination:
//
//	exec:CMD         /bin/sh -c CMD, fed on its stdin (blanks after the colon allowed)
//	fd:NAME          a descriptor from getfd (Env.LookupFD); never a number
//	file:PATH[,offset=N]  PATH created or truncated to N bytes, written from N
//	                 ("/dev/fdset/N" through Env.Open)
//	tcp:HOST:PORT    connected in the background, as QEMU does ("tcp:[::1]:PORT" too)
//	unix:PATH        connected in the background
//
// What QEMU does synchronously in its migrate command happens before Open returns and its
// errors are Open's: a malformed URI, an fd that is not found, a command that cannot be
// started, a file that cannot be opened. A socket's connection is made in the background;
// its failure ("Failed to connect to '127.0.0.1:1': Connection refused") is returned by
// Connected and by the first Write.
//
// The writer is buffered (1 MiB) and not safe for concurrent Writes. Close flushes, closes
// the channel (the fd too, so that a reader sees EOF), waits for an exec'd command and
// returns its failure (ErrCommand naming the command and its exit status). Abort ends the
// channel at once: unflushed data is dropped, an exec'd command killed and reaped, a Write
// blocked on another goroutine returns ErrAborted. A Close that finds a Write in progress
// on another goroutine aborts the same way (a cancel), then returns.
func Open(uri string, env Env) (io.WriteCloser, error) {
	a, err := parseOutgoing(uri)
	if err != nil {
		return nil, err
	}
	return OpenAddress(a, env)
}

// OpenAddress is Open for an address ParseOutgoing has parsed already (the migrate path
// parses its URI once).
func OpenAddress(a Address, env Env) (io.WriteCloser, error) {
	w := &writer{uri: a.URI, ready: make(chan struct{}), abortCh: make(chan struct{}), log: env.Log}
	switch a.Scheme {
	case SchemeExec:
		cmd, f, err := startCommand(a.Command, true, env)
		if err != nil {
			return nil, err
		}
		w.cmd = cmd
		w.opened(f, "command")
	case SchemeFD:
		f, kind, err := takeFD(a.FD, true, env)
		if err != nil {
			return nil, err
		}
		w.opened(f, kind)
	case SchemeFile:
		f, err := createFile(a.Path, a.Offset, env)
		if err != nil {
			return nil, err
		}
		w.opened(f, "file")
	case SchemeTCP, SchemeUnix:
		w.kind = "socket"
		ctx, cancel := context.WithCancel(context.Background())
		w.cancelDial = cancel
		go func() {
			c, err := dial(ctx, a)
			w.mu.Lock()
			defer w.mu.Unlock()
			if err == nil && w.aborted.Load() {
				c.Close()
				err = w.abortedErr()
			}
			w.raw, w.openErr = c, err
			if err == nil {
				w.bw = bufio.NewWriterSize(w.raw, bufferSize)
			}
			close(w.ready)
		}()
	}
	env.Log.Debug().Str("uri", a.URI).Msg("migration destination opening")
	return w, nil
}

// Connected waits until w's destination is open and returns the error that stopped it
// opening (a tcp:/unix: connection made in the background). For writers that did not come
// from Open it returns nil at once.
func Connected(w io.Writer) error {
	if ow, ok := w.(*writer); ok {
		return ow.wait()
	}
	return nil
}

// Abort ends c at once if it came from Open or Accept (see Open), and else closes it.
func Abort(c io.Closer) error {
	if a, ok := c.(interface{ Abort() error }); ok {
		return a.Abort()
	}
	return c.Close()
}

// writer is Open's result.
type writer struct {
	uri  string
	kind string // QEMU's channel noun: "command", "file", "socket"
	cmd  *command
	log  zerolog.Logger

	ready      chan struct{} // closed when raw/openErr are set
	cancelDial context.CancelFunc

	mu      sync.Mutex     // guards raw and openErr until ready is closed
	raw     io.WriteCloser // the channel
	openErr error
	bw      *bufio.Writer // used only under ioMu

	ioMu sync.Mutex // held by Write and Close: the one goroutine using bw

	aborted   atomic.Bool
	abortCh   chan struct{}
	abortOnce sync.Once

	closeOnce sync.Once
	closeErr  error
	closed    bool // set under ioMu by Close: later Writes fail
	// writeFailed is set under ioMu when a Write failed: Close's error then explains it.
	writeFailed bool
}

var _ io.WriteCloser = (*writer)(nil)

// opened sets a synchronously opened channel.
func (w *writer) opened(f io.WriteCloser, kind string) {
	w.raw, w.kind = f, kind
	w.bw = bufio.NewWriterSize(f, bufferSize)
	close(w.ready)
}

func (w *writer) Write(p []byte) (int, error) {
	w.ioMu.Lock()
	defer w.ioMu.Unlock()
	if w.closed {
		return 0, withErrno("Unable to write to "+w.kindOr(), ErrWrite, os.ErrClosed)
	}
	if err := w.wait(); err != nil {
		return 0, err
	}
	var n int
	var err error
	if len(p) >= directSize && w.bw.Buffered() == 0 {
		n, err = w.raw.Write(p)
	} else {
		n, err = w.bw.Write(p)
	}
	if err != nil {
		w.writeFailed = true
		return n, w.writeErr(err)
	}
	return n, nil
}

// wait waits for the destination (or an abort).
func (w *writer) wait() error {
	if w.aborted.Load() {
		return w.abortedErr()
	}
	select {
	case <-w.ready:
	case <-w.abortCh:
		return w.abortedErr()
	}
	// An abort cancels a connect in progress, which then ends with its own error: both
	// channels are ready, and the abort is what happened.
	if w.aborted.Load() {
		return w.abortedErr()
	}
	return w.openErr
}

func (w *writer) writeErr(err error) error {
	if w.aborted.Load() {
		return w.abortedErr()
	}
	return withErrno("Unable to write to "+w.kind, ErrWrite, err)
}

func (w *writer) abortedErr() error {
	return newError("Unable to write to "+w.kindOr()+": Operation canceled", ErrAborted, syscall.ECANCELED)
}

func (w *writer) kindOr() string {
	if w.kind == "" {
		return "socket"
	}
	return w.kind
}

func (w *writer) Close() error {
	w.closeOnce.Do(func() {
		if !w.ioMu.TryLock() {
			// A Write is blocked on another goroutine: this Close is a cancel.
			w.Abort() //nolint:errcheck // reported below
			w.ioMu.Lock()
		}
		defer w.ioMu.Unlock()
		w.closed = true
		w.closeErr = w.finish()
		w.log.Debug().Str("uri", w.uri).Err(w.closeErr).Msg("migration destination closed")
	})
	return w.closeErr
}

// finish flushes and closes; the caller holds ioMu.
func (w *writer) finish() error {
	if err := w.wait(); err != nil {
		w.Abort() //nolint:errcheck // cleanup: the error is err
		return err
	}
	err := w.bw.Flush()
	// Every Write succeeded, and the command took the stream (or the flush found it gone):
	// did it read the stream? A stream smaller than the pipe is accepted whole even by a
	// command that never reads.
	brokenAtClose := err != nil && isEPIPE(err) && !w.writeFailed
	unread := err == nil && w.cmd != nil && !w.writeFailed && w.drained() > 0
	if err != nil {
		err = w.writeErr(err)
	}
	if cerr := w.raw.Close(); cerr != nil && err == nil && !w.aborted.Load() {
		err = withErrno("Unable to close "+w.kind, ErrWrite, cerr)
	}
	if w.cmd != nil {
		if w.aborted.Load() {
			w.cmd.kill()
		} else if cerr := w.cmd.wait(); cerr != nil && (unread || brokenAtClose) {
			// It exited without reading what was written: QEMU's write (its pipe is
			// smaller than any RAM stream) fails with EPIPE, and QEMU says only that.
			err = w.writeErr(syscall.EPIPE)
		} else if cerr != nil && (err == nil || isEPIPE(err)) {
			// The command's own failure explains a broken pipe better than EPIPE does.
			err = cerr
		}
	}
	if err == nil && w.aborted.Load() {
		err = w.abortedErr()
	}
	return err
}

// drained waits, once everything is written to an exec'd command's pipe, until the command
// has read it all or exited, and returns the bytes it left unread (0 when it cannot tell).
func (w *writer) drained() int {
	f, ok := w.raw.(*os.File)
	if !ok {
		return 0
	}
	inPipe := func() int {
		n, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCINQ) // FIONREAD: bytes in the pipe
		if err != nil || w.aborted.Load() {
			return 0
		}
		return n
	}
	for pause := 100 * time.Microsecond; ; pause = min(2*pause, 10*time.Millisecond) {
		if inPipe() == 0 {
			return 0
		}
		select {
		case <-w.cmd.done:
			return inPipe() // what it left: it may have read the rest since the look above
		case <-w.abortCh:
			return 0
		case <-time.After(pause):
		}
	}
}

// Abort drops unflushed data and ends the channel; safe to call from any goroutine, at
// any time, more than once.
func (w *writer) Abort() error {
	w.abortOnce.Do(func() {
		w.aborted.Store(true)
		close(w.abortCh)
		if w.cancelDial != nil {
			w.cancelDial()
		}
		w.mu.Lock()
		raw := w.raw
		w.mu.Unlock()
		if raw != nil {
			raw.Close() //nolint:errcheck // aborting
		}
		if w.cmd != nil {
			w.cmd.kill()
		}
		w.log.Debug().Str("uri", w.uri).Msg("migration destination aborted")
	})
	if w.cmd != nil {
		<-w.cmd.done
	}
	return nil
}

func isEPIPE(err error) bool {
	return errors.Is(err, syscall.EPIPE)
}
