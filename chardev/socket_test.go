package chardev_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"tlcvm/chardev"
)

// syncBuf is a goroutine-safe bytes.Buffer for Options.Stderr/Stdout.
type syncBuf struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{} // non-nil: signalled (non-blocking) on each write
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wrote != nil {
		select {
		case s.wrote <- struct{}{}:
		default:
		}
	}
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// echoServe is a Serve fn: greets, then echoes each line upper-cased, and
// reports each finished session on done.
func echoServe(done chan<- string) func(chardev.Conn) {
	return func(c chardev.Conn) {
		fmt.Fprintf(c, "hello %T\n", c)
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				done <- "eof"
				return
			}
			io.WriteString(c, strings.ToUpper(line))
		}
	}
}

// events collects a front end's events on a channel.
func events(t *testing.T, c *chardev.Chardev) (*chardev.Frontend, chan chardev.Event) {
	t.Helper()
	fe, err := c.Attach()
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan chardev.Event, 64)
	fe.SetEventHandler(func(e chardev.Event) { ch <- e })
	return fe, ch
}

func waitEvent(t *testing.T, ch chan chardev.Event, want chardev.Event) {
	t.Helper()
	for e := range ch {
		if e == want {
			return
		}
	}
}

func roundTrip(t *testing.T, conn net.Conn, greeting string) {
	t.Helper()
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil || line != greeting {
		t.Fatalf("greeting %q, %v; want %q", line, err, greeting)
	}
	io.WriteString(conn, "ping\n")
	if line, _ = r.ReadString('\n'); line != "PING\n" {
		t.Fatalf("echo %q", line)
	}
}

func TestUnixServerReconnects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mon.sock")
	os.WriteFile(path, nil, 0o600) // QEMU unlinks a stale path before bind
	s, _ := chardev.ParseLegacy("unix:"+path+",server=on,wait=off", "charmonitor")
	c, err := chardev.Open(s, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Filename(), "disconnected:unix:"+path+",server=on"; got != want {
		t.Fatalf("filename %q, want %q", got, want)
	}
	fe, evs := events(t, c)
	done := make(chan string, 4)
	fe.Serve(echoServe(done))
	for i := 0; i < 3; i++ {
		conn, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, conn, "hello *net.UnixConn\n")
		if got, want := c.Filename(), "unix:"+path+",server=on"; got != want {
			t.Fatalf("connected filename %q, want %q", got, want)
		}
		if !c.FrontendOpen() || !c.Connected() {
			t.Fatal("frontend-open/connected")
		}
		conn.Close()
		<-done
		waitEvent(t, evs, chardev.EventClosed)
		if got := c.Filename(); !strings.HasPrefix(got, "disconnected:") {
			t.Fatalf("after disconnect: %q", got)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket path left behind: %v", err)
	}
}

// libvirt passes a listening socket as -chardev socket,id=charmonitor,fd=N,
// server=on,wait=off and reconnects to it after a libvirtd restart.
func TestInheritedListenerFD(t *testing.T) {
	path := filepath.Join(t.TempDir(), "monitor.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.File() // a duplicate descriptor, as if inherited
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	fd := int(f.Fd())
	s, err := chardev.SpecFromKV(kv(fmt.Sprintf("backend=socket,fd=%d,server=on,wait=off", fd)), "charmonitor")
	if err != nil {
		t.Fatal(err)
	}
	c, err := chardev.Open(s, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Filename(), "disconnected:unix:"+path+",server=on"; got != want {
		t.Fatalf("filename %q, want %q", got, want)
	}
	done := make(chan string, 4)
	c.Serve(echoServe(done))
	for i := 0; i < 2; i++ { // libvirtd connects, goes away, reconnects
		conn, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, conn, "hello *net.UnixConn\n")
		conn.Close()
		<-done
	}
	c.Close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("QEMU removes the path of an inherited listener at exit: %v", err)
	}
	f.Close()
}

func TestInheritedFDErrors(t *testing.T) {
	cases := []struct{ opts, want string }{
		{"backend=socket,server=on,wait=off,fd=abc", "Unable to parse FD number abc"},
		{"backend=socket", "Unable to parse FD number "},
		{"backend=socket,fd=1000,server=on", "File descriptor '1000' is not a socket"},
		{"backend=socket,fd=3,reconnect=2", "'reconnect' option is incompatible with 'fd' address type"},
	}
	for _, tc := range cases {
		s, err := chardev.SpecFromKV(kv(tc.opts), "x")
		if err == nil {
			_, err = chardev.Open(s, zerolog.Nop())
		}
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: err %v, want %q", tc.opts, err, tc.want)
		}
	}
}

func TestTCPServerFilename(t *testing.T) {
	s, _ := chardev.ParseLegacy("tcp:127.0.0.1:0,server=on,wait=off", "serial0")
	c, err := chardev.Open(s, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	disc := c.Filename()
	var port int
	if _, err := fmt.Sscanf(disc, "disconnected:tcp:127.0.0.1:%d,server=on", &port); err != nil || port == 0 {
		t.Fatalf("filename %q", disc)
	}
	_, evs := events(t, c)
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitEvent(t, evs, chardev.EventOpened)
	la := conn.LocalAddr().(*net.TCPAddr)
	want := fmt.Sprintf("tcp:127.0.0.1:%d,server=on <-> 127.0.0.1:%d", port, la.Port)
	if got := c.Filename(); got != want {
		t.Fatalf("filename %q, want %q", got, want)
	}
	// Guest output reaches the peer.
	c.Write([]byte("boot\r\n"))
	buf := make([]byte, 6)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "boot\r\n" {
		t.Fatalf("read %q %v", buf, err)
	}
}

func TestSocketErrors(t *testing.T) {
	dir := t.TempDir()
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	refused, _ := net.Listen("tcp4", "127.0.0.1:0")
	refusedPort := refused.Addr().(*net.TCPAddr).Port
	refused.Close()
	cases := []struct{ legacy, want string }{
		{"unix:/nonexist/d/s,server=on,wait=off", "Failed to bind socket to /nonexist/d/s: No such file or directory"},
		{"unix:" + dir + "/nosuch", "Failed to connect to '" + dir + "/nosuch': No such file or directory"},
		{fmt.Sprintf("tcp:127.0.0.1:%d", refusedPort), fmt.Sprintf("Failed to connect to '127.0.0.1:%d': Connection refused", refusedPort)},
		{fmt.Sprintf("tcp:127.0.0.1:%d,server=on,wait=off", busyPort), "Failed to find an available port: Address already in use"},
		{"tcp:127.0.0.1:99999999999999999999,server,nowait", "address resolution failed for 127.0.0.1:99999999999999999999: Servname not supported for ai_socktype"},
		{"tcp:[::1]:4481,server,nowait", "address resolution failed for [::1]:4481: Servname not supported for ai_socktype"},
		{"unix:" + dir + "/a,wait=off", "'wait' option is incompatible with socket in client connect mode"},
		{"unix:" + dir + "/a,server=on,reconnect=1", "'reconnect' option is incompatible with socket in server listen mode"},
		{"unix:" + dir + "/" + strings.Repeat("x", 120) + ",server=on,wait=off", "UNIX socket path '" + dir + "/" + strings.Repeat("x", 120) + "' is too long"},
	}
	for _, tc := range cases {
		s, err := chardev.ParseLegacy(tc.legacy, "x")
		if err != nil {
			t.Fatalf("%s: %v", tc.legacy, err)
		}
		c, err := chardev.Open(s, zerolog.Nop())
		if err == nil {
			c.Close()
			t.Errorf("%s: opened", tc.legacy)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.legacy, err, tc.want)
		}
	}
}

func TestPortWrapsLikeGlibc(t *testing.T) {
	// QEMU accepts port=99999 and listens on 99999 % 65536 = 34463.
	s, _ := chardev.ParseLegacy("tcp:127.0.0.1:99999,server=on,wait=off", "x")
	c, err := chardev.Open(s, zerolog.Nop())
	if err != nil {
		t.Skipf("port 34463 busy: %v", err)
	}
	defer c.Close()
	if got := c.Filename(); got != "disconnected:tcp:127.0.0.1:34463,server=on" {
		t.Fatalf("filename %q", got)
	}
}

func TestServerWaitBlocksForClient(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.sock")
	s, _ := chardev.ParseLegacy("unix:"+path+",server", "compat_monitor0")
	s.Origin = "-qmp unix:" + path + ",server"
	stderr := &syncBuf{}
	type result struct {
		c   *chardev.Chardev
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := chardev.OpenWith(s, chardev.Options{Stderr: stderr})
		res <- result{c, err}
	}()
	// Dial until the listener exists (Open listens before it waits).
	var conn net.Conn
	for {
		var err error
		if conn, err = net.Dial("unix", path); err == nil {
			break
		}
	}
	defer conn.Close()
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.c.Close()
	want := "qemu-system-x86_64: -qmp unix:" + path + ",server: info: QEMU waiting for connection on: disconnected:unix:" + path + ",server=on\n"
	if got := stderr.String(); got != want {
		t.Fatalf("stderr %q\nwant %q", got, want)
	}
	if !r.c.Connected() {
		t.Fatal("wait=on: not connected when Open returned")
	}
}

func TestUnixClient(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peer.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, _ := chardev.ParseLegacy("unix:"+path, "x")
	c, err := chardev.Open(s, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if got := c.Filename(); got != "unix:"+path {
		t.Fatalf("filename %q", got)
	}
	got := make(chan []byte, 1)
	c.SetInput(func(b []byte) { got <- b })
	peer.Write([]byte("in"))
	if b := <-got; string(b) != "in" {
		t.Fatalf("input %q", b)
	}
}

func TestTCPClientReconnect(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens yet
	s, _ := chardev.SpecFromKV(kv("backend=socket,host=127.0.0.1,port="+strings.Split(addr, ":")[1]+",reconnect=1"), "x")
	stderr := &syncBuf{wrote: make(chan struct{}, 1)}
	c, err := chardev.OpenWith(s, chardev.Options{Stderr: stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-stderr.wrote // the first attempt failed and was reported
	fe, evs := events(t, c)
	fe.SetInput(func([]byte) {})
	if got, want := c.Filename(), "disconnected:tcp:"+addr; got != want {
		t.Fatalf("filename %q, want %q", got, want)
	}
	ln, err = net.Listen("tcp4", addr)
	if err != nil {
		t.Skipf("port reused: %v", err)
	}
	defer ln.Close()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, evs, chardev.EventOpened)
	conn.Close()
	waitEvent(t, evs, chardev.EventClosed)
	// The client reconnects after the peer went away.
	conn, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if strings.Contains(stderr.String(), "Unable to connect character device x: Failed to connect to '"+addr+"': Connection refused\n") == false {
		t.Fatalf("stderr %q", stderr.String())
	}
}

func TestTelnetNegotiation(t *testing.T) {
	s, _ := chardev.ParseLegacy("telnet:127.0.0.1:0,server=on,wait=off", "serial0")
	c, err := chardev.Open(s, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !strings.HasPrefix(c.Filename(), "disconnected:telnet:127.0.0.1:") {
		t.Fatalf("filename %q", c.Filename())
	}
	fe, evs := events(t, c)
	in := make(chan []byte, 8)
	fe.SetInput(func(b []byte) { in <- b })
	var port int
	fmt.Sscanf(c.Filename(), "disconnected:telnet:127.0.0.1:%d", &port)
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	init := make([]byte, 12)
	io.ReadFull(conn, init)
	if want := []byte{255, 251, 1, 255, 251, 3, 255, 251, 0, 255, 253, 0}; !bytes.Equal(init, want) {
		t.Fatalf("negotiation % x", init)
	}
	// A client's option replies vanish, IAC IAC is 0xff, IAC BREAK is a break.
	conn.Write([]byte{255, 253, 1, 'a', 255, 255, 'b', 255, 243})
	var got []byte
	for len(got) < 3 {
		got = append(got, <-in...)
	}
	if !bytes.Equal(got, []byte{'a', 255, 'b'}) {
		t.Fatalf("input % x", got)
	}
	waitEvent(t, evs, chardev.EventBreak)
}
