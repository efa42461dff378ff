package blockdev

import "sync"

// Filter nodes: the nodes QEMU's block jobs insert above the node they work on, visible in
// query-named-block-nodes (and, unless implicit, in query-block):
//
//	driver             child       inserted by          what it does to a request
//	copy-on-read       file        block-stream         passes it on
//	commit_top         backing     block-commit         passes it on (read-only; takes nothing)
//	mirror_top         backing     mirror, active commit  after a write: the job's bitmap;
//	                                                    write-blocking: the target too
//	copy-before-write  file+target backup               before a write: the old data to the target
//
// A filter takes over the parents of the node it filters (backends and nodes, not the
// jobs holding it) and has it as its only filtered child; a job's hooks (filterHooks)
// see every write-type request that passes. An implicit filter (no filter-node-name; never
// a backup's copy-before-write) is skipped by query-block, as bdrv_skip_implicit_filters
// does.

// Filter drivers.
const (
	DriverCOR       = "copy-on-read"
	DriverCommitTop = "commit_top"
	DriverMirrorTop = "mirror_top"
	DriverCBW       = "copy-before-write"
)

// writeKind is the kind of a write-type request passing a filter.
type writeKind uint8

const (
	writeData writeKind = iota
	writeZeroes
	writeDiscard
)

// filterHooks are what a job adds to the writes passing its filter: write runs do (the
// request on the filtered child) and whatever must happen around it. p is the data of a
// writeData request (nil otherwise); fl the flags of a writeZeroes.
type filterHooks interface {
	write(k writeKind, p []byte, off, length int64, fl ZeroFlags, do func() error) error
}

// filterState is a filter node's state.
type filterState struct {
	implicit bool
	hooks    filterHooks // set by the job once it runs; nil: requests pass unchanged
	commit   bool        // mirror_top of an active commit (bdrv_mirror_top_child_perm)
	stop     bool        // mirror_top whose job is ending: it forwards no permission
	target   *Node       // copy-before-write: the target child
	// childMu guards the filter's children (File, Backing, target) once the filter is in
	// the graph: setChild changes them under it (and the node's io lock), Filtered reads
	// them under it, so that a request sizing the medium without the io lock (a backend's
	// range check) sees a whole pointer. A leaf lock.
	childMu sync.Mutex
}

// IsFilter reports whether n is one of the jobs' filter nodes.
func (n *Node) IsFilter() bool { return n.filter != nil }

// Implicit reports whether n is a filter inserted without a node name of the user's.
func (n *Node) Implicit() bool { return n.filter != nil && n.filter.implicit }

// Filtered is a filter node's filtered child (nil for other nodes).
func (n *Node) Filtered() *Node {
	if n.filter == nil {
		return nil
	}
	n.filter.childMu.Lock()
	defer n.filter.childMu.Unlock()
	if n.File != nil {
		return n.File
	}
	return n.Backing
}

// FilteredOrBacking is bdrv_filter_or_cow_bs: the filtered child of a filter, the backing
// node of a format node.
func (n *Node) FilteredOrBacking() *Node {
	if n.filter != nil {
		return n.Filtered()
	}
	return n.Backing
}

// SkipImplicit is bdrv_skip_implicit_filters: n, or below its implicit filters.
func SkipImplicit(n *Node) *Node {
	for n != nil && n.Implicit() {
		n = n.Filtered()
	}
	return n
}

// skipFilters is bdrv_skip_filters: n, or below every filter on it.
func skipFilters(n *Node) *Node {
	for n != nil && n.filter != nil {
		n = n.Filtered()
	}
	return n
}

// ClusterSize is what bdrv_get_info reports as the cluster size: a qcow2 node's, through
// filters to the node they filter (false: none).
func (n *Node) ClusterSize() (int64, bool) {
	n = skipFilters(n)
	if n == nil || n.hdr == nil {
		return 0, false
	}
	return n.hdr.ClusterSize(), true
}

// filterPerms is what a filter asks of its child in role (the drivers' bdrv_child_perm),
// given the filter's own users' permissions pp and sharing ps.
func filterPerms(f *Node, role string, pp, ps Perm) (Perm, Perm) {
	const passthrough = PermConsistentRead | PermWrite | PermResize
	switch f.Driver {
	case DriverCommitTop:
		return 0, PermAll
	case DriverMirrorTop:
		if f.filter.stop {
			return 0, PermAll
		}
		perm, shared := pp, ps
		if f.filter.commit {
			perm &^= PermConsistentRead
			shared |= PermWrite
		}
		return perm, shared
	case DriverCOR:
		return pp&passthrough | PermWriteUnchanged, ps&passthrough | PermWriteUnchanged
	case DriverCBW:
		if role == "target" {
			return PermWrite, PermAll &^ PermResize
		}
		perm, shared := pp, ps
		if len(f.parents) > 0 {
			if pp&PermWrite != 0 {
				perm |= PermConsistentRead
			}
			shared &^= PermWrite | PermResize
		}
		return perm, shared
	}
	return pp, ps
}

// insertFilter puts a new filter node of driver above n (bdrv_insert_node, bdrv_append):
// it takes over n's parents and filters n; a copy-before-write filter also gets target as
// its target child (attached first, so that parents inside its subtree stay). name ""
// gets a generated name. Graph.mu held.
func (g *Graph) insertFilter(n *Node, driver, name string, target *Node) (*Node, error) {
	if name != "" {
		if err := g.checkNodeName(name); err != nil {
			return nil, err
		}
	}
	f := &Node{g: g, Driver: driver, ReadOnly: driver == DriverCommitTop, Discard: "ignore", DetectZeroes: "off",
		filename: n.filename, shared: PermAll, filter: &filterState{implicit: name == "" && driver != DriverCBW}}
	var opened []*Node
	g.name(f, name, &opened)
	role := "file"
	if driver == DriverMirrorTop || driver == DriverCommitTop {
		role = "backing"
		f.Backing = n
	} else {
		f.File = n
	}
	n.addParent(edge{node: f, role: role})
	if target != nil {
		f.filter.target = target
		target.addParent(edge{node: f, role: "target"})
	}
	moved := g.replaceNode(n, f)
	if err := g.refresh(); err != nil {
		g.undoReplace(moved)
		n.removeParent(func(e edge) bool { return e.node == f })
		if target != nil {
			target.removeParent(func(e edge) bool { return e.node == f })
		}
		g.removeNode(f)
		return nil, err
	}
	return f, nil
}

// removeFilter drops a filter node: its parents go back to the node it filters
// (bdrv_drop_filter). Graph.mu held.
func (g *Graph) removeFilter(f *Node) {
	child := f.Filtered()
	f.io.Lock() // drain the filter: no request of a parent is still inside it
	f.filter.hooks = nil
	f.io.Unlock()
	g.replaceNode(f, child)
	g.detach(f)
	if t := f.filter.target; t != nil {
		t.removeParent(func(e edge) bool { return e.node == f })
	}
	g.removeNode(f)
	_ = g.refresh()
}

// movedEdge is one parent edge replaceNode moved, for undoReplace.
type movedEdge struct {
	e        edge
	from, to *Node
}

// replaceNode is bdrv_replace_node: every parent of from (backends and nodes, not jobs nor
// short-lived users) uses to instead, except those in to's own subtree (no loops). Each
// parent is drained while its child changes. Graph.mu held.
func (g *Graph) replaceNode(from, to *Node) []movedEdge {
	var moved []movedEdge
	keep := from.parents[:0:0]
	for _, e := range from.parents {
		if e.temp != nil || (e.node != nil && (e.node == to || to.reaches(e.node))) {
			keep = append(keep, e)
			continue
		}
		e.setChild(to)
		to.addParent(e)
		moved = append(moved, movedEdge{e, from, to})
	}
	from.parents = keep
	return moved
}

// undoReplace puts the edges replaceNode moved back.
func (g *Graph) undoReplace(moved []movedEdge) {
	for i := len(moved) - 1; i >= 0; i-- {
		m := moved[i]
		m.e.setChild(m.from)
		m.to.removeParent(func(e edge) bool { return e == m.e })
		m.from.addParent(m.e)
	}
}

// setChild makes the edge's parent use n, draining the parent meanwhile (io.go).
func (e edge) setChild(n *Node) {
	switch {
	case e.backend != nil:
		e.backend.io.Lock()
		e.backend.Root = n
		e.backend.io.Unlock()
	case e.node != nil:
		p := e.node
		p.io.Lock()
		if p.filter != nil {
			p.filter.childMu.Lock()
			defer p.filter.childMu.Unlock()
		}
		switch e.role {
		case "file":
			p.File = n
		case "backing":
			p.Backing = n
		case "target":
			p.filter.target = n
		}
		p.io.Unlock()
	}
}

// reaches reports whether x is n or in n's subtree (file, backing, target children).
func (n *Node) reaches(x *Node) bool {
	seen := map[*Node]bool{}
	var walk func(v *Node) bool
	walk = func(v *Node) bool {
		if v == nil || seen[v] {
			return false
		}
		if v == x {
			return true
		}
		seen[v] = true
		if walk(v.File) || walk(v.Backing) {
			return true
		}
		return v.filter != nil && walk(v.filter.target)
	}
	return walk(n)
}

// filterWrite runs a write-type request on a filter: through the job's hooks to the
// filtered child.
func (n *Node) filterWrite(k writeKind, p []byte, off, length int64, fl ZeroFlags) error {
	child := n.Filtered()
	do := func() error {
		switch k {
		case writeData:
			_, err := child.WriteAt(p, off)
			return err
		case writeZeroes:
			return child.WriteZeroes(off, length, fl)
		}
		return child.Unmap(off, length)
	}
	if h := n.filter.hooks; h != nil {
		return h.write(k, p, off, length, fl, do)
	}
	return do()
}
