package cmds

import (
	"fmt"
	"strconv"
	"strings"

	"tlcvm/qmp"
)

// PCI as query-pci and HMP `info pci` show it. tlcvm runs no firmware, so no BAR is ever
// assigned and no interrupt line routed: QEMU shows the same before its BIOS has run
// (address -1, irq 0).

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

// PciDeviceId holds the vendor and device ids.
type PciDeviceId struct {
	qmp.QAPIOrder
	Device          int64 `json:"device"`
	Vendor          int64 `json:"vendor"`
	Subsystem       int64 `json:"subsystem"`
	SubsystemVendor int64 `json:"subsystem-vendor"`
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
	Regions   []PciMemoryRegion `json:"regions"`
}

// PciInfo is one bus of query-pci.
type PciInfo struct {
	qmp.QAPIOrder
	Bus     int64           `json:"bus"`
	Devices []PciDeviceInfo `json:"devices"`
}

type bar struct {
	n          int64
	io         bool
	size       int64
	pref, is64 bool
}

// pciModel is the config-space identity of a device type.
type pciModel struct {
	vendor, device, subVendor, sub int64
	class                          int64
	pin                            int64
	bars                           []bar
}

const (
	intel  = 0x8086
	redhat = 0x1af4 // also the subsystem vendor QEMU gives its own devices
	qemuID = 0x1b36
)

// pciModels are the PCI devices tlcvm places on its buses, with QEMU 7.2's ids and BARs.
var pciModels = map[string]pciModel{
	"i440FX-pcihost":     {intel, 0x1237, redhat, 0x1100, 0x0600, 0, nil},
	"PIIX3":              {intel, 0x7000, redhat, 0x1100, 0x0601, 0, nil},
	"piix3-ide":          {intel, 0x7010, redhat, 0x1100, 0x0101, 0, []bar{{4, true, 16, false, false}}},
	"PIIX4_PM":           {intel, 0x7113, redhat, 0x1100, 0x0680, 1, nil},
	"mch":                {intel, 0x29c0, redhat, 0x1100, 0x0600, 0, nil},
	"ICH9-LPC":           {intel, 0x2918, redhat, 0x1100, 0x0601, 0, nil},
	"ich9-ahci":          {intel, 0x2922, redhat, 0x1100, 0x0106, 1, []bar{{4, true, 32, false, false}, {5, false, 4096, false, false}}},
	"ICH9-SMB":           {intel, 0x2930, redhat, 0x1100, 0x0c05, 1, []bar{{4, true, 64, false, false}}},
	"piix3-usb-uhci":     {intel, 0x7020, redhat, 0x1100, 0x0c03, 4, []bar{{4, true, 32, false, false}}},
	"qemu-xhci":          {qemuID, 0x000d, redhat, 0x1100, 0x0c03, 1, []bar{{0, false, 16384, false, true}}},
	"VGA":                {0x1234, 0x1111, redhat, 0x1100, 0x0300, 0, []bar{{0, false, 16 << 20, true, false}, {2, false, 4096, false, false}}},
	"virtio-blk-pci":     {redhat, 0x1001, redhat, 0x0002, 0x0100, 1, virtioBars(128)},
	"virtio-net-pci":     {redhat, 0x1000, redhat, 0x0001, 0x0200, 1, append(virtioBars(32), bar{6, false, 262144, false, false})},
	"virtio-scsi-pci":    {redhat, 0x1004, redhat, 0x0008, 0x0100, 1, virtioBars(64)},
	"virtio-balloon-pci": {redhat, 0x1002, redhat, 0x0005, 0x00ff, 1, virtioBars(32)},
	"virtio-serial-pci":  {redhat, 0x1003, redhat, 0x0003, 0x0780, 1, virtioBars(64)},
	"virtio-rng-pci":     {redhat, 0x1005, redhat, 0x0004, 0x00ff, 1, virtioBars(32)},
}

func virtioBars(io int64) []bar {
	return []bar{{0, true, io, false, false}, {1, false, 4096, false, false}, {4, false, 16384, true, true}}
}

// pciClassDesc is QEMU's pci_class_descriptions for the classes above.
var pciClassDesc = map[int64]string{
	0x0100: "SCSI controller", 0x0101: "IDE controller", 0x0106: "SATA controller",
	0x0200: "Ethernet controller", 0x0300: "VGA controller", 0x0600: "Host bridge",
	0x0601: "ISA bridge", 0x0604: "PCI bridge", 0x0680: "Bridge", 0x0c03: "USB controller",
	0x0c05: "SMBus",
}

// PCIFunction places one device: driver, qdev id and slot.function.
type PCIFunction struct {
	Driver string
	ID     string
	Slot   int64
	Func   int64
}

// BoardPCI returns the functions a board places itself on bus 0 (i440FX or Q35).
func BoardPCI(q35 bool) []PCIFunction {
	if q35 {
		return []PCIFunction{{"mch", "", 0, 0}, {"ICH9-LPC", "", 31, 0}, {"ich9-ahci", "", 31, 2}, {"ICH9-SMB", "", 31, 3}}
	}
	return []PCIFunction{{"i440FX-pcihost", "", 0, 0}, {"PIIX3", "", 1, 0}, {"piix3-ide", "", 1, 1}, {"PIIX4_PM", "", 1, 3}}
}

// PlacePCI adds -device PCI functions to the board's: addr= ("0x2", "0x1.0x2", "3") when
// given, else the lowest free slot, function 0. Devices tlcvm has no config-space model for
// are left out.
func PlacePCI(board []PCIFunction, drivers, ids, addrs []string) ([]PCIFunction, error) {
	used := map[int64]bool{}
	for _, f := range board {
		used[f.Slot] = true
	}
	out := append([]PCIFunction(nil), board...)
	for i, drv := range drivers {
		if _, ok := pciModels[drv]; !ok {
			continue
		}
		f := PCIFunction{Driver: drv, ID: ids[i]}
		if a := addrs[i]; a != "" {
			slot, fn, _ := strings.Cut(a, ".")
			s, err := strconv.ParseInt(slot, 0, 64)
			if err != nil || s < 0 || s > 31 {
				return nil, fmt.Errorf("Property '%s.addr' doesn't take value '%s'", drv, a)
			}
			f.Slot = s
			if fn != "" {
				if f.Func, err = strconv.ParseInt(fn, 0, 64); err != nil || f.Func < 0 || f.Func > 7 {
					return nil, fmt.Errorf("Property '%s.addr' doesn't take value '%s'", drv, a)
				}
			}
		} else {
			for f.Slot = 0; used[f.Slot] && f.Slot < 32; f.Slot++ {
			}
		}
		used[f.Slot] = true
		out = append(out, f)
	}
	return out, nil
}

func pciInfo(fns []PCIFunction) []PciInfo {
	devs := []PciDeviceInfo{}
	for slot := int64(0); slot < 32; slot++ {
		for fn := int64(0); fn < 8; fn++ {
			for _, f := range fns {
				if f.Slot != slot || f.Func != fn {
					continue
				}
				m := pciModels[f.Driver]
				d := PciDeviceInfo{Slot: slot, Function: fn,
					ClassInfo: PciDeviceClass{Desc: pciClassDesc[m.class], Class: m.class},
					ID:        PciDeviceId{Device: m.device, Vendor: m.vendor, Subsystem: m.sub, SubsystemVendor: m.subVendor},
					IRQPin:    m.pin, QdevID: f.ID, Regions: []PciMemoryRegion{}}
				if m.pin != 0 {
					zero := int64(0)
					d.IRQ = &zero
				}
				for _, b := range m.bars {
					r := PciMemoryRegion{Bar: b.n, Type: "memory", Address: -1, Size: b.size}
					if b.io {
						r.Type = "io"
					} else {
						pref, is64 := b.pref, b.is64
						r.Prefetch, r.MemType64 = &pref, &is64
					}
					d.Regions = append(d.Regions, r)
				}
				devs = append(devs, d)
			}
		}
	}
	return []PciInfo{{Bus: 0, Devices: devs}}
}

func registerPCI(r *qmp.Registry, d *Deps) {
	r.Register(qmp.Command{Name: "query-pci", Returns: []PciInfo{},
		Run: func(*qmp.Call) (any, error) {
			if d.PCI == nil {
				return []PciInfo{}, nil
			}
			return pciInfo(d.PCI), nil
		}})
}
