package main

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"tlcvm/migration"
)

// TestAutoConverge migrates a guest that dirties its memory far faster than max-bandwidth
// lets the stream carry: with auto-converge the vCPUs are throttled, first to
// cpu-throttle-initial, then cpu-throttle-increment more at a time, as query-migrate's
// cpu-throttle-percentage shows; the migration completes, the throttle is lifted, and the
// destination holds the source's RAM exactly.
func TestAutoConverge(t *testing.T) {
	const workload = "ws=32M,rate=max"
	src := newPCMachine(t, false, workload)
	dst := newPCMachine(t, true, workload, true)
	se, de := newPCEngine(t, src), newPCEngine(t, dst)
	if err := se.SetCapabilities([]migration.CapabilityStatus{{Capability: migration.CapAutoConverge, State: true}}); err != nil {
		t.Fatal(err)
	}
	uri := "unix:" + filepath.Join(t.TempDir(), "m.sock")
	de.SetDefer()
	de.Ready()
	if err := de.Incoming(uri, migration.IncomingOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := se.SetParams(migration.Params{MaxBandwidth: ptr[uint64](32 << 20),
		CPUThrottleInitial: ptr[uint8](50), CPUThrottleIncrement: ptr[uint8](20)}); err != nil {
		t.Fatal(err)
	}
	// The guest must be writing its whole working set before the migration starts: a
	// guest not yet running (a busy host) would let the migration converge unthrottled.
	boot := time.Now().Add(60 * time.Second)
	for regsOf(t, src, 0).written < 2*(32<<20)/4096 {
		if time.Now().After(boot) {
			t.Fatalf("the guest wrote only %d pages", regsOf(t, src, 0).written)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := se.Migrate(uri, migration.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	// query-migrate and the machine are read one after the other, and the throttle may
	// step between the two reads: only a difference that lasts (the same two values in
	// several samples in a row) is one.
	differ, last := 0, [2]int{}
	deadline := time.Now().Add(120 * time.Second)
	for {
		info := se.Info()
		if p := info.CPUThrottlePercentage; p != nil {
			seen[*p] = true
			if m := src.CPUThrottle(); m != int(*p) && info.Status == migration.StatusActive {
				if now := [2]int{int(*p), m}; now == last {
					differ++
				} else {
					differ, last = 1, now
				}
				if differ == 5 {
					t.Errorf("query-migrate says %d %%, the machine %d %%", *p, m)
				}
			} else {
				differ = 0
			}
		}
		if info.Status == migration.StatusCompleted {
			break
		}
		if info.Status == migration.StatusFailed || time.Now().After(deadline) {
			t.Fatalf("migration %s (%v)", info.Status, info.ErrorDesc)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !seen[50] || !seen[70] {
		t.Errorf("throttle percentages seen %v, want 50 then 70", seen)
	}
	for p := range seen {
		if p != 50 && p != 70 && p != 90 && p != 99 {
			t.Errorf("throttle at %d %%: not initial + n × increment (capped at 99)", p)
		}
	}
	if src.CPUThrottle() != 0 || se.Info().CPUThrottlePercentage != nil {
		t.Error("the throttle was not lifted")
	}
	waitEngine(t, "destination", de, migration.StatusCompleted)
	if !bytes.Equal(ram(t, src), ram(t, dst)) {
		t.Fatal("destination RAM differs")
	}
}
