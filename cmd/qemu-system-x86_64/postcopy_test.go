package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"tlcvm/machine"
	"tlcvm/migration"
)

// The postcopy tests run two real machines in this process, joined by the migration
// engine through this package's adapters (the first-touch hook is machineAdapter's
// Guard), so that the destination's guest can be checked against the source's exactly.

const pcRAM = 64 << 20

// newPCMachine starts a machine (an incoming one in inmigrate; a paused one, -S, stays
// paused after its migration).
func newPCMachine(t *testing.T, incoming bool, workload string, paused ...bool) *machine.Machine {
	t.Helper()
	m, err := machine.New(machine.Config{Type: "pc-i440fx-7.2", RAMSize: pcRAM, CPUs: 2, Incoming: incoming,
		StartPaused: len(paused) > 0 && paused[0],
		FwCfg:       map[string][]byte{machine.WorkloadKey: []byte(workload)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	m.Start()
	return m
}

func newPCEngine(t *testing.T, m *machine.Machine) *migration.Engine {
	t.Helper()
	e := migration.New(migration.Options{Machine: machineAdapter{m: m}})
	t.Cleanup(e.Close)
	caps := []migration.CapabilityStatus{{Capability: migration.CapEvents, State: true},
		{Capability: migration.CapReturnPath, State: true}, {Capability: migration.CapPostcopyRAM, State: true}}
	if err := e.SetCapabilities(caps); err != nil {
		t.Fatal(err)
	}
	return e
}

// cpuRegs are the workload's registers that do not depend on the guest clock: pass, page
// index, hash, pages written, and RIP.
type cpuRegs struct{ pass, index, hash, written, rip uint64 }

func regsOf(t *testing.T, m *machine.Machine, cpu int) cpuRegs {
	t.Helper()
	if st, _ := m.Status(); st == machine.StateRunning {
		defer m.PauseVCPUs()()
	}
	for _, s := range m.Snapshotters() {
		if s.SectionID() != fmt.Sprintf("cpu/%d", cpu) {
			continue
		}
		v, err := s.SaveState()
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(v)
		var st machine.CPUState
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatal(err)
		}
		return cpuRegs{st.Regs[machine.RAX], st.Regs[machine.RBX], st.Regs[machine.RDX], st.Regs[machine.R8], st.RIP}
	}
	t.Fatalf("no cpu/%d", cpu)
	return cpuRegs{}
}

func waitEngine(t *testing.T, what string, e *migration.Engine, want migration.Status) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		info := e.Info()
		if info.Status == want {
			return
		}
		if info.Status == migration.StatusFailed || time.Now().After(deadline) {
			buf := make([]byte, 4<<20)
			t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
			t.Fatalf("%s: %s (%v), want %s", what, info.Status, info.ErrorDesc, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func ram(t *testing.T, m *machine.Machine) []byte {
	t.Helper()
	b := make([]byte, pcRAM)
	if err := m.ReadPhys(0, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPostcopyGuestIsExact migrates a guest rewriting its working set by postcopy to a
// destination that runs at once: its vCPUs fetch the pages they touch while the rest
// comes in the background (held back by max-postcopy-bandwidth), and the link is broken
// on purpose (migrate-pause) and recovered (migrate-recover, migrate resume=true) in the
// middle. Afterwards the destination's guest must be exactly the source's at the
// switchover run on: each source vCPU, stepped from its frozen state up to the
// destination vCPU's pass and page, must reach the same hash, and then the two RAMs must
// be equal byte for byte. A page lost, stale or torn anywhere changes the hash chain.
func TestPostcopyGuestIsExact(t *testing.T) {
	const workload = "ws=8M,fill=16M,rate=64M"
	src := newPCMachine(t, false, workload)
	dst := newPCMachine(t, true, workload)
	deadline := time.Now().Add(30 * time.Second)
	for regsOf(t, src, 0).rip != 0x100080 || regsOf(t, src, 1).rip != 0x100080 {
		if time.Now().After(deadline) {
			t.Fatal("the workload never reached its loop")
		}
		time.Sleep(10 * time.Millisecond)
	}
	se, de := newPCEngine(t, src), newPCEngine(t, dst)
	dir := t.TempDir()
	uri := "unix:" + filepath.Join(dir, "m.sock")
	de.SetDefer()
	de.Ready()
	if err := de.Incoming(uri, migration.IncomingOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := se.SetParams(migration.Params{MaxBandwidth: ptr[uint64](32 << 20), MaxPostcopyBandwidth: ptr[uint64](4 << 20)}); err != nil {
		t.Fatal(err)
	}
	if err := se.Migrate(uri, migration.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEngine(t, "source", se, migration.StatusActive)
	if err := se.StartPostcopy(); err != nil {
		t.Fatal(err)
	}
	waitEngine(t, "source", se, migration.StatusPostcopyActive)
	waitEngine(t, "destination", de, migration.StatusPostcopyActive)
	time.Sleep(300 * time.Millisecond) // the destination's vCPUs run and fetch
	if err := se.Pause(); err != nil {
		t.Fatal(err)
	}
	waitEngine(t, "source", se, migration.StatusPostcopyPaused)
	waitEngine(t, "destination", de, migration.StatusPostcopyPaused)
	time.Sleep(100 * time.Millisecond) // vCPUs waiting for pages that cannot come
	uri2 := "unix:" + filepath.Join(dir, "r.sock")
	if err := de.Recover(uri2, migration.IncomingOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := se.Migrate(uri2, migration.MigrateOptions{Resume: true}); err != nil {
		t.Fatal(err)
	}
	waitEngine(t, "source", se, migration.StatusCompleted)
	waitEngine(t, "destination", de, migration.StatusCompleted)
	info := se.Info()
	if info.RAM == nil || info.RAM.PostcopyRequests == 0 || info.RAM.PostcopyBytes == 0 {
		t.Fatalf("no page was fetched on demand: %+v", info.RAM)
	}
	time.Sleep(100 * time.Millisecond)
	if err := dst.Stop(); err != nil {
		t.Fatal(err)
	}
	if st, _ := src.Status(); st != machine.StatePostMigrate {
		t.Fatalf("source %s", st)
	}
	ran := false
	for cpu := 0; cpu < 2; cpu++ {
		s, d := regsOf(t, src, cpu), regsOf(t, dst, cpu)
		if d.pass < s.pass || d.rip != 0x100080 || s.rip != 0x100080 {
			t.Fatalf("vCPU %d: source %+v, destination %+v", cpu, s, d)
		}
		pages := (d.written - s.written)
		if pages > 0 {
			ran = true
		}
		if _, err := src.RunSteps(cpu, int(pages)); err != nil {
			t.Fatal(err)
		}
		if s2 := regsOf(t, src, cpu); s2 != d {
			t.Fatalf("vCPU %d: stepped %d pages from the switchover: %+v, the destination has %+v", cpu, pages, s2, d)
		}
	}
	if !ran {
		t.Fatal("the destination's guest never ran")
	}
	if a, b := ram(t, src), ram(t, dst); !bytes.Equal(a, b) {
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("RAM differs first at 0x%x", i)
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }
