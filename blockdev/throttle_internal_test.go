package blockdev

import "testing"

// TestThrottleBuckets checks the leaky buckets against util/throttle.c's arithmetic with a
// clock the test moves: the bucket holds avg/10 without a burst rate, max*max_length with
// one; the burst level keeps a long burst at max per second; iops_size counts big requests
// as several operations.
func TestThrottleBuckets(t *testing.T) {
	cfg := func(f func(c *ThrottleConfig)) *throttleGroup {
		c := NewThrottleConfig()
		f(&c)
		return &throttleGroup{cfg: c}
	}
	for _, c := range []struct {
		name  string
		g     *throttleGroup
		write bool
		size  uint64
		n     int   // requests accounted at time 0
		at    int64 // ns later
		want  int64 // wait then (ns)
	}{
		// 1000 B/s: the bucket holds 100 B; 300 B in it wait (300-100)/1000 s
		{"bps avg", cfg(func(c *ThrottleConfig) { c.Buckets[BpsTotal].Avg = 1000 }), true, 300, 1, 0, 200e6},
		// after 100 ms, 100 B leaked: (200-100)/1000 s
		{"bps leak", cfg(func(c *ThrottleConfig) { c.Buckets[BpsTotal].Avg = 1000 }), true, 300, 1, 100e6, 100e6},
		// reads are not held by a write limit
		{"bps_wr on a read", cfg(func(c *ThrottleConfig) { c.Buckets[BpsWrite].Avg = 1000 }), false, 300, 1, 0, 0},
		// a burst rate for 3 s: the bucket holds max*length = 6000 B, so 5000 B do not wait
		// there, but the burst level holds max/10 = 200 B: (5000-200)/2000 s
		{"burst", cfg(func(c *ThrottleConfig) {
			c.Buckets[BpsTotal] = BucketConfig{Avg: 1000, Max: 2000, BurstLength: 3}
		}), true, 1000, 5, 0, 2400e6},
		// iops with iops_size 512: a 4 KiB request is 8 operations; 10 iops hold 1
		{"iops_size", cfg(func(c *ThrottleConfig) { c.Buckets[OpsTotal].Avg = 10; c.OpSize = 512 }), true, 4096, 1, 0, 700e6},
	} {
		g := c.g
		for i := 0; i < c.n; i++ {
			g.account(c.write, c.size)
		}
		g.leak(c.at)
		if got := g.waitFor(c.write); got != c.want {
			t.Errorf("%s: wait %d ns, want %d", c.name, got, c.want)
		}
	}
}
