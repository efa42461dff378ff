package catalog_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"tlcvm/compat/qerror"
	"tlcvm/machine/catalog"
)

func TestMachineLookups(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"pc", "pc-i440fx-7.2", true},
		{"q35", "pc-q35-7.2", true},
		{"pc-i440fx-7.2", "pc-i440fx-7.2", true},
		{"pc-q35-2.4", "pc-q35-2.4", true},
		{"none", "none", true},
		{"microvm", "microvm", true},
		{"isapc", "isapc", true},
		{"PC", "", false},
		{"", "", false},
		{"virt", "", false},
	} {
		m, ok := catalog.LookupMachine(tc.in)
		if ok != tc.ok || m.Name != tc.want {
			t.Errorf("LookupMachine(%q) = %q, %v; want %q, %v", tc.in, m.Name, ok, tc.want, tc.ok)
		}
	}
	d := catalog.DefaultMachine()
	if d.Name != "pc-i440fx-7.2" || !d.IsDefault || d.Alias != "pc" || d.TypeName() != "pc-i440fx-7.2-machine" {
		t.Errorf("DefaultMachine() = %+v", d)
	}
	ms := catalog.Machines()
	if len(ms) < 50 || len(ms) > 100 {
		t.Errorf("%d machines", len(ms))
	}
	defaults := 0
	for _, m := range ms {
		if m.IsDefault {
			defaults++
		}
		if _, ok := catalog.LookupType(m.TypeName()); !ok {
			t.Errorf("machine %s has no QOM type %s", m.Name, m.TypeName())
		}
	}
	if defaults != 1 {
		t.Errorf("%d default machines", defaults)
	}
	ms[0].Name = "changed"
	if catalog.Machines()[0].Name == "changed" {
		t.Error("Machines returns the table itself")
	}
}

func TestMachineJSONShape(t *testing.T) {
	q35, _ := catalog.LookupMachine("q35")
	got, _ := json.Marshal(q35)
	want := `{"hotpluggable-cpus":true,"name":"pc-q35-7.2","numa-mem-supported":false,"default-cpu-type":"qemu64-x86_64-cpu","cpu-max":288,"deprecated":false,"default-ram-id":"pc.ram","alias":"q35"}`
	if string(got) != want {
		t.Errorf("q35 = %s\nwant  %s", got, want)
	}
	none, _ := catalog.LookupMachine("none")
	got, _ = json.Marshal(none)
	want = `{"hotpluggable-cpus":false,"name":"none","numa-mem-supported":false,"cpu-max":1,"deprecated":false,"default-ram-id":"ram"}`
	if string(got) != want {
		t.Errorf("none = %s\nwant  %s", got, want)
	}
}

func TestHelpTexts(t *testing.T) {
	for _, tc := range []struct {
		name, text, prefix, contains string
	}{
		{"machine", catalog.MachineHelp(), "Supported machines are:\n", "pc                   Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)\n"},
		{"cpu", catalog.CPUHelp(), "Available CPUs:\n", "x86 qemu64                (alias configured by machine type)\n"},
		{"device", catalog.DeviceHelp(), "Controller/Bridge/Hub devices:\n", `name "virtio-blk-pci", bus PCI, alias "virtio-blk"` + "\n"},
	} {
		if !strings.HasPrefix(tc.text, tc.prefix) || !strings.Contains(tc.text, tc.contains) || !strings.HasSuffix(tc.text, "\n") {
			t.Errorf("%s help: missing %q / %q", tc.name, tc.prefix, tc.contains)
		}
	}
	if !strings.HasPrefix(catalog.QEMUVersion(), "7.2.") {
		t.Errorf("QEMUVersion() = %q", catalog.QEMUVersion())
	}
}

func TestCPUModels(t *testing.T) {
	ms := catalog.CPUModels()
	if len(ms) < 130 {
		t.Fatalf("%d CPU models", len(ms))
	}
	for _, m := range ms {
		if m.UnavailableFeatures == nil {
			t.Errorf("%s: nil unavailable-features", m.Name)
		}
		if m.Typename != m.Name+"-x86_64-cpu" {
			t.Errorf("%s: typename %s", m.Name, m.Typename)
		}
		if m.AliasOf != "" {
			if _, ok := catalog.LookupCPU(m.AliasOf); !ok {
				t.Errorf("%s: alias of unknown %s", m.Name, m.AliasOf)
			}
		}
	}
	for _, tc := range []struct {
		name, aliasOf string
		static        bool
		unavailable   []string
	}{
		{"qemu64", "qemu64-v1", false, []string{}},
		{"max", "", false, []string{}},
		{"host", "", false, []string{"kvm"}},
		{"base", "", true, []string{}},
	} {
		m, ok := catalog.LookupCPU(tc.name)
		if !ok || m.AliasOf != tc.aliasOf || m.Static != tc.static || !slices.Equal(m.UnavailableFeatures, tc.unavailable) {
			t.Errorf("LookupCPU(%q) = %+v, %v", tc.name, m, ok)
		}
	}
	if _, ok := catalog.LookupCPU("QEMU64"); ok {
		t.Error("CPU names must be case-sensitive")
	}
	m, _ := catalog.LookupCPU("qemu64")
	got, _ := json.Marshal(m)
	want := `{"name":"qemu64","typename":"qemu64-x86_64-cpu","unavailable-features":[],"alias-of":"qemu64-v1","static":false,"migration-safe":true,"deprecated":false}`
	if string(got) != want {
		t.Errorf("qemu64 = %s\nwant  %s", got, want)
	}
}

func TestTypes(t *testing.T) {
	all := catalog.Types()
	if len(all) < 700 {
		t.Fatalf("%d types", len(all))
	}
	if got := catalog.Ancestors("isa-serial"); !slices.Equal(got, []string{"isa-serial", "isa-device", "device", "object"}) {
		t.Errorf("Ancestors(isa-serial) = %v", got)
	}
	if got := catalog.Ancestors("nope"); got != nil {
		t.Errorf("Ancestors(nope) = %v", got)
	}
	for _, tc := range []struct {
		name, target string
		want         bool
	}{
		{"virtio-blk-pci", "pci-device", true},
		{"virtio-blk-pci", "device", true},
		{"virtio-blk-pci", "virtio-blk-pci", true},
		{"virtio-blk-pci", "conventional-pci-device", true}, // virtio-pci registers both
		{"virtio-blk-pci-transitional", "pci-express-device", false},
		{"e1000", "pci-express-device", false},
		{"pcie-root-port", "pci-express-device", true},
		{"pcie-root-port", "hotplug-handler", true},
		{"memory-backend-file", "user-creatable", true},
		{"memory-backend-file", "interface", true},
		{"memory-backend-file", "device", false},
		{"pc-q35-7.2-machine", "machine", true},
		{"max-x86_64-cpu", "x86_64-cpu", true},
		{"nope", "object", false},
	} {
		if got := catalog.Implements(tc.name, tc.target); got != tc.want {
			t.Errorf("Implements(%q, %q) = %v", tc.name, tc.target, got)
		}
	}
	for _, tc := range []struct {
		name   string
		parent string
		abs    bool
	}{
		{"object", "", true},
		{"device", "object", true},
		{"virtio-blk-pci", "virtio-blk-pci-base", false},
		{"pc-i440fx-7.2-machine", "generic-pc-machine", false},
	} {
		ty, ok := catalog.LookupType(tc.name)
		if !ok || ty.Parent != tc.parent || ty.Abstract != tc.abs {
			t.Errorf("LookupType(%q) = %+v, %v", tc.name, ty, ok)
		}
	}
	obj, _ := catalog.LookupType("object")
	if b, _ := json.Marshal(obj); string(b) != `{"abstract":true,"name":"object"}` {
		t.Errorf("object = %s", b)
	}
}

func TestListTypes(t *testing.T) {
	concrete := catalog.ListTypes("", false)
	all := catalog.ListTypes("", true)
	if len(concrete) >= len(all) || len(concrete) < 500 {
		t.Fatalf("%d concrete of %d", len(concrete), len(all))
	}
	for _, ty := range concrete {
		if ty.Abstract {
			t.Fatalf("abstract %s listed", ty.Name)
		}
	}
	machines := catalog.ListTypes("machine", false)
	if len(machines) != len(catalog.Machines()) {
		t.Errorf("%d machine types, %d machines", len(machines), len(catalog.Machines()))
	}
	creatable := catalog.ListTypes("user-creatable", false)
	if !slices.ContainsFunc(creatable, func(ty catalog.Type) bool { return ty.Name == "memory-backend-file" }) {
		t.Error("memory-backend-file is not user-creatable")
	}
	if got := catalog.ListTypes("no-such-type", true); got == nil || len(got) != 0 {
		t.Errorf("ListTypes(no-such-type) = %v, want []", got)
	}
	if got := catalog.Interfaces("pcie-root-port"); !slices.Contains(got, "pci-express-device") || !slices.Contains(got, "hotplug-handler") {
		t.Errorf("Interfaces(pcie-root-port) = %v", got)
	}
}

// libvirtProbed are the types libvirt 9.0 asks about, plus the devices of
// the reference domains' command lines and the usual disk and serial ones.
var libvirtProbed = []string{
	"virtio-blk-pci", "virtio-net-pci", "virtio-scsi-pci", "vfio-pci", "scsi-hd", "ide-hd", "PIIX4_PM",
	"usb-redir", "usb-storage", "kvm-pit", "VGA", "vmware-svga", "qxl", "virtio-gpu-pci", "virtio-gpu-device",
	"ICH9-LPC", "virtio-balloon-pci", "virtio-balloon-device", "intel-iommu", "mch", "nvdimm", "pcie-root-port",
	"usb-host", "vhost-user-fs-device", "virtio-mem-pci", "virtio-iommu-pci",
	"ide-cd", "isa-serial", "piix3-usb-uhci", "qemu-xhci", "usb-tablet", "virtio-rng-pci", "virtio-serial-pci",
	"virtio-vga", "virtserialport", "virtconsole", "scsi-cd", "e1000", "rtl8139", "pci-serial", "ich9-ahci",
}

func TestDeviceProperties(t *testing.T) {
	for _, name := range libvirtProbed {
		ps, err := catalog.DeviceProperties(name)
		if err != nil || len(ps) == 0 {
			t.Errorf("DeviceProperties(%q) = %d, %v", name, len(ps), err)
		}
	}
	ps, _ := catalog.DeviceProperties("virtio-blk-pci")
	i := slices.IndexFunc(ps, func(p catalog.Property) bool { return p.Name == "addr" })
	if i < 0 {
		t.Fatal("virtio-blk-pci has no addr")
	}
	b, _ := json.Marshal(ps[i])
	if want := `{"default-value":-1,"name":"addr","description":"Slot and optional function number, example: 06.0 or 06","type":"int32"}`; string(b) != want {
		t.Errorf("addr = %s", b)
	}
	ps[i].Name = "changed"
	if again, _ := catalog.DeviceProperties("virtio-blk-pci"); again[i].Name != "addr" {
		t.Error("DeviceProperties returns shared storage")
	}
	kvmPit, _ := catalog.DeviceProperties("kvm-pit")
	b, _ = json.Marshal(kvmPit)
	if want := `[{"default-value":"delay","name":"lost_tick_policy","type":"LostTickPolicy"},{"default-value":4294967295,"name":"iobase","type":"uint32"}]`; string(b) != want {
		t.Errorf("kvm-pit = %s", b)
	}
}

func TestObjectProperties(t *testing.T) {
	for _, name := range []string{"memory-backend-file", "memory-backend-memfd", "max-x86_64-cpu", "none-machine",
		"pc-i440fx-7.2-machine", "pc-q35-7.2-machine", "virtio-pci", "object"} {
		ps, err := catalog.ObjectProperties(name)
		if err != nil || len(ps) == 0 || ps[0].Name != "type" {
			t.Errorf("ObjectProperties(%q) = %v, %v", name, ps, err)
		}
	}
}

func TestPropertyErrors(t *testing.T) {
	for _, tc := range []struct {
		fn       func(string) ([]catalog.Property, error)
		typename string
		sentinel error
		desc     string
	}{
		{catalog.DeviceProperties, "virtio-net-ccw", catalog.ErrNotFound, "Device 'virtio-net-ccw' not found"},
		{catalog.DeviceProperties, "virtio-pci", catalog.ErrInvalidType, "Parameter 'typename' expects a non-abstract device type"},
		{catalog.DeviceProperties, "device", catalog.ErrInvalidType, "Parameter 'typename' expects a non-abstract device type"},
		{catalog.DeviceProperties, "memory-backend-file", catalog.ErrInvalidType, "Parameter 'typename' expects a non-abstract device type"},
		{catalog.ObjectProperties, "nonexist", catalog.ErrNotFound, "Class 'nonexist' not found"},
		{catalog.ObjectProperties, "interface", catalog.ErrInvalidType, "Parameter 'typename' expects a QOM type"},
		{catalog.ObjectProperties, "hotplug-handler", catalog.ErrInvalidType, "Parameter 'typename' expects a QOM type"},
		{catalog.ObjectProperties, "microvm-machine", catalog.ErrUnavailable, "Type 'microvm-machine' cannot be introspected"},
	} {
		_, err := tc.fn(tc.typename)
		var ce *qerror.Error
		if !errors.Is(err, tc.sentinel) || !errors.As(err, &ce) || ce.Msg != tc.desc || err.Error() != tc.desc {
			t.Errorf("%s: err = %v, want %v %q", tc.typename, err, tc.sentinel, tc.desc)
		}
	}
}

func TestDeviceOptionsHelp(t *testing.T) {
	got, err := catalog.DeviceOptionsHelp("isa-serial")
	want := "isa-serial options:\n" +
		"  baudbase=<uint32>      -  (default: 115200)\n" +
		"  chardev=<str>          - ID of a chardev to use as a backend\n" +
		"  index=<uint32>         -  (default: 4294967295)\n" +
		"  iobase=<uint32>        -  (default: 4294967295)\n" +
		"  irq=<uint32>           -  (default: 4294967295)\n" +
		"  serial=<child<serial>>\n" +
		"  wakeup=<bool>          -  (default: false)\n"
	if err != nil || got != want {
		t.Errorf("DeviceOptionsHelp(isa-serial) = %q, %v\nwant %q", got, err, want)
	}
	got, _ = catalog.DeviceOptionsHelp("ide-hd")
	if !strings.Contains(got, "  account-failed=<OnOffAuto> - on/off/auto (default: \"auto\")\n") {
		t.Errorf("ide-hd help:\n%s", got)
	}
	if _, err := catalog.DeviceOptionsHelp("nonexist"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("DeviceOptionsHelp(nonexist) error = %v", err)
	}
}

func TestModeled(t *testing.T) {
	for _, name := range catalog.ModeledTypes() {
		if !catalog.Modeled(name) || !catalog.Implements(name, "device") {
			t.Errorf("modeled %s is not a device", name)
		}
	}
	if catalog.Modeled("vfio-pci") {
		t.Error("vfio-pci is modeled?")
	}
}
