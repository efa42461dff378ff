package blockdev

// Reopen is blockdev-reopen (QEMU 7.2's qmp_blockdev_reopen over bdrv_reopen_multiple):
// each node given is opened again with exactly the options given, those left out taking
// their defaults (read-only and auto-read-only off, discard ignore, detect-zeroes off, no
// cache flags). What tlcvm can change in place: read-only (with the permissions checked
// again, the file nodes under auto-read-only following, and a qcow2 node's persistent
// bitmaps stored and made read-only or marked in use again, as qcow2_reopen_bitmaps_ro/_rw
// do), auto-read-only, discard, detect-zeroes and the cache flags. The options no driver
// can change are refused with QEMU's "Cannot change the option" texts; a different
// file or backing child is refused (tlcvm does not change a node's children by reopen).
// All nodes change or none does.
func (g *Graph) Reopen(list []*Options) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	nodes := make([]*Node, len(list))
	for i, o := range list {
		if o.NodeName == "" {
			return errf(ErrInvalid, "node-name not specified")
		}
		if nodes[i] = g.node(o.NodeName); nodes[i] == nil {
			return errf(ErrNotFound, "Failed to find node with node-name='%s'", o.NodeName)
		}
	}
	for i, o := range list {
		if err := nodes[i].checkReopen(o); err != nil {
			return err
		}
	}
	// qcow2_reopen_prepare of a node going read-only: flushed, its persistent bitmaps
	// stored and made read-only while it can still write; undone if the reopen fails.
	type saved struct {
		n       *Node
		state   reopenState
		toRO    bool
		changed bool
	}
	old := make([]saved, len(list))
	for i, o := range list {
		n := nodes[i]
		old[i] = saved{n: n, state: n.reopenState()}
		if !boolOr(o.ReadOnly, false) || n.ReadOnly {
			continue
		}
		old[i].toRO = true
		for _, s := range old[:i] {
			if s.n == n && s.toRO {
				old[i].toRO = false // already prepared
			}
		}
	}
	undo := func() {
		for i := len(old) - 1; i >= 0; i-- {
			if old[i].changed {
				old[i].n.setReopenState(old[i].state)
			}
		}
		_ = g.refresh()
		for _, s := range old {
			if s.toRO {
				_ = s.n.reopenBitmapsRW()
			}
		}
	}
	for i, s := range old {
		if !s.toRO {
			continue
		}
		err := s.n.Flush()
		if err == nil {
			err = s.n.reopenBitmapsRO()
		}
		if err != nil {
			for j := range old[i+1:] {
				old[i+1+j].toRO = false
			}
			old[i].toRO = false
			undo()
			return err
		}
	}
	for i, o := range list {
		old[i].changed = true
		nodes[i].setReopenState(reopenState{
			readOnly: boolOr(o.ReadOnly, false), autoReadOnly: boolOr(o.AutoReadOnly, false),
			discard: or(o.Discard, "ignore"), detectZeroes: or(o.DetectZeroes, "off"),
			direct: boolOr(o.CacheDirect, false), noFlush: boolOr(o.CacheNoFlush, false),
		})
	}
	// bdrv_node_refresh_perm: a node this reopen makes read-only while a user writes.
	for _, s := range old {
		if perm, _ := cumulative(s.n); s.n.ReadOnly && perm&(PermWrite|PermWriteUnchanged) != 0 {
			undo()
			if s.state.readOnly {
				return errf(ErrReadOnly, "Block node is read-only")
			}
			return errf(ErrReadOnly, "Read-only block node '%s' cannot support read-write users", s.n.Name)
		}
	}
	if err := g.refresh(); err != nil {
		undo()
		return err
	}
	// qcow2_reopen_commit_post of a node back to read-write: its bitmaps in use again.
	for i, s := range old {
		n := s.n
		if !n.ReadOnly && s.state.readOnly {
			if err := n.reopenBitmapsRW(); err != nil {
				return err
			}
		}
		o := *list[i]
		n.opts = &o
	}
	return nil
}

// reopenState is what a reopen changes in place.
type reopenState struct {
	readOnly, autoReadOnly bool
	discard, detectZeroes  string
	direct, noFlush        bool
}

func (n *Node) reopenState() reopenState {
	return reopenState{n.ReadOnly, n.AutoReadOnly, n.Discard, n.DetectZeroes, n.Direct, n.NoFlush}
}

// setReopenState changes the flags with the node drained.
func (n *Node) setReopenState(s reopenState) {
	n.io.Lock()
	defer n.io.Unlock()
	n.ReadOnly, n.AutoReadOnly, n.Discard, n.DetectZeroes, n.Direct, n.NoFlush =
		s.readOnly, s.autoReadOnly, s.discard, s.detectZeroes, s.direct, s.noFlush
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// checkReopen refuses what a reopen of n with o cannot change (bdrv_reopen_prepare's
// checks of the options left unhandled, and of the children).
func (n *Node) checkReopen(o *Options) error {
	was := n.opts
	if was == nil {
		was = &Options{}
	}
	cannot := func(opt string) error { return errf(ErrInvalid, "Cannot change the option '%s'", opt) }
	switch {
	case o.Driver != n.Driver:
		return cannot("driver")
	case boolOr(o.ForceShare, false) != boolOr(was.ForceShare, false):
		return cannot("force-share")
	}
	if n.Driver == DriverFile {
		switch {
		case o.Filename != n.filename:
			return cannot("filename")
		case or(o.Locking, "auto") != or(was.Locking, "auto"):
			return cannot("locking")
		case or(o.AIO, "threads") != or(was.AIO, "threads"):
			return cannot("aio")
		}
		return nil
	}
	if n.null != nil {
		return checkNullReopen(was.Null, o.Null)
	}
	switch f := o.File; {
	case f == nil:
		return errf(ErrInvalid, "A block device must be specified for \"file\"")
	case f.Options != nil:
		return cannot("file.driver")
	case n.File == nil || f.Node != n.File.Name:
		return errf(ErrUnsupported, "tlcvm: blockdev-reopen does not replace the 'file' child of '%s'", n.Name)
	}
	if n.Driver != DriverQcow2 {
		return nil
	}
	switch b := o.Backing; {
	case b == nil && n.Backing != nil:
		return errf(ErrInvalid, "backing is missing for '%s'", n.Name)
	case b == nil, b.Null && n.Backing == nil, !b.Null && b.Options == nil && n.Backing != nil && b.Node == n.Backing.Name:
		return nil
	case b.Options != nil:
		return cannot("backing.driver")
	}
	return errf(ErrUnsupported, "tlcvm: blockdev-reopen does not replace the 'backing' child of '%s'", n.Name)
}
