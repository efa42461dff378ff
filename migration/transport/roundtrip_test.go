package transport_test

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"tlcvm/migration/transport"
)

const streamSize = 3<<20 + 123 // more than every buffer and pipe on the way

// roundTrip sends p through out and returns what in's reader read. A stored channel
// (exec: to a file, file:) is written completely first; a live one (socket, pipe) is
// listened on first and read while written.
func roundTrip(t *testing.T, out, in string, env transport.Env, p []byte) []byte {
	t.Helper()
	stored := strings.HasPrefix(in, "exec:") || strings.HasPrefix(in, "file:")
	if stored {
		w, err := transport.Open(out, env)
		if err != nil {
			t.Fatalf("Open(%q): %v", out, err)
		}
		if err := writeAll(w, p); err != nil {
			t.Fatalf("writing to %q: %v", out, err)
		}
	}
	src, err := transport.Listen(in, env)
	if err != nil {
		t.Fatalf("Listen(%q): %v", in, err)
	}
	defer src.Close()
	werr := make(chan error, 1)
	werr <- nil
	if !stored {
		<-werr
		if strings.HasSuffix(out, ":0") { // the bound port
			out = src.URI()
		}
		w, err := transport.Open(out, env)
		if err != nil {
			t.Fatalf("Open(%q): %v", out, err)
		}
		go func() { werr <- writeAll(w, p) }()
	}
	r, err := src.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	got, rerr := io.ReadAll(r)
	if err := r.Close(); err != nil {
		t.Errorf("reader Close: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("writing to %q: %v", out, err)
	}
	if rerr != nil {
		t.Fatalf("reading from %q: %v", in, rerr)
	}
	return got
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := payload(streamSize)
	same := func(uri string) func(*testing.T, *transport.Env) (string, string) {
		return func(*testing.T, *transport.Env) (string, string) { return uri, uri }
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, env *transport.Env) (out, in string)
	}{
		{"exec both ways", func(*testing.T, *transport.Env) (string, string) {
			f := filepath.Join(dir, "a.chk")
			return "exec:cat > " + f, "exec:cat " + f
		}},
		{"exec dd, the seed's form", func(*testing.T, *transport.Env) (string, string) {
			f := filepath.Join(dir, "b.chk")
			return "exec: dd of=" + f + " bs=1M", "exec: dd if=" + f + " bs=1M"
		}},
		{"file", same("file:" + filepath.Join(dir, "c.chk"))},
		{"file with offset", func(*testing.T, *transport.Env) (string, string) {
			f := filepath.Join(dir, "d.chk")
			return "file:" + f + ",offset=1M", "file:" + f + ",offset=0x100000"
		}},
		{"tcp port 0", same("tcp:127.0.0.1:0")},
		{"tcp localhost", same("tcp:localhost:0")},
		{"tcp ipv6", func(t *testing.T, _ *transport.Env) (string, string) {
			l, err := net.Listen("tcp6", "[::1]:0")
			if err != nil {
				t.Skipf("no IPv6 loopback: %v", err)
			}
			l.Close()
			return "tcp:[::1]:0", "tcp:[::1]:0"
		}},
		{"unix", same("unix:" + filepath.Join(dir, "mig.sock"))},
		{"fd pipe: getfd name out, inherited number in", func(t *testing.T, env *transport.Env) (string, string) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			ft := newFDTable()
			t.Cleanup(ft.closeAll)
			ft.put(t, "migrate", w)
			env.LookupFD = ft.lookup
			// The incoming side takes the read end by number, as libvirt's restore does.
			return "fd:migrate", "fd:" + strconv.Itoa(handOver(t, r))
		}},
		{"fd socketpair: getfd names both ways", func(t *testing.T, env *transport.Env) (string, string) {
			a, b := socketpair(t)
			ft := newFDTable()
			t.Cleanup(ft.closeAll)
			ft.put(t, "out", a)
			ft.put(t, "in", b)
			env.LookupFD = ft.lookup
			return "fd:out", "fd:in"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := quietEnv()
			out, in := tt.setup(t, &env)
			got := roundTrip(t, out, in, env, p)
			sameBytes(t, got, p)
		})
	}
}

// handOver gives f's descriptor away by number (a duplicate the transport will close) and
// closes f, as a parent process hands an inherited descriptor over.
func handOver(t *testing.T, f *os.File) int {
	t.Helper()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return fd
}

func socketpair(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fds[0]), "sp0"), os.NewFile(uintptr(fds[1]), "sp1")
}
