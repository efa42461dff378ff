package blockdev

import (
	"strings"
)

// Backend is a BlockBackend: what a guest device (or a -drive without one) holds on to.
// Named backends come from -drive (Name is the drive id); anonymous ones are created when a
// device names a node directly (-device virtio-blk-pci,drive=<node-name>).
type Backend struct {
	Name         string
	Root         *Node // nil: no medium
	Device       *Device
	WriteThrough bool   // cache=writethrough/directsync: the guest sees no write cache
	Drive        *Drive // the -drive that made it; nil for anonymous backends
	TrayOpen     bool
	Locked       bool

	perm, shared Perm
	media        mediaState // root state and eject request (media.go)
	backendIO               // the data path (backendio.go)

	inactive bool     // QEMU's disable_perm after an inactivation (activate.go)
	ios      ioStatus // io-status after a device's failed request (ioerror.go)
	// reportErrors: drive_del set the error policies to report, which ends the I/O status.
	reportErrors bool
	// shareAll: the root was activated during an incoming migration (an export of it):
	// the backend takes its permissions but shares everything until the next ActivateAll
	// that can stop sharing (QEMU's blk_root_activate in inmigrate, blk_vm_state_changed).
	shareAll bool
}

// Removable reports whether the guest sees removable media: no device, or a CD-ROM/floppy.
func (b *Backend) Removable() bool {
	return b.Device == nil || b.Device.removable()
}

// Device is a guest disk device linked to a backend by drive=.
type Device struct {
	ID     string // qdev id ("" for anonymous devices)
	Driver string // virtio-blk-pci, ide-hd, ide-cd, scsi-hd, scsi-cd, floppy
	// Path is the device's canonical QOM path, e.g. "/machine/peripheral/disk0".
	Path string
	// ShareRW is the device's share-rw property.
	ShareRW bool
	// Hotplugged devices were added by device_add.
	Hotplugged bool
	// Werror and Rerror are the device's werror/rerror properties ("" or auto: the
	// drive's).
	Werror, Rerror OnError
	Backend        *Backend
}

// DiskDrivers are the device models that take a drive= property and that tlcvm links to
// its block graph.
var DiskDrivers = []string{"virtio-blk-pci", "ide-hd", "ide-cd", "scsi-hd", "scsi-cd", "floppy"}

// IsDisk reports whether driver is one of DiskDrivers.
func IsDisk(driver string) bool {
	for _, d := range DiskDrivers {
		if d == driver {
			return true
		}
	}
	return false
}

func (d *Device) removable() bool { return IsRemovable(d.Driver) }

// IsRemovable reports whether a disk device model takes removable media (CD-ROMs, floppies);
// such a device given no drive= makes itself an empty one (Graph.AttachEmpty).
func IsRemovable(driver string) bool {
	return driver == "ide-cd" || driver == "scsi-cd" || driver == "floppy"
}

// qdevType is the type whose drive property QEMU names in errors (the virtio-blk-pci proxy
// forwards drive= to its virtio-blk-device).
func qdevType(driver string) string {
	if driver == "virtio-blk-pci" {
		return "virtio-blk-device"
	}
	return driver
}

// Qdev is what query-block shows as "qdev": the device id, or for virtio-blk-pci and
// anonymous devices the QOM path of the device holding the backend.
func (d *Device) Qdev() string {
	if d.Driver == "virtio-blk-pci" {
		return d.Path + "/virtio-backend"
	}
	if d.ID != "" {
		return d.ID
	}
	return d.Path
}

// perms are the permissions a device takes on its backend (blkconf_apply_backend_options):
// read, write unless read-only; it shares read, unchanged writes, resize (except CD-ROMs
// and floppies, which are not resizable) and writes when share-rw is on.
func (d *Device) perms(readOnly bool) (Perm, Perm) {
	perm := PermConsistentRead
	cd := d.Driver == "ide-cd" || d.Driver == "scsi-cd"
	if !readOnly && !cd {
		perm |= PermWrite
	}
	shared := PermConsistentRead | PermWriteUnchanged
	if !cd && d.Driver != "floppy" {
		shared |= PermResize
	}
	if d.ShareRW {
		shared |= PermWrite
	}
	return perm, shared
}

// AttachDevice links a device to the backend named drive, or to the node of that name
// (through a new anonymous backend), as a device's drive property does at realize.
func (g *Graph) AttachDevice(d *Device, drive string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.backend(drive)
	anon := false
	if b == nil {
		n := g.node(drive)
		if n == nil {
			return errf(ErrNotFound, "Property '%s.drive' can't find value '%s'", qdevType(d.Driver), drive)
		}
		b, anon = &Backend{Root: n}, true
	}
	if b.Device != nil {
		return errf(ErrInUse, "Drive '%s' is already in use by another device", drive)
	}
	if b.Root == nil && !d.removable() {
		return errf(ErrInvalid, "Device needs media, but drive is empty")
	}
	if d.Hotplugged && strings.HasPrefix(d.Driver, "ide-") {
		return errf(ErrUnsupported, "Bus 'ide.1' does not support hotplugging")
	}
	ro := b.Root == nil || b.Root.ReadOnly // an empty floppy takes no write permission
	if ro && d.Driver == "ide-hd" {
		return errf(ErrReadOnly, "Block node is read-only")
	}
	oldPerm, oldShared, oldDev := b.perm, b.shared, b.Device
	b.perm, b.shared = d.perms(ro)
	b.Device, d.Backend = d, b
	if anon {
		b.Root.addParent(edge{backend: b, role: "root"})
	}
	if err := g.refresh(); err != nil {
		b.perm, b.shared, b.Device, d.Backend = oldPerm, oldShared, oldDev, nil
		if anon {
			b.Root.removeParent(func(e edge) bool { return e.backend == b })
		}
		return err
	}
	if anon {
		g.backends = append(g.backends, b)
	}
	g.devices = append(g.devices, d)
	return nil
}

// Device returns the disk device with the given qdev id.
func (g *Graph) Device(id string) (*Device, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, d := range g.devices {
		if d.ID == id {
			return d, true
		}
	}
	return nil, false
}

// DetachDevice unplugs a disk device: its anonymous backend goes away, and so does a
// -drive backend with everything it opened (QEMU's blockdev_auto_del).
func (g *Graph) DetachDevice(d *Device) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := g.devices[:0]
	for _, x := range g.devices {
		if x != d {
			out = append(out, x)
		}
	}
	g.devices = out
	b := d.Backend
	if b == nil {
		return
	}
	b.Device, d.Backend = nil, nil
	g.removeBackend(b)
	_ = g.refresh()
}

// removeBackend drops b and closes the nodes only it kept open.
func (g *Graph) removeBackend(b *Backend) {
	out := g.backends[:0]
	for _, x := range g.backends {
		if x != b {
			out = append(out, x)
		}
	}
	g.backends = out
	g.tgMu.Lock()
	if tg := b.tg.Load(); tg != nil {
		g.leaveGroup(b, tg)
	}
	g.tgMu.Unlock()
	if r := b.Root; r != nil {
		r.removeParent(func(e edge) bool { return e.backend == b })
		if !r.monitorOwned() && len(r.parents) == 0 {
			g.removeTree(r)
		}
	}
}

// monitorOwned reports whether the node was added by -blockdev/blockdev-add as a root (it
// stays until blockdev-del).
func (n *Node) monitorOwned() bool { return n.owned }

// removeTree closes n and the children nobody else uses.
func (g *Graph) removeTree(n *Node) {
	n.storeBeforeClose()
	g.detach(n)
	for _, c := range []*Node{n.File, n.Backing} {
		if c != nil && !c.monitorOwned() && len(c.parents) == 0 {
			g.removeTree(c)
		}
	}
	n.close()
	g.removeNode(n)
	if n.tempFile != "" {
		removeFile(n.tempFile)
	}
}

// Del is blockdev-del: it closes a node added by blockdev-add that nothing uses.
func (g *Graph) Del(name string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.del(name)
}

// del is Del with g.mu held.
func (g *Graph) del(name string) error {
	n := g.node(name)
	if n == nil {
		return errf(ErrNotFound, "Failed to find node with node-name='%s'", name)
	}
	for _, e := range n.parents {
		if e.node != nil && e.role == "backing" {
			return errf(ErrInUse, "Node '%s' is busy: node is used as backing hd of '%s'", name, e.node.Name)
		}
	}
	for _, e := range n.parents {
		if e.backend != nil {
			return errf(ErrInUse, "Node %s is in use", name)
		}
	}
	if len(n.parents) > 0 {
		return errf(ErrInUse, "Block device %s is in use", name)
	}
	if !n.monitorOwned() {
		return errf(ErrInvalid, "Node %s is not owned by the monitor", name)
	}
	n.owned = false
	g.removeTree(n)
	return g.refresh()
}
