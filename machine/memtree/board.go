package memtree

import "fmt"

// Board is what decides a pc or q35 machine's memory regions as QEMU 7.2 builds them for
// a stopped machine (-S: firmware has programmed no PCI BAR, bridge window, PAM or SMRAM
// register yet, so those are at their reset values), and who owns them.
type Board struct {
	Q35  bool
	None bool // the machine none: its RAM at 0 ("ram"), nothing else
	// Below and Above are the RAM below 4 GiB and above it (pc_memory_init's split).
	Below, Above uint64
	// RAMOwner is the memory back-end of the board's RAM ("/objects/pc.ram").
	RAMOwner string
	// DeviceMemBase and DeviceMemSize place the device-memory region (size 0: none).
	DeviceMemBase, DeviceMemSize uint64
	DIMMs                        []DIMM
	CPUs                         []CPU // the present CPUs, in creation order
	// PCI are the PCI functions in realize order (board ones first).
	PCI []PCIDevice
	// Serials and Parallels are the ISA serial and parallel ports.
	Serials, Parallels []ISAPort
	// VGAs are the displays with legacy VGA registers.
	VGAs       []VGA
	NoHPET     bool // -no-hpet, -machine hpet=off
	NoVMPort   bool // -machine vmport=off (no vmport, no vmmouse)
	NoACPI     bool // -machine acpi=off: pc has no PIIX4_PM (q35's LPC keeps its PM block)
	FDC        bool // the ISA floppy controller (pc always; q35 with a floppy drive)
	Floppies   int  // the board's floppy drives (-drive if=floppy)
	IDEDrives  int  // the board's IDE drives (-drive if=ide, -cdrom, -hda)
	MemHotplug bool // -m slots= above 0: the ACPI memory hotplug registers
	USB        bool // pc with -usb (-machine usb=on): the piix3-usb-uhci at 01.2
}

// VGA is a display with legacy VGA registers: Kind "std" (VGA, virtio-vga, qxl-vga) or
// "cirrus" (cirrus-vga); Owner its device, nil for the board's (-vga std).
type VGA struct {
	Kind  string
	Owner *Owner
}

// ISAPort is a serial or parallel port: its index (the base address's) and its device, nil
// for one the board made (-serial, -parallel).
type ISAPort struct {
	Index int
	Owner *Owner
}

// CPU is a present vCPU: its index and QOM path.
type CPU struct {
	Index int
	Path  string
}

// DIMM is a plugged memory device: its memory back-end's id names its RAM region.
type DIMM struct {
	Name       string
	Addr, Size uint64
}

// PCIDevice is a PCI function: its type names its bus master address space; a bridge
// has a secondary bus (Parent: the index in Board.PCI of the bridge it sits behind, -1:
// the root bus). Owner is the device; nil for the board's own functions (and the NICs of
// -net nic), which Build places in /machine/unattached.
type PCIDevice struct {
	Type   string
	Bridge bool
	Parent int
	Owner  *Owner
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

// boardOwners numbers the devices the board makes in /machine/unattached, in the order pc_init1
// and pc_q35_init create them (the boot CPUs and kvmvapic first), by a key: the type, with
// its instance number for repeated ones ("i8257#1", "serial#0", "nic#0").
func boardOwners(b Board, nics int) map[string]*Owner {
	m := map[string]*Owner{}
	n := 0
	for _, c := range b.CPUs {
		if len(c.Path) > len("/machine/unattached/") && c.Path[:len("/machine/unattached/")] == "/machine/unattached/" {
			n++
		}
	}
	n++ // kvmvapic is device[1], after CPU 0
	add := func(key string, count int) {
		for i := 0; i < count; i++ {
			k := key
			if count > 1 || key == "serial" || key == "parallel" || key == "nic" {
				k = fmt.Sprintf("%s#%d", key, i)
			}
			m[k] = Dev(fmt.Sprintf("/machine/unattached/device[%d]", n))
			n++
		}
	}
	m["kvmvapic"] = Dev("/machine/unattached/device[1]")
	one := func(cond bool) int {
		if cond {
			return 1
		}
		return 0
	}
	boardSerials, boardParallels := 0, 0
	for _, p := range b.Serials {
		boardSerials += one(p.Owner == nil)
	}
	for _, p := range b.Parallels {
		boardParallels += one(p.Owner == nil)
	}
	boardVGA := 0
	for _, v := range b.VGAs {
		boardVGA += one(v.Owner == nil)
	}
	if b.Q35 {
		add("ICH9-LPC", 1)
	} else {
		add("i440FX", 1)
		add("PIIX3", 1)
	}
	add("i8257", 2)
	add("isa-i8259", 2)
	if !b.Q35 {
		add("VGA", boardVGA)
	}
	add("hpet", one(!b.NoHPET))
	add("mc146818rtc", 1)
	add("isa-pit", 1)
	add("isa-pcspk", 1)
	add("serial", boardSerials)
	add("parallel", boardParallels)
	add("isa-fdc", one(b.FDC))
	add("floppy", b.Floppies)
	add("i8042", 1)
	add("vmport", one(!b.NoVMPort))
	add("vmmouse", one(!b.NoVMPort))
	add("port92", 1)
	if b.Q35 {
		add("ich9-ahci", 1)
		add("ide-drive", b.IDEDrives)
		add("ICH9-SMB", 1)
		add("smbus-eeprom", 8)
		add("VGA", boardVGA)
		add("nic", nics)
	} else {
		add("nic", nics)
		add("piix3-ide", 1)
		add("ide-drive", b.IDEDrives)
		add("piix3-usb-uhci", one(b.USB))
		add("PIIX4_PM", one(!b.NoACPI))
	}
	return m
}

// own sets r's owner and returns r.
func own(o *Owner, r *Region) *Region {
	r.Owner = o
	return r
}

// Build lays out b's regions and address spaces in QEMU 7.2's creation order.
func Build(b Board) *Tree {
	system := NewFull("system")
	io := New("io", IO, 0x10000)
	t := &Tree{Board: b, Spaces: []AddressSpace{{"memory", system}, {"I/O", io}}}
	if b.None {
		if b.Below > 0 {
			system.Add(0, own(&Owner{Path: b.RAMOwner}, New("ram", RAM, b.Below)), 0)
		}
		return t
	}
	owners := boardOwners(b, b.nics())
	machine := &Owner{Path: "/machine"}
	host, mch := Dev("/machine/i440fx"), owners["i440FX"]
	if b.Q35 {
		host, mch = Dev("/machine/q35"), Dev("/machine/q35/mch")
	}
	var cpu0 *Owner
	for _, c := range b.CPUs {
		t.Spaces = append(t.Spaces, AddressSpace{fmt.Sprintf("cpu-memory-%d", c.Index), system})
		if cpu0 == nil {
			cpu0 = Dev(c.Path)
		}
	}

	// pc_init1 / pc_q35_init: the PCI memory space under RAM, pc_memory_init.
	pci := NewFull("pci")
	system.Add(0, pci, -1)
	ram := own(&Owner{Path: b.RAMOwner}, New(b.ramName(), RAM, b.Below+b.Above))
	system.Add(0, NewAlias("ram-below-4g", ram, 0, b.Below), 0)
	if b.Above > 0 {
		system.Add(1<<32, NewAlias("ram-above-4g", ram, b.Below, b.Above), 0)
	}
	if b.DeviceMemSize > 0 {
		dm := system.Add(b.DeviceMemBase, own(machine, New("device-memory", Container, b.DeviceMemSize)), 0)
		for _, d := range b.DIMMs {
			dm.Add(d.Addr-b.DeviceMemBase, own(&Owner{Path: "/objects/" + d.Name}, New(d.Name, RAM, d.Size)), 0)
		}
	}
	// pc_system_firmware_init (bios-256k.bin) and the option ROM area.
	bios := pci.Add(0x100000000-0x40000, New("pc.bios", ROM, 0x40000), 0)
	pci.Add(0xe0000, NewAlias("isa-bios", bios, 0x20000, 0x20000), 1)
	pci.Add(0xc0000, New("pc.rom", ROM, 0x20000), 1)
	ports(io, Dev("/machine/fw_cfg"), port{"fwcfg", 0x510, 2}, port{"fwcfg.dma", 0x514, 8})

	// The host bridge: its configuration ports, SMRAM and PAM.
	ports(io, host, port{"pci-conf-idx", 0xcf8, 4}, port{"pci-conf-data", 0xcfc, 4})
	smram := own(mch, New("smram", Container, 1<<32))
	if b.Q35 {
		mchSMRAM(system, pci, ram, smram, b.Below, mch)
	} else {
		system.Add(0xa0000, own(mch, NewAlias("smram-region", pci, 0xa0000, 0x20000)), 1)
		smram.Disable()
		smram.Add(0xa0000, own(mch, NewAlias("smram-low", ram, 0xa0000, 0x20000)), 0)
	}
	if b.Q35 {
		pam(system, pci, ram, mch)
	} else {
		pam(system, pci, ram, host)
	}

	// The board's other devices (pc_basic_device_init, the south bridge's functions).
	if b.Q35 {
		io.Add(0xcf9, own(owners["ICH9-LPC"], New("lpc-reset-control", IO, 1)), 1)
		system.Add(0xfec00000, own(Dev("/machine/q35/ioapic"), New("ioapic", IO, 0x1000)), 0)
	} else {
		io.Add(0xcf9, own(owners["PIIX3"], New("piix3-reset-control", IO, 1)), 1)
		system.Add(0xfec00000, own(Dev("/machine/i440fx/ioapic"), New("ioapic", IO, 0x1000)), 0)
	}
	if !b.NoHPET {
		system.Add(0xfed00000, own(owners["hpet"], New("hpet", IO, 0x400)), 0)
	}
	if cpu0 != nil {
		system.Add(0xfee00000, own(Dev(cpu0.Path+"/lapic"), New("apic-msi", IO, 0x100000)), 4096)
	}
	ports(io, owners["kvmvapic"], port{"kvmvapic", 0x7e, 2})
	ports(io, nil, port{"ioport80", 0x80, 1}, port{"ioportF0", 0xf0, 1})
	ports(io, owners["i8257#0"], port{"dma-chan", 0, 8}, port{"dma-cont", 8, 8}, port{"dma-page", 0x81, 3}, port{"dma-page", 0x87, 1})
	ports(io, owners["i8257#1"], port{"dma-chan", 0xc0, 16}, port{"dma-cont", 0xd0, 16}, port{"dma-page", 0x89, 3}, port{"dma-page", 0x8f, 1})
	ports(io, owners["isa-i8259#0"], port{"pic", 0x20, 2}, port{"elcr", 0x4d0, 1})
	ports(io, owners["isa-i8259#1"], port{"pic", 0xa0, 2}, port{"elcr", 0x4d1, 1})
	rtc := io.Add(0x70, own(owners["mc146818rtc"], New("rtc", IO, 2)), 0)
	rtc.Add(0, own(owners["mc146818rtc"], New("rtc-index", IO, 1)), 0)
	ports(io, owners["isa-pit"], port{"pit", 0x40, 4})
	ports(io, owners["isa-pcspk"], port{"pcspk", 0x61, 1})
	if b.FDC {
		ports(io, owners["isa-fdc"], port{"fdc", 0x3f1, 5}, port{"fdc", 0x3f7, 1})
	}
	ports(io, owners["i8042"], port{"i8042-data", 0x60, 1}, port{"i8042-cmd", 0x64, 1})
	if !b.NoVMPort {
		ports(io, owners["vmport"], port{"vmport", 0x5658, 1})
	}
	ports(io, owners["port92"], port{"port92", 0x92, 1})
	isaPorts(io, "serial", serialBases, b.Serials, owners)
	isaPorts(io, "parallel", parallelBases, b.Parallels, owners)
	for _, v := range b.VGAs {
		vga(io, pci, v, owners)
	}
	if !b.Q35 {
		ports(io, nil, port{"ide", 0x1f0, 8}, port{"ide", 0x3f6, 1}, port{"ide", 0x170, 8}, port{"ide", 0x376, 1})
	}
	pm := owners["PIIX4_PM"]
	if b.Q35 {
		pm = owners["ICH9-LPC"]
	}
	if b.Q35 || !b.NoACPI {
		acpi(io, b, pm)
	}

	// PCI functions: a bus master address space each, a bridge's windows.
	type bridge struct{ io, mem *Region }
	bridges := map[int]bridge{}
	nic := 0
	for i, d := range b.PCI {
		o := d.Owner
		if o == nil {
			switch key := boardFunction[d.Type]; {
			case key == "mch" && b.Q35:
				o = mch
			case key != "":
				o = owners[key]
			default:
				o = owners[fmt.Sprintf("nic#%d", nic)]
				nic++
			}
		}
		bm := own(o, NewFull("bus master container"))
		bm.Add(0, own(o, NewFullAlias("bus master", system).Disable()), 0)
		t.Spaces = append(t.Spaces, AddressSpace{d.Type, bm})
		if !d.Bridge {
			continue
		}
		pio, pmem := io, pci
		if p, ok := bridges[d.Parent]; ok {
			pio, pmem = p.io, p.mem
		}
		br := bridge{io: own(o, New("pci_bridge_io", Container, 1<<32)), mem: own(o, NewFull("pci_bridge_pci"))}
		bridges[i] = br
		pmem.Add(0, own(o, NewAlias("pci_bridge_pref_mem", br.mem, 0, 0)), 1)
		pmem.Add(0, own(o, NewAlias("pci_bridge_mem", br.mem, 0, 0)), 1)
		pio.Add(0, own(o, NewAlias("pci_bridge_io", br.io, 0, 0)), 1)
	}

	// x86_cpu_machine_done: each CPU's SMM view, SMRAM over all of memory.
	for _, c := range b.CPUs {
		o := Dev(c.Path)
		root := own(o, NewFull("memory"))
		root.Add(0, own(o, NewFullAlias("memory", system)), 0)
		root.Add(0, own(o, NewAlias("smram", smram, 0, 1<<32)), 1)
		t.Spaces = append(t.Spaces, AddressSpace{fmt.Sprintf("cpu-smm-%d", c.Index), root})
	}
	return t
}

// boardFunction are the board's PCI functions: their key in boardOwners.
var boardFunction = map[string]string{"i440FX": "i440FX", "PIIX3": "PIIX3", "piix3-ide": "piix3-ide",
	"PIIX4_PM": "PIIX4_PM", "mch": "mch", "ICH9-LPC": "ICH9-LPC", "ich9-ahci": "ich9-ahci",
	"ICH9-SMB": "ICH9-SMB", "VGA": "VGA", "piix3-usb-uhci": "piix3-usb-uhci"}

func ports(io *Region, o *Owner, ps ...port) {
	for _, p := range ps {
		io.Add(p.base, own(o, New(p.name, IO, p.size)), 0)
	}
}

// isaPorts are the serial or parallel ports by index: the board's own are numbered in
// /machine/unattached, a device's are its own.
func isaPorts(io *Region, name string, bases []uint64, devs []ISAPort, owners map[string]*Owner) {
	board := 0
	for _, p := range devs {
		o := p.Owner
		if o == nil {
			o = owners[fmt.Sprintf("%s#%d", name, board)]
			board++
		}
		if p.Index >= 0 && p.Index < len(bases) {
			ports(io, o, port{name, bases[p.Index], 8})
		}
	}
}

// vga is the display's legacy VGA window and registers.
func vga(io, pci *Region, v VGA, owners map[string]*Owner) {
	o := v.Owner
	if o == nil {
		o = owners["VGA"]
	}
	switch v.Kind {
	case "std":
		pci.Add(0xa0000, own(o, New("vga-lowmem", IO, 0x20000)), 1)
		ports(io, o, port{"vga", 0x3c0, 16}, port{"vga", 0x3b4, 2}, port{"vga", 0x3ba, 1},
			port{"vga", 0x3d4, 2}, port{"vga", 0x3da, 1}, port{"vbe", 0x1ce, 4})
	case "cirrus":
		// cirrus_init_common: the legacy window over two (disabled) bank aliases of its
		// 4 MiB video RAM.
		vram := own(o, New("vga.vram", RAM, 4<<20))
		low := pci.Add(0xa0000, own(o, New("cirrus-lowmem-container", Container, 0x20000)), 1)
		low.Add(0, own(o, New("cirrus-low-memory", IO, 0x20000)), 0)
		low.Add(0, own(o, NewAlias("vga.bank0", vram, 0, 0x8000).Disable()), 1)
		low.Add(0x8000, own(o, NewAlias("vga.bank1", vram, 0, 0x8000).Disable()), 1)
		ports(io, o, port{"cirrus-io", 0x3b0, 0x30})
	}
}

// pam is init_pam for the 13 PAM segments: four aliases each (PCI, read-only RAM, RAM
// writes to PCI, RAM), the PCI one enabled at reset.
func pam(system, pci, ram *Region, o *Owner) {
	segs := [][2]uint64{{0xf0000, 0x10000}}
	for i := uint64(0); i < 12; i++ {
		segs = append(segs, [2]uint64{0xc0000 + i*0x4000, 0x4000})
	}
	for _, s := range segs {
		system.Add(s[0], own(o, NewAlias("pam-pci", pci, s[0], s[1])), 1)
		system.Add(s[0], own(o, NewAlias("pam-rom", ram, s[0], s[1]).Disable()), 1)
		system.Add(s[0], own(o, NewAlias("pam-pci", ram, s[0], s[1]).Disable()), 1)
		system.Add(s[0], own(o, NewAlias("pam-ram", ram, s[0], s[1]).Disable()), 1)
	}
}

// mchSMRAM is mch_realize's SMRAM: the legacy window, its open-high copy, TSEG and the
// SMBASE window, all closed at reset.
func mchSMRAM(system, pci, ram, smram *Region, below uint64, o *Owner) {
	system.Add(0xa0000, own(o, NewAlias("smram-region", pci, 0xa0000, 0x20000)), 1)
	system.Add(0xfeda0000, own(o, NewAlias("smram-open-high", ram, 0xa0000, 0x20000).Disable()), 1)
	smram.Add(0xa0000, own(o, NewAlias("smram-low", ram, 0xa0000, 0x20000).Disable()), 0)
	smram.Add(0xfeda0000, own(o, NewAlias("smram-high", ram, 0xa0000, 0x20000).Disable()), 0)
	system.Add(below, own(o, New("tseg-blackhole", IO, 0).Disable()), 1)
	smram.Add(below, own(o, NewAlias("tseg-window", ram, below, 0).Disable()), 0)
	system.Add(0x30000, own(o, New("smbase-blackhole", IO, 0x20000).Disable()), 1)
	smram.Add(0x30000, own(o, NewAlias("smbase-window", ram, 0x30000, 0x20000).Disable()), 0)
}

// acpi is the power management function's registers: PIIX4's or ICH9's PM block (its I/O
// base unset until firmware programs it, so disabled at 0), the GPE block, and the PCI,
// CPU and memory hotplug registers.
func acpi(io *Region, b Board, o *Owner) {
	if b.Q35 {
		pm := io.Add(0, own(o, New("ich9-pm", Container, 0x80).Disable()), 0)
		ports(pm, o, port{"acpi-evt", 0, 4}, port{"acpi-cnt", 4, 2}, port{"acpi-tmr", 8, 4},
			port{"acpi-gpe0", 0x20, 16}, port{"acpi-smi", 0x30, 8}, port{"sm-tco", 0x60, 0x20})
		ports(io, o, port{"apm-io", 0xb2, 2}, port{"acpi-pci-hotplug", 0xcc0, 0x18}, port{"acpi-cpu-hotplug", 0xcd8, 0x20})
	} else {
		pm := io.Add(0, own(o, New("piix4-pm", Container, 0x40).Disable()), 0)
		ports(pm, o, port{"acpi-evt", 0, 4}, port{"acpi-cnt", 4, 2}, port{"acpi-tmr", 8, 4})
		ports(io, o, port{"apm-io", 0xb2, 2}, port{"pm-smbus", 0xb100, 0x40}, port{"acpi-gpe0", 0xafe0, 4},
			port{"acpi-pci-hotplug", 0xae00, 0x18}, port{"acpi-cpu-hotplug", 0xaf00, 0x20})
	}
	if b.MemHotplug {
		ports(io, o, port{"acpi-mem-hotplug", 0xa00, 0x18})
	}
}
