package qdev

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"tlcvm/machine/catalog"
)

// board creates the machine's own devices and buses, as pc_init1 and pc_q35_init do with
// -nodefaults (tlcvm's defaults beyond those are the command line's), in QEMU's creation
// order (info qtree prints each bus's devices newest first):
//
//	pc:  main-system-bus ─ kvmvapic, fw_cfg_io, i440FX-pcihost ─ pci.0 (hotplug: ACPI),
//	                       ioapic, hpet, ps2-kbd, ps2-mouse
//	       00.0 i440FX   01.0 PIIX3 ─ isa.0 ─ i8257 ×2, isa-i8259 ×2, mc146818rtc, isa-pit,
//	                                  isa-pcspk, isa-fdc ─ floppy-bus.0 (2 units), i8042,
//	                                  vmport, vmmouse, port92
//	       01.1 piix3-ide ─ ide.0, ide.1 (2 units)
//	       [01.2 piix3-usb-uhci ─ usb-bus.0 with -usb]
//	       [02.0 VGA with -vga std]
//	       01.3 PIIX4_PM ─ i2c ─ smbus-eeprom ×8   (not with acpi=off; nor pci.0's hotplug)
//	q35: main-system-bus ─ (as pc, with q35-pcihost ─ pcie.0 (no hotplug))
//	       00.0 mch   1f.0 ICH9-LPC ─ isa.0 (as pc; isa-fdc only with a floppy drive)
//	       1f.2 ich9-ahci ─ ide.0 … ide.5 (1 unit)
//	       1f.3 ICH9-SMB ─ i2c ─ smbus-eeprom ×8  [01.0 VGA with -vga std]
//
// Board devices carry the properties whose values differ between instances or machines
// (Props); the others print at their defaults (see qtree.go).
// The board's floppy drives (Config.Floppies) are on the floppy bus from the start.
func (t *Tree) board() {
	m := t.cfg.Machine
	q35 := strings.HasPrefix(m, "pc-q35-")
	if !q35 && !strings.HasPrefix(m, "pc-i440fx-") {
		return
	}
	t.boardDev(t.root, "kvmvapic", -1)
	t.boardDev(t.root, "fw_cfg_io", -1)
	var isa *Bus
	if q35 {
		host := t.boardDev(t.root, "q35-pcihost", -1)
		below, above := t.cfg.RAM, uint64(0)
		lowmem := uint64(0xb0000000)
		if t.cfg.RAM >= lowmem {
			lowmem = 0x80000000
		}
		if t.cfg.RAM >= lowmem {
			below, above = lowmem, t.cfg.RAM-lowmem
		}
		setNum(host, "below-4g-mem-size", below)
		setNum(host, "above-4g-mem-size", above)
		pcie := t.newBus(host, "pcie.0", "PCIE")
		pcie.Root = true
		t.boardDev(pcie, "mch", 0)
		isa = t.newBus(t.boardDev(pcie, "ICH9-LPC", 31<<3, "multifunction"), "", "ISA")
		t.ideDisks(t.boardDev(pcie, "ich9-ahci", 31<<3|2, "multifunction"))
		t.eeproms(t.newBus(t.boardDev(pcie, "ICH9-SMB", 31<<3|3, "multifunction"), "i2c", "i2c-bus"))
		if t.cfg.VGA {
			t.boardDev(pcie, "VGA", 1<<3)
		}
	} else {
		host := t.boardDev(t.root, "i440FX-pcihost", -1)
		pci := t.newBus(host, "", "PCI") // automatic: "pci.0" (q35 names its "pcie.0")
		pci.Root, pci.Hotplug = true, !t.cfg.NoACPI
		t.boardDev(pci, "i440FX", 0)
		isa = t.newBus(t.boardDev(pci, "PIIX3", 1<<3, "multifunction"), "", "ISA")
		if t.cfg.VGA {
			t.boardDev(pci, "VGA", 2<<3)
		}
		t.ideDisks(t.boardDev(pci, "piix3-ide", 1<<3|1))
		if t.cfg.USB {
			t.addChildren(t.boardDev(pci, "piix3-usb-uhci", 1<<3|2))
		}
		if !t.cfg.NoACPI {
			t.eeproms(t.newBus(t.boardDev(pci, "PIIX4_PM", 1<<3|3), "i2c", "i2c-bus"))
		}
	}
	t.boardDev(t.root, "ioapic", -1)
	if !t.cfg.NoHPET {
		hpet := t.boardDev(t.root, "hpet", -1)
		if q35 {
			setNum(hpet, "hpet-intcap", 0xff0104) // GSIs 2, 8, 16–23 (pc: 2 only)
		} else {
			setNum(hpet, "hpet-intcap", 4)
		}
	}
	for i, base := range [][3]uint64{{0, 0x80, 0}, {0xc0, 0x88, 1}} {
		dma := t.boardDev(isa, "i8257", -1)
		setNum(dma, "base", base[0])
		setNum(dma, "page-base", base[1])
		setNum(dma, "dshift", base[2])
		_ = i
	}
	for _, pic := range [][3]uint64{{0x20, 0x4d0, 0xf8}, {0xa0, 0x4d1, 0xde}} {
		d := t.boardDev(isa, "isa-i8259", -1)
		setNum(d, "iobase", pic[0])
		setNum(d, "elcr_addr", pic[1])
		setNum(d, "elcr_mask", pic[2])
		d.Props["master"] = json.RawMessage(strconv.FormatBool(pic[0] == 0x20))
	}
	for _, typ := range []string{"mc146818rtc", "isa-pit", "isa-pcspk"} {
		t.boardDev(isa, typ, -1)
	}
	// serial_hds_isa_init, parallel_hds_isa_init (the chardev of a serial port is its
	// "serial" child's, which info qtree does not print).
	for i := 0; i < t.cfg.Serials; i++ {
		s := t.boardDev(isa, "isa-serial", -1)
		setNum(s, "index", uint64(i))
		_ = isa.placeISA(s)
	}
	for i := 0; i < t.cfg.Parallels; i++ {
		p := t.boardDev(isa, "isa-parallel", -1)
		setNum(p, "index", uint64(i))
		p.Props["chardev"], _ = json.Marshal(fmt.Sprintf("parallel%d", i))
		_ = isa.placeISA(p)
	}
	if !q35 || len(t.cfg.Floppies) > 0 {
		t.fdc(isa)
	}
	for _, typ := range []string{"i8042", "vmport", "vmmouse", "port92"} {
		if !t.cfg.NoVMPort || (typ != "vmport" && typ != "vmmouse") {
			t.boardDev(isa, typ, -1)
		}
	}
	t.boardDev(t.root, "ps2-kbd", -1)
	t.boardDev(t.root, "ps2-mouse", -1)
}

// ideDisks gives the board's IDE controller its buses and the devices of the board's IDE
// drives (pci_ide_create_devs, in index order).
func (t *Tree) ideDisks(ctl *Device) {
	t.addChildren(ctl)
	for _, disk := range t.cfg.Disks {
		if disk.Type == "floppy" || disk.Bus >= len(ctl.Buses) {
			continue
		}
		d := t.boardDev(ctl.Buses[disk.Bus], disk.Type, -1)
		d.Unit = disk.Unit
		maps.Copy(d.Props, disk.Props)
		d.Props["drive"], _ = json.Marshal(disk.Drive)
	}
}

// eeproms are smbus_eeprom_init's eight SPD EEPROMs at 0x50–0x57.
func (t *Tree) eeproms(i2c *Bus) {
	for a := uint64(0x50); a < 0x58; a++ {
		setNum(t.boardDev(i2c, "smbus-eeprom", -1), "address", a)
	}
}

func setNum(d *Device, name string, v uint64) {
	d.Props[name] = json.RawMessage(strconv.FormatUint(v, 10))
}

// fdc is pc_superio_init's isa-fdc with its floppy bus and the board's floppy drives.
func (t *Tree) fdc(isa *Bus) {
	fb := t.newBus(t.boardDev(isa, "isa-fdc", -1), "", "floppy-bus")
	fb.Units = 2
	for _, u := range slices.Sorted(slices.Values(t.cfg.Floppies)) { // fdctrl_init_drives: unit order
		f := t.boardDev(fb, "floppy", -1)
		f.Unit = u
		for _, disk := range t.cfg.Disks {
			if disk.Type == "floppy" && disk.Unit == u {
				f.Props["drive"], _ = json.Marshal(disk.Drive)
			}
		}
	}
}

// boardDev plugs a board device at devfn (-1: not PCI) with the given bool properties on.
func (t *Tree) boardDev(b *Bus, typ string, devfn int, on ...string) *Device {
	d := &Device{Type: typ, Devfn: devfn, Unit: -1, Board: true, builtin: true, Bus: b, Props: map[string]json.RawMessage{}}
	for _, p := range on {
		d.Props[p] = json.RawMessage("true")
	}
	b.devs = append(b.devs, d)
	return d
}

// newBus adds a bus to d. name "" makes QEMU's automatic name (qbus_init): the parent's id
// and the bus's index among its buses, else the bus type in lower case and a per-type count.
func (t *Tree) newBus(d *Device, name, typ string) *Bus {
	if name == "" {
		if d.ID != "" {
			name = fmt.Sprintf("%s.%d", d.ID, len(d.Buses))
		} else {
			name = fmt.Sprintf("%s.%d", strings.ToLower(typ), t.auto[typ])
			t.auto[typ]++
		}
	}
	b := &Bus{Name: name, Type: typ, Parent: d}
	if typ == "IDE" {
		b.serial = t.ideSerial
		t.ideSerial += 2
	}
	d.Buses = append(d.Buses, b)
	return b
}

// addChildren gives a device the buses it provides and, for a virtio proxy, its back-end.
func (t *Tree) addChildren(d *Device) {
	switch typ := d.Type; {
	case typ == "ich9-ahci":
		for i := 0; i < 6; i++ {
			t.newBus(d, "", "IDE").Units = 1
		}
	case typ == "piix3-ide" || typ == "piix4-ide":
		for i := 0; i < 2; i++ {
			t.newBus(d, "", "IDE").Units = 2
		}
	case pcieDownstream[typ]:
		b := t.newBus(d, d.ID, "PCIE")
		b.Hotplug = propBool(d, "hotplug", true)
	case typ == "x3130-upstream":
		t.newBus(d, d.ID, "PCIE")
	case typ == "pci-bridge" || typ == "pci-bridge-seat" || typ == "pcie-pci-bridge":
		b := t.newBus(d, d.ID, "PCI")
		// A bridge present at boot is in the ACPI tables (hotplug by ACPI, any slot); one
		// hotplugged later has only its standard hotplug controller, which has no slot 0.
		b.Hotplug, b.SHPC = propBool(d, "shpc", true), d.Hotplugged
	case usbHosts[typ]:
		b := t.newBus(d, "", "usb-bus")
		b.Hotplug = true
		t.usbPorts(d, b)
	case scsiHosts[typ]:
		t.newBus(d, "", "SCSI").Hotplug = true
	case typ == "intel-hda" || typ == "ich9-intel-hda":
		t.newBus(d, "", "HDA") // hda_codec_bus_init: codecs plug at start only
	}
	be := backendType(d.Type)
	if be == "" {
		return
	}
	vbus := t.newBus(d, "virtio-bus", "virtio-pci-bus")
	b := &Device{Type: be, Path: d.Path + "/virtio-backend", Devfn: -1, Unit: -1, Bus: vbus,
		Props: map[string]json.RawMessage{}, Hotplugged: d.Hotplugged}
	vbus.devs = append(vbus.devs, b)
	d.Backend = b
	named := "" // virtio-pci names the back-end's bus after the proxy: vdev->bus_name "ID.0"
	if d.ID != "" {
		named = d.ID + ".0"
	}
	switch be {
	case "virtio-serial-device":
		t.newBus(b, named, "virtio-serial-bus").Hotplug = true
	case "virtio-scsi-device":
		t.newBus(b, named, "SCSI").Hotplug = true
	}
}

var (
	pcieDownstream = map[string]bool{"pcie-root-port": true, "ioh3420": true, "xio3130-downstream": true, "cxl-rp": true, "cxl-downstream": true}
	usbHosts       = map[string]bool{"qemu-xhci": true, "nec-usb-xhci": true, "piix3-usb-uhci": true, "piix4-usb-uhci": true, "usb-ehci": true, "ich9-usb-ehci1": true, "ich9-usb-ehci2": true, "ich9-usb-uhci1": true, "ich9-usb-uhci2": true, "ich9-usb-uhci3": true, "ich9-usb-uhci4": true, "ich9-usb-uhci5": true, "ich9-usb-uhci6": true, "pci-ohci": true, "vt82c686b-usb-uhci": true}
	scsiHosts      = map[string]bool{"lsi53c895a": true, "lsi53c810": true, "megasas": true, "megasas-gen2": true, "mptsas1068": true, "am53c974": true, "dc390": true, "pvscsi": true}
)

func propBool(d *Device, name string, def bool) bool {
	if v, ok := d.Props[name]; ok {
		return string(v) == "true"
	}
	return def
}

var backendCache sync.Map // proxy type → back-end type ("" for none)

// backendType is the type of a virtio proxy's "virtio-backend" child (virtio-net-pci →
// virtio-net-device), from the catalogue's property list; "" for other types.
func backendType(typ string) string {
	if v, ok := backendCache.Load(typ); ok {
		return v.(string)
	}
	be := ""
	if props, err := catalog.ObjectProperties(typ); err == nil {
		for _, p := range props {
			if p.Name == "virtio-backend" {
				be = strings.TrimSuffix(strings.TrimPrefix(p.Type, "child<"), ">")
			}
		}
	}
	backendCache.Store(typ, be)
	return be
}
