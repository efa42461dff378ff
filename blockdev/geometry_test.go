package blockdev_test

import (
	"testing"

	"tlcvm/blockdev"
)

// The geometries QEMU 7.2 shows in info qtree for blank images of these sizes.
func TestGuessGeometry(t *testing.T) {
	for _, c := range []struct {
		size int64
		want blockdev.Geometry
	}{
		{0, blockdev.Geometry{Cyls: 2, Heads: 16, Secs: 63, Trans: "none"}},
		{10 << 20, blockdev.Geometry{Cyls: 20, Heads: 16, Secs: 63, Trans: "none"}},
		{1 << 30, blockdev.Geometry{Cyls: 2080, Heads: 16, Secs: 63, Trans: "lba"}},
		{1 << 40, blockdev.Geometry{Cyls: 16383, Heads: 16, Secs: 63, Trans: "lba"}},
	} {
		if got := blockdev.GuessGeometry(c.size); got != c.want {
			t.Errorf("GuessGeometry(%d) = %+v, want %+v", c.size, got, c.want)
		}
	}
}
