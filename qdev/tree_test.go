package qdev_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"tlcvm/qdev"
)

func add(t *testing.T, tr *qdev.Tree, s qdev.Spec) *qdev.Device {
	t.Helper()
	d, err := tr.Add(s)
	if err != nil {
		t.Fatalf("Add(%+v): %v", s, err)
	}
	return d
}

func props(kv ...string) []qdev.Prop {
	var out []qdev.Prop
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, qdev.Prop{Name: kv[i], Str: kv[i+1]})
	}
	return out
}

// TestAddErrors: QEMU 7.2's texts, in its order (checked against the binary in
// tests/testdata/qmp/devices.txt).
func TestAddErrors(t *testing.T) {
	tr := qdev.New(qdev.Config{Machine: "pc-i440fx-7.2"})
	add(t, tr, qdev.Spec{Driver: "ahci", ID: "sata0"})
	add(t, tr, qdev.Spec{Driver: "pci-bridge", ID: "br", Hotplug: true, Props: props("chassis_nr", "1", "addr", "0x5")})
	for _, tc := range []struct {
		s    qdev.Spec
		want string
		kind error
	}{
		{qdev.Spec{Driver: "nope", ID: "9x"}, "Parameter 'id' expects an identifier", qdev.ErrID},
		{qdev.Spec{Driver: "nope", ID: "sata0"}, "'nope' is not a valid device model name", nil},
		{qdev.Spec{Driver: "e1000", ID: "sata0"}, "Duplicate device ID 'sata0'", qdev.ErrID},
		{qdev.Spec{Driver: "e1000", Bus: "ide.0"}, "Device 'e1000' can't go on IDE bus", qdev.ErrBus},
		{qdev.Spec{Driver: "e1000", Bus: "nope"}, "Bus 'nope' not found", qdev.ErrBus},
		{qdev.Spec{Driver: "usb-tablet"}, "No 'usb-bus' bus found for device 'usb-tablet'", qdev.ErrBus},
		{qdev.Spec{Driver: "ide-cd", Hotplug: true}, "Bus 'sata0.5' does not support hotplugging", qdev.ErrHotplug},
		{qdev.Spec{Driver: "isa-serial", Hotplug: true}, "Bus 'isa.0' does not support hotplugging", qdev.ErrHotplug},
		{qdev.Spec{Driver: "e1000", Props: props("addr", "0x5")}, "PCI: slot 5 function 0 not available for e1000, in use by pci-bridge,id=br", qdev.ErrAddress},
		{qdev.Spec{Driver: "e1000", Hotplug: true, Props: props("addr", "0x5.0x1")}, "PCI: slot 5 function 0 already occupied by pci-bridge, new func e1000 cannot be exposed to guest.", qdev.ErrAddress},
		{qdev.Spec{Driver: "e1000", Props: props("addr", "zz")}, "Property 'e1000.addr' doesn't take value 'zz'", qdev.ErrProperty},
		{qdev.Spec{Driver: "e1000", Props: props("addr", "0x20")}, "Property 'e1000.addr' doesn't take value '0x20'", qdev.ErrProperty},
		{qdev.Spec{Driver: "e1000", Props: props("mac", "zz")}, "Property 'e1000.mac' doesn't take value 'zz'", qdev.ErrProperty},
		{qdev.Spec{Driver: "virtio-net-pci", Props: props("mac", "52:54:00:12:34")}, "Property 'virtio-net-device.mac' doesn't take value '52:54:00:12:34'", qdev.ErrProperty},
		{qdev.Spec{Driver: "e1000", Props: props("foo", "zz")}, "Property 'e1000.foo' not found", qdev.ErrProperty},
		{qdev.Spec{Driver: "e1000", Props: props("bootindex", "x")}, "Parameter 'bootindex' expects integer", qdev.ErrProperty},
		{qdev.Spec{Driver: "e1000", Props: props("rombar", "-1")}, "Parameter 'rombar' expects uint32_t", qdev.ErrProperty},
		{qdev.Spec{Driver: "e1000", Props: props("multifunction", "maybe")}, "Parameter 'multifunction' expects 'on' or 'off'", qdev.ErrProperty},
		{qdev.Spec{Driver: "virtio-net-pci", Props: props("host_mtu", "70000")}, "Parameter 'host_mtu' expects uint16_t", qdev.ErrProperty},
		{qdev.Spec{Driver: "virtio-net-pci", Props: props("speed", "9999999999")}, "Parameter 'speed' expects int32_t", qdev.ErrProperty},
		{qdev.Spec{Driver: "virtio-net-pci", Props: props("disable-legacy", "x")}, "Parameter 'disable-legacy' does not accept value 'x'", qdev.ErrProperty},
		{qdev.Spec{Driver: "e1000", Bus: "br", Hotplug: true}, "Unsupported PCI slot 0 for standard hotplug controller. Valid slots are between 1 and 31.", qdev.ErrAddress},
		{qdev.Spec{Driver: "e1000", Props: []qdev.Prop{{Name: "mq", JSON: []byte("1")}}}, "Property 'e1000.mq' not found", qdev.ErrProperty},
		{qdev.Spec{Driver: "virtio-net-pci", Props: []qdev.Prop{{Name: "mq", JSON: []byte("1")}}}, "Invalid parameter type for 'mq', expected: boolean", qdev.ErrProperty},
	} {
		_, err := tr.Add(tc.s)
		if err == nil || err.Error() != tc.want || (tc.kind != nil && !errors.Is(err, tc.kind)) {
			t.Errorf("Add(%+v) = %v, want %q", tc.s, err, tc.want)
		}
	}
}

func TestBusesAndPaths(t *testing.T) {
	tr := qdev.New(qdev.Config{Machine: "pc-i440fx-7.2"})
	add(t, tr, qdev.Spec{Driver: "pci-bridge", Props: props("chassis_nr", "1")})
	add(t, tr, qdev.Spec{Driver: "ahci"})
	a2 := add(t, tr, qdev.Spec{Driver: "ahci"})
	cd := add(t, tr, qdev.Spec{Driver: "ide-cd"})
	vs := add(t, tr, qdev.Spec{Driver: "virtio-serial", ID: "vs0"})
	port := add(t, tr, qdev.Spec{Driver: "virtserialport", ID: "p0"})
	var names []string
	for _, b := range a2.Buses {
		names = append(names, b.Name)
	}
	if got := strings.Join(names, " "); got != "ide.8 ide.9 ide.10 ide.11 ide.12 ide.13" {
		t.Errorf("second anonymous ahci's buses: %s", got)
	}
	if cd.Bus.Path() != "/machine/peripheral-anon/device[2]/ide.13" || cd.Path != "/machine/peripheral-anon/device[3]" || cd.Unit != 0 {
		t.Errorf("ide-cd on %s as %s unit %d", cd.Bus.Path(), cd.Path, cd.Unit)
	}
	if vs.Type != "virtio-serial-pci" || vs.Backend == nil || vs.Backend.Path != "/machine/peripheral/vs0/virtio-backend" {
		t.Errorf("virtio-serial: %+v", vs)
	}
	if port.Bus.Path() != "/machine/peripheral/vs0/virtio-backend/vs0.0" {
		t.Errorf("port on %s", port.Bus.Path())
	}
	if got := fmt.Sprint(tr.Peripherals()[0].Buses[0].Name); got != "pci.1" {
		t.Errorf("anonymous pci-bridge's bus: %s", got)
	}
	q := qdev.New(qdev.Config{Machine: "pc-q35-7.2"})
	rp := add(t, q, qdev.Spec{Driver: "pcie-root-port", Props: props("chassis", "1")})
	if rp.Buses[0].Name != "pcie.0" {
		t.Errorf("anonymous root port's bus on q35: %s (QEMU: pcie.0)", rp.Buses[0].Name)
	}
	if _, err := q.Add(qdev.Spec{Driver: "virtio-net-pci", Hotplug: true}); err == nil || err.Error() != "Bus 'pcie.0' does not support hotplugging" {
		t.Errorf("hotplug on q35's pcie.0: %v", err)
	}
}

func TestPCIPlacement(t *testing.T) {
	tr := qdev.New(qdev.Config{Machine: "pc-i440fx-7.2", VGA: true})
	e := add(t, tr, qdev.Spec{Driver: "e1000", ID: "e"})
	if e.Devfn != 3<<3 {
		t.Errorf("first free slot: %#x, want slot 3 (VGA has 2)", e.Devfn)
	}
	add(t, tr, qdev.Spec{Driver: "piix3-usb-uhci", Props: props("addr", "0x1.0x2")})
	add(t, tr, qdev.Spec{Driver: "e1000", Hotplug: true, Props: props("addr", "0x6.0x1")})
	add(t, tr, qdev.Spec{Driver: "e1000", Hotplug: true, Props: props("addr", "0x6", "multifunction", "on")})
	if _, err := tr.Add(qdev.Spec{Driver: "e1000", Props: props("addr", "0x7.1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Add(qdev.Spec{Driver: "e1000", Props: props("addr", "0x7")}); err == nil ||
		err.Error() != "PCI: 7.0 indicates single function, but 7.1 is already populated." {
		t.Errorf("single function over a populated slot: %v", err)
	}
	if _, err := tr.Add(qdev.Spec{Driver: "e1000", Props: props("addr", "0x3.2")}); err == nil ||
		err.Error() != "PCI: single function device can't be populated in function 3.2" {
		t.Errorf("function 2 of a single-function slot: %v", err)
	}
	bus := tr.PCI()
	if len(bus) != 1 || bus[0].Functions[0].Type != "i440FX" {
		t.Fatalf("PCI() = %+v", bus)
	}
	var got []string
	for _, f := range bus[0].Functions {
		got = append(got, fmt.Sprintf("%x.%x %s", f.Devfn>>3, f.Devfn&7, f.Type))
	}
	want := "0.0 i440FX,1.0 PIIX3,1.1 piix3-ide,1.2 piix3-usb-uhci,1.3 PIIX4_PM,2.0 VGA,3.0 e1000,6.0 e1000,6.1 e1000,7.1 e1000"
	if strings.Join(got, ",") != want {
		t.Errorf("functions:\n%s\nwant\n%s", strings.Join(got, ","), want)
	}
}

type fakeGuest struct{ pending []func() }

func (g *fakeGuest) RequestEject(_ string, done func()) { g.pending = append(g.pending, done) }

func TestDel(t *testing.T) {
	g := &fakeGuest{}
	var events []string
	tr := qdev.New(qdev.Config{Machine: "pc-i440fx-7.2", Guest: g, Deleted: func(id, path string) {
		events = append(events, id+"@"+path)
	}})
	add(t, tr, qdev.Spec{Driver: "virtio-serial-pci", ID: "vs"})
	add(t, tr, qdev.Spec{Driver: "virtserialport", ID: "p0"})
	add(t, tr, qdev.Spec{Driver: "virtio-scsi-pci"})
	add(t, tr, qdev.Spec{Driver: "scsi-cd", ID: "s0"})
	for _, tc := range []struct{ id, want string }{
		{"nope", "Device 'nope' not found"},
		{"/machine/peripheral-anon", "/machine/peripheral-anon is not a hotpluggable device"},
		{"vs/virtio-backend/vs.0", "vs/virtio-backend/vs.0 is not a hotpluggable device"},
		{"vs/virtio-backend", "Bus 'virtio-bus' does not support hotplugging"},
	} {
		if err := tr.Del(tc.id); err == nil || err.Error() != tc.want {
			t.Errorf("Del(%q) = %v, want %q", tc.id, err, tc.want)
		}
	}
	if err := tr.Del("s0"); err != nil || len(events) != 1 || events[0] != "s0@/machine/peripheral/s0" {
		t.Fatalf("scsi unplug: %v %v", err, events)
	}
	events = nil
	if err := tr.Del("vs"); err != nil || len(events) != 0 || len(g.pending) != 1 {
		t.Fatalf("PCI unplug request: %v %v %d", err, events, len(g.pending))
	}
	if err := tr.Del("vs"); err != nil {
		t.Fatal(err)
	}
	g.pending[0]()
	want := []string{"p0@/machine/peripheral/p0", "@/machine/peripheral/vs/virtio-backend", "vs@/machine/peripheral/vs"}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Errorf("events %v, want %v", events, want)
	}
	if _, ok := tr.Lookup("vs"); ok {
		t.Error("vs still there")
	}
	g.pending[1]() // a second eject of a gone device does nothing
	if len(events) != 3 {
		t.Errorf("events after second eject: %v", events)
	}
	add(t, tr, qdev.Spec{Driver: "virtio-serial-pci", ID: "vs"})
}

// TestFloppies: the board's isa-fdc (always on pc, on q35 only with a floppy drive) has a
// floppy bus of two units, the board's drives on it first; QEMU 7.2's texts
// (floppy_drive_realize; cmdline.txt compares them with the binary).
func TestFloppies(t *testing.T) {
	for _, tc := range []struct {
		machine string
		board   []int
		specs   []qdev.Spec
		want    string // the last Add's error, or the units given
	}{
		{"pc-i440fx-7.2", nil, []qdev.Spec{{Driver: "floppy"}, {Driver: "floppy"}}, "0 1"},
		{"pc-i440fx-7.2", nil, []qdev.Spec{{Driver: "floppy"}, {Driver: "floppy"}, {Driver: "floppy", ID: "f2"}},
			"Can't create floppy unit 2, bus supports only 2 units"},
		{"pc-i440fx-7.2", []int{0}, []qdev.Spec{{Driver: "floppy", Props: props("unit", "0")}}, "Floppy unit 0 is in use"},
		{"pc-i440fx-7.2", []int{0}, []qdev.Spec{{Driver: "floppy"}}, "1"},
		{"pc-i440fx-7.2", nil, []qdev.Spec{{Driver: "floppy", Props: props("unit", "1")}, {Driver: "floppy"}}, "1 0"},
		{"pc-i440fx-7.2", nil, []qdev.Spec{{Driver: "floppy", Props: props("unit", "1")}, {Driver: "floppy", Props: props("unit", "1")}},
			"Floppy unit 1 is in use"},
		{"pc-i440fx-7.2", nil, []qdev.Spec{{Driver: "floppy", Hotplug: true}}, "Bus 'floppy-bus.0' does not support hotplugging"},
		{"pc-q35-7.2", nil, []qdev.Spec{{Driver: "floppy"}}, "No 'floppy-bus' bus found for device 'floppy'"},
		{"pc-q35-7.2", []int{0}, []qdev.Spec{{Driver: "floppy"}, {Driver: "floppy"}}, "Can't create floppy unit 2, bus supports only 2 units"},
		{"none", nil, []qdev.Spec{{Driver: "floppy"}}, "No 'floppy-bus' bus found for device 'floppy'"},
	} {
		tr := qdev.New(qdev.Config{Machine: tc.machine, Floppies: tc.board})
		var units []string
		got := ""
		for _, s := range tc.specs {
			d, err := tr.Add(s)
			if err != nil {
				got = err.Error()
				if !errors.Is(err, qdev.ErrAddress) && !errors.Is(err, qdev.ErrBus) && !errors.Is(err, qdev.ErrHotplug) {
					t.Errorf("%s %v: %v is of no kind", tc.machine, tc.specs, err)
				}
				break
			}
			units = append(units, fmt.Sprint(d.Unit))
			got = strings.Join(units, " ")
		}
		if got != tc.want {
			t.Errorf("%s, board %v, %v: %q, want %q", tc.machine, tc.board, tc.specs, got, tc.want)
		}
	}
}
