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
	f.Add([]byte(`{"ns":5}`), uint32(1))
	f.Add([]byte(`{"dll":12,"lcr":3}`), uint32(2))
	f.Add([]byte(`nul`), uint32(1))
	m, err := machine.New(machine.Config{Type: "pc-i440fx-7.2", RAMSize: 4 << 20, StartPaused: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = m.Close() })
	f.Fuzz(func(t *testing.T, raw []byte, version uint32) {
		for _, s := range m.Snapshotters() {
			_ = s.LoadState(raw, version)
		}
		_ = m.Registers(0)
		_, _ = m.RunSteps(0, 3) // whatever loaded must run without faulting the host
	})
}
