package transport_test

import (
	"encoding/json"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"tlcvm/migration/transport"
)

// startedCommand opens uri (a command that prints its pid on stderr, reads a little and
// then sleeps) and returns the writer and the pid once the command has read: from then on
// a Write of more than the pipe holds stays blocked.
func startedCommand(t *testing.T, uri string) (io.WriteCloser, int, chan error) {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pr.Close() })
	w, err := transport.Open(uri, transport.Env{Stderr: pw})
	if err != nil {
		t.Fatal(err)
	}
	werr := make(chan error, 1)
	go func() {
		_, err := w.Write(payload(16 << 20)) // far more than the 1 MiB pipe
		werr <- err
	}()
	pid := pidFromStderr(t, pr)
	go io.Copy(io.Discard, pr) //nolint:errcheck // drain the rest
	return w, pid, werr
}

const blockedCommand = "exec:head -c 4096 >/dev/null; echo $$ >&2; exec sleep 1000"

// TestCancelByCloseMidStream: a Close that finds a Write blocked on another goroutine is
// a cancel: the Write fails with ErrAborted, the command is killed and reaped.
func TestCancelByCloseMidStream(t *testing.T) {
	w, pid, werr := startedCommand(t, blockedCommand)
	err := w.Close()
	mustIs(t, err, transport.ErrAborted)
	if err := <-werr; err == nil {
		t.Fatal("Write returned no error after cancel")
	} else {
		mustIs(t, err, transport.ErrAborted)
	}
	if !gone(pid) {
		t.Fatalf("command %d still exists after Close", pid)
	}
}

// TestAbort: Abort from another goroutine, at any point, kills and reaps.
func TestAbort(t *testing.T) {
	w, pid, werr := startedCommand(t, blockedCommand)
	if err := transport.Abort(w); err != nil {
		t.Fatal(err)
	}
	if !gone(pid) {
		t.Fatalf("command %d still exists after Abort", pid)
	}
	mustIs(t, <-werr, transport.ErrAborted)
	_, err := w.Write([]byte("x"))
	mustIs(t, err, transport.ErrAborted)
	mustIs(t, w.Close(), transport.ErrAborted)
	if err := transport.Abort(w); err != nil {
		t.Errorf("second Abort: %v", err)
	}
}

// TestAbortWhileConnecting: cancel during the background connection.
func TestAbortWhileConnecting(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	w, err := transport.Open("tcp:"+l.Addr().String(), transport.Env{})
	if err != nil {
		t.Fatal(err)
	}
	transport.Abort(w)
	_, err = w.Write([]byte("QEVM"))
	mustIs(t, err, transport.ErrAborted)
	mustIs(t, transport.Connected(w), transport.ErrAborted)
}

// TestIncomingCancel: a Read blocked on a command that never writes returns once the
// reader is aborted; the command is killed and reaped. Closing a source whose command was
// never accepted does the same.
func TestIncomingCancel(t *testing.T) {
	for _, accept := range []bool{true, false} {
		name := "accepted"
		if !accept {
			name = "never accepted"
		}
		t.Run(name, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pr.Close()
			src, err := transport.Listen("exec:echo $$ >&2; exec sleep 1000", transport.Env{Stderr: pw})
			if err != nil {
				t.Fatal(err)
			}
			pid := pidFromStderr(t, pr)
			go io.Copy(io.Discard, pr) //nolint:errcheck // drain
			if !accept {
				src.Close()
				if !gone(pid) {
					t.Fatalf("command %d still exists after Source.Close", pid)
				}
				return
			}
			r, err := src.Accept()
			if err != nil {
				t.Fatal(err)
			}
			rerr := make(chan error, 1)
			go func() {
				_, err := r.Read(make([]byte, 10))
				rerr <- err
			}()
			transport.Abort(r)
			mustIs(t, <-rerr, transport.ErrAborted)
			if !gone(pid) {
				t.Fatalf("command %d still exists after Abort", pid)
			}
			src.Close()
		})
	}
}

// TestSourceCloseUnblocksAccept: migrate_cancel / quit during -incoming tcp:….
func TestSourceCloseUnblocksAccept(t *testing.T) {
	for _, uri := range []string{"tcp:127.0.0.1:0", "unix:" + filepath.Join(t.TempDir(), "s")} {
		src, err := transport.Listen(uri, transport.Env{})
		if err != nil {
			t.Fatal(err)
		}
		aerr := make(chan error, 1)
		go func() {
			_, err := src.Accept()
			aerr <- err
		}()
		src.Close()
		mustIs(t, <-aerr, transport.ErrAborted)
		if _, err := src.Accept(); err == nil {
			t.Error("Accept after Close succeeded")
		}
	}
}

// TestSocketAddresses: what query-migrate shows under "socket-address" (QEMU 7.2:
// -incoming defer, migrate-incoming, query-migrate).
func TestSocketAddresses(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s1")
	tests := []struct{ uri, want string }{
		{"tcp:127.0.0.1:0", `[{"port":"PORT","ipv4":true,"host":"127.0.0.1","type":"inet"}]`},
		{"tcp:localhost:0", `[{"port":"PORT","ipv4":true,"host":"127.0.0.1","type":"inet"}]`},
		{"tcp::0", `[{"port":"PORT","ipv6":true,"host":"::","type":"inet"},{"port":"PORT","ipv4":true,"host":"0.0.0.0","type":"inet"}]`},
		{"unix:" + sock, `[{"path":"` + sock + `","type":"unix"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			src, err := transport.Listen(tt.uri, transport.Env{})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			got, err := json.Marshal(transport.SocketAddresses(src))
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if i := strings.LastIndexByte(src.URI(), ':'); strings.HasPrefix(tt.uri, "tcp:") {
				port := src.URI()[i+1:]
				if port == "0" {
					t.Fatalf("URI() = %q: port not bound", src.URI())
				}
				want = strings.ReplaceAll(want, "PORT", port)
			}
			if string(got) != want {
				t.Errorf("socket-address %s, want %s", got, want)
			}
		})
	}
	src, err := transport.Listen("file:"+sock, transport.Env{})
	if err == nil {
		defer src.Close()
		if a := transport.SocketAddresses(src); a != nil {
			t.Errorf("file: source has socket addresses %v", a)
		}
	}
}

// TestWriteAfterClose: nothing is silently buffered after Close.
func TestWriteAfterClose(t *testing.T) {
	w, err := transport.Open("file:"+filepath.Join(t.TempDir(), "x"), transport.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = w.Write([]byte("late"))
	if err == nil || err.Error() != "Unable to write to file: Bad file descriptor" {
		t.Fatalf("Write after Close = %v", err)
	}
	mustIs(t, err, transport.ErrWrite)
}
