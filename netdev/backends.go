package netdev

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"tlcvm/compat/qerror"
)

// Config is one back-end's options (QAPI Netdev): ID, Type and the member of that type.
type Config struct {
	ID, Type string
	// GeneratedID: ID is one QEMU generated ("#net…", a -nic without id=), not checked
	// as an identifier.
	GeneratedID bool
	User        *User
	Tap         *Tap
	Socket      *Socket
	Stream      *Stream
	Dgram       *Dgram
	Hubport     *Hubport
	VhostUser   *VhostUser
	// FD resolves an fd= or fds= item: a getfd name, or a descriptor number (QEMU's
	// monitor_fd_param). The descriptor is the back-end's from then on.
	FD func(name string) (int, error)
	// Chardev reports whether a chardev exists (vhost-user's chardev=).
	Chardev func(id string) bool
	// Event emits a QMP event (NETDEV_STREAM_CONNECTED); nil drops it.
	Event func(name string, data any)
}

// User is NetdevUserOptions (the members tlcvm checks; the rest are accepted).
type User struct {
	Net, Host, DHCPStart, DNS string
	Restrict                  bool
	IPv4, IPv6                *bool
	HostFwd, GuestFwd         []string
}

// Tap is NetdevTapOptions.
type Tap struct {
	IfName, FD, FDs, Script, DownScript, Helper, VhostFD, VhostFDs string
	VnetHdr, Vhost                                                 *bool
	Queues                                                         *int64
}

// Socket is NetdevSocketOptions.
type Socket struct{ FD, Listen, Connect, Mcast, LocalAddr, UDP string }

// SocketAddress is QAPI's SocketAddress: inet (Host, Port), unix (Path) or fd (FD).
type SocketAddress struct{ Type, Host, Port, Path, FD string }

// Stream is NetdevStreamOptions.
type Stream struct {
	Addr   SocketAddress
	Server bool
}

// Dgram is NetdevDgramOptions.
type Dgram struct{ Local, Remote *SocketAddress }

// Hubport is NetdevHubPortOptions.
type Hubport struct {
	HubID  int64
	Netdev string
}

// VhostUser is NetdevVhostUserOptions.
type VhostUser struct{ Chardev string }

// open makes the back-end of c (net_client_init_fun[type]).
func (n *Net) open(c *Client, cfg Config) error {
	switch cfg.Type {
	case TypeUser:
		u := cfg.User
		if u == nil {
			u = &User{}
		}
		return openUser(c, u)
	case TypeTap:
		t := cfg.Tap
		if t == nil {
			t = &Tap{}
		}
		return openTap(c, t, cfg)
	case TypeSocket:
		s := cfg.Socket
		if s == nil {
			s = &Socket{}
		}
		return openSocket(c, s, cfg)
	case TypeStream:
		return openStream(c, cfg.Stream, cfg)
	case TypeDgram:
		return openDgram(c, cfg.Dgram)
	case TypeHubport:
		return n.openHubport(c, cfg.Hubport)
	case "vhost-user":
		if cfg.VhostUser == nil || cfg.Chardev == nil || !cfg.Chardev(cfg.VhostUser.Chardev) {
			id := ""
			if cfg.VhostUser != nil {
				id = cfg.VhostUser.Chardev
			}
			return errf(ErrInvalid, "chardev \"%s\" not found", id)
		}
		return errf(ErrOpen, "tlcvm: vhost-user network back-ends are not supported")
	case "vde":
		return errf(ErrOpen, "Could not open vde: No such file or directory")
	case "bridge":
		return errf(ErrOpen, "bridge helper failed")
	}
	return errf(ErrOpen, "tlcvm: network back-end '%s' is not supported", cfg.Type)
}

// openUser checks the options as net_slirp_init does. There is no slirp behind: tlcvm's
// guest sends no packets.
func openUser(c *Client, u *User) error {
	if u.IPv4 != nil && u.IPv6 != nil && !*u.IPv4 && !*u.IPv6 {
		return errf(ErrInvalid, "IPv4 and IPv6 disabled")
	}
	netw := netip.MustParsePrefix("10.0.2.0/24")
	if u.Net != "" {
		addr, bits, hasBits := strings.Cut(u.Net, "/")
		a, err := netip.ParseAddr(addr)
		if err != nil || !a.Is4() {
			return errf(ErrInvalid, "Failed to parse netmask")
		}
		n := 24
		if hasBits {
			v, err := strconv.Atoi(bits)
			if err != nil {
				if m, err := netip.ParseAddr(bits); err == nil && m.Is4() {
					b := m.As4()
					v = 0
					for _, x := range b {
						for x&0x80 != 0 {
							v, x = v+1, x<<1
						}
					}
				} else {
					return errf(ErrInvalid, "Failed to parse netmask")
				}
			}
			if v < 4 || v > 32 {
				return errf(ErrInvalid, "Invalid netmask provided (must be in range 4-32)")
			}
			n = v
		}
		netw = netip.PrefixFrom(a, n).Masked()
	}
	in := func(s, what string) error {
		if s == "" {
			return nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return errf(ErrInvalid, "Failed to parse %s", what)
		}
		if !netw.Contains(a) {
			return errf(ErrInvalid, "%s doesn't belong to network", strings.ToUpper(what[:1])+what[1:])
		}
		return nil
	}
	if err := in(u.Host, "host"); err != nil {
		return err
	}
	if err := in(u.DHCPStart, "DHCP start address"); err != nil {
		return err
	}
	if err := in(u.DNS, "DNS"); err != nil {
		return err
	}
	c.guestAddr = u.DHCPStart
	if c.guestAddr == "" {
		b := netw.Addr().As4()
		b[3] |= 15 // slirp's vdhcp_startaddr: the network's .15
		c.guestAddr = netip.AddrFrom4(b).String()
	}
	for _, r := range u.HostFwd {
		if err := c.hostFwd(r, false); err != nil {
			return err
		}
	}
	restrict := "off"
	if u.Restrict {
		restrict = "on"
	}
	c.info = fmt.Sprintf("net=%s,restrict=%s", netw.Addr(), restrict)
	return nil
}

// fdFile wraps a descriptor the back-end owns.
type fdFile int

func (f fdFile) Close() error { return unix.Close(int(f)) }

// tunGetIff is tap_probe_vnet_hdr's check that fd is a tap.
func tunGetIff(fd int) error {
	var ifr [unix.IFNAMSIZ + 64]byte
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNGETIFF, uintptr(unsafe.Pointer(&ifr[0])))
	if errno != 0 {
		return qerror.Wrapf(ErrOpen, errno, "Unable to query TUNGETIFF on FD %d: %s", fd, qerror.Strerror(errno))
	}
	return nil
}

// openTap takes the tap descriptors (fd=, fds=) or opens the tap named ifname=; network
// scripts and the bridge helper are not run.
func openTap(c *Client, t *Tap, cfg Config) error {
	if t.FD != "" {
		if t.IfName != "" || t.Script != "" || t.DownScript != "" || t.VnetHdr != nil || t.Helper != "" ||
			t.Queues != nil || t.FDs != "" || t.VhostFDs != "" {
			return errf(ErrInvalid, "ifname=, script=, downscript=, vnet_hdr=, helper=, queues=, fds=, and vhostfds= are invalid with fd=")
		}
		fd, err := resolveFD(c.Name, t.FD, cfg)
		if err != nil {
			return err
		}
		c.res = append(c.res, fdFile(fd))
		if err := tunGetIff(fd); err != nil {
			return err
		}
		c.info = fmt.Sprintf("fd=%d", fd)
		return vhost(t)
	}
	if t.FDs != "" {
		var infos []string
		for _, name := range strings.Split(t.FDs, ":") {
			fd, err := resolveFD(c.Name, name, cfg)
			if err != nil {
				return err
			}
			c.res = append(c.res, fdFile(fd))
			if err := tunGetIff(fd); err != nil {
				return err
			}
			infos = append(infos, fmt.Sprintf("fd=%d", fd))
		}
		c.info = infos[0]
		return vhost(t)
	}
	if t.Helper != "" {
		return errf(ErrOpen, "bridge helper failed")
	}
	if t.Script != "no" || t.DownScript != "no" {
		return errf(ErrOpen, "tlcvm: tap network scripts are not run: give fd= or script=no,downscript=no")
	}
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return qerror.Wrapf(ErrOpen, err, "could not open /dev/net/tun: %s", qerror.Strerror(err))
	}
	c.res = append(c.res, f)
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if t.VnetHdr == nil || *t.VnetHdr {
		flags |= unix.IFF_VNET_HDR
	}
	ifr, err := unix.NewIfreq(t.IfName)
	if err != nil {
		return errf(ErrInvalid, "tlcvm: bad tap name '%s'", t.IfName)
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(int(f.Fd()), unix.TUNSETIFF, ifr); err != nil {
		return qerror.Wrapf(ErrOpen, err, "could not configure /dev/net/tun (%s): %s", t.IfName, qerror.Strerror(err))
	}
	c.info = fmt.Sprintf("ifname=%s,script=no,downscript=no", ifr.Name())
	return vhost(t)
}

func vhost(t *Tap) error {
	if (t.Vhost != nil && *t.Vhost) || t.VhostFD != "" || t.VhostFDs != "" {
		return errf(ErrOpen, "tap: open vhost char device failed: No such file or directory")
	}
	return nil
}

// resolveFD is monitor_fd_param plus the check that the descriptor is open.
func resolveFD(name, item string, cfg Config) (int, error) {
	if cfg.FD == nil {
		return -1, errf(ErrInvalid, "File descriptor named '%s' has not been found", item)
	}
	fd, err := cfg.FD(item)
	if err != nil {
		return -1, err
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		return -1, qerror.Wrapf(ErrOpen, err, "%s: Can't use file descriptor %d: %s", name, fd, qerror.Strerror(err))
	}
	return fd, nil
}

// hostPort is inet_parse's split.
func hostPort(s string) (string, string, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return "", "", errf(ErrInvalid, "host address '%s' doesn't contain ':' separating host from port", s)
	}
	return s[:i], s[i+1:], nil
}

// openSocket is net_init_socket: exactly one of listen=, connect=, mcast=, udp= (or fd=).
func openSocket(c *Client, s *Socket, cfg Config) error {
	n := 0
	for _, v := range []string{s.FD, s.Listen, s.Connect, s.Mcast, s.UDP} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return errf(ErrInvalid, "exactly one of listen=, connect=, mcast= or udp= is required")
	}
	switch {
	case s.FD != "":
		fd, err := resolveFD(c.Name, s.FD, cfg)
		if err != nil {
			return err
		}
		c.res = append(c.res, fdFile(fd))
		c.info = fmt.Sprintf("socket: fd=%d", fd)
	case s.Listen != "":
		host, port, err := hostPort(s.Listen)
		if err != nil {
			return err
		}
		l, err := net.Listen("tcp4", net.JoinHostPort(host, port))
		if err != nil {
			return qerror.Wrapf(ErrOpen, err, "can't bind ip=%s to socket: %s", host, qerror.Strerror(err))
		}
		c.res = append(c.res, l)
		go func() { // one connection, as QEMU takes one
			conn, err := l.Accept()
			if err != nil {
				return
			}
			a := conn.RemoteAddr().(*net.TCPAddr)
			c.mu.Lock()
			c.res = append(c.res, conn)
			c.info = fmt.Sprintf("socket: connection from %s:%d", a.IP, a.Port)
			c.mu.Unlock()
		}()
	case s.Connect != "":
		if _, _, err := hostPort(s.Connect); err != nil {
			return err
		}
		// A refused connection is no error; the client shows no connection then.
		if conn, err := net.Dial("tcp4", s.Connect); err == nil {
			c.res = append(c.res, conn)
			c.info = "socket: connect to " + s.Connect
		}
	case s.Mcast != "":
		if _, _, err := hostPort(s.Mcast); err != nil {
			return err
		}
		c.info = "socket: mcast=" + s.Mcast
	case s.UDP != "":
		if s.LocalAddr == "" {
			return errf(ErrInvalid, "localaddr= is mandatory with udp=")
		}
		conn, err := net.ListenPacket("udp4", s.LocalAddr)
		if err != nil {
			return qerror.Wrapf(ErrOpen, err, "can't bind ip=%s to socket: %s", s.LocalAddr, qerror.Strerror(err))
		}
		c.res = append(c.res, conn)
		c.info = fmt.Sprintf("socket: udp=%s", s.UDP)
	}
	return nil
}

// openStream is net_init_stream: a server listens and takes one connection, a client
// connects; each emits NETDEV_STREAM_CONNECTED.
func openStream(c *Client, s *Stream, cfg Config) error {
	if s == nil {
		return errf(ErrInvalid, "Parameter 'addr' is missing")
	}
	network, addr := "tcp4", ""
	switch s.Addr.Type {
	case "inet":
		addr = net.JoinHostPort(s.Addr.Host, s.Addr.Port)
	case "unix":
		network, addr = "unix", s.Addr.Path
	default:
		return errf(ErrOpen, "tlcvm: stream address type '%s' is not supported", s.Addr.Type)
	}
	connected := func(conn net.Conn, peer net.Addr) {
		c.mu.Lock()
		c.res = append(c.res, conn)
		c.mu.Unlock()
		if a, ok := peer.(*net.TCPAddr); ok {
			c.setInfo(fmt.Sprintf("tcp:%s:%d", a.IP, a.Port))
			if cfg.Event != nil {
				cfg.Event("NETDEV_STREAM_CONNECTED", StreamConnected{ID: c.Name, Host: a.IP.String(), Port: strconv.Itoa(a.Port)})
			}
		} else {
			c.setInfo("unix:" + s.Addr.Path)
		}
	}
	if s.Server {
		l, err := net.Listen(network, addr)
		if err != nil {
			return qerror.Wrapf(ErrOpen, err, "Failed to bind socket: %s", qerror.Strerror(err))
		}
		c.res = append(c.res, l)
		go func() {
			conn, err := l.Accept()
			if err == nil {
				connected(conn, conn.RemoteAddr())
			}
		}()
		return nil
	}
	conn, err := net.Dial(network, addr)
	if err != nil {
		c.info = "connection error"
		return nil
	}
	connected(conn, conn.RemoteAddr())
	return nil
}

// StreamConnected is NETDEV_STREAM_CONNECTED's data for an inet peer.
type StreamConnected struct{ ID, Host, Port string }

// openDgram is net_init_dgram for inet addresses: local= is required.
func openDgram(c *Client, d *Dgram) error {
	if d == nil || d.Local == nil {
		return errf(ErrInvalid, "dgram requires local= parameter")
	}
	if (d.Local.Type == "inet" || d.Local.Type == "unix") && d.Remote == nil {
		return errf(ErrInvalid, "type=inet or type=unix requires remote parameter")
	}
	if d.Local.Type != "inet" || d.Remote.Type != "inet" {
		return errf(ErrOpen, "tlcvm: dgram addresses other than inet are not supported")
	}
	local := net.JoinHostPort(d.Local.Host, d.Local.Port)
	conn, err := net.ListenPacket("udp4", local)
	if err != nil {
		return qerror.Wrapf(ErrOpen, err, "can't bind ip=%s to socket: %s", d.Local.Host, qerror.Strerror(err))
	}
	c.res = append(c.res, conn)
	c.info = "udp=" + local + "/" + net.JoinHostPort(d.Remote.Host, d.Remote.Port)
	return nil
}

// openHubport is net_init_hubport: a port of hub hubid (made on first use), optionally
// peered with a back-end.
func (n *Net) openHubport(c *Client, h *Hubport) error {
	if h == nil {
		return errf(ErrInvalid, "Parameter 'hubid' is missing")
	}
	var peer *Client
	if h.Netdev != "" {
		if peer = n.find(h.Netdev); peer == nil {
			return errf(ErrInvalid, "Device '%s' not found", h.Netdev)
		}
		if peer.peer != nil {
			return errf(ErrInUse, "Device '%s' is already in use", h.Netdev)
		}
	}
	n.addHubPort(c, int(h.HubID))
	if peer != nil {
		c.peer, peer.peer = peer, c
	}
	return nil
}

func (n *Net) addHubPort(c *Client, id int) {
	var hb *hub
	for _, x := range n.hubs {
		if x.id == id {
			hb = x
		}
	}
	if hb == nil {
		hb = &hub{id: id}
		n.hubs = append(n.hubs, hb)
	}
	c.Type, c.Model, c.hub = TypeHubport, TypeHubport, hb
	hb.ports = append(hb.ports, c)
}
