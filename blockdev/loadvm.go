package blockdev

// -loadvm's checks, QEMU 7.2's load_snapshot before it reads any VM state: every
// snapshot-taking device (bdrv_all_get_snapshot_devices: inserted, writable, used by a
// device or without a parent) must take snapshots and hold the named one, the VM state
// comes from the first of them, and a snapshot without VM state (qemu-img snapshot -c) is
// disk-only. tlcvm cannot read a VM state QEMU saved (its devices are QEMU's) and has no
// savevm of its own yet, so a snapshot that passes these checks is still not loaded.

// snapshotDevices are the nodes savevm, loadvm and info snapshots act on, with the name
// error messages give them (bdrv_get_device_or_node_name). Caller holds g.mu.
func (g *Graph) snapshotDevices() (nodes []*Node, names []string) {
	for _, t := range g.topNodes() {
		if !t.n.ReadOnly && (t.hasBlk || len(t.n.parents) == 0) {
			name := t.name
			if name == "" {
				name = t.n.Name
			}
			nodes, names = append(nodes, t.n), append(names, name)
		}
	}
	return nodes, names
}

// CheckLoadVM runs load_snapshot's checks for snapshot name, with QEMU's errors, and
// returns the size of the VM state the snapshot holds.
func (g *Graph) CheckLoadVM(name string) (vmStateSize uint64, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	devices, names := g.snapshotDevices()
	for i, n := range devices { // bdrv_all_can_snapshot
		if !n.canSnapshot() {
			return 0, errf(ErrUnsupported, "Device '%s' is writable but does not support snapshots", names[i])
		}
	}
	for _, n := range devices { // bdrv_all_has_snapshot
		if found, _ := n.hasSnapshot(name); !found {
			return 0, errf(ErrNotFound, "Snapshot '%s' does not exist in one or more devices", name)
		}
	}
	if len(devices) == 0 { // bdrv_all_find_vmstate_bs
		return 0, errf(ErrUnsupported, "no block device can store vmstate for snapshot")
	}
	list, err := devices[0].Snapshots()
	if err != nil {
		return 0, err
	}
	for _, s := range list {
		if s.Name == name {
			if s.VMStateSize == 0 {
				return 0, errf(ErrUnsupported, "This is a disk-only snapshot. Revert to it  offline using qemu-img")
			}
			return s.VMStateSize, nil
		}
	}
	return 0, errf(ErrNotFound, "Snapshot '%s' does not exist in one or more devices", name)
}
