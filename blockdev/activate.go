package blockdev

import "tlcvm/compat/qerror"

// Image activation: QEMU's BDRV_O_INACTIVE, which lets two processes (a migration's source
// and destination) have the same image open while only one of them uses it.
//
//	-incoming given (SetIncoming)      every node opened starts inactive: no lock, no write
//	  destination completes            ActivateAll (unless late-block-activate and the
//	  (or cont, or postcopy's run)     guest does not start: then the next cont does it)
//	source completes a migration       InactivateAll after its disks are flushed
//	  fails, is cancelled, or cont     ActivateAll
//
// An inactive backend asks nothing of its root and shares everything (QEMU's disable_perm);
// an inactive qcow2 node asks only consistent read of its file and shares everything; an
// inactive file node keeps the locks it held when it became inactive and takes none later
// (file-posix's raw_handle_perm_lock returns early for inactive nodes). So a destination
// started with -incoming holds no lock byte, and a source that completed holds byte 100
// (consistent read) of a qcow2 image and none of a raw one, as QEMU 7.2's do. Activation
// goes bottom-up: file nodes, then format nodes (whose cached qcow2 metadata is dropped
// and their header read again: the other process may have changed the image), then the
// backends; a lock conflict puts the step back to inactive and returns QEMU's error.

// SetIncoming makes the nodes opened from now on inactive (on: the machine is in
// inmigrate) or active (off).
func (g *Graph) SetIncoming(on bool) {
	g.mu.Lock()
	g.incoming = on
	g.mu.Unlock()
}

// disabled reports whether b takes no permissions: it was inactivated, or its root is
// inactive (a backend made over an inactive node).
func (b *Backend) disabled() bool {
	return b.inactive || (b.Root != nil && b.Root.inactive)
}

// inactiveFilePerms is what an inactive format node asks of its file child.
func inactiveFilePerms() (Perm, Perm) { return PermConsistentRead, PermAll }

// Inactive reports whether any node is inactive.
func (g *Graph) Inactive() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, n := range g.nodes {
		if n.inactive {
			return true
		}
	}
	return false
}

// InactivateAll is QEMU's bdrv_inactivate_all at the end of an outgoing migration: every
// backend's writes are flushed to its images, then backends, format nodes and file nodes
// become inactive in that order, each step moving the file locks as QEMU does. Nodes
// already inactive stay so. A flush error is returned and nothing changes.
func (g *Graph) InactivateAll() error {
	if err := g.flushAll(); err != nil {
		return err
	}
	// qcow2_inactivate: the persistent bitmaps go into the image (the destination, or this
	// process when it activates the image again, loads them from there); those a migration
	// carries are skipped (skipStore), as QEMU's dirty-bitmap migration marks them.
	for _, n := range g.Nodes() {
		if n.IsFormat() && !n.inactive {
			n.storeBeforeClose()
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range g.backends {
		b.inactive = true
	}
	for _, n := range g.nodes {
		if n.IsFormat() {
			n.inactive = true
		}
	}
	// Only loosening: a failure leaves locks that are merely stricter than needed.
	_ = g.refresh()
	for _, n := range g.nodes {
		n.inactive = true
	}
	return nil
}

// ActivateAll is QEMU's bdrv_activate_all (migration completed on the destination, cont,
// a failed or cancelled outgoing migration): file nodes, then format nodes (their qcow2
// metadata read again), then backends become active, taking their locks. An error (a
// lock another process holds: "Failed to get "write" lock") leaves the nodes of the
// failing step inactive.
func (g *Graph) ActivateAll() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.activate(func(*Node) bool { return true }, true)
}

// activate activates the inactive nodes pick selects (file nodes, then format nodes),
// then, when backends, every inactive backend. Graph.mu held.
func (g *Graph) activate(pick func(*Node) bool, backends bool) error {
	var formats []*Node // activated format nodes, whose bitmaps load at the end
	step := func(sel func(*Node) bool, prepare func(*Node) error) error {
		var done []*Node
		for _, n := range g.nodes {
			if !n.inactive || !pick(n) || !sel(n) {
				continue
			}
			if prepare != nil {
				if err := prepare(n); err != nil {
					for _, d := range done {
						d.inactive = true
					}
					return err
				}
			}
			n.inactive = false
			done = append(done, n)
		}
		if err := g.refresh(); err != nil {
			for _, d := range done {
				d.inactive = true
			}
			return err
		}
		return nil
	}
	if err := step(func(n *Node) bool { return !n.IsFormat() }, nil); err != nil {
		return err
	}
	if err := step((*Node).IsFormat, func(n *Node) error {
		if err := n.invalidateCache(); err != nil {
			return err
		}
		if n.Driver == DriverQcow2 && n.q != nil {
			formats = append(formats, n)
		}
		return nil
	}); err != nil {
		return err
	}
	if backends {
		if err := g.activateBackends(); err != nil {
			return err
		}
	}
	// qcow2_do_open without BDRV_O_INACTIVE loads the image's bitmaps, once the node's
	// permissions are its active ones (bdrv_activate refreshes them first). Those a
	// migration brought in already exist and win over the image's in-use copies.
	for _, n := range formats {
		if err := n.loadBitmaps(g.cfg.Warn); err != nil {
			return err
		}
	}
	return nil
}

// activateBackends activates every inactive backend, then stops the sharing of those
// activated under an export (shareAll) once nothing needs it any more (the export gone);
// until then they keep sharing everything, as QEMU only reports that failure. Graph.mu
// held.
func (g *Graph) activateBackends() error {
	var done []*Backend
	for _, b := range g.backends {
		if b.inactive {
			b.inactive = false
			done = append(done, b)
		}
	}
	if err := g.refresh(); err != nil {
		for _, b := range done {
			b.inactive = true
		}
		return err
	}
	var sharing []*Backend
	for _, b := range g.backends {
		if b.shareAll {
			b.shareAll = false
			sharing = append(sharing, b)
		}
	}
	if len(sharing) > 0 && g.refresh() != nil {
		for _, b := range sharing {
			b.shareAll = true
		}
		_ = g.refresh()
	}
	return nil
}

// activateForExport is what block-export-add does to its node before exporting it
// (blk_exp_add's bdrv_activate, so that a destination of a migration with storage takes
// writes to the image it opened under -incoming): the node and the nodes below it become
// active; the guest's backends stay inactive until the migration completes. Errors are
// ignored, as QEMU ignores them there (a node still inactive then refuses the export's
// writes). Graph.mu held.
func (g *Graph) activateForExport(n *Node) {
	below := map[*Node]bool{}
	var walk func(*Node)
	walk = func(x *Node) {
		if x == nil || below[x] {
			return
		}
		below[x] = true
		walk(x.File)
		walk(x.Backing)
		if x.filter != nil {
			walk(x.Filtered())
		}
	}
	walk(n)
	was := map[*Node]bool{}
	for x := range below {
		was[x] = x.inactive
	}
	for _, b := range g.backends {
		if b.Root != nil && was[b.Root] && !b.inactive && g.incoming {
			b.shareAll = true
		}
	}
	_ = g.activate(func(x *Node) bool { return below[x] }, false)
}

// invalidateCache drops what a format node knows of its image (qcow2_co_invalidate_cache):
// the header is read again and the metadata caches emptied.
func (n *Node) invalidateCache() error {
	if n.Driver != DriverQcow2 || n.File == nil || n.File.f == nil {
		return nil
	}
	h, err := ReadQcow2Header(n.File.f, n.File.Size(), !n.ReadOnly)
	if err != nil {
		return qerror.Prepend(err, "Could not reopen qcow2 layer: ")
	}
	n.io.Lock()
	n.hdr = h
	n.q = newQcow2(n, h)
	n.io.Unlock()
	return nil
}

// flushAll flushes every backend's root, returning the first error.
func (g *Graph) flushAll() error {
	g.mu.Lock()
	var roots []*Backend
	for _, b := range g.backends {
		if b.Root != nil && !b.disabled() {
			roots = append(roots, b)
		}
	}
	g.mu.Unlock()
	var first error
	for _, b := range roots {
		b.io.RLock()
		if n := b.Root; n != nil {
			if err := n.Flush(); err != nil && first == nil {
				first = err
			}
		}
		b.io.RUnlock()
	}
	return first
}
