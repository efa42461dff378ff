package transport_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"tlcvm/migration/transport"
)

// TestReturnPath: over tcp:, unix: and an fd: socket, the destination's Reply reaches the
// source's ReturnPath while the stream flows the other way; a pipe has none.
func TestReturnPath(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		// open returns the source's writer and the destination's reader.
		open func(t *testing.T) (io.WriteCloser, io.ReadCloser)
	}{
		{"tcp", func(t *testing.T) (io.WriteCloser, io.ReadCloser) { return connect(t, "tcp:127.0.0.1:0") }},
		{"unix", func(t *testing.T) (io.WriteCloser, io.ReadCloser) {
			return connect(t, "unix:"+filepath.Join(dir, "m.sock"))
		}},
		{"fd socket", func(t *testing.T) (io.WriteCloser, io.ReadCloser) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
			if err != nil {
				t.Fatal(err)
			}
			ft := newFDTable()
			ft.put(t, "migrate", os.NewFile(uintptr(fds[0]), "a"))
			w, err := transport.Open("fd:migrate", transport.Env{LookupFD: ft.lookup})
			if err != nil {
				t.Fatal(err)
			}
			src, err := transport.Listen("fd:"+itoa(fds[1]), transport.Env{})
			if err != nil {
				t.Fatal(err)
			}
			r, err := src.Accept()
			if err != nil {
				t.Fatal(err)
			}
			return w, r
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, r := c.open(t)
			defer r.Close()
			back, err := transport.ReturnPath(w)
			if err != nil {
				t.Fatal(err)
			}
			reply, err := transport.Reply(r)
			if err != nil {
				t.Fatal(err)
			}
			p := payload(1 << 20)
			done := make(chan error, 1)
			go func() {
				if _, err := w.Write(p); err != nil {
					done <- err
					return
				}
				done <- transport.Flush(w)
			}()
			got := make([]byte, len(p))
			if _, err := io.ReadFull(r, got); err != nil {
				t.Fatal(err)
			}
			sameBytes(t, got, p)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if _, err := reply.Write([]byte("SHUT")); err != nil {
				t.Fatal(err)
			}
			msg := make([]byte, 4)
			if _, err := io.ReadFull(back, msg); err != nil || string(msg) != "SHUT" {
				t.Fatalf("return path read %q, %v", msg, err)
			}
		})
	}
	t.Run("pipe", func(t *testing.T) {
		var fds [2]int
		if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fds[0])
		ft := newFDTable()
		ft.put(t, "p", os.NewFile(uintptr(fds[1]), "p"))
		w, err := transport.Open("fd:p", transport.Env{LookupFD: ft.lookup})
		if err != nil {
			t.Fatal(err)
		}
		defer transport.Abort(w)
		if _, err := transport.ReturnPath(w); !errors.Is(err, transport.ErrNoReturnPath) ||
			err.Error() != "Unable to open return-path for postcopy" {
			t.Fatalf("return path on a pipe: %v", err)
		}
	})
}

// connect opens uri both ways (the destination listening first) and returns the source's
// writer and the destination's accepted reader.
func connect(t *testing.T, uri string) (io.WriteCloser, io.ReadCloser) {
	t.Helper()
	src, err := transport.Listen(uri, transport.Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	w, err := transport.Open(src.URI(), transport.Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { transport.Abort(w) })
	if err := transport.Connected(w); err != nil {
		t.Fatal(err)
	}
	r, err := src.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return w, r
}

// TestChannels: a destination expecting multifd channels sorts its connections by their
// first four bytes, whatever order they come in.
func TestChannels(t *testing.T) {
	src, err := transport.Listen("tcp:127.0.0.1:0", transport.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	transport.Expect(src, func() int { return 2 })
	send := func(head []byte) {
		w, err := transport.Open(src.URI(), transport.Env{})
		if err != nil {
			t.Fatal(err)
		}
		if err := writeAll(w, head); err != nil {
			t.Fatal(err)
		}
	}
	multifd := []byte{0x11, 0x22, 0x33, 0x44, 'a'}
	send(multifd)
	send([]byte("QEVM main"))
	multifd[4] = 'b'
	send(multifd)
	r, err := src.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(r); string(got) != "QEVM main" {
		t.Fatalf("main channel read %q", got)
	}
	var tails []byte
	for i := 0; i < 2; i++ {
		c, err := transport.AcceptChannel(src)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(c)
		if !bytes.HasPrefix(got, []byte{0x11, 0x22, 0x33, 0x44}) || len(got) != 5 {
			t.Fatalf("channel read %q", got)
		}
		tails = append(tails, got[4])
		c.Close()
	}
	if !(bytes.Equal(tails, []byte("ab")) || bytes.Equal(tails, []byte("ba"))) {
		t.Fatalf("channels %q", tails)
	}
}
func itoa(n int) string { return strconv.Itoa(n) }
