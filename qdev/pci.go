package qdev

import (
	"encoding/json"
	"slices"
)

// placePCI is do_pci_register_device and pci_init_multifunction: the devfn asked for
// (property addr) or the first slot whose function 0 is free, with QEMU 7.2's checks.
func (b *Bus) placePCI(d *Device) error {
	devfn := -1
	if v, ok := d.Props["addr"]; ok {
		_ = json.Unmarshal(v, &devfn)
	}
	at := func(devfn int) *Device {
		for _, o := range b.devs {
			if o.Devfn == devfn {
				return o
			}
		}
		return nil
	}
	if devfn < 0 {
		for devfn = 0; devfn < 256; devfn += 8 {
			if at(devfn) == nil {
				break
			}
		}
		if devfn >= 256 {
			return errf(ErrAddress, "PCI: no slot/function available for %s, all in use or reserved", d.Type)
		}
	} else if o := at(devfn); o != nil {
		id := o.ID
		if id == "" {
			id = "(null)"
		}
		return errf(ErrAddress, "PCI: slot %d function %d not available for %s, in use by %s,id=%s",
			devfn>>3, devfn&7, d.Type, o.Type, id)
	} else if f0 := at(devfn &^ 7); d.Hotplugged && devfn&7 != 0 && f0 != nil {
		return errf(ErrAddress, "PCI: slot %d function 0 already occupied by %s, new func %s cannot be exposed to guest.",
			devfn>>3, f0.Type, d.Type)
	}
	slot, fn := devfn>>3, devfn&7
	if fn != 0 {
		if f0 := at(devfn &^ 7); f0 != nil && !propBool(f0, "multifunction", false) {
			return errf(ErrAddress, "PCI: single function device can't be populated in function %x.%x", slot, fn)
		}
	} else if !propBool(d, "multifunction", false) {
		for f := 1; f < 8; f++ {
			if at(devfn|f) != nil {
				return errf(ErrAddress, "PCI: %x.0 indicates single function, but %x.%x is already populated.", slot, slot, f)
			}
		}
	}
	if b.SHPC && d.Hotplugged && slot == 0 {
		return errf(ErrAddress, "Unsupported PCI slot 0 for standard hotplug controller. Valid slots are between 1 and 31.")
	}
	d.Devfn = devfn
	return nil
}

// slotPorts are the PCI Express ports with a hot-plug slot: each adds its (chassis, slot)
// pair to QEMU's chassis list when it realizes (rp_realize, xio3130_downstream_realize).
var slotPorts = map[string]bool{"pcie-root-port": true, "ioh3420": true, "xio3130-downstream": true}

// chassisSlot is pcie_chassis_add_slot: a port's chassis and slot (both 0 unless set) must
// be no other port's.
func (t *Tree) chassisSlot(d *Device) error {
	if !slotPorts[d.Type] {
		return nil
	}
	chassis, slot := propInt(d, "chassis", 0), propInt(d, "slot", 0)
	for _, o := range t.devs {
		if o != d && slotPorts[o.Type] && propInt(o, "chassis", 0) == chassis && propInt(o, "slot", 0) == slot {
			return errf(ErrAddress, "Can't add chassis slot, error -16") // -EBUSY
		}
	}
	return nil
}

// PCIFunction is one function of query-pci.
type PCIFunction struct {
	Type    string
	ID      string // qdev id
	Bus     int    // the bus's number
	Devfn   int
	Express bool // behind a PCIe port: see Device.Express
	// Bridge: a bridge's secondary bus; its functions are listed only once firmware has
	// given it a number, as QEMU's query-pci does.
	Bridge *PCIBus
	// Unplugging: device_del was asked and the guest has not ejected it.
	Unplugging bool
	// NoMSIX: a virtio device set to vectors=0, which has no MSI-X table BAR (BAR 1).
	NoMSIX bool
}

// PCIBus is one bus of query-pci.
type PCIBus struct {
	Number    int
	Functions []PCIFunction // by devfn
}

// PCI returns the machine's PCI buses as query-pci walks them: the root bus and, under each
// bridge, its secondary bus. nil without PCI.
func (t *Tree) PCI() []PCIBus {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []PCIBus
	for _, host := range t.root.devs {
		for _, b := range host.Buses {
			if b.Root {
				out = append(out, pciBus(b))
			}
		}
	}
	return out
}

func pciBus(b *Bus) PCIBus {
	pb := PCIBus{Number: b.Number}
	devs := slices.Clone(b.devs)
	slices.SortFunc(devs, func(x, y *Device) int { return x.Devfn - y.Devfn })
	for _, d := range devs {
		f := PCIFunction{Type: d.Type, ID: d.ID, Bus: b.Number, Devfn: d.Devfn, Express: d.Express(), Unplugging: d.unplugging,
			NoMSIX: noMSIX(d)}
		for _, c := range d.Buses {
			if c.Type == "PCI" || c.Type == "PCIE" {
				sb := pciBus(c)
				f.Bridge = &sb
			}
		}
		pb.Functions = append(pb.Functions, f)
	}
	return pb
}

// PCIRealized is a PCI function in realize order: its type, whether it is a bridge (it
// provides a PCI or PCIe bus), the index of the bridge it sits behind (-1: a root bus), and
// the device's id and QOM path (Board: made by the board, or a NIC of -net nic).
type PCIRealized struct {
	Type     string
	Bridge   bool
	Parent   int
	Board    bool
	ID, Path string
}

// PCIRealizeOrder lists the PCI functions in the order QEMU realizes them (each made its
// bus master address space then): the board's, with the NICs of -net nic where pc_nic_init
// makes them (before pc's IDE function; after q35's), then -device and device_add devices
// in creation order.
func (t *Tree) PCIRealizeOrder() []PCIRealized {
	t.mu.Lock()
	defer t.mu.Unlock()
	var board, nics, devs []*Device
	for _, d := range t.devs {
		if d.Bus != nil && (d.Bus.Type == "PCI" || d.Bus.Type == "PCIE") {
			devs = append(devs, d)
		}
	}
	for _, host := range t.root.devs {
		for _, b := range host.Buses {
			if b.Root {
				for _, d := range b.devs {
					switch {
					case d.builtin:
						board = append(board, d)
					case d.Board:
						nics = append(nics, d)
					}
				}
			}
		}
	}
	at := slices.IndexFunc(board, func(d *Device) bool { return d.Type == "piix3-ide" })
	if at < 0 {
		at = len(board)
	}
	all := slices.Concat(board[:at], nics, board[at:], devs)
	index := map[*Device]int{}
	out := make([]PCIRealized, len(all))
	for i, d := range all {
		index[d] = i
		out[i] = PCIRealized{Type: d.Type, Parent: -1, Board: d.Board, ID: d.ID, Path: d.Path}
		if p, ok := index[d.Bus.Parent]; ok && !d.Bus.Root {
			out[i].Parent = p
		}
		for _, c := range d.Buses {
			out[i].Bridge = out[i].Bridge || c.Type == "PCI" || c.Type == "PCIE"
		}
	}
	return out
}
