package qomtree

import (
	"fmt"
	"strconv"
	"strings"
)

// What QEMU 7.2's pc and q35 boards make beside the memory regions package memtree
// models: objects at fixed paths under /machine, and the children every object of a type
// has (IRQ pins, buses, child objects, and the regions no address space maps).

type object struct{ path, typ string }

var pcObjects = []object{
	{"fw_cfg", "fw_cfg_io"},
	{"i440fx", "i440FX-pcihost"},
	{"i440fx/ioapic", "ioapic"},
	{"i440fx/pci.0", "PCI"},
	{"peripheral", "container"},
	{"peripheral-anon", "container"},
	{"unattached/sysbus", "System"},
}

var q35Objects = []object{
	{"fw_cfg", "fw_cfg_io"},
	{"q35", "q35-pcihost"},
	{"q35/ioapic", "ioapic"},
	{"q35/mch", "mch"},
	{"q35/pcie.0", "PCIE"},
	{"peripheral", "container"},
	{"peripheral-anon", "container"},
	{"unattached/sysbus", "System"},
}

// boardPCI are the board's own PCI functions (the others without owner are -net nic's).
var boardPCI = map[string]bool{"i440FX": true, "PIIX3": true, "piix3-ide": true, "PIIX4_PM": true,
	"mch": true, "ICH9-LPC": true, "ich9-ahci": true, "ICH9-SMB": true, "VGA": true, "piix3-usb-uhci": true}

type kid struct{ name, typ string }

// series is n children "name[0]".."name[n-1]" of a type.
func series(name, typ string, n int) []kid {
	var k []kid
	for i := 0; i < n; i++ {
		k = append(k, kid{fmt.Sprintf("%s[%d]", name, i), typ})
	}
	return k
}

// typeChildren are the children an object of type typ has beside the memory regions that
// memtree models; modern: a virtio function behind a PCIe port; prop: the properties set
// on its device.
func typeChildren(typ string, modern bool, prop func(name string) (string, bool)) []kid {
	gpio := func(n int) []kid { return series("unnamed-gpio-in", "irq", n) }
	switch typ {
	case "fw_cfg_io":
		// The ACPI blobs' ROMs (rom_add_blob), mapped by no address space.
		return []kid{{`\x2from@etc\x2facpi\x2frsdp[0]`, "memory-region"},
			{`\x2from@etc\x2facpi\x2ftables[0]`, "memory-region"},
			{`\x2from@etc\x2ftable-loader[0]`, "memory-region"}}
	case "apic":
		return regions("apic-msi", 1) // each APIC's; only the first CPU's is mapped
	case "ioapic":
		return gpio(24)
	case "isa-i8259":
		return gpio(8)
	case "hpet":
		return gpio(2)
	case "isa-pit":
		return gpio(1)
	case "isa-fdc":
		return []kid{{"floppy-bus.0", "floppy-bus"}}
	case "i8042":
		return []kid{{"ps2-kbd-input-irq[0]", "irq"}, {"ps2-mouse-input-irq[0]", "irq"},
			{"ps2kbd", "ps2-kbd"}, {"ps2mouse", "ps2-mouse"}}
	case "PIIX3":
		return []kid{{"isa.0", "ISA"}}
	case "piix3-ide":
		// The bus-master registers: BAR 4, which no firmware has placed yet.
		return append(regions("bmdma", 2, "piix-bmdma-container", 1, "piix-bmdma", 2),
			kid{"ide.0", "IDE"}, kid{"ide.1", "IDE"})
	case "PIIX4_PM":
		return []kid{{"i2c", "i2c-bus"}}
	case "q35-pcihost":
		return regions("pcie-mmcfg-mmio", 1) // PCIEXBAR is disabled at reset
	case "ICH9-LPC":
		return append(regions("lpc-rcrb-mmio", 1), kid{"isa.0", "ISA"}) // RCBA too
	case "ich9-ahci":
		return regions("ahci-idp", 1, "ahci", 1) // BARs 4 and 5; its buses: the device tree's or addBoard's
	case "ICH9-SMB":
		return append(regions("pm-smbus", 1), kid{"i2c", "i2c-bus"}) // BAR 4
	case "isa-serial":
		return []kid{{"serial", "serial"}}
	case "pci-bridge":
		return append(bridgeVGA(), regions("shpc-bar", 1, "shpc-mmio", 1)...)
	case "pcie-root-port":
		return append(bridgeVGA(), regions("msix-pba", 1, "msix-table", 1, "pcie-root-port-msix", 1)...)
	case "bochs-display":
		return regions("bochs dispi interface", 1, "bochs-display-mmio", 1, "bochs-display-vram", 1,
			"bochs-display.rom", 1, "edid", 1, "qemu extended regs", 1)
	case "e1000":
		return regions("e1000-io", 1, "e1000-mmio", 1, "e1000.rom", 1)
	case "e1000e":
		return regions("e1000e-flash", 1, "e1000e-io", 1, "e1000e-mmio", 1, "e1000e-msix", 1, "e1000e.rom", 1,
			"msix-pba", 1, "msix-table", 1)
	case "piix3-usb-uhci":
		return regions("uhci", 1)
	case "VGA":
		return regions("bochs dispi interface", 1, "edid", 1, "qemu extended regs", 1, "vga ioports remapped", 1,
			"vga.mmio", 1, "vga.rom", 1, "vga.vram", 1)
	case "cirrus-vga":
		return regions("cirrus-bitblt-mmio", 1, "cirrus-linear-io", 1, "cirrus-mmio", 1, "cirrus-pci-bar0", 1,
			"cirrus_vga.rom", 1)
	case "i6300esb":
		return regions("i6300esb", 1)
	case "pvpanic":
		return regions("pvpanic", 1)
	case "ivshmem-plain":
		return regions("ivshmem-mmio", 1)
	case "qxl-vga":
		return regions("qxl-ioports", 1, "qxl.rom", 1, "qxl.vram32", 1, "qxl.vram", 1, "qxl.vrom", 1, "vga.vram", 1)
	case "intel-hda", "ich9-intel-hda":
		return regions("intel-hda-alias", 1, "intel-hda-container", 1, "intel-hda", 1) // its bus: the device tree's
	case "usb-storage":
		// Its SCSI bus and the disk usb_msd_storage_realize puts on it.
		return []kid{{"scsi.0", "SCSI"}, {"scsi.0/legacy[0]", "scsi-hd"}}
	case "ich9-usb-ehci1", "usb-ehci":
		return regions("capabilities", 1, "ehci", 1, "operational", 1, "ports", 1)
	case "rtl8139":
		return regions("rtl8139-mem", 1, "rtl8139.rom", 1, "rtl8139", 1)
	case "qemu-xhci", "nec-usb-xhci":
		return append(regions("msix-pba", 1, "msix-table", 1), kid{"xhci-core", "base-xhci"})
	case "base-xhci":
		k := regions("capabilities", 1, "doorbell", 1, "operational", 1, "runtime", 1, "xhci", 1)
		for _, usb := range []string{"usb2", "usb3"} {
			ports := 4 // p2, p3: usb_xhci_realize clamps them to 1..15
			if v, ok := prop(map[string]string{"usb2": "p2", "usb3": "p3"}[usb]); ok {
				if n, err := strconv.Atoi(strings.Trim(v, `"`)); err == nil {
					ports = min(max(n, 1), 15)
				}
			}
			for i := 1; i <= ports; i++ {
				k = append(k, kid{fmt.Sprintf("%s port #%d[0]", usb, i), "memory-region"})
			}
		}
		return k
	case "virtio-rng-device":
		if _, ok := prop("rng"); ok {
			return nil // the back-end is the -object's
		}
		return []kid{{"default-backend", "rng-builtin"}}
	case "container":
		return nil
	}
	if v, ok := virtioPCI[typ]; ok {
		return virtioChildren(typ, v, modern)
	}
	if strings.HasSuffix(typ, "-x86_64-cpu") {
		return []kid{{"lapic", "apic"}}
	}
	return nil
}

// regions are memory-region children: name, count pairs.
func regions(spec ...any) []kid {
	var k []kid
	for i := 0; i+1 < len(spec); i += 2 {
		k = append(k, series(spec[i].(string), "memory-region", spec[i+1].(int))...)
	}
	return k
}

// virtioFunc is what a virtio PCI proxy's regions depend on.
type virtioFunc struct {
	dev        string // the virtio device's name, in its regions' names
	msix       bool   // has MSI-X vectors (the balloon has none)
	rom        bool   // loads an option ROM (the NIC's iPXE, the VGA BIOS)
	modernOnly bool   // a virtio 1.0 device: no legacy I/O BAR anywhere
	vga        bool   // virtio-vga's VGA registers
	// backend is the virtio device's type: its proxy's virtio-backend child, on the
	// proxy's virtio-bus (the device tree lists them for -device proxies; a -net nic NIC's
	// come from here).
	backend string
}

// virtioPCI are the virtio PCI proxies whose regions are known.
var virtioPCI = map[string]virtioFunc{
	"virtio-net-pci":      {dev: "virtio-net", msix: true, rom: true, backend: "virtio-net-device"},
	"virtio-blk-pci":      {dev: "virtio-blk", msix: true},
	"virtio-rng-pci":      {dev: "virtio-rng", msix: true},
	"virtio-scsi-pci":     {dev: "virtio-scsi", msix: true},
	"virtio-serial-pci":   {dev: "virtio-serial", msix: true},
	"virtio-balloon-pci":  {dev: "virtio-balloon"},
	"virtio-keyboard-pci": {dev: "virtio-input", msix: true, modernOnly: true},
	"virtio-mouse-pci":    {dev: "virtio-input", msix: true, modernOnly: true},
	"virtio-tablet-pci":   {dev: "virtio-input", msix: true, modernOnly: true},
	"virtio-vga":          {dev: "virtio-gpu", msix: true, rom: true, modernOnly: true, vga: true},
	"virtio-gpu-pci":      {dev: "virtio-gpu", msix: true, modernOnly: true},
}

// virtioChildren are virtio_pci_realize's regions: the modern BAR's container and
// capabilities, the legacy I/O BAR (not behind a PCIe port), the MSI-X table.
func virtioChildren(typ string, v virtioFunc, modern bool) []kid {
	bars := 2
	if modern || v.modernOnly {
		bars = 1
	}
	k := regions("virtio-pci", bars)
	for _, r := range []string{"common", "device", "isr", "notify-pio", "notify"} {
		k = append(k, kid{fmt.Sprintf("virtio-pci-%s-%s[0]", r, v.dev), "memory-region"})
	}
	if v.msix {
		k = append(k, regions("msix-pba", 1, "msix-table", 1, typ+"-msix", 1)...)
	}
	if v.rom {
		k = append(k, kid{typ + ".rom[0]", "memory-region"})
	}
	if v.backend != "" {
		k = append(k, kid{"virtio-backend", v.backend}, kid{"virtio-bus", "virtio-pci-bus"})
	}
	if v.vga {
		k = append(k, regions("bochs dispi interface", 1, "qemu extended regs", 1, "vga ioports remapped", 1,
			"vga.vram", 1)...)
	}
	return k
}

// bridgeVGA are a PCI bridge's VGA windows (pci_bridge_initfn), closed at reset.
func bridgeVGA() []kid {
	return regions("pci_bridge_vga_io_hi", 1, "pci_bridge_vga_io_lo", 1, "pci_bridge_vga_mem", 1)
}
