package vnc

import (
	"context"
	"errors"
	"math"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"tlcvm/compat/qerror"
	"tlcvm/console"
	"tlcvm/input"
)

// Options are the server's runtime parameters.
type Options struct {
	// Name is the desktop name sent in ServerInit: QEMU sends "QEMU", or
	// "QEMU (<name>)" when -name is given. Empty means "QEMU".
	Name string
	// Width and Height of the framebuffer; zero means QEMU's 640x480.
	Width, Height int
	// Log receives debug events; the zero value is silent.
	Log zerolog.Logger
	// Key receives the clients' keys as qcodes (QEMU's do_key_event: a KeyEvent's keysym
	// through the en-us keymap, an extended key event's number as it is); nil drops them.
	Key func(qcode int, down bool)
}

// maxPending bounds connections that have not finished the handshake.
const maxPending = 64

// Addr is one listening or client address, as query-vnc reports it.
type Addr struct {
	Host    string // numeric host, "" for unix
	Service string // port number, or socket path
	Family  string // "ipv4" | "ipv6" | "unix"
}

// Client is one connected client (VncClientInfo).
type Client struct {
	Host, Service, Family string
	Websocket             bool
}

// Info is what query-vnc, query-vnc-servers and "info vnc" need.
type Info struct {
	Host, Service, Family string // the last listener, as QEMU's query-vnc
	Auth                  string
	Listeners             []Addr // all listeners, in QEMU's order
	Clients               []Client
}

// Server is a running VNC server for one display.
type Server struct {
	cfg       Config
	name      string
	w, h      int
	fb        []byte // x8r8g8b8 LE; never written after Listen
	log       zerolog.Logger
	listeners []net.Listener
	addrs     []Addr
	unlink    string // unix socket path to remove on Close
	keyFn     func(qcode int, down bool)

	mu      sync.Mutex
	closed  bool             // guarded by mu
	serving bool             // guarded by mu
	clients map[*client]bool // guarded by mu
	pending int              // guarded by mu: connections still in handshake
	nextSeq uint64           // guarded by mu: next client's connection order
	// password is set_password's (nil: none yet, so VNC authentication fails); expires
	// is expire_password's time in Unix seconds (math.MaxInt64: never). Guarded by mu.
	password *string
	expires  int64
	wg       sync.WaitGroup
}

// Listen opens the listening socket(s) for c as QEMU 7.2 does: tcp on
// c.Port (or the first port up to c.ToPort where every address binds), on
// all addresses when c.Host is ""; unix on c.Path. It does not accept yet:
// call Serve.
func Listen(c Config, o Options) (*Server, error) {
	if c.Disabled {
		return nil, qerror.New(ErrListen, "VNC display is disabled")
	}
	s, err := Idle(o)
	if err != nil {
		return nil, err
	}
	s.cfg = c
	switch c.Network {
	case "unix":
		err = s.listenUnix()
	case "tcp":
		err = s.listenTCP()
	default:
		err = qerror.Errorf(ErrListen, "unknown network %q", c.Network)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Idle is a server listening nowhere (-vnc none), until Update gives it listeners.
func Idle(o Options) (*Server, error) {
	s := &Server{name: o.Name, w: o.Width, h: o.Height, log: o.Log, keyFn: o.Key, clients: map[*client]bool{},
		expires: math.MaxInt64}
	if s.name == "" {
		s.name = "QEMU"
	}
	if s.w <= 0 || s.h <= 0 {
		s.w, s.h = 640, 480
	}
	if s.w > 16384 || s.h > 16384 {
		return nil, qerror.Errorf(ErrListen, "framebuffer %dx%d too large", s.w, s.h)
	}
	s.fb = console.Placeholder(s.w, s.h, console.PlaceholderText)
	return s, nil
}

func (s *Server) listenUnix() error {
	path := s.cfg.Path
	if path == "" { // QEMU: a temporary /tmp/qemu-socket-XXXXXX
		f, err := os.CreateTemp("", "qemu-socket-")
		if err != nil {
			return qerror.Errno(ErrListen, err, "Failed to make a temporary socket name")
		}
		path = f.Name()
		_ = f.Close()
		_ = os.Remove(path)
	}
	if fi, err := os.Lstat(path); err == nil {
		// QEMU unlinks whatever is there; tlcvm only replaces a socket.
		if fi.IsDir() {
			return qerror.Errorf(ErrListen, "Failed to unlink socket %s: Is a directory", path)
		}
		if fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(path)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return qerror.Errno(ErrListen, err, "Failed to bind socket to %s", path)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	s.listeners = []net.Listener{l}
	s.addrs = []Addr{{Service: path, Family: "unix"}}
	s.unlink = path
	return nil
}

// resolve returns the addresses to bind, in QEMU's order.
func (s *Server) resolve() ([]net.IP, error) {
	c := s.cfg
	want4 := !c.NoIPv4 && (!c.IPv6 || c.IPv4)
	want6 := !c.NoIPv6 && (!c.IPv4 || c.IPv6)
	var ips []net.IP
	if c.Host == "" {
		if want6 {
			ips = append(ips, net.IPv6unspecified)
		}
		if want4 {
			ips = append(ips, net.IPv4zero)
		}
		return ips, nil
	}
	all, err := net.DefaultResolver.LookupIPAddr(context.Background(), c.Host)
	if err != nil {
		return nil, qerror.Errorf(ErrListen, "address resolution failed for %s:%d: Name or service not known", c.Host, c.Port)
	}
	for _, a := range all {
		if a.IP.To4() != nil && want4 || a.IP.To4() == nil && want6 {
			ips = append(ips, a.IP)
		}
	}
	if len(ips) == 0 {
		return nil, qerror.Errorf(ErrListen, "address resolution failed for %s:%d: Address family for hostname not supported", c.Host, c.Port)
	}
	return ips, nil
}

func (s *Server) listenTCP() error {
	ips, err := s.resolve()
	if err != nil {
		return err
	}
	last := s.cfg.Port
	if s.cfg.ToPort != 0 {
		last = s.cfg.ToPort
		if last < s.cfg.Port {
			return qerror.New(ErrListen, "Failed to create a socket")
		}
	}
	var lastErr error
	for port := s.cfg.Port; port <= last; port++ {
		ls, addrs, err := listenAll(ips, port)
		if err == nil {
			s.listeners, s.addrs = ls, addrs
			return nil
		}
		lastErr = err
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if errors.Is(lastErr, syscall.EADDRINUSE) {
		return qerror.Errno(ErrListen, lastErr, "Failed to find an available port")
	}
	return qerror.Errno(ErrListen, lastErr, "Failed to bind socket")
}

// listenAll binds every address on port, or none.
func listenAll(ips []net.IP, port int) ([]net.Listener, []Addr, error) {
	var ls []net.Listener
	var addrs []Addr
	for _, ip := range ips {
		network, family := "tcp4", "ipv4"
		if ip.To4() == nil {
			network, family = "tcp6", "ipv6"
		}
		l, err := net.Listen(network, net.JoinHostPort(ip.String(), strconv.Itoa(port)))
		if err != nil {
			for _, o := range ls {
				_ = o.Close()
			}
			return nil, nil, err
		}
		ls = append(ls, l)
		host := ip.String()
		if ip.Equal(net.IPv4zero) {
			host = "0.0.0.0"
		}
		addrs = append(addrs, Addr{Host: host, Service: strconv.Itoa(l.Addr().(*net.TCPAddr).Port), Family: family})
	}
	return ls, addrs, nil
}

// key delivers a key number (0: not mapped, dropped as QEMU drops an unmapped key).
func (s *Server) key(num int, down bool) {
	if s.keyFn == nil {
		return
	}
	if q := input.QCodeOfNum(int64(num)); q != 0 {
		s.keyFn(q, down)
	}
}

// Banner is the line QEMU 7.2 prints on stderr when to= was given, e.g.
// "VNC server running on 127.0.0.1:5909"; "" otherwise.
func (s *Server) Banner() string {
	if !s.cfg.HasTo || len(s.addrs) == 0 || s.cfg.Network != "tcp" {
		return ""
	}
	a := s.addrs[len(s.addrs)-1]
	return "VNC server running on " + a.Host + ":" + a.Service
}

// Serve starts accepting clients, each served on its own goroutine, and
// returns at once. Calling it again, or after Close, does nothing.
func (s *Server) Serve() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serving || s.closed {
		return
	}
	s.serving = true
	for _, l := range s.listeners {
		s.wg.Add(1)
		go s.accept(l)
	}
}

func (s *Server) accept(l net.Listener) {
	defer s.wg.Done()
	for {
		conn, err := l.Accept()
		if err != nil {
			if s.isClosed() || errors.Is(err, net.ErrClosed) { // closed, or replaced by Update
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Debug().Err(err).Msg("vnc: accept")
			return
		}
		c := s.newClient(conn)
		if c == nil {
			_ = conn.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c.serve()
		}()
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// newClient registers conn, or returns nil when the server is closed or
// too many connections are still in their handshake.
func (s *Server) newClient(conn net.Conn) *client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.pending >= maxPending {
		return nil
	}
	c := &client{srv: s, conn: conn, addr: clientAddr(conn), seq: s.nextSeq}
	s.nextSeq++
	s.clients[c] = true
	s.pending++
	return c
}

func clientAddr(conn net.Conn) Client {
	switch a := conn.RemoteAddr().(type) {
	case *net.TCPAddr:
		fam := "ipv4"
		if a.IP.To4() == nil {
			fam = "ipv6"
		}
		return Client{Host: a.IP.String(), Service: strconv.Itoa(a.Port), Family: fam}
	case *net.UnixAddr:
		name := a.Name
		if name == "@" { // Go's name for an unnamed peer (a socket pair): QEMU prints ""
			name = ""
		}
		return Client{Service: name, Family: "unix"}
	}
	return Client{Family: "unix"}
}

// Close stops listening, disconnects every client and waits for their
// goroutines. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var err error
	for _, l := range s.listeners {
		if e := l.Close(); e != nil && err == nil {
			err = e
		}
	}
	for c := range s.clients {
		_ = c.conn.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if s.unlink != "" {
		_ = os.Remove(s.unlink)
	}
	return err
}

// Info reports the listeners and the connected clients, in connection order: QEMU lists
// a client from the moment it connects (vnc_connect), before its handshake.
func (s *Server) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	inf := Info{Auth: "none", Listeners: append([]Addr(nil), s.addrs...)}
	if s.cfg.Password {
		inf.Auth = "vnc"
	}
	if n := len(s.addrs); n > 0 {
		a := s.addrs[n-1]
		inf.Host, inf.Service, inf.Family = a.Host, a.Service, a.Family
	}
	var cs []*client
	for c := range s.clients {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].seq < cs[j].seq })
	for _, c := range cs {
		inf.Clients = append(inf.Clients, c.addr)
	}
	return inf
}

// ErrNoPasswordAuth: a password for a display that has no password authentication
// (-vnc without password=on), which QEMU's vnc_display_password refuses.
var ErrNoPasswordAuth = errors.New("vnc: the display has no password authentication")

// SetPassword is vnc_display_password: the password clients now authenticate with (the
// protocol uses its first 8 bytes). It fails with ErrNoPasswordAuth for a display
// without password=on.
func (s *Server) SetPassword(pw string) error {
	if !s.cfg.Password {
		return ErrNoPasswordAuth
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.password = &pw
	return nil
}

// ExpirePassword is vnc_display_pw_expire: from Unix time when on, authentication fails
// (math.MaxInt64: never).
func (s *Server) ExpirePassword(when int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expires = when
}

// passwordNow is the password a client must answer with now: none while unset or once
// expired (QEMU compares time(NULL) with the expiry: a time in the past fails).
func (s *Server) passwordNow() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.password == nil || s.expires < time.Now().Unix() {
		return "", false
	}
	return *s.password, true
}
