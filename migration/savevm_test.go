package migration_test

import (
	"bytes"
	"testing"
)

// TestSaveLoadVM: a snapshot's VM state puts back exactly the RAM and device state saved,
// pages written after the save reading as zeroes again; a flipped byte fails the load
// before any device state is applied.
func TestSaveLoadVM(t *testing.T) {
	m := newFakeMachine(1<<20, "paused")
	e, _, _ := newEngine(t, m)
	for p := uint64(0); p < 40; p += 3 {
		m.ram.store(p, p*7+1)
	}
	m.secs[0].value.Store(11)
	var buf bytes.Buffer
	n, err := e.SaveVM(&buf, "running")
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("SaveVM: %d bytes (%d written), %v", n, buf.Len(), err)
	}
	saved := append([]byte(nil), m.ram.mem...)
	for p := uint64(1); p < 60; p += 2 {
		m.ram.store(p, p*13+5)
	}
	m.secs[0].value.Store(99)

	bad := append([]byte(nil), buf.Bytes()...)
	bad[len(bad)/2] ^= 0x40
	if err := e.LoadVM(bytes.NewReader(bad)); err == nil {
		t.Fatal("LoadVM of a damaged stream succeeded")
	}
	if v := m.secs[0].value.Load(); v != 99 {
		t.Fatalf("a damaged stream's device state was applied: %d", v)
	}
	if err := e.LoadVM(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.ram.mem, saved) {
		t.Fatal("RAM after LoadVM differs from RAM at SaveVM")
	}
	if v := m.secs[0].value.Load(); v != 11 {
		t.Fatalf("device state after LoadVM: %d, want 11", v)
	}
}
