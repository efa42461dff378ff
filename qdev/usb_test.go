package qdev_test

import (
	"errors"
	"testing"

	"tlcvm/qdev"
)

// hw/usb/bus.c's port rules: the first free port, a usb-hub put on the last free one, a
// released port going to the end of the free list, and x-query-usb's text.
func TestUSBPorts(t *testing.T) {
	tr := qdev.New(qdev.Config{Machine: "pc-i440fx-7.2", RAM: 128 << 20})
	if _, err := tr.USBInfo(); !errors.Is(err, qdev.ErrNoUSB) {
		t.Fatalf("no USB bus: %v", err)
	}
	add := func(s qdev.Spec) {
		t.Helper()
		if _, err := tr.Add(s); err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
	}
	add(qdev.Spec{Driver: "piix3-usb-uhci", ID: "u"})
	add(qdev.Spec{Driver: "usb-tablet", ID: "t"})
	add(qdev.Spec{Driver: "usb-kbd", ID: "k", Props: []qdev.Prop{{Name: "usb_version", Str: "1"}}})
	want := "  Device 0.0, Port 1, Speed 12 Mb/s, Product QEMU USB Tablet, ID: t\n" +
		"  Device 0.0, Port 2, Speed 12 Mb/s, Product QEMU USB Hub\n" +
		"  Device 0.0, Port 2.1, Speed 12 Mb/s, Product QEMU USB Keyboard, ID: k\n"
	if got, err := tr.USBInfo(); err != nil || got != want {
		t.Fatalf("USBInfo:\n%s%v\nwant\n%s", got, err, want)
	}
	if err := tr.Del("t"); err != nil {
		t.Fatal(err)
	}
	add(qdev.Spec{Driver: "usb-mouse", ID: "m"})
	want = "  Device 0.0, Port 2, Speed 12 Mb/s, Product QEMU USB Hub\n" +
		"  Device 0.0, Port 2.1, Speed 12 Mb/s, Product QEMU USB Keyboard, ID: k\n" +
		"  Device 0.0, Port 2.2, Speed 12 Mb/s, Product QEMU USB Mouse, ID: m\n"
	if got, _ := tr.USBInfo(); got != want {
		t.Fatalf("after unplug and plug:\n%s\nwant\n%s", got, want)
	}
	if _, err := tr.Add(qdev.Spec{Driver: "usb-tablet", Props: []qdev.Prop{{Name: "port", Str: "9"}}}); err == nil ||
		err.Error() != "usb port 9 (bus u.0) not found (in use?)" {
		t.Fatalf("port=9: %v", err)
	}
}
