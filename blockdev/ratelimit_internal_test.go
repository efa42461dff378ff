package blockdev

import (
	"testing"
	"time"
)

// TestRateLimit follows ratelimit_calculate_delay: within a slice's quota no delay; past
// it the slice stretches by the excess; a new slice starts after the stretched one ends.
func TestRateLimit(t *testing.T) {
	var r rateLimit
	r.setSpeed(10 << 20) // 1 MiB per 100 ms slice
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at   time.Duration
		n    uint64
		want time.Duration
	}{
		{0, 512 << 10, 0}, // half the quota
		{10 * time.Millisecond, 512 << 10, 90 * time.Millisecond}, // quota reached: wait out the slice
		{100 * time.Millisecond, 0, 0},                            // the slice has ended exactly: still inside (end not before now)
		{101 * time.Millisecond, 4 << 20, 400 * time.Millisecond}, // a new slice, 4 slices' worth asked
	}
	for i, s := range steps {
		if got := r.delay(s.n, t0.Add(s.at)); got != s.want {
			t.Fatalf("step %d: delay %v, want %v", i, got, s.want)
		}
	}
	r.setSpeed(1) // QEMU's minimum quota is one unit per slice
	if r.quota != 1 {
		t.Fatalf("quota %d", r.quota)
	}
	r.setSpeed(0)
	if got := r.delay(1<<30, t0); got != 0 {
		t.Fatalf("unlimited: %v", got)
	}
}
