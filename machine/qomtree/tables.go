package qomtree

import (
	"fmt"
	"strings"

	"tlcvm/machine/memtree"
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
	"mch": true, "ICH9-LPC": true, "ich9-ahci": true, "ICH9-SMB": true, "VGA": true}

type kid struct{ name, typ string }

// series is n children "name[0]".."name[n-1]" of a type.
func series(name, typ string, n int) []kid {
	var k []kid
	for i := 0; i < n; i++ {
		k = append(k, kid{fmt.Sprintf("%s[%d]", name, i), typ})
	}
	return k
}

// typeChildren are the children an object of type typ has on board b beside its memory
// regions that memtree models.
func typeChildren(typ string, b memtree.Board) []kid {
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
		k := regions("ahci-idp", 1, "ahci", 1) // BARs 4 and 5
		for i := 0; i < 6; i++ {
			k = append(k, kid{fmt.Sprintf("ide.%d", i), "IDE"})
		}
		return k
	case "ICH9-SMB":
		return append(regions("pm-smbus", 1), kid{"i2c", "i2c-bus"}) // BAR 4
	case "container":
		return nil
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
