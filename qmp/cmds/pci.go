package cmds

import (
	"encoding/json"
	"slices"

	"tlcvm/machine/catalog"
	"tlcvm/qdev"
	"tlcvm/qmp"
)

// PCI as query-pci and HMP `info pci` show it: the device tree's functions (package qdev)
// with their identities (the catalogue's, captured from QEMU). tlcvm runs no firmware, so
// no BAR is ever assigned, no interrupt line routed and no bridge numbered: QEMU shows the
// same before its BIOS has run (address -1, irq 0, secondary bus 0, nothing listed behind a
// bridge).

// PciMemoryRegion is one BAR.
type PciMemoryRegion struct {
	qmp.QAPIOrder
	Bar       int64  `json:"bar"`
	Type      string `json:"type"`
	Address   int64  `json:"address"`
	Size      int64  `json:"size"`
	Prefetch  *bool  `json:"prefetch,omitempty"`
	MemType64 *bool  `json:"mem_type_64,omitempty"`
}

// PciDeviceClass is a device's class code and its description.
type PciDeviceClass struct {
	qmp.QAPIOrder
	Desc  string `json:"desc,omitempty"`
	Class int64  `json:"class"`
}

// PciDeviceId holds the vendor and device ids (bridges have no subsystem ids).
type PciDeviceId struct {
	qmp.QAPIOrder
	Device          int64  `json:"device"`
	Vendor          int64  `json:"vendor"`
	Subsystem       *int64 `json:"subsystem,omitempty"`
	SubsystemVendor *int64 `json:"subsystem-vendor,omitempty"`
}

// PciMemoryRange is a bridge window.
type PciMemoryRange struct {
	qmp.QAPIOrder
	Base  int64 `json:"base"`
	Limit int64 `json:"limit"`
}

// PciBusInfo is a bridge's bus numbers and windows.
type PciBusInfo struct {
	qmp.QAPIOrder
	Number            int64          `json:"number"`
	Secondary         int64          `json:"secondary"`
	Subordinate       int64          `json:"subordinate"`
	IORange           PciMemoryRange `json:"io_range"`
	MemoryRange       PciMemoryRange `json:"memory_range"`
	PrefetchableRange PciMemoryRange `json:"prefetchable_range"`
}

// PciBridgeInfo is a bridge function's secondary bus; Devices only once it has a number.
type PciBridgeInfo struct {
	qmp.QAPIOrder
	Bus     PciBusInfo      `json:"bus"`
	Devices []PciDeviceInfo `json:"devices,omitempty"`
}

// PciDeviceInfo is one function on a bus.
type PciDeviceInfo struct {
	qmp.QAPIOrder
	Bus       int64             `json:"bus"`
	Slot      int64             `json:"slot"`
	Function  int64             `json:"function"`
	ClassInfo PciDeviceClass    `json:"class_info"`
	ID        PciDeviceId       `json:"id"`
	IRQ       *int64            `json:"irq,omitempty"`
	IRQPin    int64             `json:"irq_pin"`
	QdevID    string            `json:"qdev_id"`
	PCIBridge *PciBridgeInfo    `json:"pci_bridge,omitempty"`
	Regions   []PciMemoryRegion `json:"regions"`
}

// PciInfo is one bus of query-pci.
type PciInfo struct {
	qmp.QAPIOrder
	Bus     int64           `json:"bus"`
	Devices []PciDeviceInfo `json:"devices"`
}

// boardPCI are the identities of the board's own PCI functions, which are not
// user-creatable and so not in the catalogue's PCI table (QEMU 7.2, before firmware).
var boardPCI = map[string]catalog.PCIIdentity{
	"i440FX":    {Vendor: intel, Device: 0x1237, SubsystemVendor: redhat, Subsystem: 0x1100, Class: 0x0600, ClassDesc: "Host bridge"},
	"PIIX3":     {Vendor: intel, Device: 0x7000, SubsystemVendor: redhat, Subsystem: 0x1100, Class: 0x0601, ClassDesc: "ISA bridge"},
	"piix3-ide": {Vendor: intel, Device: 0x7010, SubsystemVendor: redhat, Subsystem: 0x1100, Class: 0x0101, ClassDesc: "IDE controller", BARs: []catalog.PCIBar{{N: 4, IO: true, Size: 16}}},
	"PIIX4_PM":  {Vendor: intel, Device: 0x7113, SubsystemVendor: redhat, Subsystem: 0x1100, Class: 0x0680, ClassDesc: "Bridge", IRQPin: 1},
	"mch":       {Vendor: intel, Device: 0x29c0, SubsystemVendor: redhat, Subsystem: 0x1100, Class: 0x0600, ClassDesc: "Host bridge"},
	"ICH9-LPC":  {Vendor: intel, Device: 0x2918, SubsystemVendor: redhat, Subsystem: 0x1100, Class: 0x0601, ClassDesc: "ISA bridge"},
	"ICH9-SMB":  {Vendor: intel, Device: 0x2930, SubsystemVendor: redhat, Subsystem: 0x1100, Class: 0x0c05, ClassDesc: "SMBus", IRQPin: 1, BARs: []catalog.PCIBar{{N: 4, IO: true, Size: 64}}},
}

const (
	intel  = 0x8086
	redhat = 0x1af4 // also the subsystem vendor QEMU gives its own devices
)

// pciIdentity is a function's identity: the board's, or the catalogue's for its type and
// its place (behind a PCIe port or not). ok is false for types QEMU could not show bare.
// A virtio device set to vectors=0 (f.NoMSIX) has no MSI-X table BAR (BAR 1).
func pciIdentity(f qdev.PCIFunction) (catalog.PCIIdentity, bool) {
	id, ok := boardPCI[f.Type]
	if !ok {
		id, ok = catalog.PCIModel(f.Type, f.Express)
	}
	if ok && f.NoMSIX {
		id.BARs = slices.DeleteFunc(slices.Clone(id.BARs), func(b catalog.PCIBar) bool { return b.N == 1 })
	}
	return id, ok
}

func pciDevices(b qdev.PCIBus) []PciDeviceInfo {
	devs := []PciDeviceInfo{}
	for _, f := range b.Functions {
		m, ok := pciIdentity(f)
		if !ok {
			continue
		}
		d := PciDeviceInfo{Bus: int64(b.Number), Slot: int64(f.Devfn >> 3), Function: int64(f.Devfn & 7),
			ClassInfo: PciDeviceClass{Desc: m.ClassDesc, Class: m.Class},
			ID:        PciDeviceId{Device: m.Device, Vendor: m.Vendor},
			IRQPin:    m.IRQPin, QdevID: f.ID, Regions: []PciMemoryRegion{}}
		if m.SubsystemVendor >= 0 {
			sv, sub := m.SubsystemVendor, m.Subsystem
			d.ID.SubsystemVendor, d.ID.Subsystem = &sv, &sub
		}
		if m.IRQPin != 0 {
			zero := int64(0) // no firmware: no interrupt line routed
			d.IRQ = &zero
		}
		for _, b := range m.BARs {
			r := PciMemoryRegion{Bar: b.N, Type: "memory", Address: -1, Size: b.Size}
			if b.IO {
				r.Type = "io"
			} else {
				pref, is64 := b.Prefetch, b.Mem64
				r.Prefetch, r.MemType64 = &pref, &is64
			}
			d.Regions = append(d.Regions, r)
		}
		if m.Bridge != nil {
			var br PciBridgeInfo
			if err := json.Unmarshal(m.Bridge, &br); err == nil {
				d.PCIBridge = &br
				if sec := f.Bridge; sec != nil && sec.Number != 0 {
					br.Bus.Secondary, br.Bus.Subordinate = int64(sec.Number), int64(sec.Number)
					br.Bus.Number = int64(b.Number)
					br.Devices = pciDevices(*sec)
				}
			}
		}
		devs = append(devs, d)
	}
	return devs
}

func registerPCI(r *qmp.Registry, d *Deps) {
	r.Register(qmp.Command{Name: "query-pci", Returns: []PciInfo{},
		Run: func(*qmp.Call) (any, error) {
			out := []PciInfo{}
			if d.Devices == nil {
				return out, nil
			}
			for _, b := range d.Devices.PCI() {
				out = append(out, PciInfo{Bus: int64(b.Number), Devices: pciDevices(b)})
			}
			return out, nil
		}})
}
