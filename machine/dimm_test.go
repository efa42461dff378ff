package machine_test

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"tlcvm/machine"
)

// ostLog records a slot's _OST calls.
type ostLog struct {
	mu    sync.Mutex
	calls [][2]uint32
}

func (l *ostLog) ost(source, status uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, [2]uint32{source, status})
}

func (l *ostLog) get() [][2]uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// waitWritten waits until every page of b was written by the guest.
func waitWritten(t *testing.T, b *machine.RAMBlock) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p := uint64(0); p < b.Pages(); {
		if b.Written(p) {
			p++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: page %d of %d never written", b.Name(), p, b.Pages())
		}
		time.Sleep(time.Millisecond)
	}
}

func blockNames(m *machine.Machine) []string {
	var out []string
	for _, b := range m.RAMBlocks() {
		out = append(out, b.Name())
	}
	return out
}

func TestDIMMHotplug(t *testing.T) {
	const gib = 1 << 30
	out := newLineWriter("ACPI memory online")
	m := newMachine(t, machine.Config{RAMSize: 64 << 20, MaxMem: 320 << 20, Slots: 3, CPUs: 2, Serial: out,
		StartPaused: true, FwCfg: map[string][]byte{machine.WorkloadKey: []byte("idle,rate=max,dimm=all")}})
	base, size := m.DeviceMemory()
	if base != 4*gib || size != 256<<20+3*gib {
		t.Fatalf("device memory [%#x:%#x], want [0x100000000:%#x]", base, size, 256<<20+3*gib)
	}
	if _, err := m.PlugDIMM("bad", base+size-4096, 8192, false, "", nil); err == nil {
		t.Fatal("a DIMM past the device memory region was mapped")
	}
	// cold-plugged (and one plugged before the boot): the boot onlines both, once each
	cold, err := m.PlugDIMM("m0", base, 4<<20, false, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var early ostLog
	pre, err := m.PlugDIMM("m1", base+4<<20, 4<<20, true, "DIMM 1 d1", early.ost)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Cont(); err != nil {
		t.Fatal(err)
	}
	waitWritten(t, cold)
	waitWritten(t, pre)
	if got := early.get(); !slices.Equal(got, [][2]uint32{{1, 0}}) {
		t.Fatalf("_OST of a DIMM plugged before boot: %v", got)
	}
	// hot-plugged: announced through ACPI, onlined, filled
	var ost ostLog
	hot, err := m.PlugDIMM("m2", base+1*gib, 128<<20, true, "DIMM 2 d2", ost.ost)
	if err != nil {
		t.Fatal(err)
	}
	waitWritten(t, hot)
	if got := ost.get(); !slices.Equal(got, [][2]uint32{{1, 0}}) {
		t.Fatalf("_OST after insertion: %v", got)
	}
	page := make([]byte, machine.PageSize)
	gpa := base + 1*gib + 77*machine.PageSize
	if err := m.ReadPhys(gpa, page); err != nil {
		t.Fatal(err)
	}
	for w := uint64(0); w < machine.PageSize/8; w++ {
		if got := binary.LittleEndian.Uint64(page[8*w:]); got != machine.DIMMWord(gpa, w) {
			t.Fatalf("DIMM word %d: %#x", w, got)
		}
	}
	if got := blockNames(m); !slices.Equal(got, []string{"m2", "pc.ram", "m0", "m1"}) {
		t.Fatalf("RAM blocks %v, want QEMU's order (size, then age)", got)
	}
	// eject: offline, _OST in progress, eject, the requester removes it, _OST done
	done := make(chan struct{})
	m.RequestDIMMEject(hot, "DIMM 2 d2", ost.ost, func() {
		m.UnplugDIMM(hot)
		close(done)
	})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the guest never ejected the DIMM")
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(ost.get()) < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := ost.get(); !slices.Equal(got, [][2]uint32{{1, 0}, {3, 0x84}, {3, 0}}) {
		t.Fatalf("_OST calls %v", got)
	}
	if got := blockNames(m); !slices.Equal(got, []string{"pc.ram", "m0", "m1"}) {
		t.Fatalf("RAM blocks after the eject: %v", got)
	}
	if err := m.ReadPhys(gpa, page); err == nil {
		t.Fatal("the ejected DIMM's range still reads")
	}
	for _, want := range []string{"ACPI memory online DIMM 0: 4 MiB at 0x100000000", "ACPI memory online DIMM 1 d1: 4 MiB at 0x100400000",
		"ACPI memory online DIMM 2 d2: 128 MiB at 0x140000000", "ACPI eject DIMM 2 d2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("serial lacks %q:\n%s", want, out.String())
		}
	}
}

// TestDIMMEjectMidFill: an eject while vCPU 0 fills the DIMM drops the fill; the
// workload's stage resumes.
func TestDIMMEjectMidFill(t *testing.T) {
	m := newMachine(t, machine.Config{RAMSize: 64 << 20, MaxMem: 1 << 30, Slots: 1, CPUs: 1,
		FwCfg: map[string][]byte{machine.WorkloadKey: []byte("ws=1M,rate=4M,dimm=all")}})
	base, _ := m.DeviceMemory()
	if err := m.Cont(); err != nil {
		t.Fatal(err)
	}
	b, err := m.PlugDIMM("m0", base, 512<<20, true, "DIMM 0", nil)
	if err != nil {
		t.Fatal(err)
	}
	for !b.Written(0) {
		time.Sleep(time.Millisecond)
	}
	done := make(chan struct{})
	m.RequestDIMMEject(b, "DIMM 0", nil, func() { m.UnplugDIMM(b); close(done) })
	<-done
	deadline := time.Now().Add(5 * time.Second)
	for {
		if st := m.CPUStateOf(0); st.RIP == 0x100080 || st.RIP == 0x100040 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vCPU 0 at %#x after the eject, want the workload", m.CPUStateOf(0).RIP)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLoadDIMMFillStage: a loaded vCPU in the dimm= fill stage must have its counter
// address checked as every counting stage's is: the fill publishes the counters when it
// ends, and FuzzLoadState found the host process faulting on a garbage address there.
func TestLoadDIMMFillStage(t *testing.T) {
	m := newMachine(t, machine.Config{RAMSize: 64 << 20, MaxMem: 128 << 20, Slots: 1, CPUs: 1, StartPaused: true,
		FwCfg: map[string][]byte{machine.WorkloadKey: []byte("idle,rate=max,dimm=all")}})
	base, _ := m.DeviceMemory()
	if _, err := m.PlugDIMM("m0", base, 2<<20, false, "", nil); err != nil {
		t.Fatal(err)
	}
	var cpu machine.Snapshotter
	for _, s := range m.Snapshotters() {
		if s.SectionID() == "cpu/0" {
			cpu = s
		}
	}
	// regs: RSI (base) the DIMM, RCX (pages) 1, RDI (counters) as the case says; RIP the fill
	for _, c := range []struct {
		name    string
		counter uint64
		ok      bool
	}{
		{"vCPU 0's counters", 0x500, true},
		{"outside the counters' area", 12810480, false},
		{"between two vCPUs' slots", 0x508, false},
	} {
		st := fmt.Sprintf(`{"regs":[1,1,0,0,0,0,%d,%d,0,0,0,0,0,0,0,0],"rip":%d}`, base, c.counter, 0x1000a0)
		err := cpu.LoadState([]byte(st), 2)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
		if err == nil {
			if _, err := m.RunSteps(0, 4); err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
		}
	}
}
