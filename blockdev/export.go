package blockdev

// A block export's hold on its node (QEMU's export BlockBackend, block/export/export.c): it
// takes consistent read, and write when the export is writable, and shares everything;
// an NBD export then stops sharing resize (nbd_export_create), so the node keeps its size
// while it is exported. Permission conflicts name it "an unnamed block device", and
// blockdev-del refuses the node ("Node x is in use").

// ExportUse is an export's hold on a node: an anonymous Backend that no query lists (it
// has neither a name nor a device), so that the node is in use by a "block device" as
// blockdev-del and permission conflicts see it, and a graph change that replaces the
// node (blockdev-snapshot) moves the export along.
type ExportUse struct {
	g *Graph
	b *Backend
}

// UseForExport attaches an export to the node called node (blk_exp_add's lookup, read-only
// check and blk_insert_bs).
func (g *Graph) UseForExport(node string, writable bool) (*ExportUse, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, err := g.lookup("", node)
	if err != nil {
		return nil, err
	}
	g.activateForExport(n)
	if writable && n.ReadOnly {
		return nil, errf(ErrReadOnly, "Cannot export read-only node as writable")
	}
	b := &Backend{Root: n, perm: PermConsistentRead, shared: PermAll}
	if writable {
		b.perm |= PermWrite
	}
	n.addParent(edge{backend: b, role: "root"})
	if err := g.refresh(); err != nil {
		n.removeParent(func(e edge) bool { return e.backend == b })
		return nil, err
	}
	return &ExportUse{g: g, b: b}, nil
}

// LookupNode finds a node by drive (backend) or node name, as bdrv_lookup_bs(name, name)
// does, with its texts.
func (g *Graph) LookupNode(name string) (*Node, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lookup(name, name)
}

// Node is the exported node (the export's root).
func (u *ExportUse) Node() *Node {
	u.b.io.RLock()
	defer u.b.io.RUnlock()
	return u.b.Root
}

// Do runs f on the exported node, holding the export's backend shared so that a graph
// change under it waits for the request (see backendio.go).
func (u *ExportUse) Do(f func(n *Node) error) error {
	u.b.io.RLock()
	defer u.b.io.RUnlock()
	return f(u.b.Root)
}

// ShareNoResize stops sharing resize (nbd_export_create's blk_set_perm).
func (u *ExportUse) ShareNoResize() error {
	g := u.g
	g.mu.Lock()
	defer g.mu.Unlock()
	old := u.b.shared
	u.b.shared &^= PermResize
	if err := g.refresh(); err != nil {
		u.b.shared = old
		return err
	}
	return nil
}

// Release drops the hold (the export is deleted).
func (u *ExportUse) Release() {
	g := u.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if r := u.b.Root; r != nil {
		r.removeParent(func(e edge) bool { return e.backend == u.b })
	}
	_ = g.refresh()
}

// FindBitmapInChain finds a bitmap by name in the node and below it, through filters (a
// raw node's file) and backing files (bdrv_filter_or_cow_bs), as an NBD export looks up a
// bitmap given by name alone; it returns the node it was found on.
func (n *Node) FindBitmapInChain(name string) (*Bitmap, *Node, bool) {
	next := func(cur *Node) *Node {
		if cur.Driver == DriverRaw {
			return cur.File
		}
		return cur.Backing
	}
	for cur := n; cur != nil; cur = next(cur) {
		if b, ok := cur.Bitmap(name); ok {
			return b, cur, true
		}
	}
	return nil, nil, false
}
