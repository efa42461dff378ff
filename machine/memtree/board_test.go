package memtree

import (
	"os"
	"testing"
)

// The testdata files are QEMU 7.2's info mtree for these command lines (-S, -display none).
func TestBuildMatchesQEMU(t *testing.T) {
	const M = 1 << 20
	pcDefault := []PCIDevice{{"i440FX", false, -1}, {"PIIX3", false, -1}, {"VGA", false, -1},
		{"e1000", false, -1}, {"piix3-ide", false, -1}, {"PIIX4_PM", false, -1}}
	q35Board := []PCIDevice{{"mch", false, -1}, {"ICH9-LPC", false, -1}, {"ich9-ahci", false, -1}, {"ICH9-SMB", false, -1}}
	tests := []struct {
		file string
		opt  Options
		b    Board
	}{
		// -nodefaults -machine pc -m 128
		{"pc-min", Options{}, Board{Below: 128 * M, CPUs: []int{0}, FDC: true,
			PCI: []PCIDevice{{"i440FX", false, -1}, {"PIIX3", false, -1}, {"piix3-ide", false, -1}, {"PIIX4_PM", false, -1}}}},
		// -machine pc -m 128, info mtree -D and -f
		{"pc-D", Options{Disabled: true}, Board{Below: 128 * M, CPUs: []int{0}, FDC: true, VGA: "std",
			Serials: 1, Parallels: 1, PCI: pcDefault}},
		{"pc-f", Options{FlatView: true}, Board{Below: 128 * M, CPUs: []int{0}, FDC: true, VGA: "std",
			Serials: 1, Parallels: 1, PCI: pcDefault}},
		// -machine q35 -m 128, info mtree and -D
		{"q35-def", Options{}, Board{Q35: true, Below: 128 * M, CPUs: []int{0}, VGA: "std", Serials: 1, Parallels: 1,
			PCI: append(q35Board[:4:4], PCIDevice{"VGA", false, -1}, PCIDevice{"e1000e", false, -1})}},
		{"q35-D", Options{Disabled: true}, Board{Q35: true, Below: 128 * M, CPUs: []int{0}, VGA: "std", Serials: 1, Parallels: 1,
			PCI: append(q35Board[:4:4], PCIDevice{"VGA", false, -1}, PCIDevice{"e1000e", false, -1})}},
		// -nodefaults -machine pc -m 1G,slots=2,maxmem=4G -smp 2 and a 512M pc-dimm on memdev m0
		{"pc-dimm", Options{}, Board{Below: 1024 * M, CPUs: []int{0, 1}, FDC: true, MemHotplug: true,
			DeviceMemBase: 1 << 32, DeviceMemSize: 5 << 30, DIMMs: []DIMM{{"m0", 1 << 32, 512 * M}},
			PCI: []PCIDevice{{"i440FX", false, -1}, {"PIIX3", false, -1}, {"piix3-ide", false, -1}, {"PIIX4_PM", false, -1}}}},
		// -nodefaults -machine q35 -m 512, two pcie-root-ports, virtio-net-pci behind the first; -D
		{"q35-rpD", Options{Disabled: true}, Board{Q35: true, Below: 512 * M, CPUs: []int{0},
			PCI: append(q35Board[:4:4], PCIDevice{"pcie-root-port", true, -1}, PCIDevice{"pcie-root-port", true, -1},
				PCIDevice{"virtio-net-pci", false, 4})}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			want, err := os.ReadFile("testdata/" + tt.file + ".txt")
			if err != nil {
				t.Fatal(err)
			}
			got := Build(tt.b).Print(tt.opt)
			if g, w := SortGroups(got), SortGroups(string(want)); g != w {
				os.WriteFile("/tmp/mt/got-"+tt.file+".txt", []byte(g), 0o644)
				os.WriteFile("/tmp/mt/want-"+tt.file+".txt", []byte(w), 0o644)
				t.Errorf("differs from QEMU's")
			}
		})
	}
}
