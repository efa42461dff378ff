package memtree

import (
	"slices"
	"testing"
)

func TestAllocOffsets(t *testing.T) {
	const M = 1 << 20
	tests := []struct {
		sizes, want []uint64
	}{
		{nil, []uint64{}},
		{[]uint64{128 * M}, []uint64{0}},
		// -object a (256M), b (1G), then pc.ram (1G): QEMU's info ramblock offsets.
		{[]uint64{256 * M, 1024 * M, 1024 * M}, []uint64{0, 0x10000000, 0x50000000}},
		// An odd length: the next block starts at the following 256 KiB boundary.
		{[]uint64{0x2400, 0x1000}, []uint64{0, 0x40000}},
	}
	for _, tt := range tests {
		if got := AllocOffsets(tt.sizes); !slices.Equal(got, tt.want) {
			t.Errorf("AllocOffsets(%#x) = %#x, want %#x", tt.sizes, got, tt.want)
		}
	}
}

func TestFormatRAMBlocks(t *testing.T) {
	// QEMU 7.2, -m 1G,slots=2,maxmem=4G with a pc-dimm on a 512M memory-backend-ram m0
	// (its ROM blocks left out).
	want := "              Block Name    PSize              Offset               Used              Total\n" +
		"                  pc.ram    4 KiB  0x0000000020000000 0x0000000040000000 0x0000000040000000\n" +
		"                      m0    4 KiB  0x0000000000000000 0x0000000020000000 0x0000000020000000\n"
	got := FormatRAMBlocks([]RAMBlock{{"pc.ram", 4096, 0x20000000, 1 << 30, 1 << 30}, {"m0", 4096, 0, 512 << 20, 512 << 20}})
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
