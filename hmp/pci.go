package hmp

// query-pci's shapes (qapi/pci.json) and hmp_info_pci_device's formatting.

type pciInfo struct {
	Bus     int64           `json:"bus"`
	Devices []pciDeviceInfo `json:"devices"`
}

type pciMemoryRange struct {
	Base  int64 `json:"base"` // QAPI 'int'; printed as unsigned, as QEMU's PRIx64 does
	Limit int64 `json:"limit"`
}

type pciBusInfo struct {
	Number            int64          `json:"number"`
	Secondary         int64          `json:"secondary"`
	Subordinate       int64          `json:"subordinate"`
	IORange           pciMemoryRange `json:"io_range"`
	MemoryRange       pciMemoryRange `json:"memory_range"`
	PrefetchableRange pciMemoryRange `json:"prefetchable_range"`
}

type pciBridgeInfo struct {
	Bus     pciBusInfo      `json:"bus"`
	Devices []pciDeviceInfo `json:"devices"` // absent and empty print the same
}

type pciDeviceClass struct {
	Desc  *string `json:"desc"`
	Class int64   `json:"class"`
}

type pciDeviceID struct {
	Device          int64  `json:"device"`
	Vendor          int64  `json:"vendor"`
	Subsystem       *int64 `json:"subsystem"`
	SubsystemVendor *int64 `json:"subsystem-vendor"`
}

type pciMemoryRegion struct {
	Bar       int64  `json:"bar"`
	Type      string `json:"type"`
	Address   int64  `json:"address"`
	Size      int64  `json:"size"`
	Prefetch  bool   `json:"prefetch"`
	MemType64 bool   `json:"mem_type_64"`
}

type pciDeviceInfo struct {
	Bus       int64             `json:"bus"`
	Slot      int64             `json:"slot"`
	Function  int64             `json:"function"`
	ClassInfo pciDeviceClass    `json:"class_info"`
	ID        pciDeviceID       `json:"id"`
	IRQ       *int64            `json:"irq"`
	IRQPin    int64             `json:"irq_pin"`
	QdevID    string            `json:"qdev_id"`
	PCIBridge *pciBridgeInfo    `json:"pci_bridge"`
	Regions   []pciMemoryRegion `json:"regions"`
}

// printPCIDevice is QEMU 7.2's hmp_info_pci_device.
func printPCIDevice(c *Call, dev *pciDeviceInfo) {
	c.Printf("  Bus %2d, ", dev.Bus)
	c.Printf("device %3d, function %d:\n", dev.Slot, dev.Function)
	c.Print("    ")
	if dev.ClassInfo.Desc != nil {
		c.Print(*dev.ClassInfo.Desc)
	} else {
		c.Printf("Class %04d", dev.ClassInfo.Class)
	}
	c.Printf(": PCI device %04x:%04x\n", uint64(dev.ID.Vendor), uint64(dev.ID.Device))
	if dev.ID.SubsystemVendor != nil && dev.ID.Subsystem != nil {
		c.Printf("      PCI subsystem %04x:%04x\n", uint64(*dev.ID.SubsystemVendor), uint64(*dev.ID.Subsystem))
	}
	if dev.IRQ != nil {
		c.Printf("      IRQ %d, pin %c\n", *dev.IRQ, byte('A'+dev.IRQPin-1))
	}
	if b := dev.PCIBridge; b != nil {
		c.Printf("      BUS %d.\n", b.Bus.Number)
		c.Printf("      secondary bus %d.\n", b.Bus.Secondary)
		c.Printf("      subordinate bus %d.\n", b.Bus.Subordinate)
		c.Printf("      IO range [0x%04x, 0x%04x]\n", uint64(b.Bus.IORange.Base), uint64(b.Bus.IORange.Limit))
		c.Printf("      memory range [0x%08x, 0x%08x]\n", uint64(b.Bus.MemoryRange.Base), uint64(b.Bus.MemoryRange.Limit))
		c.Printf("      prefetchable memory range [0x%08x, 0x%08x]\n",
			uint64(b.Bus.PrefetchableRange.Base), uint64(b.Bus.PrefetchableRange.Limit))
	}
	for _, r := range dev.Regions {
		addr, size := uint64(r.Address), uint64(r.Size)
		c.Printf("      BAR%d: ", r.Bar)
		if r.Type == "io" {
			c.Printf("I/O at 0x%04x [0x%04x].\n", addr, addr+size-1)
		} else {
			bits, pf := 32, ""
			if r.MemType64 {
				bits = 64
			}
			if r.Prefetch {
				pf = " prefetchable"
			}
			c.Printf("%d bit%s memory at 0x%08x [0x%08x].\n", bits, pf, addr, addr+size-1)
		}
	}
	c.Printf("      id \"%s\"\n", dev.QdevID)
	if b := dev.PCIBridge; b != nil {
		for i := range b.Devices {
			printPCIDevice(c, &b.Devices[i])
		}
	}
}
