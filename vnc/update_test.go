package vnc_test

import (
	"errors"
	"net"
	"path/filepath"
	"testing"

	"tlcvm/vnc"
)

// TestUpdate: Update moves the listeners (a client connected before stays, a new one
// connects at the new address, the old one refuses); a failed open leaves none; an idle
// server (-vnc none) starts listening.
func TestUpdate(t *testing.T) {
	s, addr := start(t, vnc.Config{}, vnc.Options{})
	c1 := dial(t, "tcp", addr, "RFB 003.008\n", true)
	defer c1.conn.Close()
	path := filepath.Join(t.TempDir(), "vnc.sock")
	if err := s.Update(func() ([]net.Listener, error) {
		l, err := net.Listen("unix", path)
		return []net.Listener{l}, err
	}); err != nil {
		t.Fatal(err)
	}
	c2 := dial(t, "unix", path, "RFB 003.008\n", true)
	defer c2.conn.Close()
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("the old address %s still accepts", addr)
	}
	inf := s.Info()
	if len(inf.Listeners) != 1 || inf.Family != "unix" || inf.Service != path || len(inf.Clients) != 2 {
		t.Errorf("after the update: %+v", inf)
	}
	boom := errors.New("boom")
	if err := s.Update(func() ([]net.Listener, error) { return nil, boom }); err != boom {
		t.Errorf("failed open: %v", err)
	}
	if inf := s.Info(); len(inf.Listeners) != 0 || len(inf.Clients) != 2 {
		t.Errorf("after a failed update: %+v", inf)
	}

	idle, err := vnc.Idle(vnc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.Serve()
	if inf := idle.Info(); len(inf.Listeners) != 0 {
		t.Fatalf("idle server listens: %+v", inf)
	}
	var l net.Listener
	if err := idle.Update(func() ([]net.Listener, error) {
		l, err = net.Listen("tcp", "127.0.0.1:0")
		return []net.Listener{l}, err
	}); err != nil {
		t.Fatal(err)
	}
	c3 := dial(t, "tcp", l.Addr().String(), "RFB 003.008\n", true)
	c3.conn.Close()
	if err := idle.Close(); err != nil {
		t.Error(err)
	}
	if err := idle.Update(func() ([]net.Listener, error) { return nil, nil }); !errors.Is(err, net.ErrClosed) {
		t.Errorf("update after close: %v", err)
	}
}
