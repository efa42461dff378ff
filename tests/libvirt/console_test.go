package libvirt_test

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	lv "tlcvm/internal/libvirttest"
)

// console reads a domain's serial pty (the path `virsh ttyconsole` gives)
// directly: `virsh console` needs a terminal.
type console struct {
	f    *os.File
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

// openConsole opens the pty of dom in raw mode and starts reading it; it
// is closed when owner ends (the whole story, not the subtest t).
func openConsole(t, owner *testing.T, dom string) *console {
	t.Helper()
	out, err := virsh.Run("ttyconsole", dom)
	if err != nil {
		t.Fatal(err)
	}
	path := strings.TrimSpace(out)
	if !strings.HasPrefix(path, "/dev/pts/") {
		t.Fatalf("ttyconsole %s = %q, want /dev/pts/N", dom, out)
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
		tio.Lflag &^= unix.ECHO | unix.ICANON | unix.ISIG | unix.IEXTEN
		tio.Iflag &^= unix.ICRNL | unix.IXON
		tio.Oflag &^= unix.OPOST
		_ = unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, tio)
	}
	c := &console{f: f, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			c.mu.Lock()
			c.buf.Write(b[:n])
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	owner.Cleanup(c.close)
	return c
}

func (c *console) close() {
	c.f.Close()
}

// text returns what has been read so far.
func (c *console) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// reset forgets what has been read so far.
func (c *console) reset() {
	c.mu.Lock()
	c.buf.Reset()
	c.mu.Unlock()
}

// waitFor polls until the console output contains s.
func (c *console) waitFor(t *testing.T, s string, deadline time.Duration) {
	t.Helper()
	err := lv.Poll(deadline, 50*time.Millisecond, "serial output "+s, func() (bool, error) {
		return strings.Contains(c.text(), s), nil
	})
	if err != nil {
		t.Fatalf("%v; serial so far: %q", err, c.text())
	}
}
