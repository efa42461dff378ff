package chardev

// Yank: QEMU 7.2 registers a yank instance for every socket chardev (chardev/char-socket.c,
// yank_register_instance in qmp_chardev_open_socket); yanking it shuts the connected peer's
// channel down in both directions (char_socket_yank_iochannel) without waiting for
// anything, so a monitor or guest stuck on a dead peer gets its chardev back. The session
// then ends as on the peer's EOF: a server listens again, a client with reconnect= dials
// again.

// YankID is the yank instance id of the chardev ("" when it has none): a socket chardev's
// own id, and for mux=on the "ID-base" socket under the mux.
func (c *Chardev) YankID() string {
	if c.spec.Backend != BackendSocket {
		return ""
	}
	if c.spec.Mux {
		return c.spec.ID + "-base"
	}
	return c.spec.ID
}

// Yank shuts the current peer's connection down, if one is connected.
func (c *Chardev) Yank() {
	c.mu.Lock()
	p := c.cur
	c.mu.Unlock()
	if p == nil {
		return
	}
	type halfCloser interface {
		CloseRead() error
		CloseWrite() error
	}
	if h, ok := p.conn.(halfCloser); ok {
		_ = h.CloseRead()
		_ = h.CloseWrite()
		return
	}
	p.shutdown()
}
