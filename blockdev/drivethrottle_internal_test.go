package blockdev

import (
	"context"
	"errors"
	"testing"
)

// TestDriveThrottle: a -drive's own limits (legacy names included) put its backend in a
// throttle group, named after the drive unless group= names one, and hold its requests:
// after a 1 MB write at 1000 B/s the next request waits (for ~1000 s), so a request whose
// context has ended gives up instead of passing. Without limits nothing is held.
func TestDriveThrottle(t *testing.T) {
	g := New(Config{})
	add := func(kvs ...KV) *Backend {
		t.Helper()
		b, err := g.AddDrive(append([]KV{{"if", "none"}, {"driver", "null-co"}}, kvs...), DriveLimits{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		name  string
		kvs   []KV
		group string
		avg   uint64
	}{
		{"own group", []KV{{"id", "a"}, {"bps", "1000"}}, "a", 1000},
		{"named group", []KV{{"id", "b"}, {"throttling.bps-total", "1000"}, {"group", "g"}}, "g", 1000},
		{"no limits", []KV{{"id", "c"}, {"group", "g2"}}, "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := add(c.kvs...)
			ti := b.Throttle()
			if ti.Enabled != (c.avg > 0) || ti.Group != c.group || ti.Config.Buckets[BpsTotal].Avg != c.avg {
				t.Fatalf("throttle %+v", ti)
			}
			if err := b.throttle(context.Background(), true, 1e6); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := b.throttle(ctx, true, 512)
			if held := errors.Is(err, context.Canceled); held != (c.avg > 0) {
				t.Fatalf("second request: %v (held %v, want %v)", err, held, c.avg > 0)
			}
		})
	}
}
