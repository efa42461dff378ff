package vnc

import "net"

// AddClient serves an already connected client (QMP add_client: libvirt's
// virDomainOpenGraphicsFD makes a socket pair and hands the server one end), as an
// accepted connection is served. It returns false, leaving conn to the caller, when the
// server is closed or too many connections are still in their handshake.
func (s *Server) AddClient(conn net.Conn) bool {
	c := s.newClient(conn)
	if c == nil {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.serve()
	}()
	return true
}
