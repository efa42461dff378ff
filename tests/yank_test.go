package tests_test

import (
	"bufio"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlcvm/tests/harness"
)

// TestYankChardev: yank on a socket chardev whose client is connected (an HMP monitor's)
// shuts the client's connection down — the client reads EOF — and the server listens again,
// so a new client gets a fresh monitor; as QEMU 7.2 does.
func TestYankChardev(t *testing.T) {
	for name, bin := range map[string]string{"qemu": requireReference(t), "tlcvm": requireCandidate(t)} {
		t.Run(name, func(t *testing.T) {
			parallel(t)
			dir := t.TempDir()
			qmpSock, monSock := filepath.Join(dir, "qmp.sock"), filepath.Join(dir, "mon.sock")
			p := harness.Start(t, harness.Config{Bin: bin, Dir: dir, Args: []string{
				"-machine", "pc", "-nodefaults", "-display", "none",
				"-qmp", "unix:" + qmpSock + ",server=on,wait=off",
				"-chardev", "socket,id=mon0,path=" + monSock + ",server=on,wait=off",
				"-mon", "chardev=mon0,mode=readline"}})
			q, err := harness.DialQMP(qmpSock, p, harness.DefaultTimeout)
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Connect(); err != nil {
				t.Fatal(err)
			}
			hmp := func() (net.Conn, *bufio.Reader) {
				c, err := harness.DialUnix(monSock, p, harness.DefaultTimeout)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				_ = c.SetDeadline(time.Now().Add(harness.DefaultTimeout))
				r := bufio.NewReader(c)
				line, err := r.ReadString('\n')
				if err != nil || !strings.Contains(line, "QEMU 7.2") {
					t.Fatalf("monitor banner: %q, %v", line, err)
				}
				return c, r
			}
			c, r := hmp()
			// the connection is the chardev's now: the prompt shows
			if _, err := r.ReadString(')'); err != nil {
				t.Fatalf("prompt: %v", err)
			}
			m, err := q.Execute("yank", map[string]any{"instances": []map[string]any{{"type": "chardev", "id": "mon0"}}})
			if err != nil || m.Raw == nil || !strings.Contains(string(m.Raw), `"return"`) {
				t.Fatalf("yank: %s, %v", m.Raw, err)
			}
			// the client reads what was still on its way, then EOF
			if _, err := io.ReadAll(r); err != nil {
				t.Fatalf("after yank the client reads an error, not EOF: %v", err)
			}
			c.Close()
			// the server listens again: a new client gets a new monitor
			hmp()
		})
	}
}
