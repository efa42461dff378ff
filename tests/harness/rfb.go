package harness

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"tlcvm/vnc"
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

// RFBPasswordHandshake connects to a VNC server with password authentication as an RFB
// 3.8 client does (security type 2, the DES answer to its challenge: vnc.VNCAuthResponse)
// and reports the outcome: "ok: DESKTOP" once ServerInit arrived, "rejected: REASON" when
// the SecurityResult failed, or "types: [...]" when the server offers no VNC
// authentication. The connection is closed.
func RFBPasswordHandshake(addr, password string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	read := func(n int) ([]byte, error) {
		b := make([]byte, n)
		_, err := io.ReadFull(c, b)
		return b, err
	}
	if v, err := read(12); err != nil || string(v) != "RFB 003.008\n" {
		return "", fmt.Errorf("server version %q (%v)", v, err)
	}
	_, _ = c.Write([]byte("RFB 003.008\n"))
	n, err := read(1)
	if err != nil {
		return "", err
	}
	types, err := read(int(n[0]))
	if err != nil {
		return "", err
	}
	if len(types) != 1 || types[0] != 2 {
		return fmt.Sprintf("types: %v", types), nil
	}
	_, _ = c.Write([]byte{2})
	challenge, err := read(16)
	if err != nil {
		return "", fmt.Errorf("challenge: %v", err)
	}
	_, _ = c.Write(vnc.VNCAuthResponse(password, challenge))
	r, err := read(4)
	if err != nil {
		return "", fmt.Errorf("security result: %v", err)
	}
	if binary.BigEndian.Uint32(r) != 0 {
		l, err := read(4)
		if err != nil {
			return "", err
		}
		reason, err := read(int(binary.BigEndian.Uint32(l) & 0xff))
		return "rejected: " + strings.TrimRight(string(reason), "\x00"), err
	}
	_, _ = c.Write([]byte{1})
	si, err := read(24)
	if err != nil {
		return "", fmt.Errorf("ServerInit: %v", err)
	}
	name, err := read(int(binary.BigEndian.Uint32(si[20:]) & 0xffff))
	return "ok: " + string(name), err
}
