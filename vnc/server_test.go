package vnc_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"tlcvm/vnc"
)

// start runs a server on an ephemeral loopback port.
func start(t *testing.T, c vnc.Config, o vnc.Options) (*vnc.Server, string) {
	t.Helper()
	if c.Network == "" {
		c.Network, c.Host = "tcp", "127.0.0.1"
	}
	s, err := vnc.Listen(c, o)
	if err != nil {
		t.Fatal(err)
	}
	s.Serve()
	t.Cleanup(func() { _ = s.Close() })
	inf := s.Info()
	if c.Network == "unix" {
		return s, inf.Service
	}
	return s, net.JoinHostPort(inf.Host, inf.Service)
}

// rfbClient is a minimal RFB client for the tests.
type rfbClient struct {
	t    *testing.T
	conn net.Conn
	w, h int
	name string
	pf   []byte
}

func (c *rfbClient) read(n int) []byte {
	c.t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c.conn, b); err != nil {
		c.t.Fatalf("read %d: %v", n, err)
	}
	return b
}

func (c *rfbClient) write(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// dial connects and runs the handshake for version ("RFB 003.008\n"…).
func dial(t *testing.T, network, addr, version string, shared bool) *rfbClient {
	t.Helper()
	conn, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c := &rfbClient{t: t, conn: conn}
	if got := string(c.read(12)); got != "RFB 003.008\n" {
		t.Fatalf("server version %q", got)
	}
	c.write([]byte(version))
	minor := map[string]int{"RFB 003.003\n": 3, "RFB 003.004\n": 3, "RFB 003.005\n": 3, "RFB 003.007\n": 7}[version]
	if minor == 3 {
		if got := c.read(4); !bytes.Equal(got, []byte{0, 0, 0, 1}) {
			t.Fatalf("3.3 security %x", got)
		}
	} else {
		if got := c.read(2); !bytes.Equal(got, []byte{1, 1}) {
			t.Fatalf("security types %x", got)
		}
		c.write([]byte{1})
		if minor == 0 { // 3.8 and the odd spellings QEMU's sscanf reads as 3.8
			if got := c.read(4); !bytes.Equal(got, []byte{0, 0, 0, 0}) {
				t.Fatalf("SecurityResult %x", got)
			}
		}
	}
	c.write([]byte{boolByte(shared)})
	si := c.read(24)
	c.w, c.h = int(binary.BigEndian.Uint16(si)), int(binary.BigEndian.Uint16(si[2:]))
	c.pf = si[4:20]
	c.name = string(c.read(int(binary.BigEndian.Uint32(si[20:]))))
	return c
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// update requests an area and reads one FramebufferUpdate.
func (c *rfbClient) update(x, y, w, h, bpp int) (rx, ry, rw, rh int, pix []byte) {
	c.t.Helper()
	req := []byte{3, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(req[2:], uint16(x))
	binary.BigEndian.PutUint16(req[4:], uint16(y))
	binary.BigEndian.PutUint16(req[6:], uint16(w))
	binary.BigEndian.PutUint16(req[8:], uint16(h))
	c.write(req)
	hdr := c.read(16)
	if hdr[0] != 0 || binary.BigEndian.Uint16(hdr[2:]) != 1 || binary.BigEndian.Uint32(hdr[12:]) != 0 {
		c.t.Fatalf("update header %x", hdr)
	}
	rx, ry = int(binary.BigEndian.Uint16(hdr[4:])), int(binary.BigEndian.Uint16(hdr[6:]))
	rw, rh = int(binary.BigEndian.Uint16(hdr[8:])), int(binary.BigEndian.Uint16(hdr[10:]))
	return rx, ry, rw, rh, c.read(rw * rh * bpp / 8)
}

// expectClosed reads until EOF; any bytes read are returned.
func expectClosed(t *testing.T, conn net.Conn) []byte {
	t.Helper()
	b, err := io.ReadAll(conn)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("read: %v", err)
	}
	return b
}

func golden(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open("testdata/qemu72-placeholder-640x480-x8r8g8b8.raw.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// QEMU 7.2's ServerInit for "-name guest": 640x480, x8r8g8b8, "QEMU (guest)".
var qemuServerInit = "028001e02018000100ff00ff00ff100800000000"

func TestHandshakeAndFullUpdate(t *testing.T) {
	_, addr := start(t, vnc.Config{}, vnc.Options{Name: "QEMU (guest)"})
	want := golden(t)
	for _, v := range []string{"RFB 003.008\n", "RFB 003.007\n", "RFB 003.003\n", "RFB 003.005\n", "RFB 03.0080\n"} {
		t.Run(strings.TrimSpace(v), func(t *testing.T) {
			c := dial(t, "tcp", addr, v, true)
			if c.name != "QEMU (guest)" {
				t.Errorf("name %q", c.name)
			}
			si := make([]byte, 20)
			binary.BigEndian.PutUint16(si, uint16(c.w))
			binary.BigEndian.PutUint16(si[2:], uint16(c.h))
			copy(si[4:], c.pf)
			if got := strconv.QuoteToASCII(string(si)); got != strconv.QuoteToASCII(string(mustHex(qemuServerInit))) {
				t.Errorf("ServerInit %x, want %s", si, qemuServerInit)
			}
			x, y, w, h, pix := c.update(0, 0, 640, 480, 32)
			if x != 0 || y != 0 || w != 640 || h != 480 {
				t.Fatalf("rect %d,%d %dx%d", x, y, w, h)
			}
			if !bytes.Equal(pix, want) {
				t.Fatal("framebuffer differs from QEMU 7.2's")
			}
		})
	}
}

func mustHex(s string) []byte {
	b := make([]byte, len(s)/2)
	for i := range b {
		n, _ := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		b[i] = byte(n)
	}
	return b
}

// Partial requests are widened to 16-pixel columns; incremental and empty
// requests produce nothing, so a following request's reply comes first.
func TestPartialAndIncremental(t *testing.T) {
	_, addr := start(t, vnc.Config{}, vnc.Options{})
	want := golden(t)
	c := dial(t, "tcp", addr, "RFB 003.008\n", true)
	c.write([]byte{3, 1, 0, 0, 0, 0, 2, 128, 1, 224}) // incremental: nothing
	c.write([]byte{3, 0, 16, 0, 16, 0, 0, 20, 0, 2})  // off-screen: nothing
	c.write([]byte{3, 0, 0, 0, 0, 0, 0, 0, 0, 0})     // empty: nothing
	tests := []struct{ x, y, w, h, rx, rw int }{
		{5, 3, 20, 2, 0, 32},
		{20, 230, 1, 1, 16, 16},
		{150, 226, 700, 3, 144, 496},
	}
	for _, tt := range tests {
		x, y, w, h, pix := c.update(tt.x, tt.y, tt.w, tt.h, 32)
		if x != tt.rx || y != tt.y || w != tt.rw || h != min(tt.h, 480-tt.y) {
			t.Fatalf("request %+v: rect %d,%d %dx%d", tt, x, y, w, h)
		}
		for r := 0; r < h; r++ {
			off := ((y+r)*640 + x) * 4
			if !bytes.Equal(pix[r*w*4:(r+1)*w*4], want[off:off+w*4]) {
				t.Fatalf("request %+v: row %d differs", tt, r)
			}
		}
	}
}

// Pixel conversions, checked against QEMU 7.2's bytes for the grey text
// pixel (0xaaaaaa) at (144,230).
func TestSetPixelFormat(t *testing.T) {
	_, addr := start(t, vnc.Config{}, vnc.Options{})
	tests := []struct {
		name string
		pf   []byte
		bpp  int
		px   []byte // first two pixels of the 16x1 rect at (144,230)
	}{
		{"rgb565-be", []byte{16, 16, 1, 1, 0, 0x1f, 0, 0x3f, 0, 0x1f, 11, 5, 0}, 16, []byte{0xad, 0x55, 0xad, 0x55}},
		{"rgb565-le", []byte{16, 16, 0, 1, 0, 0x1f, 0, 0x3f, 0, 0x1f, 11, 5, 0}, 16, []byte{0x55, 0xad, 0x55, 0xad}},
		{"bgr32", []byte{32, 24, 0, 1, 0, 0xff, 0, 0xff, 0, 0xff, 0, 8, 16}, 32, []byte{0xaa, 0xaa, 0xaa, 0, 0xaa, 0xaa, 0xaa, 0}},
		{"xrgb32-be-copied", []byte{32, 24, 1, 1, 0, 0xff, 0, 0xff, 0, 0xff, 16, 8, 0}, 32, []byte{0xaa, 0xaa, 0xaa, 0xff, 0xaa, 0xaa, 0xaa, 0xff}},
		{"rgb332", []byte{8, 8, 0, 1, 0, 7, 0, 7, 0, 3, 0, 3, 6}, 8, []byte{0xad, 0xad}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, "tcp", addr, "RFB 003.008\n", true)
			msg := append([]byte{0, 0, 0, 0}, tt.pf...)
			c.write(append(msg, 0, 0, 0))
			_, _, w, h, pix := c.update(150, 230, 1, 1, tt.bpp)
			if w != 16 || h != 1 || !bytes.Equal(pix[:len(tt.px)], tt.px) {
				t.Fatalf("%dx%d %x, want %x", w, h, pix[:len(tt.px)], tt.px)
			}
		})
	}
	t.Run("colour-map", func(t *testing.T) {
		c := dial(t, "tcp", addr, "RFB 003.008\n", true)
		c.write([]byte{0, 0, 0, 0, 8, 8, 0, 0, 0, 7, 0, 7, 0, 3, 0, 3, 6, 0, 0, 0})
		cm := c.read(6 + 256*6)
		// QEMU 7.2: 01 00 0000 0100, then 0000 0000 0000, 2000 0000 0000, 4000 …
		if !bytes.Equal(cm[:18], mustHex("010000000100000000000000200000000000")) {
			t.Fatalf("colour map %x", cm[:18])
		}
	})
	t.Run("24bpp-drops-client", func(t *testing.T) {
		c := dial(t, "tcp", addr, "RFB 003.008\n", true)
		c.write([]byte{0, 0, 0, 0, 24, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0})
		if b := expectClosed(t, c.conn); len(b) != 0 {
			t.Fatalf("got %x before close", b)
		}
	})
}

func TestInputMessagesAndTwoClients(t *testing.T) {
	s, addr := start(t, vnc.Config{}, vnc.Options{})
	a := dial(t, "tcp", addr, "RFB 003.008\n", true)
	b := dial(t, "tcp", addr, "RFB 003.003\n", true)
	msgs := [][]byte{
		{2, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0x21}, // SetEncodings raw, zrle, desktop-size
		{4, 1, 0, 0, 0, 0, 0xff, 0x0d},                               // KeyEvent
		{5, 1, 0, 10, 0, 20},                                         // PointerEvent
		{6, 0, 0, 0, 0, 0, 0, 3, 'a', 'b', 'c'},                      // ClientCutText
		{255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e},                 // QEMU extended key
		{255, 1, 0, 2, 3, 2, 0, 0, 0xac, 0x44},                       // QEMU audio set format
	}
	for _, m := range msgs {
		a.write(m)
		b.write(m)
	}
	for _, c := range []*rfbClient{a, b} {
		if _, _, w, h, _ := c.update(0, 0, 640, 480, 32); w != 640 || h != 480 {
			t.Fatalf("%dx%d", w, h)
		}
	}
	inf := s.Info()
	if inf.Auth != "none" || inf.Family != "ipv4" || inf.Host != "127.0.0.1" || len(inf.Clients) != 2 {
		t.Fatalf("info %+v", inf)
	}
	la := a.conn.LocalAddr().(*net.TCPAddr)
	if c0 := inf.Clients[0]; c0.Host != "127.0.0.1" || c0.Service != strconv.Itoa(la.Port) || c0.Family != "ipv4" || c0.Websocket {
		t.Fatalf("client 0 %+v, want port %d", c0, la.Port)
	}
}

func TestHostileClients(t *testing.T) {
	_, addr := start(t, vnc.Config{}, vnc.Options{})
	good := dial(t, "tcp", addr, "RFB 003.008\n", true)
	tests := []struct {
		name    string
		version string
		after   []byte // sent after the 3.8 handshake when version is ""
		reply   []byte // what the server sends after its version, before closing
	}{
		{name: "garbage version", version: "XYZ 003.008\n", reply: nil},
		{name: "version 3.9", version: "RFB 003.009\n", reply: []byte{0, 0, 0, 0}},
		{name: "version 4.0", version: "RFB 004.000\n", reply: []byte{0, 0, 0, 0}},
		{name: "Apple 3.889", version: "RFB 003.889\n", reply: []byte{0, 0, 0, 0}},
		{name: "unknown message", after: []byte{9}},
		{name: "huge cut text", after: []byte{6, 0, 0, 0, 0x20, 0, 0, 0}},
		{name: "huge negative cut text", after: []byte{6, 0, 0, 0, 0x80, 0, 0, 0}},
		{name: "unknown qemu submessage", after: []byte{255, 7}},
		{name: "truncated set encodings", after: []byte{2, 0, 0xff, 0xff, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.version != "" {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				io.ReadFull(conn, make([]byte, 12))
				conn.Write([]byte(tt.version))
				if got := expectClosed(t, conn); !bytes.Equal(got, tt.reply) {
					t.Fatalf("got %x, want %x", got, tt.reply)
				}
				return
			}
			c := dial(t, "tcp", addr, "RFB 003.008\n", true)
			c.write(tt.after)
			if tc, ok := c.conn.(*net.TCPConn); ok && tt.name == "truncated set encodings" {
				tc.CloseWrite()
			}
			if got := expectClosed(t, c.conn); len(got) != 0 {
				t.Fatalf("got %x", got)
			}
		})
	}
	t.Run("bad security type 3.8", func(t *testing.T) {
		conn, _ := net.Dial("tcp", addr)
		defer conn.Close()
		io.ReadFull(conn, make([]byte, 12))
		conn.Write([]byte("RFB 003.008\n\x02"))
		want := append([]byte{1, 1, 0, 0, 0, 1, 0, 0, 0, 22}, "Authentication failed\x00"...)
		if got := expectClosed(t, conn); !bytes.Equal(got, want) {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("bad security type 3.7", func(t *testing.T) {
		conn, _ := net.Dial("tcp", addr)
		defer conn.Close()
		io.ReadFull(conn, make([]byte, 12))
		conn.Write([]byte("RFB 003.007\n\x02"))
		if got := expectClosed(t, conn); !bytes.Equal(got, []byte{1, 1, 0, 0, 0, 1}) {
			t.Fatalf("got %x", got)
		}
	})
	// A client that never reads: the server blocks writing to it only.
	stuck := dial(t, "tcp", addr, "RFB 003.008\n", true)
	for i := 0; i < 8; i++ {
		stuck.write([]byte{3, 0, 0, 0, 0, 0, 2, 128, 1, 224})
	}
	if _, _, w, _, _ := good.update(0, 0, 640, 480, 32); w != 640 {
		t.Fatal("good client not served")
	}
}

func TestShareExclusive(t *testing.T) {
	s, addr := start(t, vnc.Config{}, vnc.Options{})
	a := dial(t, "tcp", addr, "RFB 003.008\n", true)
	b := dial(t, "tcp", addr, "RFB 003.008\n", false) // exclusive: a is dropped
	expectClosed(t, a.conn)
	b.update(0, 0, 16, 1, 32)
	if n := len(s.Info().Clients); n != 1 {
		t.Fatalf("%d clients", n)
	}

	_, addr2 := start(t, vnc.Config{Share: vnc.ShareForceShared}, vnc.Options{})
	conn, _ := net.Dial("tcp", addr2)
	defer conn.Close()
	io.ReadFull(conn, make([]byte, 12))
	conn.Write([]byte("RFB 003.008\n\x01\x00"))
	if got := expectClosed(t, conn); len(got) != 6 { // sec types + result, no ServerInit
		t.Fatalf("got %x", got)
	}

	_, addr3 := start(t, vnc.Config{Connections: 1}, vnc.Options{})
	dial(t, "tcp", addr3, "RFB 003.008\n", true)
	conn3, _ := net.Dial("tcp", addr3)
	defer conn3.Close()
	io.ReadFull(conn3, make([]byte, 12))
	conn3.Write([]byte("RFB 003.008\n\x01\x01"))
	if got := expectClosed(t, conn3); len(got) != 6 {
		t.Fatalf("over the limit: got %x", got)
	}
}

func TestClose(t *testing.T) {
	s, addr := start(t, vnc.Config{}, vnc.Options{})
	c := dial(t, "tcp", addr, "RFB 003.008\n", true)
	half, err := net.Dial("tcp", addr) // stuck in the handshake
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	io.ReadFull(half, make([]byte, 12))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c.conn)
	expectClosed(t, half)
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("still listening")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.Serve() // no-op after Close
}

func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vnc.sock")
	c, err := vnc.Parse("unix:" + path)
	if err != nil {
		t.Fatal(err)
	}
	s, addr := start(t, c, vnc.Options{Width: 320, Height: 200})
	if inf := s.Info(); inf.Family != "unix" || inf.Service != path || inf.Host != "" {
		t.Fatalf("info %+v", inf)
	}
	cl := dial(t, "unix", addr, "RFB 003.008\n", true)
	if cl.w != 320 || cl.h != 200 || cl.name != "QEMU" {
		t.Fatalf("%dx%d %q", cl.w, cl.h, cl.name)
	}
	s.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}

func TestListenErrors(t *testing.T) {
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	c := vnc.Config{Network: "tcp", Host: "127.0.0.1", Port: port}
	_, err = vnc.Listen(c, vnc.Options{})
	if !errors.Is(err, vnc.ErrListen) || err.Error() != "Failed to find an available port: Address already in use" {
		t.Fatalf("busy port: %v", err)
	}
	c.ToPort, c.HasTo = port+5, true
	s, err := vnc.Listen(c, vnc.Options{})
	if err != nil {
		t.Fatalf("to= scan: %v", err)
	}
	defer s.Close()
	got, _ := strconv.Atoi(s.Info().Service)
	if got <= port || got > port+5 {
		t.Fatalf("to= scan chose %d", got)
	}
	if b := s.Banner(); b != "VNC server running on 127.0.0.1:"+strconv.Itoa(got) {
		t.Fatalf("banner %q", b)
	}
	_, err = vnc.Listen(vnc.Config{Network: "unix", Path: t.TempDir()}, vnc.Options{})
	if err == nil || !strings.Contains(err.Error(), "Failed to unlink socket") || !strings.HasSuffix(err.Error(), ": Is a directory") {
		t.Fatalf("unix dir: %v", err)
	}
	_, err = vnc.Listen(vnc.Config{Network: "unix", Path: "/nonexistent/x"}, vnc.Options{})
	if err == nil || err.Error() != "Failed to bind socket to /nonexistent/x: No such file or directory" {
		t.Fatalf("unix enoent: %v", err)
	}
	_, err = vnc.Listen(vnc.Config{Network: "tcp", Host: "192.0.2.1", Port: 5999}, vnc.Options{})
	if err == nil || err.Error() != "Failed to bind socket: Cannot assign requested address" {
		t.Fatalf("foreign address: %v", err)
	}
	if _, err := vnc.Listen(vnc.Config{Disabled: true}, vnc.Options{}); !errors.Is(err, vnc.ErrListen) {
		t.Fatalf("disabled: %v", err)
	}
}
