package ghash_test

import (
	"fmt"
	"slices"
	"testing"

	"tlcvm/internal/ghash"
)

// The expectations are QEMU 7.2's own orders, read from the real binary: query-chardev
// prepends while walking /chardevs, so its reply is the reverse of the walk.
func TestOrderMatchesQEMU(t *testing.T) {
	for _, c := range []struct {
		inserted []string
		walk     []string
	}{
		// -chardev null,id=n0 -chardev socket,id=s0 -chardev file,id=f0 -qmp … :
		// query-chardev says compat_monitor0, s0, f0, n0.
		{[]string{"n0", "s0", "f0", "compat_monitor0"}, []string{"n0", "f0", "s0", "compat_monitor0"}},
		// -chardev pty,id=charserial0 -qmp …: charserial0, compat_monitor0.
		{[]string{"charserial0", "compat_monitor0"}, []string{"compat_monitor0", "charserial0"}},
		// qom-list / on pc: type, objects, machine, chardevs (walk reversed, then "type").
		{[]string{"machine", "chardevs", "objects"}, []string{"chardevs", "machine", "objects"}},
	} {
		if got := ghash.Order(c.inserted); !slices.Equal(got, c.walk) {
			t.Errorf("Order(%v) = %v, want %v", c.inserted, got, c.walk)
		}
	}
}

func TestOrderKeepsEveryKeyAcrossResizes(t *testing.T) {
	var keys []string
	for i := 0; i < 500; i++ {
		keys = append(keys, fmt.Sprintf("device[%d]", i))
	}
	got := ghash.Order(keys)
	if len(got) != len(keys) {
		t.Fatalf("got %d keys, want %d", len(got), len(keys))
	}
	s := slices.Clone(got)
	slices.Sort(s)
	w := slices.Clone(keys)
	slices.Sort(w)
	if !slices.Equal(s, w) {
		t.Fatal("keys lost or duplicated")
	}
}
