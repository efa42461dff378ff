package transport_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"tlcvm/migration/transport"
)

// payload is deterministic pseudo-random data, with a zero run in the middle.
func payload(n int) []byte {
	p := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			p[i+j] = byte(v >> (8 * j))
		}
	}
	clear(p[n/3 : n/2])
	return p
}

// writeAll writes p in uneven chunks (as a stream writer does) and closes.
func writeAll(w io.WriteCloser, p []byte) error {
	for off := 0; off < len(p); {
		n := min(4096+off%3000, len(p)-off)
		if _, err := w.Write(p[off : off+n]); err != nil {
			w.Close()
			return err
		}
		off += n
	}
	return w.Close()
}

// fdTable is a getfd table: LookupFD hands a descriptor over once.
type fdTable struct {
	mu  sync.Mutex
	fds map[string]int
}

func newFDTable() *fdTable { return &fdTable{fds: map[string]int{}} }

// put takes f's descriptor (f is closed; the table owns a duplicate).
func (ft *fdTable) put(t *testing.T, name string, f *os.File) {
	t.Helper()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	ft.mu.Lock()
	ft.fds[name] = fd
	ft.mu.Unlock()
}

func (ft *fdTable) lookup(name string) (int, error) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	fd, ok := ft.fds[name]
	if !ok {
		return -1, errors.New("no such fd")
	}
	delete(ft.fds, name)
	return fd, nil
}

func (ft *fdTable) closeAll() {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	for k, fd := range ft.fds {
		unix.Close(fd)
		delete(ft.fds, k)
	}
}

func quietEnv() transport.Env { return transport.Env{Stderr: io.Discard} }

// sameBytes reports a short diagnosis of a mismatch.
func sameBytes(t *testing.T, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("received %d bytes (sha256 %x), sent %d (sha256 %x)", len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
}

// pidFromStderr reads the first line a command writes to stderr ("echo $$ >&2") and
// returns it as a pid.
func pidFromStderr(t *testing.T, r io.Reader) int {
	t.Helper()
	var line []byte
	b := make([]byte, 1)
	for {
		if _, err := r.Read(b); err != nil {
			t.Fatalf("reading the command's pid: %v", err)
		}
		if b[0] == '\n' {
			break
		}
		line = append(line, b[0])
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(line)))
	if err != nil {
		t.Fatalf("pid line %q: %v", line, err)
	}
	return pid
}

// gone reports that pid no longer exists (killed and reaped).
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func mustIs(t *testing.T, err error, targets ...error) {
	t.Helper()
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("error %q (%T) does not wrap %v", err, err, target)
		}
	}
}
