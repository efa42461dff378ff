package catalog_test

import (
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"tlcvm/machine/catalog"
)

// TestDeviceAliases: every alias of `-device help` names the same model as its type: the
// same type, bus and properties, the same `-device ALIAS,help` text; and, as in QEMU, the
// alias is no QOM type (qom-list-types omits it, device-list-properties does not know it).
func TestDeviceAliases(t *testing.T) {
	types := map[string]bool{}
	for _, ty := range catalog.Types() {
		types[ty.Name] = true
	}
	aliases := 0
	for _, d := range catalog.Devices() {
		if d.Alias == "" {
			continue
		}
		aliases++
		byAlias, ok := catalog.LookupDevice(d.Alias)
		if !ok || byAlias != d {
			t.Errorf("LookupDevice(%q) = %+v, %v; want %+v", d.Alias, byAlias, ok, d)
		}
		if got := catalog.ResolveDeviceName(d.Alias); got != d.Name {
			t.Errorf("ResolveDeviceName(%q) = %q, want %q", d.Alias, got, d.Name)
		}
		if types[d.Alias] {
			t.Errorf("alias %q is a QOM type", d.Alias)
		}
		line := fmt.Sprintf("name %q, bus %s, alias %q", d.Name, d.Bus, d.Alias)
		if !strings.Contains(catalog.DeviceHelp(), line) {
			t.Errorf("-device help lacks %s", line)
		}
		want, err := catalog.DeviceOptionsHelp(d.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := catalog.DeviceOptionsHelp(catalog.ResolveDeviceName(d.Alias)); err != nil || got != want {
			t.Errorf("-device %s,help differs from -device %s,help (%v)", d.Alias, d.Name, err)
		}
		if _, err := catalog.DeviceProperties(d.Alias); !errors.Is(err, catalog.ErrNotFound) ||
			err.Error() != "Device '"+d.Alias+"' not found" {
			t.Errorf("DeviceProperties(%q) = %v, want QEMU's DeviceNotFound", d.Alias, err)
		}
		for _, running := range []bool{false, true} {
			c, err := catalog.DeviceClass(d.Alias, running)
			want, werr := catalog.DeviceClass(d.Name, running)
			if c != want || fmt.Sprint(err) != fmt.Sprint(werr) {
				t.Errorf("DeviceClass(%q, %v) = %+v, %v; want %+v, %v", d.Alias, running, c, err, want, werr)
			}
		}
	}
	if aliases < 19 {
		t.Errorf("only %d aliases (QEMU 7.2 x86_64 has 19)", aliases)
	}
	if d, ok := catalog.LookupDevice("ahci"); !ok || d.Name != "ich9-ahci" || d.Bus != "PCI" || !d.Hotpluggable {
		t.Errorf("LookupDevice(ahci) = %+v, %v", d, ok)
	}
}

func TestDeviceClass(t *testing.T) {
	for _, tc := range []struct {
		name    string
		running bool
		want    string // type name, or the error text
	}{
		{"ahci", false, "ich9-ahci"},
		{"e1000-82540em", true, "e1000"},
		{"virtio-net", true, "virtio-net-pci"},
		{"isa-serial", true, "isa-serial"},
		{"intel-iommu", false, "intel-iommu"},
		{"intel-iommu", true, "Parameter 'driver' expects a pluggable device type"},
		{"VGA", true, "Parameter 'driver' expects a pluggable device type"},
		{"PIIX3", false, "Parameter 'driver' expects a pluggable device type"},
		{"pci-device", false, "Parameter 'driver' expects a non-abstract device type"},
		{"memory-backend-ram", false, "'memory-backend-ram' is not a valid device model name"},
		{"nope", true, "'nope' is not a valid device model name"},
		{"", true, "'' is not a valid device model name"},
	} {
		d, err := catalog.DeviceClass(tc.name, tc.running)
		got := d.Name
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("DeviceClass(%q, %v) = %q, want %q", tc.name, tc.running, got, tc.want)
		}
	}
}

// TestDeviceAliasHelpAgainstQEMU compares `-device ALIAS,help` with the binary's.
func TestDeviceAliasHelpAgainstQEMU(t *testing.T) {
	requireQEMU(t)
	var names []string
	for _, d := range catalog.Devices() {
		if d.Alias != "" {
			names = append(names, d.Alias)
		}
	}
	slices.Sort(names)
	for _, a := range names {
		out, err := exec.Command(qemuBin, "-machine", "none", "-nodefaults", "-device", a+",help").Output()
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		got, err := catalog.DeviceOptionsHelp(catalog.ResolveDeviceName(a))
		if err != nil || got != string(out) {
			t.Errorf("%s: got\n%s\nwant\n%s", a, got, out)
		}
	}
}

func TestPCIModel(t *testing.T) {
	e, ok := catalog.PCIModel("e1000", false)
	if !ok || e.Vendor != 0x8086 || e.Device != 0x100e || e.Class != 0x200 || e.ClassDesc != "Ethernet controller" ||
		e.IRQPin != 1 || len(e.BARs) != 3 || e.BARs[1] != (catalog.PCIBar{N: 1, IO: true, Size: 64}) || e.Bridge != nil {
		t.Errorf("e1000: %+v", e)
	}
	if x, _ := catalog.PCIModel("e1000", true); fmt.Sprint(x) != fmt.Sprint(e) {
		t.Errorf("e1000 behind a PCIe port: %+v", x)
	}
	// virtio behind a PCIe port is modern only: device 0x1040+id, no I/O BAR
	legacy, _ := catalog.PCIModel("virtio-net-pci", false)
	modern, ok := catalog.PCIModel("virtio-net-pci", true)
	if !ok || legacy.Device != 0x1000 || legacy.Subsystem != 1 || modern.Device != 0x1041 || modern.Subsystem != 0x1100 ||
		len(modern.BARs) != len(legacy.BARs)-1 || !legacy.BARs[0].IO {
		t.Errorf("virtio-net-pci: legacy %+v, modern %+v", legacy, modern)
	}
	rp, ok := catalog.PCIModel("pcie-root-port", false)
	if !ok || rp.Bridge == nil || rp.SubsystemVendor != -1 || rp.Vendor != 0x1b36 || rp.Device != 0xc {
		t.Errorf("pcie-root-port: %+v", rp)
	}
	for _, name := range []string{"ich9-ahci", "rtl8139", "e1000e", "pci-serial", "virtio-serial-pci", "virtio-blk-pci",
		"virtio-balloon-pci", "virtio-rng-pci", "virtio-vga", "VGA", "qemu-xhci", "piix3-usb-uhci", "pci-bridge"} {
		if _, ok := catalog.PCIModel(name, false); !ok {
			t.Errorf("no identity for %s", name)
		}
	}
	if _, ok := catalog.PCIModel("isa-serial", false); ok {
		t.Error("isa-serial has a PCI identity")
	}
}
