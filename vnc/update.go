package vnc

import (
	"net"
	"os"
	"strconv"
)

// Update is vnc_display_update (QMP display-update): the server stops listening (its
// clients stay connected) and listens on what open returns instead, accepting at once if
// it was serving. open runs after the old listeners are closed, so it can bind their
// addresses again. When open fails the server listens nowhere (query-vnc: not enabled),
// as QEMU's does.
func (s *Server) Update(open func() ([]net.Listener, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	for _, l := range s.listeners {
		_ = l.Close()
	}
	if s.unlink != "" {
		_ = os.Remove(s.unlink)
	}
	s.listeners, s.addrs, s.unlink = nil, nil, ""
	ls, err := open()
	if err != nil {
		return err
	}
	s.listeners = ls
	for _, l := range ls {
		s.addrs = append(s.addrs, listenerAddr(l))
		if s.serving {
			s.wg.Add(1)
			go s.accept(l)
		}
	}
	return nil
}

// listenerAddr is a listener's address as query-vnc shows it.
func listenerAddr(l net.Listener) Addr {
	switch a := l.Addr().(type) {
	case *net.TCPAddr:
		fam := "ipv4"
		if a.IP.To4() == nil {
			fam = "ipv6"
		}
		host := a.IP.String()
		if a.IP.Equal(net.IPv4zero) {
			host = "0.0.0.0"
		}
		return Addr{Host: host, Service: strconv.Itoa(a.Port), Family: fam}
	case *net.UnixAddr:
		return Addr{Service: a.Name, Family: "unix"}
	}
	return Addr{Family: "unix"}
}
