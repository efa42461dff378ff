package memtree

import "fmt"

// Board is what decides a pc or q35 machine's memory regions as QEMU 7.2 builds them for
// a stopped machine (-S: firmware has programmed no PCI BAR, bridge window, PAM or SMRAM
// register yet, so those are at their reset values).
type Board struct {
	Q35  bool
	None bool // the machine none: its RAM at 0 ("ram"), nothing else
	// Below and Above are the RAM below 4 GiB and above it (pc_memory_init's split).
	Below, Above uint64
	// DeviceMemBase and DeviceMemSize place the device-memory region (size 0: none).
	DeviceMemBase, DeviceMemSize uint64
	DIMMs                        []DIMM
	CPUs                         []int // the present CPUs' indexes, in creation order
	// PCI are the PCI functions in realize order (board ones first).
	PCI []PCIDevice
	// Serials and Parallels count the ISA serial and parallel ports (-serial, -parallel,
	// isa-serial, isa-parallel).
	Serials, Parallels int
	// VGA is the display with legacy VGA registers: "std" (VGA, virtio-vga, qxl-vga), "cirrus"
	// (cirrus-vga), "" for none (or one without them: bochs-display, virtio-gpu-pci).
	VGA        string
	NoHPET     bool // -no-hpet, -machine hpet=off
	NoVMPort   bool // -machine vmport=off
	FDC        bool // the ISA floppy controller (pc always; q35 with a floppy drive)
	MemHotplug bool // -m slots= above 0: the ACPI memory hotplug registers
}

// DIMM is a plugged memory device: its memory back-end's id names its RAM region.
type DIMM struct {
	Name       string
	Addr, Size uint64
}

// PCIDevice is a PCI function: its type names its bus master address space; a bridge
// has a secondary bus (Parent: the index in Board.PCI of the bridge it sits behind, -1:
// the root bus).
type PCIDevice struct {
	Type   string
	Bridge bool
	Parent int
}

// Legacy port ranges: name, base, length.
type port struct {
	name       string
	base, size uint64
}

var (
	serialBases   = []uint64{0x3f8, 0x2f8, 0x3e8, 0x2e8}
	parallelBases = []uint64{0x378, 0x278, 0x3bc}
)

// Build lays out b's regions and address spaces in QEMU 7.2's creation order.
func Build(b Board) *Tree {
	system := NewFull("system")
	io := New("io", IO, 0x10000)
	t := &Tree{Spaces: []AddressSpace{{"memory", system}, {"I/O", io}}}
	if b.None {
		if b.Below > 0 {
			system.Add(0, New("ram", RAM, b.Below), 0)
		}
		return t
	}
	for _, c := range b.CPUs {
		t.Spaces = append(t.Spaces, AddressSpace{fmt.Sprintf("cpu-memory-%d", c), system})
	}

	// pc_init1 / pc_q35_init: the PCI memory space under RAM, pc_memory_init.
	pci := NewFull("pci")
	system.Add(0, pci, -1)
	ram := New("pc.ram", RAM, b.Below+b.Above)
	system.Add(0, NewAlias("ram-below-4g", ram, 0, b.Below), 0)
	if b.Above > 0 {
		system.Add(1<<32, NewAlias("ram-above-4g", ram, b.Below, b.Above), 0)
	}
	if b.DeviceMemSize > 0 {
		dm := system.Add(b.DeviceMemBase, New("device-memory", Container, b.DeviceMemSize), 0)
		for _, d := range b.DIMMs {
			dm.Add(d.Addr-b.DeviceMemBase, New(d.Name, RAM, d.Size), 0)
		}
	}
	// pc_system_firmware_init (bios-256k.bin) and the option ROM area.
	bios := pci.Add(0x100000000-0x40000, New("pc.bios", ROM, 0x40000), 0)
	pci.Add(0xe0000, NewAlias("isa-bios", bios, 0x20000, 0x20000), 1)
	pci.Add(0xc0000, New("pc.rom", ROM, 0x20000), 1)
	ports(io, port{"fwcfg", 0x510, 2}, port{"fwcfg.dma", 0x514, 8})

	// The host bridge: its configuration ports, SMRAM and PAM.
	ports(io, port{"pci-conf-idx", 0xcf8, 4}, port{"pci-conf-data", 0xcfc, 4})
	smram := New("smram", Container, 1<<32)
	if b.Q35 {
		mchSMRAM(system, pci, ram, smram, b.Below)
	} else {
		system.Add(0xa0000, NewAlias("smram-region", pci, 0xa0000, 0x20000), 1)
		smram.Disable()
		smram.Add(0xa0000, NewAlias("smram-low", ram, 0xa0000, 0x20000), 0)
	}
	pam(system, pci, ram)

	// The board's other devices (pc_basic_device_init, the south bridge's functions).
	reset := "piix3-reset-control"
	if b.Q35 {
		reset = "lpc-reset-control"
	}
	io.Add(0xcf9, New(reset, IO, 1), 1)
	system.Add(0xfec00000, New("ioapic", IO, 0x1000), 0)
	if !b.NoHPET {
		system.Add(0xfed00000, New("hpet", IO, 0x400), 0)
	}
	system.Add(0xfee00000, New("apic-msi", IO, 0x100000), 4096)
	ports(io, port{"kvmvapic", 0x7e, 2}, port{"ioport80", 0x80, 1}, port{"ioportF0", 0xf0, 1},
		port{"dma-chan", 0, 8}, port{"dma-cont", 8, 8}, port{"dma-page", 0x81, 3}, port{"dma-page", 0x87, 1},
		port{"dma-chan", 0xc0, 16}, port{"dma-cont", 0xd0, 16}, port{"dma-page", 0x89, 3}, port{"dma-page", 0x8f, 1},
		port{"pic", 0x20, 2}, port{"elcr", 0x4d0, 1}, port{"pic", 0xa0, 2}, port{"elcr", 0x4d1, 1})
	rtc := io.Add(0x70, New("rtc", IO, 2), 0)
	rtc.Add(0, New("rtc-index", IO, 1), 0)
	ports(io, port{"pit", 0x40, 4}, port{"pcspk", 0x61, 1})
	if b.FDC {
		ports(io, port{"fdc", 0x3f1, 5}, port{"fdc", 0x3f7, 1})
	}
	ports(io, port{"i8042-data", 0x60, 1}, port{"i8042-cmd", 0x64, 1})
	if !b.NoVMPort {
		ports(io, port{"vmport", 0x5658, 1})
	}
	ports(io, port{"port92", 0x92, 1})
	for i := 0; i < b.Serials && i < len(serialBases); i++ {
		ports(io, port{"serial", serialBases[i], 8})
	}
	for i := 0; i < b.Parallels && i < len(parallelBases); i++ {
		ports(io, port{"parallel", parallelBases[i], 8})
	}
	switch b.VGA {
	case "std":
		pci.Add(0xa0000, New("vga-lowmem", IO, 0x20000), 1)
		ports(io, port{"vga", 0x3c0, 16}, port{"vga", 0x3b4, 2}, port{"vga", 0x3ba, 1},
			port{"vga", 0x3d4, 2}, port{"vga", 0x3da, 1}, port{"vbe", 0x1ce, 4})
	case "cirrus":
		// cirrus_init_common: the legacy window over two (disabled) bank aliases of its
		// 4 MiB video RAM.
		vram := New("vga.vram", RAM, 4<<20)
		low := pci.Add(0xa0000, New("cirrus-lowmem-container", Container, 0x20000), 1)
		low.Add(0, New("cirrus-low-memory", IO, 0x20000), 0)
		low.Add(0, NewAlias("vga.bank0", vram, 0, 0x8000).Disable(), 1)
		low.Add(0x8000, NewAlias("vga.bank1", vram, 0, 0x8000).Disable(), 1)
		ports(io, port{"cirrus-io", 0x3b0, 0x30})
	}
	if !b.Q35 {
		ports(io, port{"ide", 0x1f0, 8}, port{"ide", 0x3f6, 1}, port{"ide", 0x170, 8}, port{"ide", 0x376, 1})
	}
	acpi(io, b)

	// PCI functions: a bus master address space each, a bridge's windows.
	type bridge struct{ io, mem *Region }
	bridges := map[int]bridge{}
	for i, d := range b.PCI {
		bm := NewFull("bus master container")
		bm.Add(0, NewFullAlias("bus master", system).Disable(), 0)
		t.Spaces = append(t.Spaces, AddressSpace{d.Type, bm})
		if !d.Bridge {
			continue
		}
		pio, pmem := io, pci
		if p, ok := bridges[d.Parent]; ok {
			pio, pmem = p.io, p.mem
		}
		br := bridge{io: New("pci_bridge_io", Container, 1<<32), mem: NewFull("pci_bridge_pci")}
		bridges[i] = br
		pmem.Add(0, NewAlias("pci_bridge_pref_mem", br.mem, 0, 0), 1)
		pmem.Add(0, NewAlias("pci_bridge_mem", br.mem, 0, 0), 1)
		pio.Add(0, NewAlias("pci_bridge_io", br.io, 0, 0), 1)
	}

	// x86_cpu_machine_done: each CPU's SMM view, SMRAM over all of memory.
	for _, c := range b.CPUs {
		root := NewFull("memory")
		root.Add(0, NewFullAlias("memory", system), 0)
		root.Add(0, NewAlias("smram", smram, 0, 1<<32), 1)
		t.Spaces = append(t.Spaces, AddressSpace{fmt.Sprintf("cpu-smm-%d", c), root})
	}
	return t
}

func ports(io *Region, ps ...port) {
	for _, p := range ps {
		io.Add(p.base, New(p.name, IO, p.size), 0)
	}
}

// pam is init_pam for the 13 PAM segments: four aliases each (PCI, read-only RAM, RAM
// writes to PCI, RAM), the PCI one enabled at reset.
func pam(system, pci, ram *Region) {
	segs := [][2]uint64{{0xf0000, 0x10000}}
	for i := uint64(0); i < 12; i++ {
		segs = append(segs, [2]uint64{0xc0000 + i*0x4000, 0x4000})
	}
	for _, s := range segs {
		system.Add(s[0], NewAlias("pam-pci", pci, s[0], s[1]), 1)
		system.Add(s[0], NewAlias("pam-rom", ram, s[0], s[1]).Disable(), 1)
		system.Add(s[0], NewAlias("pam-pci", ram, s[0], s[1]).Disable(), 1)
		system.Add(s[0], NewAlias("pam-ram", ram, s[0], s[1]).Disable(), 1)
	}
}

// mchSMRAM is mch_realize's SMRAM: the legacy window, its open-high copy, TSEG and the
// SMBASE window, all closed at reset.
func mchSMRAM(system, pci, ram, smram *Region, below uint64) {
	system.Add(0xa0000, NewAlias("smram-region", pci, 0xa0000, 0x20000), 1)
	system.Add(0xfeda0000, NewAlias("smram-open-high", ram, 0xa0000, 0x20000).Disable(), 1)
	smram.Add(0xa0000, NewAlias("smram-low", ram, 0xa0000, 0x20000).Disable(), 0)
	smram.Add(0xfeda0000, NewAlias("smram-high", ram, 0xa0000, 0x20000).Disable(), 0)
	system.Add(below, New("tseg-blackhole", IO, 0).Disable(), 1)
	smram.Add(below, NewAlias("tseg-window", ram, below, 0).Disable(), 0)
	system.Add(0x30000, New("smbase-blackhole", IO, 0x20000).Disable(), 1)
	smram.Add(0x30000, NewAlias("smbase-window", ram, 0x30000, 0x20000).Disable(), 0)
}

// acpi is the power management function's registers: PIIX4's or ICH9's PM block (its I/O
// base unset until firmware programs it, so disabled at 0), the GPE block, and the PCI,
// CPU and memory hotplug registers.
func acpi(io *Region, b Board) {
	if b.Q35 {
		pm := io.Add(0, New("ich9-pm", Container, 0x80).Disable(), 0)
		ports(pm, port{"acpi-evt", 0, 4}, port{"acpi-cnt", 4, 2}, port{"acpi-tmr", 8, 4},
			port{"acpi-gpe0", 0x20, 16}, port{"acpi-smi", 0x30, 8}, port{"sm-tco", 0x60, 0x20})
		ports(io, port{"apm-io", 0xb2, 2}, port{"acpi-pci-hotplug", 0xcc0, 0x18}, port{"acpi-cpu-hotplug", 0xcd8, 0x20})
	} else {
		pm := io.Add(0, New("piix4-pm", Container, 0x40).Disable(), 0)
		ports(pm, port{"acpi-evt", 0, 4}, port{"acpi-cnt", 4, 2}, port{"acpi-tmr", 8, 4})
		ports(io, port{"apm-io", 0xb2, 2}, port{"pm-smbus", 0xb100, 0x40}, port{"acpi-gpe0", 0xafe0, 4},
			port{"acpi-pci-hotplug", 0xae00, 0x18}, port{"acpi-cpu-hotplug", 0xaf00, 0x20})
	}
	if b.MemHotplug {
		ports(io, port{"acpi-mem-hotplug", 0xa00, 0x18})
	}
}
