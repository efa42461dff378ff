package machine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"tlcvm/machine"
)

// memDisk is a Disk in memory; with gate set, a write waits until the gate is opened or
// its context ends (a throttled backend).
type memDisk struct {
	mu     sync.Mutex
	data   []byte
	writes int
	reads  int
	gate   chan struct{}
}

func (d *memDisk) Size() int64 { return int64(len(d.data)) }

func (d *memDisk) WriteAt(ctx context.Context, p []byte, off int64) error {
	if d.gate != nil {
		select {
		case <-d.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	copy(d.data[off:], p)
	d.writes++
	return nil
}

func (d *memDisk) ReadAt(ctx context.Context, p []byte, off int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	copy(p, d.data[off:])
	d.reads++
	return nil
}

func (d *memDisk) snapshot() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]byte(nil), d.data...)
}

func diskMachine(t *testing.T, workload string, cpus int, disks map[string]*memDisk) *machine.Machine {
	return newMachine(t, machine.Config{CPUs: cpus, FwCfg: map[string][]byte{machine.WorkloadKey: []byte(workload)},
		Disks: func(name string) (machine.Disk, bool) {
			d, ok := disks[name]
			return d, ok
		}})
}

func diskStates(m *machine.Machine, cpus int) []machine.DiskState {
	var out []machine.DiskState
	for i := 0; i < cpus; i++ {
		if d := m.CPUStateOf(i).Disk; d != nil {
			out = append(out, *d)
		}
	}
	return out
}

// waitWrites runs the VM until every disk has at least n writes (bounded by a deadline).
func waitWrites(t *testing.T, n int, disks ...*memDisk) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, d := range disks {
		for {
			d.mu.Lock()
			w := d.writes
			d.mu.Unlock()
			if w >= n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the guest wrote %d requests, want %d", w, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// waitPass runs the VM until every vCPU's driver has reached pass (bounded by a deadline;
// vCPUs may progress unevenly on a loaded host).
func waitPass(t *testing.T, m *machine.Machine, cpus int, pass uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := diskStates(m, cpus)
		done := len(st) == cpus
		for _, d := range st {
			done = done && d.Pass >= pass
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the drivers did not reach pass %d: %+v", pass, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkDisks compares each disk with the formula of the drivers' cursors.
func checkDisks(t *testing.T, m *machine.Machine, cpus int, disks ...*memDisk) {
	t.Helper()
	states := diskStates(m, cpus)
	if len(states) != cpus {
		t.Fatalf("%d vCPUs drive disks, want %d", len(states), cpus)
	}
	for i, d := range disks {
		want := make([]byte, len(d.data))
		machine.ExpectDisk(want, i, states)
		if got := d.snapshot(); !bytes.Equal(got, want) {
			t.Fatalf("disk %d differs from the formula (states %+v)", i, states)
		}
	}
}

// TestGuestWritesDisks: two vCPUs write two disks; after stop the disks hold exactly what
// the cursors say, across stop/cont, and a vCPU state saved and loaded into a new machine
// goes on from the same cursor.
func TestGuestWritesDisks(t *testing.T) {
	a, b := &memDisk{data: make([]byte, 1<<20)}, &memDisk{data: make([]byte, 2<<20)}
	disks := map[string]*memDisk{"vd0": a, "drive1": b}
	const w = "ws=1M,rate=max,disk=vd0,disk=drive1,disk-bs=4K,disk-offset=64K,disk-size=512K"
	m := diskMachine(t, w, 2, disks)
	m.Start()
	waitPass(t, m, 2, 2) // every vCPU past its first pass
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	checkDisks(t, m, 2, a, b)
	for _, d := range diskStates(m, 2) {
		if d.Pass < 2 || d.Written == 0 || d.Blocks != 64 {
			t.Fatalf("driver state %+v", d)
		}
	}
	if err := m.Cont(); err != nil {
		t.Fatal(err)
	}
	waitWrites(t, 600, a, b)
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	checkDisks(t, m, 2, a, b)

	// Save the sections, load them into a second machine over copies of the disks.
	saved, err := m.SaveDevices()
	if err != nil {
		t.Fatal(err)
	}
	a2, b2 := &memDisk{data: a.snapshot()}, &memDisk{data: b.snapshot()}
	m2 := diskMachine(t, w, 2, map[string]*memDisk{"vd0": a2, "drive1": b2})
	for _, s := range m2.Snapshotters() {
		raw := mustJSON(t, saved[s.SectionID()])
		cur, _ := s.StateVersion()
		if err := s.LoadState(raw, cur); err != nil {
			t.Fatalf("%s: %v", s.SectionID(), err)
		}
	}
	if fmt.Sprint(diskStates(m2, 2)) != fmt.Sprint(diskStates(m, 2)) {
		t.Fatalf("restored driver state %+v, want %+v", diskStates(m2, 2), diskStates(m, 2))
	}
	m2.Start()
	waitWrites(t, 50, a2, b2)
	if err := m2.Stop(); err != nil {
		t.Fatal(err)
	}
	// The restored guest went on from the cursor: the formula holds on the copies.
	checkDisks(t, m2, 2, a2, b2)
}

// TestBlockedDiskWritePauses: a write that waits (a throttled disk) blocks its vCPU; stop
// still parks it at once, the request is not made, and after cont it is.
func TestBlockedDiskWritePauses(t *testing.T) {
	d := &memDisk{data: make([]byte, 256<<10), gate: make(chan struct{})}
	m := diskMachine(t, "idle,disk=vd0,disk-bs=64K", 1, map[string]*memDisk{"vd0": d})
	m.Start()
	time.Sleep(50 * time.Millisecond) // the driver is now waiting at the gate (or soon will be)
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if d.writes != 0 || diskStates(m, 1)[0].Written != 0 {
		t.Fatalf("a gated write was made: %d", d.writes)
	}
	close(d.gate)
	if err := m.Cont(); err != nil {
		t.Fatal(err)
	}
	waitWrites(t, 10, d)
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	checkDisks(t, m, 1, d)
}

// TestDiskNotFound: a disk= name that does not resolve is reported on the console and
// dropped; the others are written.
func TestDiskNotFound(t *testing.T) {
	d := &memDisk{data: make([]byte, 64<<10)}
	out := newLineWriter("not found")
	m := newMachine(t, machine.Config{Serial: out, FwCfg: map[string][]byte{machine.WorkloadKey: []byte("idle,disk=nope,disk=vd0,disk-rate=1M")},
		Disks: func(name string) (machine.Disk, bool) {
			if name == "vd0" {
				return d, true
			}
			return nil, false
		}})
	m.Start()
	select {
	case line := <-out.found:
		if line != "tlcvm guest: disk nope not found\r\n" {
			t.Fatalf("console: %q", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no 'not found' line: %q", out.String())
	}
	waitWrites(t, 2, d)
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if st := diskStates(m, 1); len(st) != 1 || len(st[0].Names) != 1 || st[0].Names[0] != "vd0" {
		t.Fatalf("driver state %+v", st)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDiskVerify: with disk-verify the guest reads each block back before rewriting it;
// a disk that holds what the guest wrote passes, a block changed behind its back is
// reported once on the console and counted.
func TestDiskVerify(t *testing.T) {
	d := &memDisk{data: make([]byte, 256<<10)}
	out := newLineWriter("is not pass")
	m := newMachine(t, machine.Config{Serial: out, CPUs: 2,
		FwCfg: map[string][]byte{machine.WorkloadKey: []byte("idle,disk=vd0,disk-bs=4K,disk-verify")},
		Disks: func(string) (machine.Disk, bool) { return d, true }})
	m.Start()
	waitPass(t, m, 2, 3) // every vCPU has verified a pass
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	checkDisks(t, m, 2, d)
	for _, s := range diskStates(m, 2) {
		if s.Read == 0 || s.Mismatches != 0 {
			t.Fatalf("driver state %+v", s)
		}
	}
	d.mu.Lock()
	clear(d.data) // the disk is not what the guest wrote any more
	d.mu.Unlock()
	if err := m.Cont(); err != nil {
		t.Fatal(err)
	}
	select {
	case line := <-out.found:
		if !strings.HasPrefix(line, "tlcvm guest: disk vd0: block at ") {
			t.Fatalf("console: %q", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the guest did not notice: %q", out.String())
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	var bad uint64
	for _, s := range diskStates(m, 2) {
		bad += s.Mismatches
	}
	if bad == 0 {
		t.Fatal("no mismatch counted")
	}
}
