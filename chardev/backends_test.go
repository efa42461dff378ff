package chardev_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"tlcvm/chardev"
)

func open(t *testing.T, legacy string, o chardev.Options) *chardev.Chardev {
	t.Helper()
	s, err := chardev.ParseLegacy(legacy, "serial0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := chardev.OpenWith(s, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFileBackend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serial.log")
	os.WriteFile(path, []byte("old\n"), 0o600)
	c := open(t, "file:"+path, chardev.Options{})
	if c.Filename() != "file" || c.ID() != "serial0" {
		t.Fatalf("filename %q", c.Filename())
	}
	c.Write([]byte("line 1\n"))
	c.Close()
	s, _ := chardev.SpecFromKV(kv("backend=file,append=on,path="+path), "f")
	c, err := chardev.Open(s, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("line 2\n"))
	c.Close()
	if b, _ := os.ReadFile(path); string(b) != "line 1\nline 2\n" {
		t.Fatalf("file %q", b)
	}
	_, err = chardev.Open(chardev.Spec{ID: "f", Backend: "file", Path: "/nonexist/x"}, zerolog.Nop())
	if err == nil || err.Error() != "Could not open '/nonexist/x': No such file or directory" || !errors.Is(err, chardev.ErrOpen) {
		t.Fatalf("err %v", err)
	}
}

func TestNullAndVC(t *testing.T) {
	for legacy, name := range map[string]string{"null": "null", "vc": "vc"} {
		c := open(t, legacy, chardev.Options{})
		if c.Filename() != name {
			t.Errorf("%s: filename %q", legacy, c.Filename())
		}
		started, served := make(chan struct{}), make(chan struct{})
		c.Serve(func(conn chardev.Conn) {
			conn.Write([]byte("banner")) // discarded
			close(started)
			conn.Read(make([]byte, 1)) // blocks until Close
			close(served)
		})
		<-started
		c.Close()
		<-served
	}
}

func TestLogfile(t *testing.T) {
	dir := t.TempDir()
	s, _ := chardev.SpecFromKV(kv("backend=null,logfile="+dir+"/log"), "n")
	c, err := chardev.Open(s, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello"))
	c.Close()
	if b, _ := os.ReadFile(dir + "/log"); string(b) != "hello" {
		t.Fatalf("log %q", b)
	}
	s, _ = chardev.SpecFromKV(kv("backend=null,logfile=/nonexist/log"), "n")
	if _, err := chardev.Open(s, zerolog.Nop()); err == nil ||
		err.Error() != "Could not create '/nonexist/log': No such file or directory" {
		t.Fatalf("err %v", err)
	}
}

func TestPty(t *testing.T) {
	stdout := &syncBuf{}
	c := open(t, "pty", chardev.Options{Stdout: stdout})
	defer c.Close()
	m := regexp.MustCompile(`^char device redirected to (/dev/pts/\d+) \(label serial0\)\n$`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("stdout %q", stdout.String())
	}
	if c.Filename() != "pty:"+m[1] || c.PtyPath() != m[1] {
		t.Fatalf("filename %q, path %q", c.Filename(), c.PtyPath())
	}
	// A client opens the slave: what it types reaches the front end, and
	// the front end's output comes back (raw mode: no echo, no CR mapping).
	in := make(chan []byte, 8)
	c.SetInput(func(b []byte) { in <- b })
	slave, err := os.OpenFile(m[1], os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	slave.Write([]byte("hi\r"))
	var got []byte
	for len(got) < 3 {
		got = append(got, <-in...)
	}
	if string(got) != "hi\r" {
		t.Fatalf("input %q", got)
	}
	c.Write([]byte("echo\n"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(slave, buf); err != nil || string(buf) != "echo\n" {
		t.Fatalf("output %q %v", buf, err)
	}
}

// stdioPipes gives the stdio back end pipes instead of the terminal.
func stdioPipes(t *testing.T) (o chardev.Options, keyboard *os.File, screen *os.File) {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inR.Close(); inW.Close(); outR.Close(); outW.Close() })
	return chardev.Options{Stdin: inR, Output: outW}, inW, outR
}

func readN(t *testing.T, r io.Reader, n int) string {
	t.Helper()
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	return string(buf)
}

func TestStdio(t *testing.T) {
	o, kbd, screen := stdioPipes(t)
	c := open(t, "stdio", o)
	if c.Filename() != "stdio" {
		t.Fatalf("filename %q", c.Filename())
	}
	s, _ := chardev.ParseLegacy("stdio", "two")
	if _, err := chardev.OpenWith(s, o); err == nil || err.Error() != "cannot use stdio by multiple character devices" {
		t.Fatalf("second stdio: %v", err)
	}
	done := make(chan string, 1)
	c.Serve(echoServe(done))
	if got := readN(t, screen, len("hello *chardev.duplex\n")); !strings.HasPrefix(got, "hello ") {
		t.Fatalf("greeting %q", got)
	}
	kbd.Write([]byte("info\n"))
	if got := readN(t, screen, 5); got != "INFO\n" {
		t.Fatalf("echo %q", got)
	}
	c.Close() // interrupts the blocked read of the stdin duplicate
	<-done
	c2 := open(t, "stdio", o) // stdio is free again
	c2.Close()
}

func TestPipeBackend(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "p")
	if err := syscall.Mkfifo(base+".in", 0o600); err != nil {
		t.Skip(err)
	}
	syscall.Mkfifo(base+".out", 0o600)
	c := open(t, "pipe:"+base, chardev.Options{})
	defer c.Close()
	if c.Filename() != "pipe" {
		t.Fatalf("filename %q", c.Filename())
	}
	in := make(chan []byte, 4)
	c.SetInput(func(b []byte) { in <- b })
	w, _ := os.OpenFile(base+".in", os.O_WRONLY, 0)
	defer w.Close()
	r, _ := os.OpenFile(base+".out", os.O_RDONLY, 0)
	defer r.Close()
	w.Write([]byte("x"))
	if b := <-in; string(b) != "x" {
		t.Fatalf("input %q", b)
	}
	c.Write([]byte("y"))
	if got := readN(t, r, 1); got != "y" {
		t.Fatalf("output %q", got)
	}
	if _, err := chardev.Open(chardev.Spec{ID: "p", Backend: "pipe", Path: dir + "/none"}, zerolog.Nop()); err == nil ||
		err.Error() != "Could not open '"+dir+"/none': No such file or directory" {
		t.Fatalf("err %v", err)
	}
}

func TestRingbuf(t *testing.T) {
	s, _ := chardev.SpecFromKV(kv("backend=ringbuf,size=8"), "r")
	c, err := chardev.Open(s, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("0123456789")) // keeps the newest 8 bytes
	if b, _ := c.RingbufRead(3); string(b) != "234" {
		t.Fatalf("read %q", b)
	}
	if b, _ := c.RingbufRead(100); string(b) != "56789" {
		t.Fatalf("read %q", b)
	}
	if err := c.RingbufWrite([]byte("cmd")); err != nil { // into the ring, as QEMU's ringbuf-write
		t.Fatal(err)
	}
	c.Write([]byte("!"))
	if b, _ := c.RingbufRead(100); string(b) != "cmd!" {
		t.Fatalf("read after ringbuf-write %q", b)
	}
	s.Size = 1000
	if _, err := chardev.Open(s, zerolog.Nop()); err == nil || err.Error() != "size of ringbuf chardev must be power of two" {
		t.Fatalf("err %v", err)
	}
	n, _ := chardev.Open(chardev.Spec{ID: "n1", Backend: "null"}, zerolog.Nop())
	defer n.Close()
	if _, err := n.RingbufRead(1); err == nil || err.Error() != "n1 is not a ringbuf device" {
		t.Fatalf("err %v", err)
	}
}

func TestOneFrontendWithoutMux(t *testing.T) {
	c := open(t, "null", chardev.Options{})
	defer c.Close()
	if c.FrontendOpen() {
		t.Fatal("frontend-open without a front end")
	}
	if _, err := c.Attach(); err != nil {
		t.Fatal(err)
	}
	_, err := c.Attach()
	if err == nil || err.Error() != "Device 'serial0' is in use" || !errors.Is(err, chardev.ErrInUse) {
		t.Fatalf("err %v", err)
	}
	if !c.FrontendOpen() {
		t.Fatal("frontend-open")
	}
}

func TestUnsupportedBackends(t *testing.T) {
	for _, b := range []string{"msmouse", "wctablet", "testdev", "qemu-vdagent"} {
		_, err := chardev.Open(chardev.Spec{ID: "x", Backend: b}, zerolog.Nop())
		if !errors.Is(err, chardev.ErrUnsupported) {
			t.Errorf("%s: %v", b, err)
		}
	}
}

func TestGuestWriteWithoutPeerIsDropped(t *testing.T) {
	s, _ := chardev.ParseLegacy("unix:"+t.TempDir()+"/s,server=on,wait=off", "serial0")
	c, err := chardev.Open(s, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	big := bytes.Repeat([]byte("x"), 1<<20)
	if n, err := c.Write(big); n != len(big) || err != nil {
		t.Fatalf("write %d %v", n, err)
	}
}

// TestReplace: chardev-change's registry step keeps the id and the place in the list, and
// Busy follows the front ends.
func TestReplace(t *testing.T) {
	r := chardev.NewRegistry()
	defer r.Close()
	for _, id := range []string{"a", "b", "c"} {
		if _, err := r.Open(chardev.Spec{ID: id, Backend: chardev.BackendNull, FD: -1}, chardev.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := r.Get("b")
	fe, err := b.Attach()
	if err != nil || !b.Busy() {
		t.Fatalf("attach: %v, busy %v", err, b.Busy())
	}
	nb, err := chardev.OpenWith(chardev.Spec{ID: "b", Backend: chardev.BackendRingbuf, Size: 1024, FD: -1}, chardev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	old, err := r.Replace(nb)
	if err != nil || old != b {
		t.Fatalf("Replace: %v %v", old, err)
	}
	fe.Detach()
	old.Close()
	var labels []string
	for _, i := range r.List() {
		labels = append(labels, i.Label+"="+i.Filename)
	}
	if got := strings.Join(labels, " "); got != "a=null b=ringbuf c=null" {
		t.Errorf("List after Replace: %s", got)
	}
	if _, err := r.Replace(&chardev.Chardev{}); err == nil {
		t.Error("Replace of an unknown id succeeded")
	}
}
