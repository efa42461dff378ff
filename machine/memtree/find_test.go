package memtree

import "testing"

// TestFind: the flat view's region at an address on a pc board with VGA (-m 128): RAM
// below the VGA window and above it, the VGA window's registers, the BIOS ROM, the HPET,
// and holes.
func TestFind(t *testing.T) {
	const M = 1 << 20
	tr := Build(Board{Below: 128 * M, CPUs: cpus(1), FDC: true, VGAs: []VGA{{"std", nil}},
		PCI: []PCIDevice{{"i440FX", false, -1, nil}, {"PIIX3", false, -1, nil}, {"VGA", false, -1, nil}}})
	tests := []struct {
		addr uint64
		name string
		kind Kind
		off  uint64
		ok   bool
	}{
		{0, "pc.ram", RAM, 0, true},
		{0x1234, "pc.ram", RAM, 0x1234, true},
		{0xa0000, "vga-lowmem", IO, 0, true},
		{0x100000, "pc.ram", RAM, 0x100000, true},
		{128*M - 1, "pc.ram", RAM, 128*M - 1, true},
		{128 * M, "", 0, 0, false},
		{0xfed00000, "hpet", IO, 0, true},
		{0xfffc0010, "pc.bios", ROM, 0x10, true},
		{1 << 32, "", 0, 0, false},
	}
	for _, tc := range tests {
		r, off, ok := tr.Find("memory", tc.addr)
		if ok != tc.ok || ok && (r.Name != tc.name || r.Kind != tc.kind || off != tc.off) {
			t.Errorf("Find(%#x) = %v %#x %v, want %s/%d %#x %v", tc.addr, r, off, ok, tc.name, tc.kind, tc.off, tc.ok)
		}
	}
	if _, _, ok := tr.Find("nowhere", 0); ok {
		t.Error("Find in an unknown space succeeded")
	}
}
