package blockdev

// SnapshotSyncAction is blockdev-snapshot-sync (and HMP snapshot_blkdev), alone or in a
// transaction: QEMU's external_snapshot_action for a snapshot file. It finds the node
// (bdrv_lookup_bs: a device's root, else a node name), creates the overlay image with the
// node as its backing file unless mode is "existing" (bdrv_img_create, which prints its
// "Formatting …" line), opens it without its backing chain (the given node name, else an
// automatic one) and then appends it as blockdev-snapshot does: the overlay takes the
// node's place under its parents and the node becomes its read-only backing image.
//
//	blockdev-snapshot-sync device=drive0 snapshot-file=/s.qcow2
//	  drive0 ─ #block123 (qcow2 /s.qcow2) ─backing─ old top (read-only)
type SnapshotSyncAction struct {
	Device, NodeName string // the node: a device's root, else a node name
	File             string // snapshot-file
	OverlayName      string // snapshot-node-name ("" for an automatic one)
	Format           string // "" for qcow2
	Mode             string // "existing" or "absolute-paths" ("" for absolute-paths)

	snap    SnapshotAction
	overlay *Node // opened here; closed again on abort
}

func (a *SnapshotSyncAction) prepare(g *Graph, txn *JobTxn) error {
	n, err := g.lookup(a.Device, a.NodeName)
	if err != nil {
		return err
	}
	if err := n.opBlocked(opExternalSnapshot); err != nil {
		return err
	}
	format := a.Format
	if format == "" {
		format = DriverQcow2
	}
	if a.NodeName != "" && a.OverlayName == "" {
		return errf(ErrInvalid, "New overlay node-name missing")
	}
	if a.OverlayName != "" {
		if _, err := g.lookup(a.OverlayName, a.OverlayName); err == nil {
			return errf(ErrExists, "New overlay node-name already in use")
		}
	}
	if a.Mode != "existing" {
		s := SkipImplicit(n)
		if err := g.imgCreate(a.File, format, s.Filename(), skipFilters(s).Driver, n.Size()); err != nil {
			return err
		}
	}
	ov, err := g.openTarget(a.File, format, a.OverlayName, n, true, false)
	if err != nil {
		return err
	}
	a.overlay = ov
	a.snap = SnapshotAction{Node: n.Name, Overlay: ov.Name}
	return a.snap.prepare(g, txn)
}

func (a *SnapshotSyncAction) commit(g *Graph) { a.snap.commit(g) }

func (a *SnapshotSyncAction) abort(g *Graph) {
	a.snap.abort(g)
	if a.overlay != nil {
		g.removeTree(a.overlay)
		a.overlay = nil
	}
}

// clean drops the transaction's reference to the overlay (external_snapshot_clean's
// bdrv_unref): an overlay that took the place of a node nobody used (a -blockdev node
// without a device or parent node) has no parent either, and is closed again, as in QEMU
// 7.2, leaving the node read-only and the new image file behind.
func (a *SnapshotSyncAction) clean(g *Graph) {
	a.snap.clean(g)
	if ov := a.overlay; ov != nil && ov.Backing != nil && len(ov.parents) == 0 && !ov.monitorOwned() {
		g.removeTree(ov)
		_ = g.refresh()
	}
}

// SnapshotSync runs one blockdev-snapshot-sync.
func (g *Graph) SnapshotSync(a SnapshotSyncAction) error { return g.Transaction([]Action{&a}, false) }
