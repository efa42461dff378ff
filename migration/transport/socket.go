package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"tlcvm/compat/qerror"
)

// SocketAddress is one address an incoming tcp:/unix: source listens on, as QEMU 7.2's
// query-migrate shows it under "socket-address" (SocketAddress in qapi/sockets.json).
// It marshals with QEMU's member order: {"port", "ipv6"|"ipv4", "host", "type": "inet"}
// or {"path", "type": "unix"}.
type SocketAddress struct {
	Type string // "inet" or "unix"
	Host string // inet: numeric, "::" / "0.0.0.0" for every address
	Port string // inet: decimal
	IPv6 bool   // inet: the family (ipv4 otherwise)
	Path string // unix
}

// MarshalJSON writes QEMU's member order.
func (s SocketAddress) MarshalJSON() ([]byte, error) {
	if s.Type == "unix" {
		return json.Marshal(struct {
			Path string `json:"path"`
			Type string `json:"type"`
		}{s.Path, s.Type})
	}
	if s.IPv6 {
		return json.Marshal(struct {
			Port string `json:"port"`
			IPv6 bool   `json:"ipv6"`
			Host string `json:"host"`
			Type string `json:"type"`
		}{s.Port, true, s.Host, s.Type})
	}
	return json.Marshal(struct {
		Port string `json:"port"`
		IPv4 bool   `json:"ipv4"`
		Host string `json:"host"`
		Type string `json:"type"`
	}{s.Port, true, s.Host, s.Type})
}

// dial connects a tcp:/unix: destination with QEMU's texts: "Failed to connect to
// '127.0.0.1:1': Connection refused", "address resolution failed for h:p: Name or service
// not known", "Failed to connect to '/x/sock': No such file or directory".
func dial(ctx context.Context, a Address) (net.Conn, error) {
	var d net.Dialer
	if a.Scheme == SchemeUnix {
		// A unix listener whose backlog is full answers a non-blocking connect with
		// EAGAIN; QEMU's connect blocks (in its thread) until there is room, or a cancel.
		for {
			c, err := d.DialContext(ctx, "unix", a.Path)
			if err == nil {
				return c, nil
			}
			if !errors.Is(err, syscall.EAGAIN) || ctx.Err() != nil {
				return nil, withErrno(fmt.Sprintf("Failed to connect to '%s'", a.Path), ErrConnect, err)
			}
			select {
			case <-ctx.Done():
				return nil, withErrno(fmt.Sprintf("Failed to connect to '%s'", a.Path), ErrConnect, ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	addrs, err := resolve(ctx, a)
	if err != nil {
		return nil, err
	}
	var last error
	for _, ap := range addrs {
		c, err := d.DialContext(ctx, "tcp", ap)
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, withErrno(fmt.Sprintf("Failed to connect to '%s:%s'", a.Host, a.Port), ErrConnect, last)
}

// resolve is getaddrinfo for a tcp: address: "host:port" strings to try in order,
// filtered by the ipv4/ipv6 flags.
func resolve(ctx context.Context, a Address) ([]string, error) {
	fail := func(why string, cause error) error {
		return newError(fmt.Sprintf("address resolution failed for %s:%s: %s", a.Host, a.Port, why), ErrConnect, cause)
	}
	port, err := lookupPort(ctx, a.Port)
	if err != nil {
		return nil, fail("Servname not supported for ai_socktype", err)
	}
	if a.Host == "" {
		return nil, fail("Name or service not known", nil)
	}
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", a.Host)
	if err != nil {
		var dns *net.DNSError
		switch {
		case errors.As(err, &dns) && dns.IsNotFound:
			return nil, fail("Name or service not known", err)
		case errors.As(err, &dns) && (dns.IsTemporary || dns.IsTimeout):
			return nil, fail("Temporary failure in name resolution", err)
		}
		return nil, fail(qerror.Strerror(err), err)
	}
	var out []string
	for _, ip := range ips {
		v4 := ip.To4() != nil
		if v4 && a.IPv4 != nil && !*a.IPv4 || !v4 && a.IPv6 != nil && !*a.IPv6 ||
			v4 && a.IPv6 != nil && *a.IPv6 && (a.IPv4 == nil || !*a.IPv4) ||
			!v4 && a.IPv4 != nil && *a.IPv4 && (a.IPv6 == nil || !*a.IPv6) {
			continue
		}
		out = append(out, net.JoinHostPort(ip.String(), strconv.Itoa(port)))
	}
	if len(out) == 0 {
		return nil, fail("Address family for hostname not supported", nil)
	}
	return out, nil
}

// lookupPort reads a decimal port or a service name (getaddrinfo's service).
func lookupPort(ctx context.Context, p string) (int, error) {
	if n, err := strconv.Atoi(p); err == nil {
		if n < 0 || n > 65535 {
			return 0, fmt.Errorf("port %d out of range", n)
		}
		return n, nil
	}
	return net.DefaultResolver.LookupPort(ctx, "tcp", p)
}

// listen opens an incoming tcp:/unix: socket at once (so that "-incoming tcp:…" listens
// before the QMP greeting), with QEMU's texts: "Failed to bind socket: Cannot assign
// requested address", "Failed to bind socket to /x/sock: No such file or directory". A
// unix: path that exists is replaced, as QEMU's unix_listen_saddr does.
func listen(a Address) (net.Listener, error) {
	if a.Scheme == SchemeUnix {
		if fi, err := os.Lstat(a.Path); err == nil && !fi.IsDir() {
			os.Remove(a.Path) //nolint:errcheck // bind reports what matters
		}
		l, err := net.Listen("unix", a.Path)
		if err != nil {
			return nil, withErrno("Failed to bind socket to "+a.Path, ErrConnect, err)
		}
		return l, nil
	}
	ctx := context.Background()
	port, err := lookupPort(ctx, a.Port)
	if err != nil {
		return nil, newError(fmt.Sprintf("address resolution failed for %s:%s: Servname not supported for ai_socktype", a.Host, a.Port), ErrConnect, err)
	}
	network, host := "tcp", ""
	if a.Host != "" {
		addrs, err := resolve(ctx, a)
		if err != nil {
			return nil, err
		}
		host, _, _ = net.SplitHostPort(addrs[0])
	} else {
		switch {
		case a.IPv4 != nil && *a.IPv4 && (a.IPv6 == nil || !*a.IPv6):
			network = "tcp4"
		case a.IPv6 != nil && *a.IPv6 && (a.IPv4 == nil || !*a.IPv4):
			network = "tcp6"
		}
	}
	l, err := net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) && errno == syscall.EADDRINUSE {
			return nil, withErrno("Failed to find an available port", ErrConnect, err)
		}
		return nil, withErrno("Failed to bind socket", ErrConnect, err)
	}
	return l, nil
}

// listenAddresses is what query-migrate shows for l: QEMU lists "::" and "0.0.0.0"
// for an address-less tcp:, tlcvm's one dual-stack socket answers on both.
func listenAddresses(a Address, l net.Listener) []SocketAddress {
	switch la := l.Addr().(type) {
	case *net.UnixAddr:
		return []SocketAddress{{Type: "unix", Path: a.Path}}
	case *net.TCPAddr:
		port := strconv.Itoa(la.Port)
		if la.IP.IsUnspecified() {
			var out []SocketAddress
			if l.Addr().Network() != "tcp4" && (a.IPv6 == nil || *a.IPv6) {
				out = append(out, SocketAddress{Type: "inet", Host: "::", Port: port, IPv6: true})
			}
			if a.IPv4 == nil || *a.IPv4 {
				out = append(out, SocketAddress{Type: "inet", Host: "0.0.0.0", Port: port})
			}
			return out
		}
		return []SocketAddress{{Type: "inet", Host: la.IP.String(), Port: port, IPv6: la.IP.To4() == nil}}
	}
	return nil
}
