package qomtree

import (
	"fmt"
	"strings"

	"tlcvm/machine/memtree"
)

// unattachedType is the QOM type of a board device by its key in
// memtree.Board.UnattachedDevices (the instance number cut off).
var unattachedType = map[string]string{"serial": "isa-serial", "parallel": "isa-parallel"}

// Props reads a property set on the device at a QOM path (a -device's or device_add's), its
// JSON value; ok false when it is not set or there is no such device.
type Props func(path, name string) (value string, ok bool)

// Augment adds to root (tlcvm's QOM objects: /machine, its vCPUs, /objects, the
// peripherals) what the board t was built from makes: its objects and their children
// (tables.go), and every memory region of t under its owner. ide are the types of the
// board's IDE drives (ide-hd, ide-cd) in index order; props (nil: none set) the devices'
// properties, some of which decide their children.
func Augment(root *Node, t *memtree.Tree, ide []string, props Props) {
	machine := root.Child("machine")
	if machine == nil {
		return
	}
	b := t.Board
	if b.None {
		machine.EnsurePath("unattached/sysbus", "System")
	} else {
		addBoard(machine, b, ide, props)
	}
	addRegions(root, t)
}

// addBoard adds the board's objects: those at fixed paths, the unattached devices, and
// the fixed children of every object by its type.
func addBoard(machine *Node, b memtree.Board, ide []string, props Props) {
	board := pcObjects
	if b.Q35 {
		board = q35Objects
	}
	for _, o := range board {
		machine.EnsurePath(o.path, o.typ)
	}
	unattached := machine.Ensure("unattached", "container")
	var nics []string
	for _, d := range b.PCI {
		if d.Owner == nil && !boardPCI[d.Type] {
			nics = append(nics, d.Type)
		}
	}
	for key, o := range b.UnattachedDevices() {
		typ, n := key, 0
		if i := strings.IndexByte(key, '#'); i >= 0 {
			typ = key[:i]
			fmt.Sscan(key[i+1:], &n)
		}
		if t, ok := unattachedType[typ]; ok {
			typ = t
		}
		if typ == "nic" && n < len(nics) {
			typ = nics[n]
		}
		if typ == "ide-drive" && n < len(ide) {
			typ = ide[n]
		}
		obj := unattached.EnsurePath(strings.TrimPrefix(o.Path, "/machine/unattached/"), typ)
		switch typ {
		case "piix3-usb-uhci":
			obj.Ensure("usb-bus.0", "usb-bus") // -usb's, the first USB bus made
		case "ich9-ahci":
			for i := 0; i < 6; i++ { // q35's, the first IDE buses made
				obj.Ensure(fmt.Sprintf("ide.%d", i), "IDE")
			}
		}
	}
	// pc_init1 makes the SMBus EEPROMs after the PIIX4 (q35's are in UnattachedDevices).
	gpios := 27 // the 24 GSIs, the PIC's output, the two A20 lines
	if !b.Q35 {
		if !b.NoACPI { // acpi=off: no PIIX4_PM, so no SMBus
			next := nextDevice(unattached)
			for i := 0; i < 8; i++ {
				unattached.Ensure(fmt.Sprintf("device[%d]", next+i), "smbus-eeprom")
			}
			gpios++ // and the PIIX4's SMI
		}
		if b.NoHPET {
			// An IRQ joins the tree when a device's output is wired to it: without the
			// HPET, the GSIs are wired to nothing (q35's ICH9 wires them) but the ACPI
			// SCI's, beside the SMI.
			gpios = 7
			if !b.NoACPI {
				gpios += 2
			}
		}
	}
	for _, k := range series("non-qdev-gpio", "irq", gpios) {
		unattached.Ensure(k.name, k.typ)
	}
	modern := behindPCIePorts(b)
	var walk func(n *Node, path string)
	walk = func(n *Node, path string) {
		if n.Type == "fw_cfg_io" && b.NoACPI {
			return // acpi=off: no ACPI tables, so no blobs on fw_cfg
		}
		// A child object's properties are its device's (a virtio back-end's are set
		// through its proxy, xhci-core's through the xhci device).
		prop := func(name string) (string, bool) {
			if props == nil {
				return "", false
			}
			if v, ok := props(path, name); ok {
				return v, ok
			}
			return props(path[:strings.LastIndexByte(path, '/')], name)
		}
		for _, k := range typeChildren(n.Type, modern[path], prop) {
			n.EnsurePath(k.name, k.typ)
		}
		for _, c := range n.Children {
			walk(c, path+"/"+c.Name)
		}
	}
	walk(machine, "/machine")
}

// EnsurePath adds the objects of a path under n that are missing, the last of type typ,
// the others containers, and returns the last.
func (n *Node) EnsurePath(path, typ string) *Node {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i, p := range parts {
		t := "container"
		if i == len(parts)-1 {
			t = typ
		}
		n = n.Ensure(p, t)
	}
	return n
}

// addRegions hangs every region of t under its owner ("name[k]", k counting the regions
// of that name the owner has), an ownerless one under /machine/unattached.
func addRegions(root *Node, t *memtree.Tree) {
	seen := map[*memtree.Region]bool{}
	next := map[*Node]map[string]int{}
	var walk func(r *memtree.Region)
	walk = func(r *memtree.Region) {
		if r == nil || seen[r] {
			return
		}
		seen[r] = true
		path := "/machine/unattached"
		if r.Owner != nil {
			path = r.Owner.Path
		}
		if o := root.Path(path); o != nil && r.Name != "" {
			name := EscapeRegionName(r.Name)
			if next[o] == nil {
				next[o] = map[string]int{}
			}
			o.Ensure(fmt.Sprintf("%s[%d]", name, next[o][name]), "memory-region")
			next[o][name]++
		}
		walk(r.Alias)
		for _, s := range r.Subregions() {
			walk(s)
		}
	}
	for _, s := range t.Spaces {
		walk(s.Root)
	}
}

// nextDevice is the number the next device[N] of /machine/unattached gets.
func nextDevice(unattached *Node) int {
	next := 0
	for _, c := range unattached.Children {
		var n int
		if _, err := fmt.Sscanf(c.Name, "device[%d]", &n); err == nil && n >= next {
			next = n + 1
		}
	}
	return next
}

// pciePorts are the PCI Express ports: a virtio function behind one has no legacy I/O BAR
// (virtio_pci_realize's disable-legacy=auto).
var pciePorts = map[string]bool{"pcie-root-port": true, "ioh3420": true, "xio3130-downstream": true}

// behindPCIePorts are the QOM paths of the PCI functions that sit behind a PCIe port.
func behindPCIePorts(b memtree.Board) map[string]bool {
	m := map[string]bool{}
	for _, d := range b.PCI {
		if d.Owner != nil && d.Parent >= 0 && d.Parent < len(b.PCI) && pciePorts[b.PCI[d.Parent].Type] {
			m[d.Owner.Path] = true
		}
	}
	return m
}
