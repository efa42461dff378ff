package qdev

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"tlcvm/compat/optval"
	"tlcvm/compat/qerror"
	"tlcvm/machine/catalog"
)

// Device is one device of the tree. Its fields are written by the Tree under its lock;
// models read them from their Check, Realize and Unrealize calls (made under that lock)
// and must not keep writing them afterwards, except State.
type Device struct {
	ID    string // "" for an anonymous device
	Type  string // the QOM type (an alias resolved)
	Path  string // canonical QOM path; "" for board devices tlcvm does not expose
	Bus   *Bus   // nil for a device without a bus (pc-dimm)
	Devfn int    // PCI: slot<<3 | function; -1 otherwise
	Unit  int    // IDE: the unit; -1 otherwise
	// Props are the properties set, as qom-get gives them (JSON); the others have the
	// catalogue's defaults.
	Props      map[string]json.RawMessage
	Buses      []*Bus  // the buses it provides, in creation order
	Backend    *Device // a virtio proxy's virtio-X-device, on its "virtio-bus"
	Hotplugged bool    // created by device_add on a running machine
	Board      bool    // created by the board, not by -device or device_add
	// State is the model's own (NIC state, a chardev front-end, …); the tree never reads it.
	State any

	unplugging bool
	usb        *usbPort // the USB port it took
	builtin    bool     // made by board() itself (Board is also set for -net nic's NICs)
}

// Bus is a bus a device provides (or the board's main-system-bus).
type Bus struct {
	Name    string  // "pci.0", "sata0.0", "virtio-serial0.0", …
	Type    string  // QOM type: "PCI", "PCIE", "IDE", "ISA", "usb-bus", "SCSI", …
	Parent  *Device // nil for main-system-bus
	Hotplug bool    // device_add may plug into it (and device_del unplug from it)
	Units   int     // IDE: units per bus (2 on PIIX, 1 on an AHCI port)
	Root    bool    // a host bridge's PCI bus
	// SHPC: a PCI-to-PCI bridge's bus, whose standard hotplug controller has no slot 0.
	SHPC bool
	// Number is the PCI bus number firmware gave it (0 until then, as in QEMU; the root is 0),
	// or a USB bus's busnr (usb.go).
	Number int
	usb    *usbBus // a USB bus's ports
	// serial is the drive_serial of an IDE bus's unit 0 (ide_init1 numbers the units of every
	// IDE bus from 1, in creation order): a drive's default serial is "QM%05d" of it + unit.
	serial int

	devs []*Device // in creation order
}

// Path is the bus's QOM path (its parent's path and its name).
func (b *Bus) Path() string {
	if b.Parent == nil {
		return "/machine/unattached/sysbus"
	}
	return b.Parent.path() + "/" + b.Name
}

// Devices lists the devices on the bus in creation order.
func (b *Bus) Devices() []*Device { return slices.Clone(b.devs) }

func (d *Device) path() string {
	if d.Path != "" {
		return d.Path
	}
	switch d.Type {
	case "i440FX-pcihost":
		return "/machine/i440fx"
	case "q35-pcihost":
		return "/machine/q35"
	}
	return "/machine/unattached/" + d.Type
}

// Express reports whether a PCI device sits behind a PCIe port (not on a root bus), where
// virtio devices drop their legacy interface.
func (d *Device) Express() bool { return d.Bus != nil && d.Bus.Type == "PCIE" && !d.Bus.Root }

// Prop returns a property as set (ok false when not set).
func (d *Device) Prop(name string) (json.RawMessage, bool) {
	v, ok := d.Props[name]
	return v, ok
}

// PropString returns a string property as set ("" when not set or not a string).
func (d *Device) PropString(name string) string {
	var s string
	if v, ok := d.Props[name]; ok {
		_ = json.Unmarshal(v, &s)
	}
	return s
}

// Model gives the devices of some types their behaviour.
type Model interface {
	// Check runs once the device's properties are set, before it is placed on its bus
	// (QEMU checks a netdev, chardev or drive property when it is set).
	Check(d *Device) error
	// Realize runs once the device is placed; an error takes it off again.
	Realize(d *Device) error
	// Unrealize runs when the device leaves the tree, after the devices on its buses.
	Unrealize(d *Device)
}

// GuestUnplug is implemented by models whose devices leave only with the guest's consent
// on every bus (pc-dimm: ACPI memory hotplug); UnplugRequest asks, and done is called
// once the guest has ejected the device.
type GuestUnplug interface {
	UnplugRequest(d *Device, done func()) error
}

// Guest delivers the hot-unplug requests of PCI slots (ACPI PCI hotplug, PCIe native
// hotplug): the guest OS ejects the device, and done is called after that, on a goroutine
// that holds no lock of the caller's.
type Guest interface {
	RequestEject(what string, done func())
}

// Config is what a tree needs from its composition root.
type Config struct {
	Machine string // resolved machine type ("pc-i440fx-7.2", "pc-q35-7.2", "none")
	Guest   Guest  // nil: PCI unplug requests are never answered (a guest without an OS)
	// Deleted reports DEVICE_DELETED: id ("" for none) and QOM path, in QEMU's order.
	Deleted func(id, path string)
	// VGA adds the board's VGA (-vga std) at slot 2 of the root bus.
	VGA bool
	// Floppies are the units of the board's floppy drives (-drive if=floppy), on its
	// isa-fdc's bus; on q35 the isa-fdc exists only with one.
	Floppies []int
	// NoACPI: -machine acpi=off, under which pc_init1 makes no PIIX4_PM (so no SMBus, no
	// EEPROMs, and no ACPI PCI hotplug on pci.0); q35's ICH9-LPC keeps its PM block.
	NoACPI bool
	// CPUs is -smp's initial vCPU count: virtio_pci_optimal_num_queues gives a virtio-blk or
	// virtio-scsi device one queue per vCPU (0: one).
	CPUs int
	// NoVMPort: -machine vmport=off, under which the board makes no vmport and no vmmouse.
	NoVMPort bool
	// Disks are the devices the board makes for its floppy and IDE drives (-drive
	// if=floppy/ide, -fda, -hda, -cdrom, the default cdrom and floppy), on its isa-fdc's
	// floppy bus (Floppies) and its IDE controller's buses.
	Disks []BoardDisk
	// USB: pc with -usb (-machine usb=on), whose board adds a piix3-usb-uhci at 01.2.
	USB bool
	// Serials and Parallels count the board's serial and parallel ports (-serial, -parallel
	// and their defaults): isa-serial and isa-parallel devices on its ISA bus.
	Serials, Parallels int
	// NoHPET: -no-hpet or -machine hpet=off, under which the board makes no hpet.
	NoHPET bool
	// RAM is the machine's RAM size in bytes (q35's host bridge shows its split below and
	// above 4 GiB).
	RAM uint64
	// Migrating reports an outgoing migration in progress (QEMU's !migration_is_idle):
	// device_add and device_del are refused meanwhile. nil: never.
	Migrating func() bool
}

// BoardDisk is a device the board makes for one of its drives.
type BoardDisk struct {
	Type  string // floppy, ide-hd, ide-cd
	Bus   int    // the IDE bus's index among its controller's (0 for a floppy)
	Unit  int
	Drive string // the drive's name, its drive property
	// Props are the others realize gave it (an ide-hd's guessed geometry).
	Props map[string]json.RawMessage
}

type modelEntry struct {
	match func(typ string) bool
	m     Model
}

// Tree is the machine's device tree. Safe for concurrent use.
type Tree struct {
	mu        sync.Mutex
	cfg       Config
	root      *Bus           // main-system-bus
	devs      []*Device      // -device and device_add devices, creation order; +checklocks:mu
	auto      map[string]int // next automatic bus number per bus type; +checklocks:mu
	ideSerial int            // the drive_serial the next IDE bus's unit 0 takes; +checklocks:mu
	usbBuses  int            // the busnr of the next USB bus; +checklocks:mu
	models    []modelEntry   // +checklocks:mu
}

// New builds the board's devices and buses for a machine type.
func New(cfg Config) *Tree {
	t := &Tree{cfg: cfg, auto: map[string]int{}, ideSerial: 1}
	t.root = &Bus{Name: "main-system-bus", Type: "System"}
	t.board()
	return t
}

// Register gives the devices whose type matches a model. The first match wins.
func (t *Tree) Register(match func(typ string) bool, m Model) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.models = append(t.models, modelEntry{match, m})
}

func (t *Tree) modelOf(typ string) Model {
	for _, e := range t.models {
		if e.match(typ) {
			return e.m
		}
	}
	return nil
}

// Spec is one -device or device_add.
type Spec struct {
	Driver string // a type name or an alias
	ID     string // "" for none
	Bus    string // bus=, "" for the default
	Props  []Prop
	// Hotplug: device_add once the machine runs (QEMU's PHASE_MACHINE_READY): the type
	// must be hotpluggable, and so must the bus.
	Hotplug bool
	// Board: made by the board (a NIC of -nic or -net nic): anonymous, under
	// /machine/unattached rather than the peripheral containers.
	Board bool
}

// Add creates, checks, places and realizes a device, with QEMU 7.2's errors in its order
// (qdev_device_add_from_qdict). Nothing is left of a device that fails.
func (t *Tree) Add(s Spec) (*Device, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.ID != "" && !optval.ID(s.ID) {
		return nil, errf(ErrID, "Parameter 'id' expects an identifier")
	}
	class, err := catalog.DeviceClass(s.Driver, s.Hotplug)
	if err != nil {
		return nil, err
	}
	if class.Bus == "System" && !dynamicSysbus(t.cfg.Machine, class.Name) {
		return nil, errf(ErrBus, "Parameter 'driver' expects a dynamic sysbus device type for the machine")
	}
	var bus *Bus
	switch {
	case s.Bus != "":
		if bus = t.findBus(t.root, s.Bus, ""); bus == nil {
			return nil, errf(ErrBus, "Bus '%s' not found", s.Bus)
		}
		if class.Bus == "" || !catalog.IsA(bus.Type, class.Bus) {
			return nil, errf(ErrBus, "Device '%s' can't go on %s bus", class.Name, bus.Type)
		}
	case class.Bus != "":
		if bus = t.findBus(t.root, "", class.Bus); bus == nil {
			return nil, errf(ErrBus, "No '%s' bus found for device '%s'", class.Bus, class.Name)
		}
	}
	if s.Hotplug && bus != nil && !bus.Hotplug {
		return nil, errf(ErrHotplug, "Bus '%s' does not support hotplugging", bus.Name)
	}
	if s.Hotplug && t.cfg.Migrating != nil && t.cfg.Migrating() {
		return nil, errf(ErrHotplug, "device_add not allowed while migrating")
	}
	if s.ID != "" && t.byID(s.ID) != nil {
		return nil, errf(ErrID, "Duplicate device ID '%s'", s.ID)
	}
	d := &Device{ID: s.ID, Type: class.Name, Devfn: -1, Unit: -1, Props: map[string]json.RawMessage{},
		Hotplugged: s.Hotplug, Board: s.Board}
	if err := d.setProps(s.Props); err != nil {
		return nil, err
	}
	m := t.modelOf(d.Type)
	if m != nil {
		if err := m.Check(d); err != nil {
			return nil, err
		}
	}
	var hub *Device
	if bus != nil {
		if err := bus.place(d); err != nil {
			return nil, err
		}
		if bus.usb != nil {
			if hub, err = t.placeUSB(bus, d); err != nil {
				return nil, err
			}
		}
	}
	if err := t.chassisSlot(d); err != nil {
		return nil, err
	}
	t.autoQueues(d)
	if !d.Board {
		d.Path = t.peripheralPath(d.ID)
	}
	d.Bus = bus // placed: Realize sees its bus (and the devices on it)
	if err := realizeCheck(d); err != nil {
		d.Bus = nil
		return nil, err
	}
	if m != nil {
		if err := m.Realize(d); err != nil {
			d.Bus = nil
			return nil, err
		}
	}
	t.plug(bus, d)
	if hub != nil {
		bus.devs = append(bus.devs, hub)
	}
	return d, nil
}

// plug links a realized device into the tree with the buses and back-end it brings.
func (t *Tree) plug(bus *Bus, d *Device) {
	switch at := -1; {
	case bus == nil:
	case d.Board && !d.builtin && bus.Root:
		// pc_nic_init makes -net nic's NICs before pc's IDE function (q35's last).
		at = slices.IndexFunc(bus.devs, func(o *Device) bool { return o.builtin && o.Type == "piix3-ide" })
		if at >= 0 {
			bus.devs = slices.Insert(bus.devs, at, d)
			break
		}
		fallthrough
	default:
		bus.devs = append(bus.devs, d)
	}
	if !d.Board {
		t.devs = append(t.devs, d)
	}
	t.addChildren(d)
}

// peripheralPath is QEMU's qdev_set_id: /machine/peripheral/ID, or the first free
// /machine/peripheral-anon/device[N].
func (t *Tree) peripheralPath(id string) string {
	if id != "" {
		return "/machine/peripheral/" + id
	}
	for n := 0; ; n++ {
		p := fmt.Sprintf("/machine/peripheral-anon/device[%d]", n)
		if t.byPath(p) == nil {
			return p
		}
	}
}

func (t *Tree) byID(id string) *Device {
	for _, d := range t.devs {
		if d.ID == id {
			return d
		}
	}
	return nil
}

func (t *Tree) byPath(p string) *Device {
	for _, d := range t.devs {
		if d.Path == p {
			return d
		}
		if d.Backend != nil && d.Backend.Path == p {
			return d.Backend
		}
	}
	return nil
}

// findBus is qbus_find_recursive: by name, or the first bus of a type that is not full,
// depth first, newest device first and last-made bus first (QEMU inserts at the head).
func (t *Tree) findBus(b *Bus, name, typ string) *Bus {
	var pick *Bus
	var walk func(b *Bus) *Bus
	walk = func(b *Bus) *Bus {
		match := (name != "" && b.Name == name) || (name == "" && catalog.IsA(b.Type, typ))
		if match && !b.full() {
			return b
		}
		if match && pick == nil {
			pick = b
		}
		for i := len(b.devs) - 1; i >= 0; i-- {
			d := b.devs[i]
			for _, c := range d.childBuses() {
				if r := walk(c); r != nil {
					return r
				}
			}
		}
		return nil
	}
	if r := walk(b); r != nil {
		return r
	}
	return pick
}

// childBuses lists a device's buses, last made first (a virtio back-end sits on its
// proxy's "virtio-bus", and its own buses are reached through it).
func (d *Device) childBuses() []*Bus {
	out := slices.Clone(d.Buses)
	slices.Reverse(out)
	return out
}

// full is qbus_is_full; no bus type tlcvm models has a device limit QEMU checks there.
func (b *Bus) full() bool { return false }

// place gives a device its address on the bus: a PCI slot and function, or an IDE unit.
func (b *Bus) place(d *Device) error {
	switch {
	case catalog.IsA(b.Type, "PCI"):
		return b.placePCI(d)
	case b.Type == "IDE":
		return b.placeIDE(d)
	case b.Type == "floppy-bus":
		return b.placeFloppy(d)
	case b.Type == "SCSI":
		return b.placeSCSI(d)
	case b.Type == "HDA":
		return b.placeHDA(d)
	case b.Type == "ISA":
		return b.placeISA(d)
	}
	return nil
}

// autoQueues sets what a virtio-blk or virtio-scsi PCI device's realize sets when they are
// not given: one request queue per vCPU (virtio_pci_optimal_num_queues) and the MSI-X
// vectors for them (the queues, plus the config interrupt, plus virtio-scsi's control and
// event queues).
func (t *Tree) autoQueues(d *Device) {
	prop, fixed := "", 0
	switch d.Type {
	case "virtio-blk-pci", "vhost-user-blk-pci":
		prop = "num-queues"
	case "virtio-scsi-pci", "vhost-scsi-pci", "vhost-user-scsi-pci":
		prop, fixed = "num_queues", 2
	default:
		return
	}
	queues := propInt(d, prop, -1)
	if queues == -1 || queues == 1<<16-1 { // VIRTIO_BLK_AUTO_NUM_QUEUES / VIRTIO_SCSI_AUTO_NUM_QUEUES
		queues = min(max(t.cfg.CPUs, 1), 1024-fixed) // VIRTIO_QUEUE_MAX
		d.Props[prop], _ = json.Marshal(queues)
	}
	if _, ok := d.Props["vectors"]; !ok {
		d.Props["vectors"], _ = json.Marshal(queues + fixed + 1)
	}
}

// isaPorts are the I/O bases and IRQs of the ISA serial (serial_realize's isa_serial_io,
// isa_serial_irq) and parallel ports (isa_parallel_io, isa_parallel_irq) by index.
var isaPorts = map[string]struct {
	io, irq []int
	full    string
}{
	"isa-serial":   {[]int{0x3f8, 0x2f8, 0x3e8, 0x2e8}, []int{4, 3, 4, 3}, "Max. supported number of ISA serial ports is %d."},
	"isa-parallel": {[]int{0x378, 0x278, 0x3bc}, []int{7, 7, 7}, "Max. supported number of parallel ports is %d."},
}

// placeISA gives an ISA serial or parallel port its index (the count of those realized
// before it), I/O base and IRQ when they are not set, as serial_isa_realizefn and
// parallel_isa_realizefn do.
func (b *Bus) placeISA(d *Device) error {
	p, ok := isaPorts[d.Type]
	if !ok {
		return nil
	}
	if d.Type == "isa-parallel" && d.PropString("chardev") == "" {
		return errf(ErrAddress, "Can't create parallel device, empty char device")
	}
	index := propInt(d, "index", -1)
	if index == -1 || index == 1<<32-1 {
		index = 0
		for _, o := range b.devs {
			if o.Type == d.Type {
				index++
			}
		}
	}
	if index >= len(p.io) {
		return errf(ErrAddress, p.full, len(p.io))
	}
	set := func(name string, v int) {
		if n := propInt(d, name, -1); n == -1 || n == 1<<32-1 {
			d.Props[name], _ = json.Marshal(v)
		}
	}
	set("index", index)
	set("iobase", p.io[index])
	set("irq", p.irq[index])
	return nil
}

// placeHDA is hda_codec_dev_realize's codec address: cad, else the one after the last
// codec's (from 0), at most 15.
func (b *Bus) placeHDA(d *Device) error {
	cad := int64(-1)
	if v, ok := d.Props["cad"]; ok {
		_ = json.Unmarshal(v, &cad)
	}
	if cad == -1 || cad == 1<<32-1 { // the property's default, (uint32_t)-1
		cad = 0
		for _, o := range b.devs {
			cad = int64(propInt(o, "cad", 0)) + 1
		}
	}
	if cad >= 15 {
		return errf(ErrAddress, "HDA audio codec address is full")
	}
	d.Props["cad"], _ = json.Marshal(cad)
	return nil
}

// scsiLimits are a SCSI bus's highest target id and lun by its controller's type
// (SCSIBusInfo max_target, max_lun); the others' are the LSI's.
var scsiLimits = map[string][2]int{"virtio-scsi-device": {255, 16383}, "usb-storage": {0, 15}, "usb-bot": {0, 15},
	"usb-uas": {0, 255}, "lsi53c895a": {7, 0}, "lsi53c810": {7, 0}}

// placeSCSI is scsi_qdev_realize's address: channel, target id (scsi-id) and lun checked
// against the bus's limits; without scsi-id the first id from 0 whose lun is free, without
// lun the first free lun of the id. What it chooses becomes the device's scsi-id and lun,
// as info qtree and qom-get show them.
func (b *Bus) placeSCSI(d *Device) error {
	lim := [2]int{7, 0}
	if b.Parent != nil {
		if l, ok := scsiLimits[b.Parent.Type]; ok {
			lim = l
		}
	}
	channel, id, lun := propInt(d, "channel", 0), propInt(d, "scsi-id", -1), propInt(d, "lun", -1)
	switch {
	case channel > 0:
		return errf(ErrAddress, "bad scsi channel id: %d", channel)
	case id > lim[0]:
		return errf(ErrAddress, "bad scsi device id: %d", id)
	case lun > lim[1]:
		return errf(ErrAddress, "bad scsi device lun: %d", lun)
	}
	at := func(id, lun int) *Device {
		for _, o := range b.devs {
			if propInt(o, "channel", 0) == channel && propInt(o, "scsi-id", -1) == id && propInt(o, "lun", 0) == lun {
				return o
			}
		}
		return nil
	}
	set := func(name string, v int) { d.Props[name], _ = json.Marshal(v) }
	switch {
	case id == -1:
		lun = max(lun, 0)
		for id = 0; at(id, lun) != nil; id++ {
			if id >= lim[0] {
				return errf(ErrAddress, "no free target")
			}
		}
		set("scsi-id", id)
		set("lun", lun)
	case lun == -1:
		for lun = 0; at(id, lun) != nil; lun++ {
			if lun >= lim[1] {
				return errf(ErrAddress, "no free lun")
			}
		}
		set("lun", lun)
	default:
		if o := at(id, lun); o != nil {
			return errf(ErrAddress, "lun already used by '%s'", cmp.Or(o.ID, "(null)"))
		}
	}
	return nil
}

// placeFloppy is floppy_drive_realize's unit: the one asked for (property unit), else the
// first free one.
func (b *Bus) placeFloppy(d *Device) error {
	unit := int64(-1)
	if v, ok := d.Props["unit"]; ok {
		_ = json.Unmarshal(v, &unit)
	}
	used := func(u int64) bool {
		return slices.ContainsFunc(b.devs, func(o *Device) bool { return int64(o.Unit) == u })
	}
	if unit == -1 || unit == 1<<32-1 { // the property's default, (uint32_t)-1
		for unit = 0; unit < int64(b.Units) && used(unit); unit++ {
		}
	}
	if unit >= int64(b.Units) {
		return errf(ErrAddress, "Can't create floppy unit %d, bus supports only %d units", unit, b.Units)
	}
	if used(unit) {
		return errf(ErrAddress, "Floppy unit %d is in use", unit)
	}
	d.Unit = int(unit)
	return nil
}

func (b *Bus) placeIDE(d *Device) error {
	unit := -1
	if v, ok := d.Props["unit"]; ok {
		_ = json.Unmarshal(v, &unit)
	}
	var master, slave *Device
	for _, o := range b.devs {
		switch o.Unit {
		case 0:
			master = o
		case 1:
			slave = o
		}
	}
	if unit == -1 {
		unit = 0
		if master != nil {
			unit = 1
		}
	}
	if unit >= b.Units {
		return errf(ErrAddress, "Can't create IDE unit %d, bus supports only %d units", unit, b.Units)
	}
	if (unit == 0 && master != nil) || (unit == 1 && slave != nil) {
		return errf(ErrAddress, "IDE unit %d is in use", unit)
	}
	d.Unit = unit
	return nil
}

// Lookup finds a -device or device_add device by id.
func (t *Tree) Lookup(id string) (*Device, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.byID(id)
	return d, d != nil
}

// Peripherals lists the -device and device_add devices in creation order.
func (t *Tree) Peripherals() []*Device {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.devs)
}

// Locked runs fn with the tree's lock held, on the -device and device_add devices in
// creation order: fn may read them, their buses and what is on those.
func (t *Tree) Locked(fn func(peripherals []*Device)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fn(t.devs)
}

// resolve is QEMU's find_device_state: id relative to /machine/peripheral, or a path.
// isDevice is false for a path that names an object that is no device (a bus, a container).
func (t *Tree) resolve(id string) (d *Device, exists bool) {
	p := id
	if !strings.HasPrefix(p, "/") {
		p = "/machine/peripheral/" + p
	}
	if d := t.byPath(p); d != nil {
		return d, true
	}
	switch p {
	case "/machine", "/machine/peripheral", "/machine/peripheral-anon", "/machine/unattached", "/":
		return nil, true
	}
	for _, d := range t.devs {
		for _, dev := range []*Device{d, d.Backend} {
			if dev == nil {
				continue
			}
			for _, b := range dev.Buses {
				if b.Path() == p {
					return nil, true
				}
			}
		}
	}
	return nil, false
}

// Del is device_del: it asks for the device to be unplugged. Devices on buses the guest
// must consent for (PCI; ACPI memory hotplug for models that say so) leave once the guest
// has ejected them; the others leave at once. Either way Config.Deleted reports
// DEVICE_DELETED for the device and each device it held, devices first, then the device.
func (t *Tree) Del(id string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	d, exists := t.resolve(id)
	if d == nil {
		if exists {
			return errf(ErrHotplug, "%s is not a hotpluggable device", id)
		}
		return errf(ErrDeviceNotFound, "Device '%s' not found", id)
	}
	if d.Bus != nil && !d.Bus.Hotplug {
		return errf(ErrHotplug, "Bus '%s' does not support hotplugging", d.Bus.Name)
	}
	if c, ok := catalog.LookupDevice(d.Type); !ok || !c.Hotpluggable {
		return errf(ErrHotplug, "Device '%s' does not support hotplugging", d.Type)
	}
	if t.cfg.Migrating != nil && t.cfg.Migrating() {
		return errf(ErrHotplug, "device_del not allowed while migrating")
	}
	if gu, ok := t.modelOf(d.Type).(GuestUnplug); ok {
		return gu.UnplugRequest(d, t.ejected(d))
	}
	if d.Bus != nil && catalog.IsA(d.Bus.Type, "PCI") {
		// ACPI PCI hotplug (pc, q35) or the PCIe slot's attention button: the guest ejects.
		d.unplugging = true
		if t.cfg.Guest != nil {
			t.cfg.Guest.RequestEject(fmt.Sprintf("PCI %02x.%x %s", d.Devfn>>3, d.Devfn&7, d.Type), t.ejected(d))
		}
		return nil
	}
	t.remove(d)
	return nil
}

// ejected returns the callback that completes an unplug once the guest has ejected d.
func (t *Tree) ejected(d *Device) func() {
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if slices.Contains(t.devs, d) {
			t.remove(d)
		}
	}
}

// Unplugging reports whether device_del was asked for d and the guest has not ejected it.
func (t *Tree) Unplugging(d *Device) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return d.unplugging
}

// remove unrealizes d and everything on its buses (newest first, last bus first; a virtio
// proxy's back-end is on its virtio-bus), takes it off its bus and reports each
// DEVICE_DELETED, children before parents.
func (t *Tree) remove(d *Device) {
	for _, b := range d.childBuses() {
		for i := len(b.devs) - 1; i >= 0; i-- {
			t.remove(b.devs[i])
		}
	}
	t.unrealize(d)
	if b := d.Bus; b != nil {
		b.devs = slices.DeleteFunc(b.devs, func(o *Device) bool { return o == d })
		b.releaseUSB(d)
	}
	t.devs = slices.DeleteFunc(t.devs, func(o *Device) bool { return o == d })
	t.deleted(d)
}

func (t *Tree) unrealize(d *Device) {
	if m := t.modelOf(d.Type); m != nil {
		m.Unrealize(d)
	}
}

func (t *Tree) deleted(d *Device) {
	if t.cfg.Deleted != nil && d.Path != "" {
		t.cfg.Deleted(d.ID, d.Path)
	}
}

// Unplug removes a device at once, whatever its bus (the rollback of a hotplug whose later
// step failed): its DEVICE_DELETED events follow.
func (t *Tree) Unplug(d *Device) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if slices.Contains(t.devs, d) {
		t.remove(d)
	}
}

// dynamicSysbus is the machine's machine_class_allow_dynamic_sysbus_dev list
// (qdev_get_device_class): the sysbus device types -device and device_add may create. The
// i440FX boards allow ramfb and vmbus-bridge (pc_piix.c), Q35 the IOMMUs as well
// (pc_q35.c), none nothing.
func dynamicSysbus(machine, typ string) bool {
	switch {
	case strings.HasPrefix(machine, "pc-q35-"):
		return typ == "ramfb" || typ == "vmbus-bridge" || typ == "intel-iommu" || typ == "amd-iommu"
	case strings.HasPrefix(machine, "pc-i440fx-"):
		return typ == "ramfb" || typ == "vmbus-bridge"
	}
	return false
}

// realizeCheck is the refusal, at realize, of device types tlcvm models no back-end for,
// with QEMU 7.2's texts where QEMU refuses too: a TPM front-end without its tpmdev,
// vfio-pci without a host device.
func realizeCheck(d *Device) error {
	switch d.Type {
	case "tpm-tis", "tpm-crb":
		if _, ok := d.Props["tpmdev"]; !ok {
			return errf(ErrProperty, "'tpmdev' property is required")
		}
	case "vfio-pci":
		_, host := d.Props["host"]
		_, sysfs := d.Props["sysfsdev"]
		if !host && !sysfs {
			return qerror.Errorf(ErrProperty, "No provided host device").
				AppendHint("Use -device vfio-pci,host=DDDD:BB:DD.F or -device vfio-pci,sysfsdev=PATH_TO_DEVICE\n")
		}
	}
	return nil
}
