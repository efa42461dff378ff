package netdev

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Host forwarding rules of user back-ends: -netdev user,hostfwd=RULE and HMP hostfwd_add
// and hostfwd_remove (net/slirp.c slirp_hostfwd, hmp_hostfwd_add, hmp_hostfwd_remove;
// libslirp slirp_add_hostfwd, slirp_remove_hostxfwd). A rule binds a real host socket:
//
//	[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport
//
// hostaddr and guestaddr are read by inet_aton ("127.1" and "0x7f.0.0.1" are 127.0.0.1),
// the ports by strtol in base 0 ("0x16", "026"). A rule removed is found by its socket's
// bound address and port (getsockname), the port read by qemu_strtoi in base 10. slirp keeps
// its sockets newest first, so a rule added at run time comes before the older ones in
// info usernet.

// hostFwdRule is a parsed rule.
type hostFwdRule struct {
	udp             bool
	host, guest     netip.Addr // host: the unspecified address for any; guest: invalid for the DHCP start
	hostPort, gPort int
}

// parseHostFwd is slirp_hostfwd's parse, with its fail reasons.
func parseHostFwd(rule string) (hostFwdRule, error) {
	var r hostFwdRule
	bad := func(why string) (hostFwdRule, error) {
		return r, errf(ErrInvalid, "Invalid host forwarding rule '%s' (%s)", rule, why)
	}
	proto, p, ok := strings.Cut(rule, ":")
	if !ok {
		return bad("No : separators")
	}
	switch proto {
	case "", "tcp":
	case "udp":
		r.udp = true
	default:
		return bad("Bad protocol name")
	}
	haddr, p, ok := strings.Cut(p, ":")
	if !ok {
		return bad("Missing : separator")
	}
	r.host = netip.IPv4Unspecified()
	if haddr != "" {
		if r.host, ok = inetAton(haddr); !ok {
			return bad("Bad host address")
		}
	}
	hport, p, ok := strings.Cut(p, "-")
	if !ok {
		return bad("Bad host port separator")
	}
	if v, rest := strtol(hport); rest != "" || v < 0 || v > 65535 {
		return bad("Bad host port")
	} else {
		r.hostPort = int(v)
	}
	gaddr, gport, ok := strings.Cut(p, ":")
	if !ok {
		return bad("Missing guest address")
	}
	if gaddr != "" {
		if r.guest, ok = inetAton(gaddr); !ok {
			return bad("Bad guest address")
		}
	}
	if v, rest := strtol(gport); rest != "" || v < 1 || v > 65535 {
		return bad("Bad guest port")
	} else {
		r.gPort = int(v)
	}
	return r, nil
}

// hostFwd adds a rule to a user back-end (slirp_hostfwd): it binds the host port, as slirp
// does, so a port another socket holds fails. With no guest network stack behind it, a
// connection is closed at once. newest puts the rule first (a rule added at run time).
func (c *Client) hostFwd(rule string, newest bool) error {
	r, err := parseHostFwd(rule)
	if err != nil {
		return err
	}
	fwd := hostFwdSock{udp: r.udp, guestPort: r.gPort}
	if r.guest.IsValid() {
		fwd.guestAddr = r.guest.String()
	}
	addr := net.JoinHostPort(r.host.String(), strconv.Itoa(r.hostPort))
	bad := errf(ErrOpen, "Could not set up host forwarding rule '%s'", rule)
	var sock io.Closer
	if r.udp {
		conn, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return bad
		}
		sock = conn
	} else {
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			return bad
		}
		sock = l
		go func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				conn.Close()
			}
		}()
	}
	fwd.sock = sock
	c.res = append(c.res, sock)
	if newest {
		c.fwds = slices.Insert(c.fwds, 0, fwd)
	} else {
		c.fwds = append(c.fwds, fwd)
	}
	return nil
}

// userStack is slirp_lookup: the user back-end named id, or the first one; the text the
// monitor prints when there is none.
func (n *Net) userStack(id string) (*Client, string) {
	if id == "" {
		for _, c := range n.clients {
			if c.Type == TypeUser {
				return c, ""
			}
		}
		return nil, "user mode network stack not in use\n"
	}
	c := n.find(id)
	if c == nil {
		return nil, fmt.Sprintf("unrecognized netdev id '%s'\n", id)
	}
	if c.Type != TypeUser {
		return nil, "invalid device specified\n"
	}
	return c, ""
}

// HostFwdAdd is HMP hostfwd_add: a rule added to the user back-end id (the first one for
// ""). It returns what the monitor prints: nothing, or the reason it failed.
func (n *Net) HostFwdAdd(id, rule string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, msg := n.userStack(id)
	if c == nil {
		return msg
	}
	if err := c.hostFwd(rule, true); err != nil {
		return err.Error() + "\n"
	}
	return ""
}

// HostFwdRemove is HMP hostfwd_remove: the rule of the user back-end id (the first one for
// "") whose host socket is bound to [tcp|udp]:[hostaddr]:hostport is closed. It returns
// what the monitor prints.
func (n *Net) HostFwdRemove(id, spec string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, msg := n.userStack(id)
	if c == nil {
		return msg
	}
	proto, p, ok := strings.Cut(spec, ":")
	udp := proto == "udp"
	if !ok || (proto != "" && proto != "tcp" && !udp) {
		return "invalid format\n"
	}
	haddr, p, ok := strings.Cut(p, ":")
	host := netip.IPv4Unspecified()
	if ok && haddr != "" {
		host, ok = inetAton(haddr)
	}
	port, err := strconv.ParseInt(strings.TrimLeft(p, " \t\n\v\f\r"), 10, 32) // qemu_strtoi(p, NULL, 10)
	if !ok || err != nil {
		return "invalid format\n"
	}
	want := netip.AddrPortFrom(host, uint16(port)) // htons: the low 16 bits
	for i, f := range c.fwds {
		if f.udp != udp || boundAddr(f.sock) != want {
			continue
		}
		_ = f.sock.(io.Closer).Close()
		c.res = slices.DeleteFunc(c.res, func(r io.Closer) bool { return r == f.sock })
		c.fwds = slices.Delete(c.fwds, i, i+1)
		return fmt.Sprintf("host forwarding rule for %s removed\n", spec)
	}
	return fmt.Sprintf("host forwarding rule for %s not found\n", spec)
}

// boundAddr is a rule's socket's address (getsockname).
func boundAddr(sock any) netip.AddrPort {
	var a net.Addr
	switch s := sock.(type) {
	case net.Listener:
		a = s.Addr()
	case net.PacketConn:
		a = s.LocalAddr()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// inetAton is glibc's inet_aton: one to four parts, each decimal, octal (0…) or hex (0x…),
// the last filling the bytes the others leave ("127.1" is 127.0.0.1); a blank may end it.
func inetAton(s string) (netip.Addr, bool) {
	if i := strings.IndexAny(s, " \t\n\v\f\r"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		if p == "" || p[0] < '0' || p[0] > '9' {
			return netip.Addr{}, false
		}
		v, rest := strtol(p)
		if rest != "" || v > 0xffffffff {
			return netip.Addr{}, false
		}
		vals[i] = uint64(v)
	}
	n := len(vals)
	for _, v := range vals[:n-1] {
		if v > 0xff {
			return netip.Addr{}, false
		}
	}
	if vals[n-1] > uint64(0xffffffff)>>(8*(n-1)) {
		return netip.Addr{}, false
	}
	var a uint64
	for _, v := range vals[:n-1] {
		a = a<<8 | v
	}
	a = a<<(8*(5-n)) | vals[n-1]
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), true
}

// strtol is C's strtol(s, &end, 0) for the values a port can take: leading blanks, a sign,
// 0x or 0 prefixes; the value and the text after the number (all of s when there is none).
func strtol(s string) (int64, string) {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	base := 10
	switch {
	case len(t) > 2 && (t[:2] == "0x" || t[:2] == "0X") && isDigit(t[2], 16):
		base, t = 16, t[2:]
	case len(t) > 1 && t[0] == '0':
		base = 8
	}
	i := 0
	var v int64
	for i < len(t) && isDigit(t[i], base) {
		if v < 1<<40 {
			v = v*int64(base) + digit(t[i])
		}
		i++
	}
	if i == 0 {
		return 0, s
	}
	if neg {
		v = -v
	}
	return v, t[i:]
}

func isDigit(c byte, base int) bool {
	switch {
	case c >= '0' && c <= '9':
		return int(c-'0') < base
	case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		return base == 16
	}
	return false
}

func digit(c byte) int64 {
	switch {
	case c >= 'a':
		return int64(c-'a') + 10
	case c >= 'A':
		return int64(c-'A') + 10
	}
	return int64(c - '0')
}
