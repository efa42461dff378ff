package machine_test

import (
	"testing"

	"tlcvm/machine"
)

// BenchmarkPageWrites measures the workload's rewrite loop at rate=max on one core: one
// u64 per 4 KiB page over a 64 MiB working set, as the bench guest (dirty.c) does,
// through the real guest store path (data, then dirty/written bits). Reports pages/s;
// the requirement is ≥ 8 M pages/s.
func BenchmarkPageWrites(b *testing.B) {
	m := newMachine(b, machine.Config{RAMSize: 128 << 20, StartPaused: true,
		FwCfg: map[string][]byte{machine.WorkloadKey: []byte("ws=64M,rate=max")}})
	if _, err := m.RunSteps(0, 1+64<<8); err != nil { // boot + fill
		b.Fatal(err)
	}
	m.RAMBlocks()[0].StartDirtyLog()
	b.ResetTimer()
	m.LoopPages(0, b.N)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pages/s")
}

// FuzzLoadState feeds arbitrary bytes to every section's LoadState: errors, never panics.
func FuzzLoadState(f *testing.F) {
	f.Add([]byte(`{"regs":[1,2,3],"rip":1048640}`), uint32(1))
	f.Add([]byte(`{"regs":[1,16,0,0,0,0,3145728,1280,0,0,0,0,1048576,0,0,1],"rip":1048672}`), uint32(1))    // fill=
	f.Add([]byte(`{"regs":[1,16,0,0,0,0,4294967296,1280,0,0,0,0,1048576,0,0,1],"rip":1048736}`), uint32(1)) // dimm=
	f.Add([]byte(`{"ns":5}`), uint32(1))
	f.Add([]byte(`{"dll":12,"lcr":3}`), uint32(2))
	f.Add([]byte(`nul`), uint32(1))
	m, err := machine.New(machine.Config{Type: "pc-i440fx-7.2", RAMSize: 4 << 20, StartPaused: true,
		MaxMem: 4<<20 + 2<<20, Slots: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = m.Close() })
	if _, err := m.PlugDIMM("m0", 1<<32, 2<<20, false, "", nil); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte, version uint32) {
		for _, s := range m.Snapshotters() {
			_ = s.LoadState(raw, version)
		}
		_ = m.Registers(0)
		_, _ = m.RunSteps(0, 3) // whatever loaded must run without faulting the host
	})
}

// BenchmarkPageWritesLazy is BenchmarkPageWrites on a guest restored by mapping while
// one chunk outside the working set is still lazy: every page write then goes through
// Ensure's per-chunk state load (the cost while a background populate is running).
func BenchmarkPageWritesLazy(b *testing.B) {
	m := newMachine(b, machine.Config{RAMSize: 128 << 20, StartPaused: true,
		FwCfg: map[string][]byte{machine.WorkloadKey: []byte("ws=64M,rate=max")}})
	if _, err := m.RunSteps(0, 1+64<<8); err != nil { // boot + fill
		b.Fatal(err)
	}
	const lazyPage = 100 << 8 // 100 MiB: outside the working set
	f, bm := mapFile(b, m.RAMSize(), []uint64{lazyPage})
	rb := m.RAMBlocks()[0]
	// map the file over a copy of the guest's pages: only page lazyPage is present, so
	// first put the working set back after mapping (WritePage: a loader's write)
	saved := make([]byte, 66<<20)
	copy(saved, rb.Host())
	if err := rb.MapFile(int(f.Fd()), mapOff, bm, func(uint64, []byte) error { return nil }); err != nil {
		b.Fatal(err)
	}
	if err := rb.Ensure(0, 66<<8); err != nil {
		b.Fatal(err)
	}
	for p := uint64(0); p < 66<<8; p++ {
		rb.WritePage(p, saved[p*machine.PageSize:(p+1)*machine.PageSize])
	}
	if _, _, left := rb.PopulateStats(); left != 1 {
		b.Fatalf("%d pages left lazy, want 1", left)
	}
	rb.StartDirtyLog()
	b.ResetTimer()
	m.LoopPages(0, b.N)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pages/s")
}
