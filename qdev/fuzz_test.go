package qdev_test

import (
	"testing"

	"tlcvm/qdev"
)

// FuzzAdd: device_add with any driver, bus, id and one property never panics, and a device
// that is added can be looked up and deleted.
func FuzzAdd(f *testing.F) {
	for _, s := range [][4]string{{"e1000", "", "n0", "addr=0x3.1"}, {"ahci", "pci.0", "sata0", "multifunction=on"},
		{"ide-cd", "sata0.0", "", "unit=1"}, {"virtio-net", "", "v", "mac=52:54:00:12:34:56"}, {"pcie-root-port", "", "p", "chassis=x"},
		{"virtserialport", "", "", "nr=99999999999"}, {"e1000", "", "", "addr=1f.7"}} {
		f.Add(s[0], s[1], s[2], s[3], true)
	}
	f.Fuzz(func(t *testing.T, driver, bus, id, prop string, json bool) {
		tr := qdev.New(qdev.Config{Machine: "pc-i440fx-7.2"})
		name, val := prop, "on"
		for i := 0; i < len(prop); i++ {
			if prop[i] == '=' {
				name, val = prop[:i], prop[i+1:]
				break
			}
		}
		p := qdev.Prop{Name: name, Str: val}
		if json {
			p = qdev.Prop{Name: name, JSON: []byte(val)}
		}
		d, err := tr.Add(qdev.Spec{Driver: driver, Bus: bus, ID: id, Props: []qdev.Prop{p}, Hotplug: true})
		if err != nil {
			return
		}
		if id != "" {
			if got, ok := tr.Lookup(id); !ok || got != d {
				t.Fatalf("added %q, Lookup gives %v", id, got)
			}
		}
		tr.Unplug(d)
	})
}
