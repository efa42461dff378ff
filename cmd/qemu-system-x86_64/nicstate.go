package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"tlcvm/machine/catalog"
	"tlcvm/migration"
	"tlcvm/netdev"
	"tlcvm/qdev"
)

// nicSections are the NICs' migration sections: a NIC's link state travels with the
// guest, as QEMU's virtio-net, e1000 and e1000e reload link_down from the device state
// they migrate (set_link on the source holds on the destination). Each is named as QEMU
// names the NIC's vmstate section: the device's PCI path and its vmstate name
// ("0000:00:03.0/virtio-net", behind a root port "0000:00:02.0:00.0/virtio-net"), so a
// destination without the NIC refuses the stream with QEMU's "Unknown savevm section".
func (v *vm) nicSections() []migration.Section {
	var out []migration.Section
	v.devices.Locked(func(devs []*qdev.Device) {
		for _, d := range devs {
			c, ok := d.State.(*netdev.Client)
			if !ok || d.Bus == nil || !catalog.IsA(d.Bus.Type, "PCI") {
				continue
			}
			out = append(out, nicSection{net: v.net, client: c.Name, id: pciPath(d) + "/" + vmstateName(d.Type)})
		}
	})
	return out
}

// pciPath is QEMU's pcibus_get_dev_path: the domain, the root bus, then slot.function of
// each device from the root bus down to d.
func pciPath(d *qdev.Device) string {
	var hops []string
	for dev := d; dev != nil && dev.Bus != nil && dev.Devfn >= 0; dev = dev.Bus.Parent {
		hops = append([]string{fmt.Sprintf("%02x.%x", dev.Devfn>>3, dev.Devfn&7)}, hops...)
		if dev.Bus.Root {
			break
		}
	}
	return "0000:00:" + strings.Join(hops, ":")
}

// vmstateName is the name of a NIC type's vmstate description.
func vmstateName(typ string) string {
	switch typ {
	case "virtio-net-pci":
		return "virtio-net"
	case "i82559er", "i82550", "i82551", "i82557a", "i82557b", "i82557c", "i82558a", "i82558b",
		"i82559a", "i82559b", "i82559c", "i82562", "i82801":
		return "eepro100"
	case "ne2k_pci":
		return "ne2000"
	}
	return typ
}

// nicSection is one NIC's state.
type nicSection struct {
	net    *netdev.Net
	client string // the NIC's net client name
	id     string
}

type nicState struct {
	LinkUp bool `json:"link-up"`
}

func (s nicSection) SectionID() string               { return s.id }
func (s nicSection) StateVersion() (cur, min uint32) { return 1, 1 }

func (s nicSection) SaveState() (any, error) {
	up, _ := s.net.LinkUp(s.client)
	return nicState{LinkUp: up}, nil
}

func (s nicSection) LoadState(raw []byte, version uint32) error {
	var st nicState
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	return s.net.SetLink(s.client, st.LinkUp)
}
