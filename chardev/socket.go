package chardev

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"tlcvm/compat/qerror"
)

var errDone = errors.New("chardev: no more peers")

// unixPathMax is sizeof(sockaddr_un.sun_path) on Linux.
const unixPathMax = 108

// sockBackend is QEMU's socket chardev: unix, tcp (telnet, tn3270) or an
// inherited descriptor; server (listen, accept one client at a time) or
// client (connect, optionally reconnect).
type sockBackend struct {
	c        *Chardev
	server   bool
	proto    string // "tcp", "telnet" (filename protocol for inet)
	ln       net.Listener
	lnFile   *os.File // inherited listening descriptor, closed only at Close
	unlink   string   // unix socket path to remove at Close
	disc     string   // disconnected filename
	dial     func() (net.Conn, error)
	reconn   time.Duration
	first    *peer // connected during Open (wait=on server, client) (mu)
	closing  chan struct{}
	mu       sync.Mutex
	reported bool // reconnect: the connect error was printed (mu)
}

// validate is QEMU's qmp_chardev_validate_socket plus the open-time checks
// tlcvm cannot honour.
func (s *Spec) validateSocket() error {
	isFD := s.Path == "" && s.Host == ""
	if isFD && s.ReconnectSet {
		return newErr(ErrInvalid, "'reconnect' option is incompatible with 'fd' address type")
	}
	if s.TLSCreds != "" && isFD && !s.Server {
		return newErr(ErrInvalid, "'tls_creds' option is incompatible with 'fd' address type as client")
	}
	if s.TLSCreds != "" && s.Path != "" {
		return newErr(ErrInvalid, "'tls_creds' option is incompatible with 'unix' address type")
	}
	if s.Server {
		if s.ReconnectSet {
			return newErr(ErrInvalid, "'reconnect' option is incompatible with socket in server listen mode")
		}
	} else {
		if s.Websocket {
			return newErr(ErrInvalid, "Websocket client is not implemented")
		}
		if s.WaitSet {
			return newErr(ErrInvalid, "'wait' option is incompatible with socket in client connect mode")
		}
	}
	if s.TLSCreds != "" {
		// tlcvm has no -object tls-creds-*: the id can never resolve.
		return newErr(ErrOpen, "No TLS credentials with id '%s'", s.TLSCreds)
	}
	if s.Websocket {
		return newErr(ErrUnsupported, "websocket chardevs are not supported by tlcvm")
	}
	return nil
}

func openSocket(c *Chardev) (backend, error) {
	s := &c.spec
	if err := s.validateSocket(); err != nil {
		return nil, err
	}
	b := &sockBackend{c: c, server: s.Server, proto: "tcp", closing: make(chan struct{})}
	if s.Telnet {
		b.proto = "telnet"
	}
	var err error
	switch {
	case s.Server:
		err = b.listen()
	default:
		err = b.connectSetup()
	}
	if err != nil {
		return nil, err
	}
	if s.Server && s.Wait && b.ln != nil {
		c.say(true, "info: QEMU waiting for connection on: "+b.disc)
		conn, err := b.ln.Accept()
		if err != nil {
			b.close()
			return nil, qerror.Errno(ErrOpen, err, "Failed to accept connection")
		}
		if b.first, err = b.newPeer(conn); err != nil {
			b.close()
			return nil, newErr(ErrOpen, "%s", err)
		}
	}
	return b, nil
}

// fdParam is QEMU's monitor_fd_param for the command line.
func (b *sockBackend) fdParam() (int, error) {
	s := &b.c.spec
	if s.FD >= 0 && s.FDStr == strconv.Itoa(s.FD) {
		return s.FD, nil
	}
	if n, err := strconv.Atoi(s.FDStr); err == nil && n >= 0 {
		return n, nil
	}
	if s.FDStr != "" && b.c.opts.LookupFD != nil {
		return b.c.opts.LookupFD(s.FDStr)
	}
	if s.FDStr == "" && s.FD >= 0 {
		return s.FD, nil
	}
	return -1, newErr(ErrInvalid, "Unable to parse FD number %s", s.FDStr)
}

// inheritFD wraps an inherited socket descriptor, checking it is a socket.
func inheritFD(fd int) (*os.File, error) {
	if _, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil {
		return nil, newErr(ErrOpen, "File descriptor '%d' is not a socket", fd)
	}
	return os.NewFile(uintptr(fd), fmt.Sprintf("fd:%d", fd)), nil
}

func (b *sockBackend) listen() error {
	s := &b.c.spec
	switch {
	case s.Path != "":
		if len(s.Path) >= unixPathMax {
			return newErr(ErrInvalid, "UNIX socket path '%s' is too long", s.Path).
				AppendHint("Path must be less than %d bytes\n", unixPathMax)
		}
		if err := os.Remove(s.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return qerror.Errno(ErrOpen, err, "Failed to unlink socket %s", s.Path)
		}
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.Path, Net: "unix"})
		if err != nil {
			return qerror.Errno(ErrOpen, err, "Failed to bind socket to %s", s.Path)
		}
		ln.SetUnlinkOnClose(false)
		b.ln, b.unlink = ln, s.Path
	case s.Host != "" || s.Port != "":
		ips, port, err := resolve(s.Host, s.Port, true, s.IPv4, s.IPv6)
		if err != nil {
			return err
		}
		last := port
		if s.To > port {
			last = s.To
		}
		var lerr error
	search:
		for _, ip := range ips {
			for p := port; p <= last; p++ {
				ln, err := net.ListenTCP(tcpNet(ip), &net.TCPAddr{IP: ip, Port: p})
				if err == nil {
					b.ln = ln
					break search
				}
				lerr = err
			}
		}
		if b.ln == nil {
			return qerror.Errno(ErrOpen, lerr, "Failed to find an available port")
		}
	default:
		if s.FDStr == "" && s.FD < 0 {
			// QEMU skips listening on an empty fd= (e.g. port= without
			// host=): the chardev exists but never accepts.
			b.disc = "disconnected:fd:,server=on"
			return nil
		}
		fd, err := b.fdParam()
		if err != nil {
			return err
		}
		f, err := inheritFD(fd)
		if err != nil {
			return err
		}
		ln, err := net.FileListener(f)
		if err != nil {
			return qerror.Errno(ErrOpen, err, "Failed to listen on fd %d", fd)
		}
		b.ln, b.lnFile = ln, f
		if ua, ok := ln.Addr().(*net.UnixAddr); ok && ua.Name != "" && ua.Name[0] != '@' {
			b.unlink = ua.Name // QEMU removes it at exit, inherited or not
		}
	}
	b.disc = "disconnected:" + b.addrString(b.ln.Addr(), false) + ",server=on"
	return nil
}

// addrString is QEMU's qemu_chr_socket_address for a local address.
func (b *sockBackend) addrString(a net.Addr, brackets bool) string {
	switch a := a.(type) {
	case *net.UnixAddr:
		return "unix:" + a.Name
	case *net.TCPAddr:
		return b.proto + ":" + hostString(a.IP, brackets) + ":" + strconv.Itoa(a.Port)
	}
	return "unknown"
}

func hostString(ip net.IP, brackets bool) string {
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}
	if brackets {
		return "[" + ip.String() + "]"
	}
	return ip.String()
}

func tcpNet(ip net.IP) string {
	if ip.To4() != nil {
		return "tcp4"
	}
	return "tcp6"
}

// resolve is getaddrinfo as QEMU's inet_listen/inet_connect use it, with its
// error texts. IPv4 addresses come first.
func resolve(host, port string, passive, only4, only6 bool) ([]net.IP, int, error) {
	fail := func(why string) error {
		return newErr(ErrOpen, "address resolution failed for %s:%s: %s", host, port, why)
	}
	p, err := strconv.ParseUint(port, 10, 64)
	if err != nil {
		n, lerr := net.LookupPort("tcp", port)
		if lerr != nil || port == "" {
			return nil, 0, fail("Servname not supported for ai_socktype")
		}
		p = uint64(n)
	}
	p &= 0xffff // glibc stores the number with htons()
	var ips []net.IP
	switch {
	case host == "" && passive:
		ips = []net.IP{net.IPv4zero, net.IPv6unspecified}
	case host == "":
		ips = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	default:
		if ip := net.ParseIP(host); ip != nil {
			ips = []net.IP{ip}
		} else {
			addrs, err := net.DefaultResolver.LookupIPAddr(context.Background(), host)
			if err != nil {
				var de *net.DNSError
				if errors.As(err, &de) && !de.IsNotFound {
					return nil, 0, fail("Temporary failure in name resolution")
				}
				return nil, 0, fail("Name or service not known")
			}
			for _, a := range addrs {
				if a.IP.To4() != nil {
					ips = append(ips, a.IP)
				}
			}
			for _, a := range addrs {
				if a.IP.To4() == nil {
					ips = append(ips, a.IP)
				}
			}
		}
	}
	if only4 != only6 {
		var f []net.IP
		for _, ip := range ips {
			if (ip.To4() != nil) == only4 {
				f = append(f, ip)
			}
		}
		ips = f
	}
	if len(ips) == 0 {
		return nil, 0, fail("Address family for hostname not supported")
	}
	return ips, int(p), nil
}

func (b *sockBackend) connectSetup() error {
	s := &b.c.spec
	switch {
	case s.Path != "":
		b.disc = "disconnected:unix:" + s.Path
		b.dial = func() (net.Conn, error) {
			conn, err := net.Dial("unix", s.Path)
			if err != nil {
				return nil, qerror.Errno(ErrOpen, err, "Failed to connect to '%s'", s.Path)
			}
			return conn, nil
		}
	case s.Host != "":
		b.disc = "disconnected:" + b.proto + ":" + s.Host + ":" + s.Port
		b.dial = func() (net.Conn, error) {
			ips, port, err := resolve(s.Host, s.Port, false, s.IPv4, s.IPv6)
			if err != nil {
				return nil, err
			}
			var cerr error
			for _, ip := range ips {
				conn, err := net.DialTCP(tcpNet(ip), nil, &net.TCPAddr{IP: ip, Port: port})
				if err == nil {
					return conn, nil
				}
				cerr = err
			}
			return nil, qerror.Errno(ErrOpen, cerr, "Failed to connect to '%s:%s'", s.Host, s.Port)
		}
	default:
		b.disc = "disconnected:fd:" + s.FDStr
		fd, err := b.fdParam()
		if err != nil {
			return err
		}
		f, err := inheritFD(fd)
		if err != nil {
			return err
		}
		conn, err := net.FileConn(f)
		f.Close() // FileConn holds its own duplicate
		if err != nil {
			return qerror.Errno(ErrOpen, err, "Failed to use fd %d", fd)
		}
		b.first, err = b.newPeer(conn)
		return err
	}
	if s.Reconnect > 0 {
		b.reconn = time.Duration(s.Reconnect) * time.Second
		return nil // connected asynchronously by next()
	}
	conn, err := b.dial()
	if err != nil {
		return err
	}
	b.first, err = b.newPeer(conn)
	return err
}

// newPeer wraps a fresh connection: TCP_NODELAY as asked, the telnet
// negotiation, the filename QEMU computes for a connected socket.
func (b *sockBackend) newPeer(conn net.Conn) (*peer, error) {
	s := &b.c.spec
	var name string
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(s.NoDelay)
		srv := ""
		if b.server {
			srv = ",server=on"
		}
		name = b.addrString(conn.LocalAddr(), true) + srv + " <-> " +
			hostString(conn.RemoteAddr().(*net.TCPAddr).IP, true) + ":" +
			strconv.Itoa(conn.RemoteAddr().(*net.TCPAddr).Port)
	} else if b.server {
		name = b.addrString(conn.LocalAddr(), false) + ",server=on"
	} else {
		name = b.addrString(conn.RemoteAddr(), false)
	}
	var rw Conn = conn
	if s.Telnet || s.TN3270 {
		tc := &telnetConn{Conn: conn, state: 1, brk: b.breakEvent}
		if _, err := conn.Write(telnetInit(s.TN3270)); err != nil {
			conn.Close()
			return nil, qerror.Errno(ErrOpen, err, "telnet negotiation failed")
		}
		rw = tc
	}
	return newPeer(rw, name, true, true), nil
}

func (b *sockBackend) breakEvent() {
	c := b.c
	c.mu.Lock()
	var fe *Frontend
	if c.spec.Mux {
		if c.focus >= 0 && c.focus < len(c.fes) {
			fe = c.fes[c.focus]
		}
	} else if len(c.fes) > 0 {
		fe = c.fes[0]
	}
	c.mu.Unlock()
	if fe != nil {
		fe.emit(EventBreak)
	}
}

func (b *sockBackend) disconnectedName() string { return b.disc }

func (b *sockBackend) takeFirst() *peer {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.first
	b.first = nil
	return p
}

func (b *sockBackend) next() (*peer, error) {
	if b.server {
		if b.ln == nil {
			<-b.closing
			return nil, errDone
		}
		for {
			conn, err := b.ln.Accept()
			if err != nil {
				select {
				case <-b.closing:
					return nil, errDone
				default:
				}
				if errors.Is(err, net.ErrClosed) {
					return nil, errDone
				}
				b.c.log.Warn().Err(err).Msg("accept")
				if !b.sleep(100 * time.Millisecond) {
					return nil, errDone
				}
				continue
			}
			p, err := b.newPeer(conn)
			if err != nil {
				continue
			}
			return p, nil
		}
	}
	if b.reconn == 0 {
		<-b.closing
		return nil, errDone
	}
	first := true
	for {
		if !first && !b.sleep(b.reconn) {
			return nil, errDone
		}
		first = false
		select {
		case <-b.closing:
			return nil, errDone
		default:
		}
		conn, err := b.dial()
		if err != nil {
			b.mu.Lock()
			if !b.reported {
				b.reported = true
				b.c.say(false, fmt.Sprintf("Unable to connect character device %s: %s", b.c.spec.ID, err))
			}
			b.mu.Unlock()
			continue
		}
		b.mu.Lock()
		b.reported = false
		b.mu.Unlock()
		if p, err := b.newPeer(conn); err == nil {
			return p, nil
		}
	}
}

// sleep waits d or until close; it reports false on close.
func (b *sockBackend) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-b.closing:
		return false
	case <-t.C:
		return true
	}
}

func (b *sockBackend) close() error {
	select {
	case <-b.closing:
		return nil
	default:
	}
	close(b.closing)
	if b.ln != nil {
		b.ln.Close()
	}
	b.mu.Lock()
	p := b.first
	b.first = nil
	b.mu.Unlock()
	if p != nil {
		p.shutdown()
	}
	return nil
}

// release runs after every goroutine has stopped: remove the socket path
// and close the inherited descriptor (exit time).
func (b *sockBackend) release() {
	if b.unlink != "" {
		if err := os.Remove(b.unlink); err != nil && !errors.Is(err, os.ErrNotExist) {
			b.c.log.Debug().Err(err).Msg("unlink")
		}
	}
	if b.lnFile != nil {
		b.lnFile.Close()
	}
}
