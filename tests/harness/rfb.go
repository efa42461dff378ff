package harness

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// RFBHandshake connects to a VNC server as an RFB 3.8 client (security None, shared),
// and returns the connection (deadline timeout from now) and the desktop name of the
// server's ServerInit. It fails on anything but QEMU's handshake: version 3.8, the
// security types [None], result OK, a non-empty framebuffer.
func RFBHandshake(addr string, timeout time.Duration) (net.Conn, string, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, "", err
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	fail := func(format string, a ...any) (net.Conn, string, error) {
		c.Close()
		return nil, "", fmt.Errorf("RFB handshake with %s: "+format, append([]any{addr}, a...)...)
	}
	read := func(n int) ([]byte, error) {
		b := make([]byte, n)
		_, err := io.ReadFull(c, b)
		return b, err
	}
	v, err := read(12)
	if err != nil || string(v) != "RFB 003.008\n" {
		return fail("server version %q (%v)", v, err)
	}
	_, _ = c.Write([]byte("RFB 003.008\n"))
	n, err := read(1)
	if err != nil {
		return fail("%v", err)
	}
	types, err := read(int(n[0]))
	if err != nil || len(types) != 1 || types[0] != 1 {
		return fail("security types %v (%v), want [None]", types, err)
	}
	_, _ = c.Write([]byte{1})
	r, err := read(4)
	if err != nil || binary.BigEndian.Uint32(r) != 0 {
		return fail("security result %v (%v)", r, err)
	}
	_, _ = c.Write([]byte{1}) // ClientInit: shared
	si, err := read(24)
	if err != nil {
		return fail("ServerInit: %v", err)
	}
	if w, h := binary.BigEndian.Uint16(si), binary.BigEndian.Uint16(si[2:]); w == 0 || h == 0 {
		return fail("framebuffer %dx%d", w, h)
	}
	name, err := read(int(binary.BigEndian.Uint32(si[20:]) & 0xffff))
	if err != nil {
		return fail("desktop name: %v", err)
	}
	return c, string(name), nil
}
