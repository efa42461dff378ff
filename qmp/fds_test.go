package qmp_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"tlcvm/qmp"
)

// fdClient is a client over a real socketpair, able to pass descriptors.
type fdClient struct {
	*client
	uc *net.UnixConn
}

func dialUnix(t *testing.T, s *qmp.Server) *fdClient {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "sock")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	srv, cli := conn(fds[0]), conn(fds[1])
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(srv, false) }()
	t.Cleanup(func() { cli.Close(); <-done })
	return &fdClient{client: &client{t: t, conn: cli, r: bufio.NewReader(cli)}, uc: cli}
}

// sendFDs writes msg and the descriptors in one sendmsg, as libvirt does.
func (c *fdClient) sendFDs(msg string, fds ...int) {
	c.t.Helper()
	if _, _, err := c.uc.WriteMsgUnix([]byte(msg), unix.UnixRights(fds...), nil); err != nil {
		c.t.Fatal(err)
	}
}

// pipeEnds returns a pipe; the test keeps r and sends w. Reading r hits EOF once every copy
// of w is closed, which is how the tests see that the server closed its copy.
func pipeEnds(t *testing.T) (r *os.File, w int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r = os.NewFile(uintptr(p[0]), "r")
	t.Cleanup(func() { r.Close() })
	return r, p[1]
}

func expectEOF(t *testing.T, r *os.File, what string) {
	t.Helper()
	if n, err := r.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("%s: server still holds the descriptor (read %d, %v)", what, n, err)
	}
}

func TestFDPassing(t *testing.T) {
	s := newServer(t, optionsNone())
	c := dialUnix(t, s)
	c.negotiate()

	// getfd + closefd: the named descriptor lives until closefd.
	r1, w1 := pipeEnds(t)
	c.sendFDs(`{"execute":"getfd","arguments":{"fdname":"mig"},"id":1}`, w1)
	unix.Close(w1)
	if got := c.line(); got != `{"return": {}, "id": 1}` {
		t.Fatalf("getfd: %s", got)
	}
	c.send(`{"execute":"closefd","arguments":{"fdname":"mig"},"id":2}`)
	if got := c.line(); got != `{"return": {}, "id": 2}` {
		t.Fatalf("closefd: %s", got)
	}
	expectEOF(t, r1, "closefd")

	// A descriptor sent with a command that does not take it is closed after the command.
	r2, w2 := pipeEnds(t)
	c.sendFDs(`{"execute":"query-status","id":3}`, w2)
	unix.Close(w2)
	if got := c.line(); !strings.HasSuffix(got, `"id": 3}`) {
		t.Fatalf("query-status: %s", got)
	}
	expectEOF(t, r2, "unclaimed")

	// getfd with a digit name is refused and the descriptor closed.
	r3, w3 := pipeEnds(t)
	c.sendFDs(`{"execute":"getfd","arguments":{"fdname":"0x"},"id":4}`, w3)
	unix.Close(w3)
	if got := c.line(); got != `{"id": 4, "error": {"class": "GenericError", "desc": "Parameter 'fdname' expects a name not starting with a digit"}}` {
		t.Fatalf("getfd digit: %s", got)
	}
	expectEOF(t, r3, "refused getfd")

	// The fd arrives with the first bytes of a command completed by a later write.
	r4, w4 := pipeEnds(t)
	c.sendFDs(`{"execute":"getfd",`, w4)
	unix.Close(w4)
	c.send(`"arguments":{"fdname":"late"},"id":5}`)
	if got := c.line(); got != `{"return": {}, "id": 5}` {
		t.Fatalf("split getfd: %s", got)
	}

	// add-fd, query-fdsets, remove-fd.
	r5, w5 := pipeEnds(t)
	c.sendFDs(`{"execute":"add-fd","arguments":{"opaque":"rdonly:/x"},"id":6}`, w5)
	unix.Close(w5)
	got := c.line()
	if !strings.HasPrefix(got, `{"return": {"fd": `) || !strings.HasSuffix(got, `, "fdset-id": 0}, "id": 6}`) {
		t.Fatalf("add-fd: %s", got)
	}
	fdNum := strings.TrimSuffix(strings.TrimPrefix(got, `{"return": {"fd": `), `, "fdset-id": 0}, "id": 6}`)
	c.send(`{"execute":"query-fdsets","id":7}`)
	if got := c.line(); got != `{"return": [{"fds": [{"fd": `+fdNum+`, "opaque": "rdonly:/x"}], "fdset-id": 0}], "id": 7}` {
		t.Fatalf("query-fdsets: %s", got)
	}
	c.send(`{"execute":"remove-fd","arguments":{"fdset-id":0,"fd":` + fdNum + `},"id":8}{"execute":"query-fdsets","id":9}`)
	if got := c.line(); got != `{"return": {}, "id": 8}` {
		t.Fatalf("remove-fd: %s", got)
	}
	if got := c.line(); got != `{"return": [], "id": 9}` {
		t.Fatalf("query-fdsets after remove: %s", got)
	}
	expectEOF(t, r5, "remove-fd")

	// Session descriptors are closed when the connection ends.
	c.uc.Close()
	expectEOF(t, r4, "session close")
}

func TestFDSets(t *testing.T) {
	s := newServer(t, optionsNone())
	f := s.FDSets()
	id := func(i int64) *int64 { return &i }
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	a, err := f.Add(p[0], nil, nil) // read end: O_RDONLY
	if err != nil || a.FdsetID != 0 {
		t.Fatalf("Add: %+v %v", a, err)
	}
	if a, _ = f.Add(p[1], id(5), nil); a.FdsetID != 5 {
		t.Fatalf("Add id 5: %+v", a)
	}
	if _, err := f.Add(3, id(-1), nil); err == nil || err.Error() != "Parameter 'fdset-id' expects a non-negative value" {
		t.Errorf("negative id: %v", err)
	}
	if got := f.Query(); len(got) != 2 || got[0].FdsetID != 5 || got[1].FdsetID != 0 {
		t.Errorf("Query order: %+v", got)
	}
	dup, err := f.Open("/dev/fdset/0", unix.O_RDONLY, 0)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := f.Open("/dev/fdset/0", unix.O_WRONLY, 0); err != unix.EACCES {
		t.Errorf("wrong mode: %v", err)
	}
	if _, err := f.Open("/dev/fdset/9", unix.O_RDONLY, 0); err != unix.ENOENT {
		t.Errorf("missing set: %v", err)
	}
	// A set in use by a dup survives remove-fd until the dup is released.
	if err := f.Remove(0, nil); err != nil {
		t.Fatal(err)
	}
	// QEMU closes removed descriptors at once (the VM runs) but keeps the set while a
	// duplicate is out.
	if got := f.Query(); len(got) != 2 || got[1].FdsetID != 0 || len(got[1].FDs) != 0 {
		t.Errorf("set 0 after remove-fd with a dup out: %+v", got)
	}
	f.DupRemove(dup)
	unix.Close(dup)
	if err := f.Remove(5, nil); err != nil {
		t.Fatal(err)
	}
	if got := f.Query(); len(got) != 0 {
		t.Errorf("after removals: %+v", got)
	}
}

func TestSessionFDParam(t *testing.T) {
	s := newServer(t, optionsNone())
	sess := s.NewSession()
	var p [2]int
	unix.Pipe2(p[:], unix.O_CLOEXEC)
	defer unix.Close(p[0])
	if err := sess.AddFD("m", p[1]); err != nil {
		t.Fatal(err)
	}
	if fd, err := sess.FDParam("m"); err != nil || fd != p[1] {
		t.Errorf("FDParam(m) = %d, %v", fd, err)
	}
	if _, err := sess.FDParam("m"); !errors.Is(err, qmp.ErrFDNotFound) || err.Error() != "File descriptor named 'm' has not been found" {
		t.Errorf("taken twice: %v", err)
	}
	if fd, err := sess.FDParam("42"); err != nil || fd != 42 {
		t.Errorf("FDParam(42) = %d, %v", fd, err)
	}
	if _, err := sess.FDParam("4x"); err == nil || err.Error() != "Invalid file descriptor number '4x'" {
		t.Errorf("FDParam(4x): %v", err)
	}
	unix.Close(p[1])
}
