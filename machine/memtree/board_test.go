package memtree

import (
	"fmt"
	"os"
	"testing"
)

// The testdata files are QEMU 7.2's info mtree for these command lines (-S, -display none).
func cpus(n int) []CPU {
	out := []CPU{{0, "/machine/unattached/device[0]"}}
	for i := 1; i < n; i++ {
		out = append(out, CPU{i, fmt.Sprintf("/machine/unattached/device[%d]", i+1)})
	}
	return out
}

func TestBuildMatchesQEMU(t *testing.T) {
	const M = 1 << 20
	pcDefault := []PCIDevice{{"i440FX", false, -1, nil}, {"PIIX3", false, -1, nil}, {"VGA", false, -1, nil},
		{"e1000", false, -1, nil}, {"piix3-ide", false, -1, nil}, {"PIIX4_PM", false, -1, nil}}
	q35Board := []PCIDevice{{"mch", false, -1, nil}, {"ICH9-LPC", false, -1, nil}, {"ich9-ahci", false, -1, nil}, {"ICH9-SMB", false, -1, nil}}
	tests := []struct {
		file string
		opt  Options
		b    Board
	}{
		// -nodefaults -machine pc -m 128
		{"pc-min", Options{}, Board{Below: 128 * M, CPUs: cpus(1), FDC: true,
			PCI: []PCIDevice{{"i440FX", false, -1, nil}, {"PIIX3", false, -1, nil}, {"piix3-ide", false, -1, nil}, {"PIIX4_PM", false, -1, nil}}}},
		// -machine pc -m 128, info mtree -D and -f
		{"pc-D", Options{Disabled: true}, Board{Below: 128 * M, CPUs: cpus(1), FDC: true, VGAs: []VGA{{"std", nil}},
			Serials: []ISAPort{{0, nil}}, Parallels: []ISAPort{{0, nil}}, PCI: pcDefault}},
		{"pc-f", Options{FlatView: true}, Board{Below: 128 * M, CPUs: cpus(1), FDC: true, VGAs: []VGA{{"std", nil}},
			Serials: []ISAPort{{0, nil}}, Parallels: []ISAPort{{0, nil}}, PCI: pcDefault}},
		// -machine q35 -m 128, info mtree and -D
		{"q35-def", Options{}, Board{Q35: true, Below: 128 * M, CPUs: cpus(1), VGAs: []VGA{{"std", nil}}, Serials: []ISAPort{{0, nil}}, Parallels: []ISAPort{{0, nil}},
			PCI: append(q35Board[:4:4], PCIDevice{"VGA", false, -1, nil}, PCIDevice{"e1000e", false, -1, nil})}},
		{"q35-D", Options{Disabled: true}, Board{Q35: true, Below: 128 * M, CPUs: cpus(1), VGAs: []VGA{{"std", nil}}, Serials: []ISAPort{{0, nil}}, Parallels: []ISAPort{{0, nil}},
			PCI: append(q35Board[:4:4], PCIDevice{"VGA", false, -1, nil}, PCIDevice{"e1000e", false, -1, nil})}},
		// -nodefaults -machine pc -m 1G,slots=2,maxmem=4G -smp 2 and a 512M pc-dimm on memdev m0
		{"pc-dimm", Options{}, Board{Below: 1024 * M, CPUs: cpus(2), FDC: true, MemHotplug: true,
			DeviceMemBase: 1 << 32, DeviceMemSize: 5 << 30, DIMMs: []DIMM{{"m0", 1 << 32, 512 * M}},
			PCI: []PCIDevice{{"i440FX", false, -1, nil}, {"PIIX3", false, -1, nil}, {"piix3-ide", false, -1, nil}, {"PIIX4_PM", false, -1, nil}}}},
		// -nodefaults -machine q35 -m 512, two pcie-root-ports, virtio-net-pci behind the first; -D
		{"q35-rpD", Options{Disabled: true}, Board{Q35: true, Below: 512 * M, CPUs: cpus(1),
			PCI: append(q35Board[:4:4], PCIDevice{"pcie-root-port", true, -1, nil}, PCIDevice{"pcie-root-port", true, -1, nil},
				PCIDevice{"virtio-net-pci", false, 4, nil})}},
		// -nodefaults -machine pc -m 1G,slots=2,maxmem=4G -smp 2 -vga std -serial null -parallel null
		// -device e1000,id=n1 -device virtio-net-pci, a pc-dimm on m0, -device pci-bridge,id=br0;
		// info mtree -o -D
		{"pc-oD2", Options{Owner: true, Disabled: true}, Board{Below: 1024 * M, CPUs: cpus(2), FDC: true, MemHotplug: true,
			RAMOwner: "/objects/pc.ram", VGAs: []VGA{{"std", nil}}, Serials: []ISAPort{{0, nil}}, Parallels: []ISAPort{{0, nil}},
			DeviceMemBase: 1 << 32, DeviceMemSize: 5 << 30, DIMMs: []DIMM{{"m0", 1 << 32, 512 * M}},
			PCI: []PCIDevice{{"i440FX", false, -1, nil}, {"PIIX3", false, -1, nil}, {"VGA", false, -1, nil},
				{"piix3-ide", false, -1, nil}, {"PIIX4_PM", false, -1, nil},
				{"e1000", false, -1, &Owner{Dev: true, ID: "n1"}},
				{"virtio-net-pci", false, -1, Dev("/machine/peripheral-anon/device[0]")},
				{"pci-bridge", true, -1, &Owner{Dev: true, ID: "br0"}}}}},
		// -nodefaults -machine q35 -m 1G,slots=2,maxmem=4G -vga std -serial null
		// -device pcie-root-port,id=rp1,chassis=1 -device cirrus-vga -drive if=floppy; -o -D
		{"q35-oD2", Options{Owner: true, Disabled: true}, Board{Q35: true, Below: 1024 * M, CPUs: cpus(1), FDC: true,
			Floppies: 1, MemHotplug: true, RAMOwner: "/objects/pc.ram", VGAs: []VGA{{"std", nil}, {"cirrus", Dev("/machine/peripheral-anon/device[0]")}}, Serials: []ISAPort{{0, nil}},
			DeviceMemBase: 1 << 32, DeviceMemSize: 5 << 30,
			PCI: []PCIDevice{{"mch", false, -1, nil}, {"ICH9-LPC", false, -1, nil}, {"ich9-ahci", false, -1, nil},
				{"ICH9-SMB", false, -1, nil}, {"VGA", false, -1, nil},
				{"pcie-root-port", true, -1, &Owner{Dev: true, ID: "rp1"}},
				{"cirrus-vga", false, -1, Dev("/machine/peripheral-anon/device[0]")}}}},
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
