package netdev

import (
	"fmt"
	"net"
	"strings"
	"syscall"
)

// info usernet (net/slirp.c hmp_info_usernet, libslirp's slirp_connection_info): per user
// back-end, in creation order, its hub ("Hub -1" when not on one) and name, the socket
// table's header, and one row per socket slirp holds. With no guest network stack behind a
// user back-end, its only sockets are the hostfwd rules' listeners, "HOST_FORWARD" rows with
// tlcvm's descriptor and bound address: TCP rules first, then UDP, each in rule order, as
// QEMU 7.2 prints them.
//
//	Hub -1 (h1):
//	  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ
//	  TCP[HOST_FORWARD]   9               * 38461       10.0.2.15    22     0     0

// hostFwdSock is one hostfwd rule's host socket.
type hostFwdSock struct {
	udp       bool
	guestAddr string // "" for the back-end's DHCP start
	guestPort int
	sock      any // net.Listener or net.PacketConn
}

// UserNetInfo is the text of HMP info usernet.
func (n *Net) UserNetInfo() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var b strings.Builder
	for _, c := range n.clients {
		if c.Type != TypeUser {
			continue
		}
		hub := -1
		if p := c.peer; p != nil && p.hub != nil {
			hub = p.hub.id
		}
		fmt.Fprintf(&b, "Hub %d (%s):\n", hub, c.Name)
		b.WriteString("  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\n")
		for _, udp := range []bool{false, true} {
			for _, f := range c.fwds {
				if f.udp == udp {
					c.fwdRow(&b, f)
				}
			}
		}
	}
	return b.String()
}

func (c *Client) fwdRow(b *strings.Builder, f hostFwdSock) {
	var addr net.Addr
	var sc syscall.Conn
	switch s := f.sock.(type) {
	case *net.TCPListener:
		addr, sc = s.Addr(), s
	case *net.UDPConn:
		addr, sc = s.LocalAddr(), s
	default:
		return
	}
	fd := -1
	if raw, err := sc.SyscallConn(); err == nil {
		_ = raw.Control(func(d uintptr) { fd = int(d) })
	}
	src, port := "*", 0
	if a, ok := addr.(*net.TCPAddr); ok {
		port = a.Port
		if !a.IP.IsUnspecified() {
			src = a.IP.String()
		}
	} else if a, ok := addr.(*net.UDPAddr); ok {
		port = a.Port
		if !a.IP.IsUnspecified() {
			src = a.IP.String()
		}
	}
	proto := "TCP"
	if f.udp {
		proto = "UDP"
	}
	dst := f.guestAddr
	if dst == "" {
		dst = c.guestAddr
	}
	fmt.Fprintf(b, "%-19s %3d %15s %5d %15s %5d %5d %5d\n", "  "+proto+"[HOST_FORWARD]", fd, src, port, dst, f.guestPort, 0, 0)
}
