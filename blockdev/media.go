package blockdev

import (
	"encoding/json"
	"fmt"
)

// Removable media: the trays of CD-ROMs (ide-cd, scsi-cd) and the slots of floppies, and
// the monitor operations on them, as QEMU 7.2's block/qapi-sysemu.c drives them through
// the device callbacks of hw/ide/core.c, hw/scsi/scsi-disk.c and hw/block/fdc.c.
//
// What a backend's device does with media (QEMU's BlockDevOps) decides everything:
//
//	kind        devices                        removable  tray  lock  callback on load/unload
//	mediaNone   none (-drive if=none, …)       yes        no    no    none
//	mediaFixed  virtio-blk, ide-hd, scsi-hd    no         no    no    none
//	mediaSlot   floppy                         yes        no    no    takes/drops its permissions
//	mediaTray   ide-cd, scsi-cd                yes        yes   yes   moves the tray (load: closed)
//
// The state of a tray device is three bits, Media{Open, Locked, Inserted}; the guest sets
// Locked (ATAPI PREVENT ALLOW MEDIUM REMOVAL), the monitor moves the tray and the medium.
// mediaStep is the one transition function: it takes a kind, a state and one primitive
// operation (QEMU's do_open_tray, blockdev-close-tray, blockdev_remove_medium,
// qmp_blockdev_insert_anon_medium) and returns the next state, the outcome and the effects
// the graph must carry out. The QMP commands are these primitives composed as QEMU
// composes them:
//
//	blockdev-open-tray      open(force); "no tray" and "locked, guest asked" are not errors
//	blockdev-close-tray     close
//	blockdev-remove-medium  remove
//	blockdev-insert-medium  insert (the node must exist and have no backend)
//	eject                   open(force) ("no tray" is not an error), remove
//	blockdev-change-medium  open the new image, open(force), remove, insert, close
//
// Every change of the tray is announced with DEVICE_TRAY_MOVED {device, id, tray-open}
// before the command returns; nothing else (a medium change in a slot, a removal from an
// open tray) emits an event.

// mediaKind is what a backend's device does with media (see the table above).
type mediaKind int

const (
	mediaNone mediaKind = iota
	mediaFixed
	mediaSlot
	mediaTray
)

func (k mediaKind) String() string {
	return [...]string{"none", "fixed", "slot", "tray"}[k]
}

func (k mediaKind) removable() bool { return k != mediaFixed }
func (k mediaKind) hasTray() bool   { return k == mediaTray }

// kind is the media kind of b's device.
func (b *Backend) kind() mediaKind {
	switch {
	case b.Device == nil:
		return mediaNone
	case b.Device.Driver == "ide-cd" || b.Device.Driver == "scsi-cd":
		return mediaTray
	case b.Device.Driver == "floppy":
		return mediaSlot
	}
	return mediaFixed
}

// HasTray reports whether query-block shows the backend's tray_open: its device has a tray.
func (b *Backend) HasTray() bool { return b.kind().hasTray() }

// IOStatus reports whether query-block shows the backend's io-status (and BLOCK_IO_ERROR
// its nospace): blk_iostatus_is_enabled, its device enabled I/O status reporting (every
// disk device but the floppy) and its errors may stop the VM (werror enospc or stop,
// rerror stop; with werror=report and the default rerror there is none).
func (b *Backend) IOStatus() bool {
	if b.Device == nil || b.Device.Driver == "floppy" || b.reportErrors {
		return false
	}
	w, r := b.errorPolicy(false), b.errorPolicy(true)
	return w == OnErrorEnospc || w == OnErrorStop || r == OnErrorStop
}

// Media is a removable device's state as the monitor sees it: the tray (closed unless
// Open; devices without a tray always read closed), the guest's lock on it, and whether a
// medium is in it.
type Media struct {
	Open, Locked, Inserted bool
}

func (m Media) String() string {
	return fmt.Sprintf("{open:%t locked:%t inserted:%t}", m.Open, m.Locked, m.Inserted)
}

// mediaOp is one primitive operation on a backend's media.
type mediaOp int

const (
	opOpen      mediaOp = iota // do_open_tray without force
	opOpenForce                // do_open_tray with force
	opClose                    // blockdev-close-tray
	opRemove                   // blockdev_remove_medium
	opInsert                   // qmp_blockdev_insert_anon_medium
	opLock                     // the guest locks the tray (PREVENT MEDIUM REMOVAL)
	opUnlock                   // the guest unlocks it (ALLOW MEDIUM REMOVAL)
)

func (o mediaOp) String() string {
	return [...]string{"open", "open-force", "close", "remove", "insert", "lock", "unlock"}[o]
}

// outcome is the result of a primitive: success or one of QEMU's refusals. Where QEMU
// returns an errno to its callers (do_open_tray), the outcome is that errno's meaning.
type outcome int

const (
	outOK               outcome = iota
	outNotRemovable             // "Device '%s' is not removable" (-ENOTSUP)
	outNoTray                   // "Device '%s' does not have a tray" (-ENOSYS)
	outLocked                   // "Device '%s' is locked and force was not specified, …" (-EINPROGRESS)
	outTrayClosed               // "Tray of device '%s' is not open"
	outAnonNotRemovable         // "Device is not removable" (insert names no device)
	outAnonTrayClosed           // "Tray of the device is not open"
	outHasMedium                // "There already is a medium in the device"
)

// format is QEMU's text for an outcome; name is the device or id the command was given.
func (o outcome) err(name string) error {
	switch o {
	case outOK:
		return nil
	case outNotRemovable:
		return errf(ErrInvalid, "Device '%s' is not removable", name)
	case outNoTray:
		return errf(ErrUnsupported, "Device '%s' does not have a tray", name)
	case outLocked:
		return errf(ErrInUse, "Device '%s' is locked and force was not specified, wait for tray to open and try again", name)
	case outTrayClosed:
		return errf(ErrInvalid, "Tray of device '%s' is not open", name)
	case outAnonNotRemovable:
		return errf(ErrInvalid, "Device is not removable")
	case outAnonTrayClosed:
		return errf(ErrInvalid, "Tray of the device is not open")
	case outHasMedium:
		return errf(ErrInUse, "There already is a medium in the device")
	}
	panic(fmt.Sprintf("blockdev: outcome %d", int(o)))
}

// effects are what the graph must do for a primitive besides taking the next state.
type effects struct {
	moved    bool // the tray moved: DEVICE_TRAY_MOVED with the next state's Open
	ejectReq bool // the guest was asked to open the tray (its eject button)
	detach   bool // take the medium's node out of the backend (blk_remove_bs)
	attach   bool // put the new node into the backend (blk_insert_bs)
	unload   bool // the slot's callback after a removal: the device drops its permissions
	load     bool // the slot's callback after an insertion: the device takes its permissions
}

// step is mediaStep's answer.
type step struct {
	next Media
	out  outcome
	eff  effects
}

// mediaStep is the transition function of removable media: what primitive op does to a
// device of kind k in state s, as QEMU 7.2 does it. It has no side effects; the caller
// applies step.eff (and undoes the attach if the graph refuses it).
func mediaStep(k mediaKind, s Media, op mediaOp) step {
	r := step{next: s}
	switch op {
	case opOpen, opOpenForce: // do_open_tray
		force := op == opOpenForce
		switch {
		case !k.removable():
			r.out = outNotRemovable
		case !k.hasTray():
			r.out = outNoTray
		case s.Open:
		default:
			if s.Locked {
				r.eff.ejectReq = true // blk_dev_eject_request
				if force {
					r.next.Locked = false
				}
			}
			if !s.Locked || force { // change_media_cb(load=false): the tray opens
				r.next.Open, r.eff.moved = true, true
			} else {
				r.out = outLocked
			}
		}
	case opClose: // qmp_blockdev_close_tray
		switch {
		case !k.removable():
			r.out = outNotRemovable
		case !k.hasTray(), !s.Open:
		default: // change_media_cb(load=true): the tray closes, medium or not
			r.next.Open, r.eff.moved = false, true
		}
	case opRemove: // blockdev_remove_medium
		switch {
		case k == mediaFixed:
			r.out = outNotRemovable
		case k.hasTray() && !s.Open:
			r.out = outTrayClosed
		case !s.Inserted:
		default:
			r.next.Inserted, r.eff.detach = false, true
			r.eff.unload = k == mediaSlot
		}
	case opInsert: // qmp_blockdev_insert_anon_medium
		switch {
		case k == mediaFixed:
			r.out = outAnonNotRemovable
		case k.hasTray() && !s.Open:
			r.out = outAnonTrayClosed
		case s.Inserted:
			r.out = outHasMedium
		default:
			r.next.Inserted, r.eff.attach = true, true
			r.eff.load = k == mediaSlot
		}
	case opLock, opUnlock: // the guest's PREVENT ALLOW MEDIUM REMOVAL
		if k.hasTray() {
			r.next.Locked = op == opLock
		}
	default:
		panic(fmt.Sprintf("blockdev: media op %d", int(op)))
	}
	return r
}

// ReadOnlyMode is blockdev-change-medium's read-only-mode (BlockdevChangeReadOnlyMode).
type ReadOnlyMode string

// The modes: keep the old medium's, or force one.
const (
	ReadOnlyRetain ReadOnlyMode = "retain"
	ReadOnlyOn     ReadOnlyMode = "read-only"
	ReadOnlyOff    ReadOnlyMode = "read-write"
)

// TrayMovedEvent is DEVICE_TRAY_MOVED's data: the backend's name ("" for an anonymous
// one), the device's qdev id (its QOM path when it has none) and where the tray went.
type TrayMovedEvent struct {
	Device, ID string
	TrayOpen   bool
}

// rootState is a backend's BlockBackendRootState: the flags a medium opened by
// blockdev-change-medium gets. A backend records them from its medium when the medium is
// removed (blk_update_root_state); an empty -drive takes them from its options, an
// anonymous empty backend starts read-only with nothing set.
type rootState struct {
	readWrite, direct, noFlush, detectZeroes bool
}

// mediaState is the media bookkeeping of a backend beside its exported fields (TrayOpen,
// Locked are the tray's state).
type mediaState struct {
	root rootState
	// ejectRequest is the device's pending eject request (IDE/SCSI events.eject_request):
	// set when the monitor asks a locked tray to open, cleared when the tray moves.
	ejectRequest bool
}

func (b *Backend) state() Media {
	return Media{Open: b.TrayOpen, Locked: b.Locked, Inserted: b.Root != nil}
}

// devID is blk_get_attached_dev_id: "" without a device, else its id, else its QOM path.
func (b *Backend) devID() string {
	switch {
	case b.Device == nil:
		return ""
	case b.Device.ID != "":
		return b.Device.ID
	}
	return b.Device.Path
}

// apply carries out one primitive on b (callers hold g.mu): the checks of mediaStep, then
// its effects; node is the medium to insert (opInsert). A refusal changes only what QEMU
// changes before refusing (a locked tray's eject request); a medium the graph or the
// floppy refuses is taken out again, leaving the slot empty, as QEMU's blk_remove_bs does.
func (g *Graph) apply(b *Backend, op mediaOp, name string, node *Node) (outcome, error) {
	r := mediaStep(b.kind(), b.state(), op)
	if r.eff.ejectReq { // blk_dev_eject_request: with force, the lock goes first
		b.media.ejectRequest = true
		b.Locked = r.next.Locked
	}
	if r.out != outOK {
		return r.out, r.out.err(name)
	}
	if r.eff.detach {
		g.detachMedium(b)
	}
	if r.eff.unload {
		// fd_change_cb(load=false): the floppy gives up its permissions.
		b.perm, b.shared = 0, PermAll
		_ = g.refresh()
	}
	if r.eff.attach {
		if err := g.attachMedium(b, node); err != nil {
			return outOK, err
		}
	}
	if r.eff.load {
		// fd_change_cb(load=true): blkconf_apply_backend_options, read-only when the
		// medium cannot be written.
		old, oldShared := b.perm, b.shared
		b.perm, b.shared = b.Device.perms(node.ReadOnly)
		if err := g.refresh(); err != nil {
			b.perm, b.shared = old, oldShared
			g.detachMedium(b)
			return outOK, err
		}
	}
	b.Locked = r.next.Locked
	if r.eff.moved {
		b.TrayOpen = r.next.Open
		b.media.ejectRequest = false
		g.emit("DEVICE_TRAY_MOVED", TrayMovedEvent{Device: b.Name, ID: b.devID(), TrayOpen: b.TrayOpen})
	}
	return outOK, nil
}

// detachMedium is blk_remove_bs: it records the medium's flags as the backend's root state
// and closes the nodes only the backend kept open.
func (g *Graph) detachMedium(b *Backend) {
	r := b.Root
	b.media.root = rootState{readWrite: !r.ReadOnly, direct: r.Direct, noFlush: r.NoFlush, detectZeroes: r.DetectZeroes != "off"}
	r.removeParent(func(e edge) bool { return e.backend == b })
	b.Root = nil
	if !r.monitorOwned() && len(r.parents) == 0 {
		g.removeTree(r)
	}
	_ = g.refresh()
}

// attachMedium is blk_insert_bs: n becomes b's root with the backend's permissions.
func (g *Graph) attachMedium(b *Backend, n *Node) error {
	b.Root = n
	n.addParent(edge{backend: b, role: "root"})
	if err := g.refresh(); err != nil {
		n.removeParent(func(e edge) bool { return e.backend == b })
		b.Root = nil
		return err
	}
	return nil
}

// mediaBackend is qmp_get_blk: exactly one of device (a backend name) and id (a device's
// qdev id) names the backend.
func (g *Graph) mediaBackend(device, id string) (*Backend, string, error) {
	if (device == "") == (id == "") {
		return nil, "", errf(ErrInvalid, "Need exactly one of 'device' and 'id'")
	}
	if id != "" {
		for _, d := range g.devices {
			if d.ID == id && d.Backend != nil {
				return d.Backend, id, nil
			}
		}
		return nil, "", errf(ErrDeviceNotFound, "Device '%s' not found", id)
	}
	if b := g.backend(device); b != nil {
		return b, device, nil
	}
	return nil, "", errf(ErrDeviceNotFound, "Device '%s' not found", device)
}

// OpenTray is blockdev-open-tray. A device without a tray, and a locked tray whose guest
// was asked to open it (force unset), are not errors: the command succeeds and the event
// comes when (if) the guest opens the tray.
func (g *Graph) OpenTray(device, id string, force bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, name, err := g.mediaBackend(device, id)
	if err != nil {
		return err
	}
	out, err := g.apply(b, openOp(force), name, nil)
	if out == outNoTray || out == outLocked {
		return nil
	}
	return err
}

func openOp(force bool) mediaOp {
	if force {
		return opOpenForce
	}
	return opOpen
}

// CloseTray is blockdev-close-tray.
func (g *Graph) CloseTray(device, id string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, name, err := g.mediaBackend(device, id)
	if err != nil {
		return err
	}
	_, err = g.apply(b, opClose, name, nil)
	return err
}

// RemoveMedium is blockdev-remove-medium.
func (g *Graph) RemoveMedium(id string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, name, err := g.mediaBackend("", id)
	if err != nil {
		return err
	}
	_, err = g.apply(b, opRemove, name, nil)
	return err
}

// InsertMedium is blockdev-insert-medium: the node (by node name) goes into the open tray.
func (g *Graph) InsertMedium(id, nodeName string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, name, err := g.mediaBackend("", id)
	if err != nil {
		return err
	}
	n := g.node(nodeName)
	if n == nil {
		return errf(ErrNotFound, "Node '%s' not found", nodeName)
	}
	if n.hasBackendParent() {
		return errf(ErrInUse, "Node '%s' is already in use", nodeName)
	}
	_, err = g.apply(b, opInsert, name, n)
	return err
}

func (n *Node) hasBackendParent() bool {
	for _, e := range n.parents {
		if e.backend != nil {
			return true
		}
	}
	return false
}

// Eject is the legacy eject: open the tray (force ignores the guest's lock), take the
// medium out; the tray stays open.
func (g *Graph) Eject(device, id string, force bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, name, err := g.mediaBackend(device, id)
	if err != nil {
		return err
	}
	if out, err := g.apply(b, openOp(force), name, nil); err != nil && out != outNoTray {
		return err
	}
	_, err = g.apply(b, opRemove, name, nil)
	return err
}

// ChangeOptions are blockdev-change-medium's arguments beyond the device.
type ChangeOptions struct {
	Filename string
	Format   string // "" probes
	Force    bool
	ReadOnly ReadOnlyMode // "" is retain
}

// ChangeMedium is blockdev-change-medium: the image is opened first (with the flags of the
// backend's root state, adjusted by the read-only mode), then the tray is opened, the old
// medium removed, the new one inserted and the tray closed. On any failure the new image
// is closed again; what happened to the tray and the old medium before it stays.
func (g *Graph) ChangeMedium(device, id string, o ChangeOptions) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, name, err := g.mediaBackend(device, id)
	if err != nil {
		return err
	}
	if f := o.Format; f != "" && f != DriverRaw && f != DriverQcow2 && f != DriverFile && f != DriverHostDevice {
		return formatError(f)
	}
	rs := b.media.root
	if r := b.Root; r != nil { // blk_update_root_state
		rs = rootState{readWrite: !r.ReadOnly, direct: r.Direct, noFlush: r.NoFlush, detectZeroes: r.DetectZeroes != "off"}
	}
	switch o.ReadOnly {
	case ReadOnlyOn:
		rs.readWrite = false
	case ReadOnlyOff:
		rs.readWrite = true
	}
	dz := "off"
	if rs.detectZeroes {
		dz = "on"
	}
	var opened []*Node
	in := inherited{readOnly: !rs.readWrite, direct: rs.direct, noFlush: rs.noFlush, implicit: true}
	medium, err := g.openImage(Options{DetectZeroes: dz}, o.Filename, o.Format, in, &opened)
	if err != nil {
		g.discard(opened)
		return err
	}
	fail := func(err error) error {
		if medium.hasBackendParent() {
			return err
		}
		g.discard(opened)
		_ = g.refresh()
		return err
	}
	if out, err := g.apply(b, openOp(o.Force), name, nil); err != nil && out != outNoTray {
		return fail(err)
	}
	if _, err := g.apply(b, opRemove, name, nil); err != nil {
		return fail(err)
	}
	if _, err := g.apply(b, opInsert, name, medium); err != nil {
		return fail(err)
	}
	_, err = g.apply(b, opClose, name, nil)
	return err
}

// AttachEmpty realizes a removable device given no drive: ide-cd, scsi-cd and floppy make
// themselves an anonymous empty backend ("Anonymous BlockBackend for an empty drive"),
// with the permissions they would take on a read-only medium.
func (g *Graph) AttachEmpty(d *Device) error {
	if !d.removable() {
		return errf(ErrInvalid, "drive property not set")
	}
	b := &Backend{}
	b.perm, b.shared = d.perms(true)
	g.mu.Lock()
	defer g.mu.Unlock()
	b.Device, d.Backend = d, b
	g.backends = append(g.backends, b)
	g.devices = append(g.devices, d)
	return nil
}

// LockTrays is the guest locking the tray of every CD-ROM (ATAPI PREVENT ALLOW MEDIUM
// REMOVAL with prevent set), as an OS does for the discs it mounts. A locked tray opens
// only with force; without, the monitor's request reaches the guest as an eject request.
func (g *Graph) LockTrays() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, d := range g.devices {
		if b := d.Backend; b != nil && b.HasTray() {
			_, _ = g.apply(b, opLock, "", nil)
		}
	}
}

// TrayState is a tray's checkpoint state (QEMU's ide_drive/tray_state subsection and the
// scsi-cd's tray fields): a restored device has its tray where the source left it, without
// a DEVICE_TRAY_MOVED (QEMU 7.2 emits none on load either).
type TrayState struct {
	TrayOpen bool `json:"tray-open"`
	Locked   bool `json:"locked"`
}

// TraySection is one tray's state as a checkpoint section; it satisfies migration.Section
// (and machine.Snapshotter) without blockdev importing either.
type TraySection struct {
	g *Graph
	d *Device
}

// TraySections returns a section for every device with a tray, in device order.
func (g *Graph) TraySections() []TraySection {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []TraySection
	for _, d := range g.devices {
		if d.Backend != nil && d.Backend.HasTray() {
			out = append(out, TraySection{g: g, d: d})
		}
	}
	return out
}

// SectionID is the device's QOM path and "/tray".
func (s TraySection) SectionID() string { return s.d.Path + "/tray" }

// StateVersion is 1; no older version exists.
func (s TraySection) StateVersion() (cur, min uint32) { return 1, 1 }

// SaveState returns the tray's TrayState.
func (s TraySection) SaveState() (any, error) {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	b := s.d.Backend
	return TrayState{TrayOpen: b.TrayOpen, Locked: b.Locked}, nil
}

// LoadState puts the tray where the checkpoint says.
func (s TraySection) LoadState(raw []byte, version uint32) error {
	if version != 1 {
		return errf(ErrInvalid, "tray state version %d not in [1, 1]", version)
	}
	var st TrayState
	if err := json.Unmarshal(raw, &st); err != nil {
		return errf(ErrInvalid, "tray state: %v", err)
	}
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	if b := s.d.Backend; b != nil {
		b.TrayOpen, b.Locked = st.TrayOpen, st.Locked
	}
	return nil
}
