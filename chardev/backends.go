package chardev

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"tlcvm/compat/qerror"
)

// single is a back end with one peer for its whole life (null, file, pipe,
// serial, stdio, pty, ringbuf, udp): next hands it out once, then waits for
// Close. Its filename never changes.
type single struct {
	mu      sync.Mutex
	p       *peer // not yet handed out (mu)
	name    string
	closing chan struct{}
	rel     func() // runs at release, after every goroutine stopped
}

func newSingle(c *Chardev, conn Conn, async bool, name string) *single {
	if name == "" {
		name = c.spec.Backend
	}
	return &single{p: newPeer(conn, name, false, async), name: name, closing: make(chan struct{})}
}

func (s *single) takeFirst() *peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.p
	s.p = nil
	return p
}

func (s *single) next() (*peer, error) {
	<-s.closing
	return nil, errDone
}

func (s *single) disconnectedName() string { return s.name }

func (s *single) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closing:
	default:
		close(s.closing)
	}
	if s.p != nil {
		s.p.shutdown()
		s.p = nil
	}
	return nil
}

func (s *single) release() {
	if s.rel != nil {
		s.rel()
	}
}

// nullConn reads nothing until closed and writes to w (nil: discards).
type nullConn struct {
	w    io.Writer
	done chan struct{}
	once sync.Once
	cl   io.Closer
}

func newNullConn(w io.WriteCloser) *nullConn {
	n := &nullConn{done: make(chan struct{})}
	if w != nil {
		n.w, n.cl = w, w
	}
	return n
}

func (n *nullConn) Read([]byte) (int, error) {
	<-n.done
	return 0, io.EOF
}

func (n *nullConn) Write(p []byte) (int, error) {
	if n.w == nil {
		return len(p), nil
	}
	return n.w.Write(p)
}

func (n *nullConn) Close() error {
	var err error
	n.once.Do(func() {
		close(n.done)
		if n.cl != nil {
			err = n.cl.Close()
		}
	})
	return err
}

func openFile(c *Chardev) (backend, error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if c.spec.Append {
		flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	f, err := os.OpenFile(c.spec.Path, flags, 0o666)
	if err != nil {
		return nil, qerror.Errno(ErrOpen, err, "Could not open '%s'", c.spec.Path)
	}
	return newSingle(c, newNullConn(f), false, "file"), nil
}

// duplex reads from in and writes to out (a pipe pair, or one tty).
type duplex struct {
	in  io.ReadCloser
	out *os.File
}

func (d *duplex) Read(p []byte) (int, error)  { return d.in.Read(p) }
func (d *duplex) Write(p []byte) (int, error) { return d.out.Write(p) }
func (d *duplex) Close() error {
	err := d.in.Close()
	if d.out != d.in {
		d.out.Close()
	}
	return err
}

// openPipe is QEMU's pipe chardev: PATH.in and PATH.out, else PATH itself.
func openPipe(c *Chardev) (backend, error) {
	p := c.spec.Path
	in, ierr := os.OpenFile(p+".in", os.O_RDWR, 0)
	out, oerr := os.OpenFile(p+".out", os.O_RDWR, 0)
	if ierr != nil || oerr != nil {
		if in != nil {
			in.Close()
		}
		if out != nil {
			out.Close()
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			return nil, qerror.Errno(ErrOpen, err, "Could not open '%s'", p)
		}
		in, out = f, f
	}
	return newSingle(c, &duplex{in: in, out: out}, true, "pipe"), nil
}

// openSerial opens a host tty device (QEMU's serial/tty chardev).
func openSerial(c *Chardev) (backend, error) {
	f, err := os.OpenFile(c.spec.Path, os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, qerror.Errno(ErrOpen, err, "Could not open '%s'", c.spec.Path)
	}
	// Through SyscallConn, not Fd(): Fd() would make f blocking, and Close could then
	// wait forever for a read in progress.
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			if t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS); err == nil {
				makeRaw(t)
				unix.IoctlSetTermios(int(fd), unix.TCSETS, t)
			}
		})
	}
	return newSingle(c, &duplex{in: f, out: f}, true, "serial"), nil
}

// makeRaw is cfmakeraw(3).
func makeRaw(t *unix.Termios) {
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
}

// openPty creates a pseudo-terminal via /dev/ptmx, in raw mode, and prints
// QEMU's "char device redirected to /dev/pts/N (label ID)" on stdout. The
// back end keeps a slave descriptor open so the master never sees a hang-up
// while no client has the slave open.
func openPty(c *Chardev) (backend, error) {
	fail := func(err error) error {
		return qerror.Errno(ErrOpen, err, "Failed to create PTY")
	}
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fail(err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return nil, fail(err)
	}
	n, err := unix.IoctlGetUint32(m, unix.TIOCGPTN)
	if err != nil {
		unix.Close(m)
		return nil, fail(err)
	}
	name := "/dev/pts/" + strconv.FormatUint(uint64(n), 10)
	s, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(m)
		return nil, fail(err)
	}
	if t, err := unix.IoctlGetTermios(s, unix.TCGETS); err == nil {
		makeRaw(t)
		unix.IoctlSetTermios(s, unix.TCSETS, t)
	}
	master := os.NewFile(uintptr(m), "/dev/ptmx")
	slave := os.NewFile(uintptr(s), name)
	fmt.Fprintf(c.opts.Stdout, "char device redirected to %s (label %s)\n", name, c.spec.ID)
	b := newSingle(c, master, true, "pty:"+name)
	b.rel = func() { slave.Close() }
	return b, nil
}

// PtyPath returns the slave path of a pty chardev ("/dev/pts/N"), or "".
func (c *Chardev) PtyPath() string {
	if c.spec.Backend != BackendPty {
		return ""
	}
	if sb, ok := c.be.(*single); ok {
		if name, ok := cutPrefix(sb.name, "pty:"); ok {
			return name
		}
	}
	return ""
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}

// stdioInUse is QEMU's stdio_in_use: one stdio chardev per process.
var stdioInUse atomic.Bool

// stdioBackend is QEMU's stdio chardev: input from a non-blocking duplicate
// of stdin, output to stdout; on a terminal, raw mode (ISIG kept unless
// signal=off) restored at Close.
type stdioBackend struct {
	*single
	fd       int           // the process's stdin descriptor
	old      *unix.Termios // terminal settings to restore, nil if not a tty
	oldFlags int
	signal   bool
	mu       sync.Mutex
}

func openStdio(c *Chardev) (backend, error) {
	if !stdioInUse.CompareAndSwap(false, true) {
		return nil, newErr(ErrInUse, "cannot use stdio by multiple character devices")
	}
	fd := int(c.opts.Stdin.Fd())
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		stdioInUse.Store(false)
		return nil, qerror.Errno(ErrOpen, err, "Could not open stdio")
	}
	b := &stdioBackend{fd: fd, signal: c.spec.Signal}
	b.oldFlags, _ = unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	// Read with poll(2) and a wake-up pipe, so that Close interrupts a waiting read
	// whether or not the descriptor is non-blocking (see pollReader).
	in, err := newPollReader(dup)
	if err != nil {
		unix.Close(dup)
		stdioInUse.Store(false)
		return nil, qerror.Errno(ErrOpen, err, "Could not open stdio")
	}
	if t, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
		b.old = t
	}
	conn := &duplex{in: in, out: c.opts.Output}
	b.single = newSingle(c, conn, false, "stdio")
	b.single.p.closeFn = in.Close
	b.setEcho(false)
	b.single.rel = b.restore
	return b, nil
}

// setEcho is QEMU's qemu_chr_set_echo_stdio.
func (b *stdioBackend) setEcho(echo bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.old == nil {
		return
	}
	t := *b.old
	if !echo {
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag |= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8
		t.Cc[unix.VMIN] = 1
		t.Cc[unix.VTIME] = 0
	}
	if !b.signal {
		t.Lflag &^= unix.ISIG
	}
	unix.IoctlSetTermios(b.fd, unix.TCSETS, &t)
}

// restore is QEMU's term_exit: the terminal and stdin flags as found.
func (b *stdioBackend) restore() {
	b.mu.Lock()
	if b.old != nil {
		unix.IoctlSetTermios(b.fd, unix.TCSETS, b.old)
	}
	b.mu.Unlock()
	unix.FcntlInt(uintptr(b.fd), unix.F_SETFL, b.oldFlags)
	stdioInUse.Store(false)
}

// openUDP is QEMU's udp chardev: datagrams to HOST:PORT from
// LOCALADDR:LOCALPORT.
func openUDP(c *Chardev) (backend, error) {
	s := &c.spec
	ips, port, err := resolve(s.Host, s.Port, false, s.IPv4, s.IPv6)
	if err != nil {
		return nil, err
	}
	var laddr *net.UDPAddr
	if s.LocalAddr != "" || (s.LocalPort != "" && s.LocalPort != "0") {
		lips, lport, err := resolve(s.LocalAddr, s.LocalPort, true, s.IPv4, s.IPv6)
		if err != nil {
			return nil, err
		}
		laddr = &net.UDPAddr{IP: lips[0], Port: lport}
	}
	conn, err := net.DialUDP("udp", laddr, &net.UDPAddr{IP: ips[0], Port: port})
	if err != nil {
		return nil, qerror.Errno(ErrOpen, err, "Failed to bind socket")
	}
	return newSingle(c, conn, true, "udp"), nil
}
