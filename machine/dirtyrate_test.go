package machine_test

import (
	"math/bits"
	"testing"
	"time"

	"tlcvm/machine"
)

func popcount(ws []uint64) (n uint64) {
	for _, w := range ws {
		n += uint64(bits.OnesCount64(w))
	}
	return n
}

// TestSyncDirtyRateKeepsPagesForCheckpoint: a dirty-rate sync between a checkpoint's syncs
// counts the pages (Harvested) but never takes them from the checkpoint's dirty log, with
// logging on or off (an incremental checkpoint resumes the log later).
func TestSyncDirtyRateKeepsPagesForCheckpoint(t *testing.T) {
	for _, logging := range []bool{true, false} {
		m := newMachine(t, machine.Config{CPUs: 1, FwCfg: idle()})
		b := m.RAMBlocks()[0]
		if logging {
			b.StartDirtyLog()
		}
		h0 := m.DirtyPagesHarvested()
		for p := uint64(100); p < 110; p++ {
			m.GuestStore64(p*machine.PageSize, p)
		}
		m.SyncDirtyRate()
		if got := m.DirtyPagesHarvested() - h0; got != 10 {
			t.Fatalf("logging=%v: harvested %d pages, want 10", logging, got)
		}
		for p := uint64(105); p < 120; p++ { // 5 pages again, 10 new
			m.GuestStore64(p*machine.PageSize, p)
		}
		m.SyncDirtyRate()
		if got := m.DirtyPagesHarvested() - h0; got != 25 {
			t.Fatalf("logging=%v: harvested %d pages, want 25", logging, got)
		}
		if !logging {
			b.ResumeDirtyLog()
		}
		dst := make([]uint64, b.BitmapWords())
		n := b.SyncDirtyLog(dst)
		if got := popcount(dst); got != 20 || n != 20 {
			t.Fatalf("logging=%v: SyncDirtyLog took %d (returned %d), want pages 100..119", logging, got, n)
		}
		for p := uint64(100); p < 120; p++ {
			if dst[p/64]&(1<<(p%64)) == 0 {
				t.Fatalf("page %d lost", p)
			}
		}
		if n := b.SyncDirtyLog(dst); n != 0 {
			t.Fatalf("second sync took %d pages", n)
		}
	}
}

// TestStartDirtyLogCountsWhatItForgets: StartDirtyLog drops the pages dirtied so far (kept
// ones included) for the checkpoint, but a dirty-rate measurement still counts them.
func TestStartDirtyLogCountsWhatItForgets(t *testing.T) {
	m := newMachine(t, machine.Config{CPUs: 1, FwCfg: idle()})
	b := m.RAMBlocks()[0]
	m.GuestStore64(200*machine.PageSize, 1)
	m.SyncDirtyRate()
	m.GuestStore64(201*machine.PageSize, 1)
	h0 := m.DirtyPagesHarvested()
	b.StartDirtyLog()
	if got := m.DirtyPagesHarvested() - h0; got != 1 {
		t.Fatalf("StartDirtyLog harvested %d, want 1", got)
	}
	dst := make([]uint64, b.BitmapWords())
	if n := b.SyncDirtyLog(dst); n != 0 {
		t.Fatalf("after StartDirtyLog, sync took %d pages (%v)", n, popcount(dst))
	}
}

// TestDirtiedPagesCountsRingEntries: a vCPU's count grows by one per page it takes from
// clean to dirty; rewriting a dirty page adds nothing until a sync (the reap) takes it.
func TestDirtiedPagesCountsRingEntries(t *testing.T) {
	m := newMachine(t, machine.Config{CPUs: 2, FwCfg: map[string][]byte{machine.WorkloadKey: []byte("ws=4M,rate=max")}})
	// Boot both vCPUs into the loop by single-stepping (vCPU 0 boots and releases vCPU 1).
	if _, err := m.RunSteps(0, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := m.RunSteps(1, 1); err != nil {
		t.Fatal(err)
	}
	chunk := 4 << 20 / machine.PageSize / 2 // pages per vCPU
	m.LoopPages(1, chunk)                   // vCPU 1 fills its chunk
	d0 := m.DirtiedPages()
	m.LoopPages(1, chunk) // the same pages again: all still dirty
	d1 := m.DirtiedPages()
	if d1[1] != d0[1] {
		t.Fatalf("rewriting dirty pages counted %d", d1[1]-d0[1])
	}
	m.SyncDirtyRate()
	m.LoopPages(1, 100)
	d2 := m.DirtiedPages()
	// 100 rewritten pages, plus the counters page written at the end of each pass at most.
	if got := d2[1] - d1[1]; got < 100 || got > 101 {
		t.Fatalf("after a reap 100 rewrites dirtied %d pages", got)
	}
	if d2[0] != d1[0] {
		t.Fatalf("vCPU 0 did nothing but its count moved %d → %d", d1[0], d2[0])
	}
}

// TestPageHashes: a never-written page hashes as zeros without being read; a write changes
// the hash of its page only.
func TestPageHashes(t *testing.T) {
	m := newMachine(t, machine.Config{CPUs: 1, FwCfg: idle()})
	b := m.RAMBlocks()[0]
	pages := []uint64{300, 301, b.Pages() - 1, b.Pages()}
	h0, ok0 := make([]uint32, 4), make([]bool, 4)
	if err := m.PageHashes(b, pages, h0, ok0); err != nil {
		t.Fatal(err)
	}
	if !ok0[0] || !ok0[2] || ok0[3] {
		t.Fatalf("ok = %v (the last page is past the block)", ok0)
	}
	if h0[0] != h0[1] || h0[0] != h0[2] {
		t.Fatalf("zero pages hash differently: %x", h0)
	}
	m.GuestStore64(300*machine.PageSize+8, 42)
	h1, ok1 := make([]uint32, 4), make([]bool, 4)
	if err := m.PageHashes(b, pages, h1, ok1); err != nil {
		t.Fatal(err)
	}
	if h1[0] == h0[0] || h1[1] != h0[1] {
		t.Fatalf("after writing page 300: %x, before %x", h1, h0)
	}
	if n := resident(t, b); n != 1 {
		t.Fatalf("%d pages resident: hashing read pages the guest never wrote", n)
	}
}

// maxSlicePages is the most pages a vCPU's run slice dirties before it returns to its loop
// (where the throttle acts): the package's quantum.
const maxSlicePages = 1024

// TestDirtyThrottleSlowsVCPU: under a throttle a running vCPU dirties fewer pages than its
// unthrottled twin in the same wall time. The comparison is a ratio, never a duration: the
// throttled vCPU sleeps 50 ms per 64 pages, so it can dirty at most ~1,300 pages a second
// while the unthrottled one, at rate=max, dirties hundreds of thousands.
func TestDirtyThrottleSlowsVCPU(t *testing.T) {
	m := newMachine(t, machine.Config{CPUs: 2, RAMSize: 256 << 20,
		FwCfg: map[string][]byte{machine.WorkloadKey: []byte("ws=128M,rate=max")}})
	const sleep = 50 * time.Millisecond
	m.SetDirtyThrottle(1, sleep, 64)
	start := time.Now()
	m.Start()
	// Let the vCPUs run, syncing as the dirty-limit thread does, until vCPU 0 has
	// dirtied well over what vCPU 1 may in that time.
	deadline := time.Now().Add(60 * time.Second)
	for {
		time.Sleep(20 * time.Millisecond)
		m.SyncDirtyRate()
		d := m.DirtiedPages()
		if d[0] > 20000 {
			_ = m.Stop()
			d = m.DirtiedPages()
			// The throttle is checked after each run slice (up to maxSlicePages), so in a
			// time T vCPU 1 dirties at most (T/sleep + 2) slices. On a busy host vCPU 0
			// can be slow enough for that to exceed a fifth of its count: then the time
			// bound is the check.
			bound := uint64(time.Since(start)/sleep+2) * maxSlicePages
			if d[1]*5 > d[0] && d[1] > bound {
				t.Fatalf("throttled vCPU 1 dirtied %d pages (at most %d in %v), unthrottled vCPU 0 %d",
					d[1], bound, time.Since(start), d[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vCPU 0 dirtied only %d pages", d[0])
		}
	}
	// Lifting the throttle lets vCPU 1 run at full speed again.
	m.SetDirtyThrottle(1, 0, 64)
	before := m.DirtiedPages()
	if err := m.Cont(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		time.Sleep(20 * time.Millisecond)
		m.SyncDirtyRate()
		if d := m.DirtiedPages(); d[1]-before[1] > 20000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("unthrottled vCPU 1 stays slow: %v → %v", before, m.DirtiedPages())
		}
	}
}
