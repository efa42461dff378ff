package blockdev

import (
	"io"
)

// The internal snapshot operations over the graph, as QEMU 7.2's block/snapshot.c
// bdrv_all_* functions run them for savevm, loadvm, delvm and the snapshot-* jobs: which
// nodes take part (every inserted, writable node a backend uses or the monitor owns
// alone, or the nodes named by devices), the checks and their errors, and the node that
// holds the VM state (bdrv_all_find_vmstate_bs). The caller (the monitor's savevm and
// loadvm) stops the guest; each node's operation holds its I/O lock exclusively.

// snapTarget is a node a snapshot operation acts on, with the name its errors give it
// (bdrv_get_device_or_node_name) and whether it takes part without being named
// (bdrv_all_snapshots_includes_bs).
type snapTarget struct {
	n        *Node
	name     string
	included bool
}

// snapshotTargets is bdrv_all_get_snapshot_devices: the named nodes (devices != nil) or
// every top node. Caller holds g.mu.
func (g *Graph) snapshotTargets(devices []string) ([]snapTarget, error) {
	nameOf := func(n *Node) string {
		if d := n.deviceName(); d != "" {
			return d
		}
		return n.Name
	}
	var out []snapTarget
	if devices != nil {
		for _, d := range devices {
			n := g.node(d)
			if n == nil {
				return nil, errf(ErrNotFound, "No block device node '%s'", d)
			}
			out = append(out, snapTarget{n: n, name: nameOf(n), included: true})
		}
		return out, nil
	}
	for _, t := range g.topNodes() {
		out = append(out, snapTarget{n: t.n, name: nameOf(t.n), included: !t.n.ReadOnly && (t.hasBlk || len(t.n.parents) == 0)})
	}
	return out, nil
}

// snapshotQcow2 returns the qcow2 node that takes n's snapshots (n, or below raw
// filters: bdrv_snapshot_fallback).
func (n *Node) snapshotQcow2() *Node {
	for n != nil && n.Driver == DriverRaw {
		n = n.File
	}
	if n == nil || n.Driver != DriverQcow2 {
		return nil
	}
	return n
}

// withSnapshotQcow2 runs f on n's snapshot-taking qcow2 node with its I/O lock held
// exclusively and its metadata loaded and locked.
func (n *Node) withSnapshotQcow2(f func(q *qcow2) error) error {
	qn := n.snapshotQcow2()
	if qn == nil {
		return errf(ErrUnsupported, "Operation not supported")
	}
	return qn.withWrite(true, func() error {
		q, err := qn.qcow2()
		if err != nil {
			return err
		}
		q.mu.Lock()
		defer q.mu.Unlock()
		if err := q.load(); err != nil {
			return err
		}
		return f(q)
	})
}

// CheckCanSnapshot is bdrv_all_can_snapshot.
func (g *Graph) CheckCanSnapshot(devices []string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.canSnapshot(devices)
}

func (g *Graph) canSnapshot(devices []string) error {
	ts, err := g.snapshotTargets(devices)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if t.included && !t.n.canSnapshot() {
			return errf(ErrUnsupported, "Device '%s' is writable but does not support snapshots", t.name)
		}
	}
	return nil
}

// HasSnapshot is bdrv_all_has_snapshot: whether every taking-part node has a snapshot
// named name (true with none taking part).
func (g *Graph) HasSnapshot(name string, devices []string) (bool, error) {
	all := true
	err := g.eachSnapshotTarget(devices, func(t snapTarget) error {
		if found, _ := t.n.hasSnapshot(name); !found {
			all = false
		}
		return nil
	})
	return all && err == nil, err
}

// eachSnapshotTarget runs f for each taking-part node (snapshotTargets) under g.mu,
// until it fails.
func (g *Graph) eachSnapshotTarget(devices []string, f func(t snapTarget) error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	ts, err := g.snapshotTargets(devices)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if t.included {
			if err := f(t); err != nil {
				return err
			}
		}
	}
	return nil
}

// VMStateNode is bdrv_all_find_vmstate_bs: the node named vmstate ("" : the first
// taking-part node that takes snapshots).
func (g *Graph) VMStateNode(vmstate string, devices []string) (*Node, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ts, err := g.snapshotTargets(devices)
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		if vmstate != "" {
			if t.n.Name == vmstate {
				if !t.n.canSnapshot() {
					return nil, errf(ErrUnsupported, "vmstate block device '%s' does not support snapshots", vmstate)
				}
				return t.n, nil
			}
			continue
		}
		if t.included && t.n.canSnapshot() {
			return t.n, nil
		}
	}
	if vmstate != "" {
		return nil, errf(ErrNotFound, "vmstate block device '%s' does not exist", vmstate)
	}
	return nil, errf(ErrUnsupported, "no block device can store vmstate for snapshot")
}

// DeleteSnapshot is bdrv_all_delete_snapshot: the snapshot named name goes from every
// taking-part node that has it.
func (g *Graph) DeleteSnapshot(name string, devices []string) error {
	return g.eachSnapshotTarget(devices, func(t snapTarget) error {
		sn, found := t.n.FindSnapshot(name)
		if !found {
			return nil
		}
		if err := t.n.withSnapshotQcow2(func(q *qcow2) error { return q.deleteSnapshot(sn.ID, sn.Name) }); err != nil {
			return prefix(err, "Could not delete snapshot '"+name+"' on '"+t.name+"': ")
		}
		return nil
	})
}

// CreateSnapshot is bdrv_all_create_snapshot: sn on every taking-part node, with the VM
// state size on vmstate's (which holds that many bytes of VM state) and 0 elsewhere.
//
// The vmstate node always takes part (bdrv_all_create_snapshot's first test); every node
// QEMU may name as vmstate is a taking-part one too (snapshotTargets), so eachSnapshotTarget
// visits it.
func (g *Graph) CreateSnapshot(sn Snapshot, vmstate *Node, vmStateSize uint64, devices []string) error {
	return g.eachSnapshotTarget(devices, func(t snapTarget) error {
		s := sn
		s.VMStateSize = 0
		if t.n == vmstate {
			s.VMStateSize = vmStateSize
		}
		if err := t.n.withSnapshotQcow2(func(q *qcow2) error { return q.createSnapshot(s) }); err != nil {
			return errf(ErrIO, "Could not create snapshot '%s' on '%s'", sn.Name, t.name)
		}
		return nil
	})
}

// GotoSnapshot is bdrv_all_goto_snapshot: every taking-part node reverts to the snapshot
// named name.
func (g *Graph) GotoSnapshot(name string, devices []string) error {
	return g.eachSnapshotTarget(devices, func(t snapTarget) error {
		if err := t.n.withSnapshotQcow2(func(q *qcow2) error { return q.gotoSnapshot(name) }); err != nil {
			return prefix(err, "Could not load snapshot '"+name+"' on '"+t.name+"': ")
		}
		return nil
	})
}

// FindSnapshot is bdrv_snapshot_find: n's first snapshot named name.
func (n *Node) FindSnapshot(name string) (Snapshot, bool) {
	qn := n.snapshotQcow2()
	if qn == nil {
		return Snapshot{}, false
	}
	list, err := qn.Snapshots()
	if err != nil {
		return Snapshot{}, false
	}
	for _, s := range list {
		if s.Name == name {
			return s, true
		}
	}
	return Snapshot{}, false
}

// VMStateWriter returns a writer of the VM state area of n's image from its start
// (qemu_fopen_bdrv for writing: bdrv_save_vmstate), unbuffered.
func (n *Node) VMStateWriter() io.Writer { return &vmStateIO{n: n} }

// VMStateReader returns a reader of the first size bytes of the VM state area of n's
// image (qemu_fopen_bdrv for reading: bdrv_load_vmstate).
func (n *Node) VMStateReader(size int64) io.Reader {
	return io.LimitReader(&vmStateIO{n: n}, size)
}

// vmStateIO reads or writes the VM state area sequentially.
type vmStateIO struct {
	n   *Node
	pos int64
}

func (v *vmStateIO) Write(p []byte) (int, error) {
	err := v.n.withSnapshotQcow2(func(q *qcow2) error {
		off := q.vmStateOffset() + v.pos
		if err := q.growL1For(off + int64(len(p))); err != nil {
			return err
		}
		q.mu.Unlock() // the data path takes q.mu itself
		defer q.mu.Lock()
		return q.write(p, off)
	})
	if err != nil {
		return 0, err
	}
	v.pos += int64(len(p))
	return len(p), nil
}

func (v *vmStateIO) Read(p []byte) (int, error) {
	err := v.n.withSnapshotQcow2(func(q *qcow2) error {
		off := q.vmStateOffset() + v.pos
		if l1i, _ := q.index(off + int64(len(p)) - 1); l1i >= int64(len(q.l1)) {
			return errf(ErrIO, "tlcvm: the VM state ends past the image's L1 table")
		}
		q.mu.Unlock()
		defer q.mu.Lock()
		return q.read(p, off)
	})
	if err != nil {
		return 0, err
	}
	v.pos += int64(len(p))
	return len(p), nil
}

// SnapshotDevice is blockdev-snapshot-internal-sync (internal_snapshot_prepare): sn, a
// snapshot without VM state, on the root node device names, with QEMU's checks.
func (g *Graph) SnapshotDevice(device string, sn Snapshot) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, err := g.rootNode(device)
	if err != nil {
		return err
	}
	switch {
	case sn.Name == "":
		return errf(ErrInvalid, "Name is empty")
	case n.ReadOnly:
		return errf(ErrReadOnly, "Device '%s' is read only", device)
	case !n.canSnapshot():
		return errf(ErrUnsupported, "Block format '%s' used by device '%s' does not support internal snapshots", n.Driver, device)
	}
	if _, found := n.FindSnapshot(sn.Name); found {
		return errf(ErrExists, "Snapshot with name '%s' already exists on device '%s'", sn.Name, device)
	}
	sn.VMStateSize = 0
	if err := n.withSnapshotQcow2(func(q *qcow2) error { return q.createSnapshot(sn) }); err != nil {
		return errf(ErrIO, "Failed to create snapshot '%s' on device '%s': %s", sn.Name, device, err.Error())
	}
	return nil
}

// DeleteDeviceSnapshot is blockdev-snapshot-delete-internal-sync: the snapshot matching id
// and name (each when given) goes from the node device names; it returns what it was.
func (g *Graph) DeleteDeviceSnapshot(device, id, name string) (Snapshot, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, err := g.lookup(device, device)
	if err != nil {
		return Snapshot{}, err
	}
	if id == "" && name == "" {
		return Snapshot{}, errf(ErrInvalid, "Name or id must be provided")
	}
	qn := n.snapshotQcow2()
	if qn == nil {
		return Snapshot{}, errf(ErrUnsupported, "Failed to get a snapshot list: Operation not supported")
	}
	list, err := qn.Snapshots()
	if err != nil {
		return Snapshot{}, err
	}
	i := findSnapshot(list, id, name)
	if i < 0 {
		return Snapshot{}, errf(ErrNotFound, "Snapshot with id '%s' and name '%s' does not exist on device '%s'",
			orNull(id), orNull(name), device)
	}
	sn := list[i]
	if err := n.withSnapshotQcow2(func(q *qcow2) error { return q.deleteSnapshot(sn.ID, sn.Name) }); err != nil {
		return Snapshot{}, errf(ErrIO, "Failed to delete snapshot: %s", err.Error())
	}
	return sn, nil
}

// orNull is QEMU's STR_OR_NULL.
func orNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}
