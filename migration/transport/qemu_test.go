package transport_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tlcvm/migration/transport"
	"tlcvm/tests/harness"
)

const qemuBinary = "/usr/bin/qemu-system-x86_64"

// qemu is a real QEMU 7.2 driven over QMP on its stdio.
type qemu struct {
	t   *testing.T
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startQEMU(t *testing.T, extra []*os.File, args ...string) *qemu {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: not running QEMU")
	}
	harness.Reference(t)
	base := []string{"-machine", "none", "-nodefaults", "-display", "none", "-m", "16", "-qmp", "stdio"}
	cmd := exec.Command(qemuBinary, append(base, args...)...)
	cmd.ExtraFiles = extra
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	q := &qemu{t: t, cmd: cmd, in: in, out: bufio.NewScanner(out)}
	t.Cleanup(func() {
		q.in.Close()
		q.cmd.Process.Kill()
		q.cmd.Wait()
	})
	q.line() // greeting
	q.run(`{"execute":"qmp_capabilities"}`)
	return q
}

func (q *qemu) line() map[string]any {
	q.t.Helper()
	if !q.out.Scan() {
		q.t.Fatalf("QEMU closed its monitor: %v", q.out.Err())
	}
	var m map[string]any
	if err := json.Unmarshal(q.out.Bytes(), &m); err != nil {
		q.t.Fatalf("QMP %q: %v", q.out.Text(), err)
	}
	return m
}

// run sends a command and returns its reply, skipping events.
func (q *qemu) run(cmd string) map[string]any {
	q.t.Helper()
	if _, err := io.WriteString(q.in, cmd+"\n"); err != nil {
		q.t.Fatal(err)
	}
	for {
		m := q.line()
		if _, ok := m["event"]; !ok {
			return m
		}
	}
}

// status polls query-migrate until its status is final (a hang guard, not a timing
// assertion: the migrations here are 40 KB).
func (q *qemu) status() (string, map[string]any) {
	q.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r := q.run(`{"execute":"query-migrate"}`)["return"].(map[string]any)
		switch s, _ := r["status"].(string); s {
		case "completed", "failed", "cancelled":
			return s, r
		}
		time.Sleep(10 * time.Millisecond)
	}
	q.t.Fatal("migration did not end")
	return "", nil
}

// TestWithQEMU: real QEMU 7.2 migrates into a tcp: Source; the bytes go out through
// Open to a second QEMU (-incoming fd:3, a pipe: libvirt's restore) and through a unix:
// socket to a third, which both load them: the transports carry QEMU's stream unchanged
// and end it with the EOF QEMU expects.
func TestWithQEMU(t *testing.T) {
	src, err := transport.Listen("tcp:127.0.0.1:0", transport.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	a := startQEMU(t, nil)
	if r := a.run(`{"execute":"migrate","arguments":{"uri":"` + src.URI() + `"}}`); r["return"] == nil {
		t.Fatalf("migrate: %v", r)
	}
	r, err := src.Accept()
	if err != nil {
		t.Fatal(err)
	}
	stream, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if st, info := a.status(); st != "completed" {
		t.Fatalf("source QEMU: %s %v", st, info)
	}
	t.Logf("QEMU's stream: %d bytes", len(stream))
	if !bytes.HasPrefix(stream, []byte("QEVM\x00\x00\x00\x03")) {
		t.Fatalf("stream starts % x", stream[:min(8, len(stream))])
	}

	// libvirt's restore: a pipe, the destination reading fd 3 from -incoming defer.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	b := startQEMU(t, []*os.File{pr}, "-incoming", "defer")
	pr.Close()
	if r := b.run(`{"execute":"migrate-incoming","arguments":{"uri":"fd:3"}}`); r["return"] == nil {
		t.Fatalf("migrate-incoming: %v", r)
	}
	fd, err := unix.Dup(int(pw.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	pw.Close()
	ft := newFDTable()
	defer ft.closeAll()
	ft.put(t, "dst", os.NewFile(uintptr(fd), "pipe"))
	w, err := transport.Open("fd:dst", transport.Env{LookupFD: ft.lookup})
	if err != nil {
		t.Fatal(err)
	}
	if err := writeAll(w, stream); err != nil {
		t.Fatal(err)
	}
	if st, info := b.status(); st != "completed" {
		t.Fatalf("fd destination QEMU: %s %v", st, info)
	}

	// unix: destination (migrate-incoming replies once it listens).
	sock := filepath.Join(t.TempDir(), "in.sock")
	c := startQEMU(t, nil, "-incoming", "defer")
	if r := c.run(`{"execute":"migrate-incoming","arguments":{"uri":"unix:` + sock + `"}}`); r["return"] == nil {
		t.Fatalf("migrate-incoming: %v", r)
	}
	w, err = transport.Open("unix:"+sock, transport.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if err := writeAll(w, stream); err != nil {
		t.Fatal(err)
	}
	if st, info := c.status(); st != "completed" {
		t.Fatalf("unix destination QEMU: %s %v", st, info)
	}
	if s := c.run(`{"execute":"query-status"}`)["return"].(map[string]any)["status"]; s != "running" {
		t.Errorf("destination run state %v, want running", s)
	}
}

// TestErrorsMatchQEMU asks the real QEMU 7.2 for its error on each URI (migrate's reply
// or query-migrate's error-desc; migrate-incoming's reply) and compares it with ours.
func TestErrorsMatchQEMU(t *testing.T) {
	port := freePort(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	noFD := transport.Env{LookupFD: newFDTable().lookup}

	a := startQEMU(t, nil)
	for _, uri := range []string{"foo:bar", "file:/tmp/x", "tcp:x", "tcp:127.0.0.1:", "tcp::", "tcp:[::1", "tcp:[::1]:",
		"tcp:127.0.0.1:0,ipv4=foo", "unix:", "fd:nosuch", "fd:-1", "rdma:127.0.0.1:5",
		"tcp:127.0.0.1:" + port, "tcp:[::1]:" + port, "unix:/nonexistent/sock"} {
		t.Run("migrate "+uri, func(t *testing.T) {
			if uri == "file:/tmp/x" {
				t.Skip("file: is tlcvm's (QEMU 8.2's) and refused by 7.2")
			}
			r := a.run(`{"execute":"migrate","arguments":{"uri":` + jsonString(uri) + `}}`)
			want := ""
			if e, ok := r["error"].(map[string]any); ok {
				want = e["desc"].(string)
			} else if st, info := a.status(); st == "failed" {
				want, _ = info["error-desc"].(string)
			}
			got := ""
			w, err := transport.Open(uri, noFD)
			if err == nil {
				err = transport.Connected(w)
				transport.Abort(w)
			}
			if err != nil {
				got = err.Error()
			}
			if got != want {
				t.Errorf("tlcvm %q, QEMU %q", got, want)
			}
		})
	}

	b := startQEMU(t, nil, "-incoming", "defer")
	for _, uri := range []string{"foo:bar", "defer", "tcp:x", "tcp:[::1]:", "tcp::", "unix:", "fd:nosuch", "fd:-1", "fd:",
		"rdma:127.0.0.1:5", "unix:/nonexistent/x", "tcp:192.0.2.1:5", "tcp:127.0.0.1:abc", "tcp:" + busy.Addr().String(),
		"tcp:127.0.0.1:0,to=x"} {
		t.Run("migrate-incoming "+uri, func(t *testing.T) {
			r := b.run(`{"execute":"migrate-incoming","arguments":{"uri":` + jsonString(uri) + `}}`)
			e, ok := r["error"].(map[string]any)
			if !ok {
				t.Fatalf("QEMU accepted %q: %v", uri, r)
			}
			want := e["desc"].(string)
			got := ""
			src, err := transport.Listen(uri, noFD)
			if err == nil {
				src.Close()
			} else {
				got = err.Error()
			}
			if got != want {
				t.Errorf("tlcvm %q, QEMU %q", got, want)
			}
		})
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
