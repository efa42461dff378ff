package nbd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"tlcvm/compat/qerror"
)

// SocketAddress is where the server listens (QAPI's SocketAddress, flattened from
// nbd-server-start's SocketAddressLegacy by the monitor).
type SocketAddress struct {
	Type string // "inet", "unix", "vsock" or "fd"
	// inet
	Host, Port string
	To         *int
	IPv4, IPv6 *bool
	// unix
	Path     string
	Abstract bool
	// vsock
	CID string
	// fd: the descriptor, already resolved from the monitor's table (the server owns it)
	FD int
}

// Listen opens the listening socket, with QEMU's texts (qio_net_listener_open_sync).
func Listen(a SocketAddress) (net.Listener, error) {
	switch a.Type {
	case "unix":
		return listenUnix(a)
	case "inet":
		return listenInet(a)
	case "vsock":
		return listenVsock(a)
	case "fd":
		if err := unix.Listen(a.FD, 1); err != nil {
			unix.Close(a.FD)
			return nil, qerror.Errno(ErrListen, err, "Failed to listen on fd socket")
		}
		f := os.NewFile(uintptr(a.FD), "nbd-listener")
		defer f.Close()
		l, err := net.FileListener(f)
		if err != nil {
			return nil, qerror.Errno(ErrListen, err, "Failed to listen on fd socket")
		}
		return l, nil
	}
	return nil, errf(ErrInvalid, "Invalid parameter type for 'addr.type'")
}

func listenUnix(a SocketAddress) (net.Listener, error) {
	path := a.Path
	if a.Abstract {
		path = "@" + path
	} else if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, qerror.Errno(ErrListen, err, "Failed to unlink socket %s", a.Path)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, qerror.Errno(ErrListen, err, "Failed to bind socket to %s", a.Path)
	}
	l.SetUnlinkOnClose(!a.Abstract)
	return l, nil
}

func listenInet(a SocketAddress) (net.Listener, error) {
	ctx := context.Background()
	port, err := strconv.Atoi(a.Port)
	if err != nil {
		if port, err = net.DefaultResolver.LookupPort(ctx, "tcp", a.Port); err != nil {
			return nil, errf(ErrListen, "address resolution failed for %s:%s: Servname not supported for ai_socktype", a.Host, a.Port)
		}
	}
	if port < 0 || port > 65535 {
		return nil, errf(ErrListen, "address resolution failed for %s:%s: Servname not supported for ai_socktype", a.Host, a.Port)
	}
	last := port
	if a.To != nil && *a.To > port {
		last = *a.To
	}
	var ips []net.IP
	if a.Host == "" {
		ips = []net.IP{nil}
	} else if ip := net.ParseIP(a.Host); ip != nil {
		ips = []net.IP{ip}
	} else {
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, a.Host)
		if err != nil {
			return nil, errf(ErrListen, "address resolution failed for %s:%s: Name or service not known", a.Host, a.Port)
		}
		for _, ad := range addrs {
			ips = append(ips, ad.IP)
		}
	}
	var lerr error
	for _, ip := range ips {
		v4 := ip == nil || ip.To4() != nil
		if ip != nil && (v4 && a.IPv4 != nil && !*a.IPv4 || !v4 && a.IPv6 != nil && !*a.IPv6) {
			continue
		}
		network := "tcp"
		switch {
		case ip != nil && v4:
			network = "tcp4"
		case ip != nil && ip.IsUnspecified() && (a.IPv4 == nil || *a.IPv4):
			// "::" listens on both families, as QEMU's inet_listen does (libvirt's
			// destination listens so and the source connects over IPv4): Go's "tcp"
			// on the wildcard address is dual-stack, its "tcp6" IPv6 only.
		case ip != nil:
			network = "tcp6"
		case a.IPv4 != nil && *a.IPv4 && (a.IPv6 == nil || !*a.IPv6):
			network = "tcp4"
		case a.IPv6 != nil && *a.IPv6 && (a.IPv4 == nil || !*a.IPv4):
			network = "tcp6"
		}
		for p := port; p <= last; p++ {
			l, err := net.ListenTCP(network, &net.TCPAddr{IP: ip, Port: p})
			if err == nil {
				return l, nil
			}
			if !errors.Is(err, syscall.EADDRINUSE) { // inet_listen_saddr gives up at once
				return nil, qerror.Errno(ErrListen, err, "Failed to bind socket")
			}
			lerr = err
		}
	}
	if lerr == nil {
		lerr = syscall.EADDRNOTAVAIL
	}
	return nil, qerror.Errno(ErrListen, lerr, "Failed to find an available port")
}

func listenVsock(a SocketAddress) (net.Listener, error) {
	cid, err1 := strconv.ParseUint(a.CID, 10, 32)
	port, err2 := strconv.ParseUint(a.Port, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, errf(ErrListen, "Failed to parse vsock address")
	}
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, qerror.Errno(ErrListen, err, "Failed to create socket")
	}
	if err := unix.Bind(fd, &unix.SockaddrVM{CID: uint32(cid), Port: uint32(port)}); err != nil {
		unix.Close(fd)
		return nil, qerror.Errno(ErrListen, err, "Failed to bind socket")
	}
	if err := unix.Listen(fd, 1); err != nil {
		unix.Close(fd)
		return nil, qerror.Errno(ErrListen, err, "Failed to listen on socket")
	}
	f := os.NewFile(uintptr(fd), fmt.Sprintf("vsock:%d:%d", cid, port))
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		return nil, qerror.Errno(ErrListen, err, "Failed to listen on socket")
	}
	return l, nil
}
