package blockdev

// DriveDel is HMP drive_del (block/monitor/block-hmp-cmds.c hmp_drive_del): a node name is
// blockdev-del'd; a -drive's backend loses its medium (the nodes only it kept open are
// closed) and its name, so the device on it, if any, sees no medium from then on and leaves
// with its backend when it is unplugged; a backend without a device goes at once. Backends
// of blockdev-add nodes are refused.
func (g *Graph) DriveDel(id string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.node(id) != nil {
		return g.del(id)
	}
	b := g.backend(id)
	if b == nil {
		return errf(ErrNotFound, "Device '%s' not found", id)
	}
	if b.Drive == nil {
		return errf(ErrUnsupported, "Deleting device added with blockdev-add is not supported")
	}
	if r := b.Root; r != nil {
		if err := r.opBlocked(opDriveDel); err != nil {
			return err
		}
		b.io.Lock()
		b.Root = nil
		b.io.Unlock()
		r.removeParent(func(e edge) bool { return e.backend == b })
		if !r.monitorOwned() && len(r.parents) == 0 {
			g.removeTree(r)
		}
	}
	b.Name = "" // monitor_remove_blk: anonymous from now on
	if b.Device == nil {
		g.removeBackend(b)
	} else {
		b.reportErrors = true // blk_set_on_error(report, report): no I/O status any more
	}
	return g.refresh()
}
