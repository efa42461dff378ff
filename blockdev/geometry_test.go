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
		if got := blockdev.GuessGeometry(c.size, nil); got != c.want {
			t.Errorf("GuessGeometry(%d) = %+v, want %+v", c.size, got, c.want)
		}
	}
}

// TestGuessGeometryMBR: the logical geometry of a partition table (guess_disk_lchs).
func TestGuessGeometryMBR(t *testing.T) {
	mbr := func(endHead, endSector byte, sectors uint32) []byte {
		b := make([]byte, 512)
		b[510], b[511] = 0x55, 0xaa
		p := b[0x1be:]
		p[5], p[6] = endHead, endSector
		p[12], p[13], p[14], p[15] = byte(sectors), byte(sectors>>8), byte(sectors>>16), byte(sectors>>24)
		return b
	}
	for _, c := range []struct {
		name string
		size int64
		mbr  []byte
		want blockdev.Geometry
	}{
		{"heads4", 10 << 20, mbr(3, 32, 1000), blockdev.Geometry{Cyls: 160, Heads: 4, Secs: 32, Trans: "none"}},
		{"heads255-small", 100 << 20, mbr(254, 63, 1000), blockdev.Geometry{Cyls: 203, Heads: 16, Secs: 63, Trans: "large"}},
		{"heads255-big", 8 << 30, mbr(254, 63, 1000), blockdev.Geometry{Cyls: 16383, Heads: 16, Secs: 63, Trans: "lba"}},
		{"no-sectors", 10 << 20, mbr(3, 32, 0), blockdev.Geometry{Cyls: 20, Heads: 16, Secs: 63, Trans: "none"}},
		{"no-magic", 10 << 20, make([]byte, 512), blockdev.Geometry{Cyls: 20, Heads: 16, Secs: 63, Trans: "none"}},
	} {
		if got := blockdev.GuessGeometry(c.size, c.mbr); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}
