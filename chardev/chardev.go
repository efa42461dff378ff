package chardev

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/rs/zerolog"

	"tlcvm/compat/qerror"
)

// Conn is one peer connection of a chardev as a front end sees it. Peers of
// unix sockets are *net.UnixConn (so a QMP server can receive descriptors
// with ReadMsgUnix); tcp peers are *net.TCPConn; telnet peers, stdio, pty,
// file, null, ringbuf and mux front ends get this package's own types.
type Conn interface{ io.ReadWriteCloser }

// Event is a chardev event delivered to a front end (QEMU's QEMUChrEvent).
type Event int

// Events, QEMU's CHR_EVENT_*.
const (
	EventOpened Event = iota + 1 // a peer connected (or the back end opened)
	EventClosed                  // the peer went away
	EventBreak                   // a serial break (telnet IAC BRK, mux C-a b)
	EventMuxIn                   // this mux front end got the focus
	EventMuxOut                  // this mux front end lost the focus
)

var eventNames = [...]string{"", "opened", "closed", "break", "mux-in", "mux-out"}

func (e Event) String() string {
	if e > 0 && int(e) < len(eventNames) {
		return eventNames[e]
	}
	return fmt.Sprintf("Event(%d)", int(e))
}

// Options are the process-level collaborators of Open. Zero values mean the
// defaults given per field.
type Options struct {
	Log    zerolog.Logger // default zerolog.Nop()
	Stderr io.Writer      // QEMU's info/error lines (default os.Stderr)
	Stdout io.Writer      // the pty "char device redirected to" line (default os.Stdout)
	Stdin  *os.File       // stdio back end input (default os.Stdin)
	Output *os.File       // stdio back end output (default os.Stdout)
	Prog   string         // message prefix (default "qemu-system-x86_64")
	// Quit is called for the mux escape C-a x, after "QEMU: Terminated" has
	// been written (QEMU's qmp_quit). Nil: nothing more happens.
	Quit func()
	// Commit is called for the mux escape C-a s (QEMU's blk_commit_all).
	Commit func()
	// DeferMuxOpen holds back EventOpened on mux=on chardevs until
	// ResumeMuxOpen, as QEMU does for the command line (suspend_mux_open), so
	// that only the front end with the focus prints its banner.
	DeferMuxOpen bool
	// LookupFD resolves a non-numeric fd= (a name given to getfd).
	LookupFD func(name string) (int, error)
}

func (o *Options) fill() {
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Output == nil {
		o.Output = os.Stdout
	}
	if o.Prog == "" {
		o.Prog = "qemu-system-x86_64"
	}
}

// backend is one kind of back end. takeFirst and next hand out peer connections one at a
// time; it returns errDone when there will be no more (the back end is
// single-shot and its connection was handed out, or it was closed).
type backend interface {
	next() (*peer, error)
	takeFirst() *peer         // the peer that exists at open, if any (else nil)
	disconnectedName() string // query-chardev "filename" without a peer
	close() error             // stop next(); release listeners and descriptors
}

// Chardev is one opened character device (QEMU's Chardev with its back end).
// It owns one goroutine that waits for peers and one per active reader; all
// end in Close.
type Chardev struct {
	spec Spec
	opts Options
	log  zerolog.Logger
	be   backend
	ring *ring // ringbuf back end only

	closing chan struct{}
	wg      sync.WaitGroup

	mu       sync.Mutex
	cond     *sync.Cond  // signalled on any change of the fields below
	filename string      // query-chardev filename (guarded by mu)
	cur      *peer       // the connected peer, nil when none (mu)
	fes      []*Frontend // attached front ends, in attach order (mu)
	focus    int         // mux: index into fes of the focused one, -1 none (mu)
	closed   bool        // (mu)
	logf     *os.File    // logfile, nil when none (mu for writes)
	mux      muxState    // mux escape/timestamp state (mu)
	feOpen   *bool       // SetFrontendOpen override (mu)

	muxPeer   *peer           // mux: the peer whose session runs (mu)
	muxWG     *sync.WaitGroup // mux: Serve sessions of muxPeer (mu)
	muxOpened bool            // mux: EventOpened may be delivered (mu)
}

// Open opens s now: sockets listen (or connect) before Open returns, a server
// with wait=on blocks until its first client connects (printing QEMU's
// "info: QEMU waiting for connection on: …"), a pty prints "char device
// redirected to /dev/pts/N (label ID)". Errors carry QEMU 7.2's text.
func Open(s Spec, log zerolog.Logger) (*Chardev, error) {
	return OpenWith(s, Options{Log: log})
}

// OpenWith is Open with explicit process-level collaborators.
func OpenWith(s Spec, o Options) (*Chardev, error) {
	o.fill()
	if s.ID == "" {
		return nil, newErr(ErrInvalid, "chardev: no id specified")
	}
	c := &Chardev{spec: s, opts: o, log: o.Log.With().Str("chardev", s.ID).Logger(),
		closing: make(chan struct{}), focus: -1, muxOpened: !o.DeferMuxOpen}
	c.cond = sync.NewCond(&c.mu)
	if s.Logfile != "" {
		flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if s.LogAppend {
			flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
		}
		f, err := os.OpenFile(s.Logfile, flags, 0o666)
		if err != nil {
			return nil, qerror.Errno(ErrOpen, err, "Could not create '%s'", s.Logfile)
		}
		c.logf = f
	}
	be, err := c.openBackend()
	if err != nil {
		if c.logf != nil {
			c.logf.Close()
		}
		return nil, err
	}
	c.be = be
	c.filename = be.disconnectedName()
	c.log.Debug().Str("backend", s.Backend).Str("filename", c.filename).Msg("opened")
	// A peer that exists already (stdio, pty, file, a connected client, the
	// client a wait=on server accepted) is current before Open returns.
	first := be.takeFirst()
	if first != nil {
		c.attachPeer(first)
	}
	c.wg.Add(1)
	go c.run(first)
	return c, nil
}

func (c *Chardev) openBackend() (backend, error) {
	s := c.spec
	switch s.Backend {
	case BackendSocket:
		return openSocket(c)
	case BackendNull, BackendVC:
		return newSingle(c, newNullConn(nil), false, map[string]string{BackendVC: "vc"}[s.Backend]), nil
	case BackendFile:
		return openFile(c)
	case BackendPipe:
		return openPipe(c)
	case BackendSerial:
		return openSerial(c)
	case BackendStdio:
		return openStdio(c)
	case BackendPty:
		return openPty(c)
	case BackendRingbuf:
		return openRingbuf(c)
	case BackendUDP:
		return openUDP(c)
	case BackendNone, BackendRef, "":
		return nil, newErr(ErrInvalid, "chardev: \"%s\" missing backend", s.ID)
	}
	for _, d := range Drivers {
		if d == s.Backend {
			return nil, newErr(ErrUnsupported, "chardev back end '%s' is not supported by tlcvm", s.Backend)
		}
	}
	return nil, newErr(ErrInvalid, "'%s' is not a valid char driver name", s.Backend)
}

// say prints one QEMU message line to Options.Stderr with QEMU's prefix:
// "qemu-system-x86_64: [ORIGIN: ]MSG".
func (c *Chardev) say(withOrigin bool, msg string) {
	if withOrigin && c.spec.Origin != "" {
		fmt.Fprintf(c.opts.Stderr, "%s: %s: %s\n", c.opts.Prog, c.spec.Origin, msg)
		return
	}
	fmt.Fprintf(c.opts.Stderr, "%s: %s\n", c.opts.Prog, msg)
}

// ID returns the chardev's id (QEMU's label).
func (c *Chardev) ID() string { return c.spec.ID }

// Spec returns the spec the chardev was opened with.
func (c *Chardev) Spec() Spec { return c.spec }

// Filename returns query-chardev's "filename" in QEMU 7.2's exact form:
// "unix:/p,server=on" (connected), "disconnected:unix:/p,server=on",
// "tcp:127.0.0.1:4444,server=on <-> 127.0.0.1:50000",
// "disconnected:tcp:127.0.0.1:4444,server=on", "pty:/dev/pts/3", "stdio",
// "file", "null", "vc", "pipe", "serial", "udp", "ringbuf", and "mux" for a
// mux=on chardev (whose back end Registry lists as ID-base).
func (c *Chardev) Filename() string {
	if c.spec.Mux {
		return "mux"
	}
	return c.BaseFilename()
}

// BaseFilename is the filename of the back end itself (for a mux=on chardev,
// what QEMU reports for the "ID-base" chardev).
func (c *Chardev) BaseFilename() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.filename
}

// Connected reports whether a peer is connected now (QOM "connected").
func (c *Chardev) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur != nil
}

// FrontendOpen is query-chardev's "frontend-open": a front end is attached
// and has not marked itself closed (SetFrontendOpen overrides).
func (c *Chardev) FrontendOpen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.feOpen != nil {
		return *c.feOpen
	}
	for _, fe := range c.fes {
		if fe.open {
			return true
		}
	}
	return false
}

// SetFrontendOpen overrides FrontendOpen (QEMU's qemu_chr_fe_set_open), e.g.
// for a virtio-serial port the guest has not opened.
func (c *Chardev) SetFrontendOpen(open bool) {
	c.mu.Lock()
	c.feOpen = &open
	c.mu.Unlock()
}

// Serve attaches a front end that handles peer connections (a monitor): fn is
// called with each peer connection in turn, on a goroutine of the chardev,
// and the connection is closed when fn returns. Server sockets keep accepting
// after a client leaves (libvirt reconnects); a client socket, stdio and a pty
// give one connection. On a mux=on chardev every Serve adds a front end and
// fn gets a Conn that reads only while that front end has the focus. Serve
// returns at once; an attach error (QEMU's "Device 'ID' is in use") is logged
// and returned by ServeErr.
func (c *Chardev) Serve(fn func(Conn)) {
	_ = c.ServeErr(fn)
}

// ServeErr is Serve returning the attach error.
func (c *Chardev) ServeErr(fn func(Conn)) error {
	fe, err := c.Attach()
	if err != nil {
		c.log.Warn().Err(err).Msg("serve")
		return err
	}
	fe.Serve(fn)
	return nil
}

// SetInput attaches a front end that receives the peer's bytes (a serial
// port's receive side); fn is called on a chardev goroutine, never
// concurrently with itself. On a mux=on chardev it adds a front end that
// receives input only while it has the focus.
func (c *Chardev) SetInput(fn func([]byte)) {
	fe, err := c.Attach()
	if err != nil {
		c.log.Warn().Err(err).Msg("set input")
		return
	}
	fe.SetInput(fn)
}

// Write sends guest output to the current peer. It never blocks for long:
// without a peer the bytes are dropped (as QEMU drops output to a
// disconnected socket) and a slow peer gets at most 64 KiB queued, the rest
// dropped. It always reports len(p) written.
func (c *Chardev) Write(p []byte) (int, error) {
	c.output(p, false)
	return len(p), nil
}

// SetEcho asks the back end to echo input (QEMU's qemu_chr_fe_set_echo): it
// only matters for stdio on a terminal, where echo=false (the default) puts
// the terminal in raw mode and echo=true restores its cooked settings.
func (c *Chardev) SetEcho(echo bool) {
	if st, ok := c.be.(*stdioBackend); ok {
		st.setEcho(echo)
	}
}

// output writes p to the current peer (and the logfile). block selects the
// monitor path (wait for the peer) over the guest path (never wait).
func (c *Chardev) output(p []byte, block bool) error {
	c.mu.Lock()
	if c.spec.Mux {
		p = c.mux.stamp(p)
	}
	cur := c.cur
	if cur != nil && c.logf != nil {
		c.logf.Write(p)
	}
	c.mu.Unlock()
	if cur == nil {
		return nil
	}
	if block {
		return cur.writeBlocking(p)
	}
	cur.writeGuest(p)
	return nil
}

// Close stops accepting, disconnects the peer, waits for the chardev's
// goroutines (a Serve fn must return once its Conn fails), restores the
// terminal for stdio, unlinks a listening unix socket's path (as QEMU does,
// inherited ones included) and closes the logfile. Inherited descriptors
// are closed here, at exit, and never before.
func (c *Chardev) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.closing)
	cur := c.cur
	c.cond.Broadcast()
	c.mu.Unlock()
	err := c.be.close()
	if cur != nil {
		cur.shutdown()
	}
	c.wg.Wait()
	if r, ok := c.be.(interface{ release() }); ok {
		r.release()
	}
	c.mu.Lock()
	if c.logf != nil {
		c.logf.Close()
		c.logf = nil
	}
	c.mu.Unlock()
	return err
}

// run is the chardev's peer loop: take the next peer, run its session, repeat.
func (c *Chardev) run(first *peer) {
	defer c.wg.Done()
	if first != nil {
		c.sessionAttached(first)
	}
	for {
		p, err := c.be.next()
		if err != nil {
			return
		}
		c.session(p)
	}
}

// attachPeer makes p the current peer and tells the front ends.
func (c *Chardev) attachPeer(p *peer) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		p.shutdown()
		return false
	}
	c.cur = p
	c.filename = p.filename
	c.mux.escape = false
	fes := append([]*Frontend(nil), c.fes...)
	c.cond.Broadcast()
	c.mu.Unlock()
	c.log.Debug().Str("filename", p.filename).Msg("connected")
	for _, fe := range fes {
		fe.emit(EventOpened)
	}
	return true
}

func (c *Chardev) detachPeer(p *peer) {
	p.shutdown()
	c.mu.Lock()
	if c.cur == p {
		c.cur = nil
		c.filename = c.be.disconnectedName()
	}
	fes := append([]*Frontend(nil), c.fes...)
	c.cond.Broadcast()
	c.mu.Unlock()
	c.log.Debug().Msg("disconnected")
	for _, fe := range fes {
		fe.emit(EventClosed)
	}
}

// session runs one peer: dispatch input to the front ends until the peer
// ends (sockets: EOF or the Serve fn returned) or the chardev closes.
func (c *Chardev) session(p *peer) {
	if !c.attachPeer(p) {
		return
	}
	c.sessionAttached(p)
}

// sessionAttached is session after attachPeer.
func (c *Chardev) sessionAttached(p *peer) {
	defer c.detachPeer(p)
	if c.spec.Mux {
		c.muxSession(p)
		return
	}
	// One front end at most: wait until it says how it takes input.
	c.mu.Lock()
	var fe *Frontend
	for !c.closed {
		if len(c.fes) > 0 && (c.fes[0].serve != nil || c.fes[0].input != nil) {
			fe = c.fes[0]
			break
		}
		c.cond.Wait()
	}
	c.mu.Unlock()
	if fe == nil {
		return
	}
	if fe.serve != nil {
		fe.serve(p.conn)
		if !p.endsOnEOF {
			c.waitClosing()
		}
		return
	}
	eof := c.readLoop(p, func(b []byte) { fe.deliver(b) })
	if !eof || !p.endsOnEOF {
		c.waitClosing()
	}
}

func (c *Chardev) waitClosing() { <-c.closing }

// readLoop reads p until error, passing data to fn. It reports whether the
// read ended by the peer (EOF/error) rather than by Close.
func (c *Chardev) readLoop(p *peer, fn func([]byte)) bool {
	buf := make([]byte, 4096)
	for {
		n, err := p.conn.Read(buf)
		if n > 0 {
			fn(append([]byte(nil), buf[:n]...))
		}
		if err != nil {
			select {
			case <-c.closing:
				return false
			default:
				return true
			}
		}
	}
}
