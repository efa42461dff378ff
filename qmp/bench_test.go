package qmp_test

import (
	"bufio"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkRoundTrip: one query-status request and its reply over a unix socket pair, the
// client waiting for each reply before it sends the next (what bench/ measures against a
// separate process, here in-process so that allocations and CPU show up per round trip).
func BenchmarkRoundTrip(b *testing.B) {
	s := newServer(b, optionsNone())
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	srv, cl := fileConn(b, fds[0]), fileConn(b, fds[1])
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(srv, false) }()
	defer func() { cl.Close(); <-done }()
	cl.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(cl)
	rt := func(req []byte) {
		if _, err := cl.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := r.ReadSlice('\n'); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := r.ReadSlice('\n'); err != nil { // greeting
		b.Fatal(err)
	}
	rt([]byte(`{"execute":"qmp_capabilities"}` + "\r\n"))
	req := []byte(`{"execute": "query-status"}` + "\r\n")
	for i := 0; i < 100; i++ {
		rt(req)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rt(req)
	}
}

// fileConn wraps a socket descriptor as a net.Conn (a *net.UnixConn) and closes fd.
func fileConn(t testing.TB, fd int) net.Conn {
	t.Helper()
	f := os.NewFile(uintptr(fd), "socket")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// scriptRW feeds the same request n times, one per Read, and counts what is written: the
// whole server path of a round trip (parse, dispatch, handler, encode, write) with no system
// call and no other goroutine.
type scriptRW struct {
	first, req []byte // first is read once, before the n requests
	n          int
	replies    int
}

func (s *scriptRW) Read(p []byte) (int, error) {
	if s.first != nil {
		n := copy(p, s.first)
		s.first = nil
		return n, nil
	}
	if s.n == 0 {
		return 0, io.EOF
	}
	s.n--
	return copy(p, s.req), nil
}

func (s *scriptRW) Write(p []byte) (int, error) { s.replies++; return len(p), nil }
func (s *scriptRW) Close() error                { return nil }

// BenchmarkServePath: the CPU and allocations of the server's side of one round trip.
func BenchmarkServePath(b *testing.B) {
	s := newServer(b, optionsNone())
	rw := &scriptRW{first: []byte(`{"execute":"qmp_capabilities"}`), req: []byte(`{"execute": "query-status"}` + "\r\n"), n: b.N}
	b.ReportAllocs()
	b.ResetTimer()
	s.Serve(rw, false)
	b.StopTimer()
	if rw.replies < b.N {
		b.Fatalf("%d replies for %d requests", rw.replies, b.N)
	}
}
