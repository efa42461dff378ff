package blockdev

// Named dirty bitmaps (BdrvDirtyBitmap with a name): what block-dirty-bitmap-add puts on
// a node and a backup reads (sync=bitmap, incremental) and updates (bitmap-mode). This is
// the part the block jobs and libvirt's job flows need (virsh blockcommit --pivot and
// blockcopy --pivot add and remove a temporary bitmap in a transaction): adding, removing,
// recording writes through the node's write hook (bitmap.go), and the successor a backup
// freezes a bitmap with. Persistence in the qcow2 bitmaps extension, clear, enable,
// disable and merge belong to the dirty-bitmap commands proper.

// NamedBitmap is a node's dirty bitmap with a name, or one a job keeps on the node
// without a name (internal: a mirror's bitmap on its source, a backup's copy bitmap, a
// frozen bitmap's successor), which the queries list too, as QEMU lists every bitmap of a
// node.
type NamedBitmap struct {
	Name       string
	Persistent bool
	internal   bool
	recording  bool // internal: whether it records the node's writes
	*Bitmap
	node    *Node
	untrack func()
	// successor, while a backup holds the bitmap (frozen, busy), records the writes
	// that reach the node meanwhile (bdrv_dirty_bitmap_create_successor).
	successor        *Bitmap
	untrackSuccessor func()
}

// Busy reports whether an operation holds the bitmap (a backup reading it).
func (b *NamedBitmap) Busy() bool { return b.successor != nil }

// Recording is bdrv_dirty_bitmap_recording: writes are recorded, by the bitmap or, while
// it is frozen, by its successor.
func (b *NamedBitmap) Recording() bool {
	if b.internal {
		return b.recording
	}
	if b.successor != nil {
		return b.successor.Enabled()
	}
	return b.Enabled()
}

// Bitmaps returns the node's named bitmaps, newest first (query-named-block-nodes'
// dirty-bitmaps). Graph lock held (Lock).
func (n *Node) Bitmaps() []*NamedBitmap { return n.bitmaps }

// findBitmap is bdrv_find_dirty_bitmap.
func (n *Node) findBitmap(name string) *NamedBitmap {
	for _, b := range n.bitmaps {
		if !b.internal && b.Name == name {
			return b
		}
	}
	return nil
}

// AddBitmap is block-dirty-bitmap-add (block_dirty_bitmap_add): granularity 0 is the
// node's default.
func (g *Graph) AddBitmap(node, name string, granularity int64, persistent, disabled bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, err := g.addBitmap(node, name, granularity, persistent, disabled)
	return err
}

func (g *Graph) addBitmap(node, name string, granularity int64, persistent, disabled bool) (*NamedBitmap, error) {
	if name == "" {
		return nil, errf(ErrInvalid, "Bitmap name cannot be empty")
	}
	n, err := g.lookup(node, node)
	if err != nil {
		return nil, err
	}
	if granularity != 0 {
		if granularity < 512 || granularity&(granularity-1) != 0 {
			return nil, errf(ErrInvalid, "Granularity must be power of 2 and at least 512")
		}
	} else {
		granularity = defaultGranularity(n)
	}
	if persistent {
		return nil, errf(ErrUnsupported, "tlcvm: persistent dirty bitmaps are not supported yet")
	}
	if n.findBitmap(name) != nil {
		return nil, errf(ErrExists, "Bitmap already exists: %s", name)
	}
	if len(name) > 1023 {
		return nil, errf(ErrInvalid, "Bitmap name too long: %s", name)
	}
	b := &NamedBitmap{Name: name, Persistent: persistent, Bitmap: NewBitmap(max(n.Size(), 1), granularity), node: n}
	b.SetEnabled(!disabled)
	b.untrack = n.TrackWrites(b.Bitmap)
	n.bitmaps = append([]*NamedBitmap{b}, n.bitmaps...)
	return b, nil
}

// RemoveBitmap is block-dirty-bitmap-remove.
func (g *Graph) RemoveBitmap(node, name string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, err := g.lookupBitmap(node, name)
	if err != nil {
		return err
	}
	if b.Busy() {
		return errf(ErrInUse, "Bitmap '%s' is currently in use by another operation and cannot be used", name)
	}
	b.release()
	return nil
}

// lookupBitmap is block_dirty_bitmap_lookup.
func (g *Graph) lookupBitmap(node, name string) (*NamedBitmap, error) {
	n := g.node(node)
	if n == nil {
		if b := g.backend(node); b != nil && b.Root != nil {
			n = b.Root
		}
	}
	if n == nil {
		return nil, errf(ErrNotFound, "Node '%s' not found", node)
	}
	b := n.findBitmap(name)
	if b == nil {
		return nil, errf(ErrNotFound, "Dirty bitmap '%s' not found", name)
	}
	return b, nil
}

// addInternalBitmap lists a job's bitmap on n (newest first); the returned function
// takes it off.
func (n *Node) addInternalBitmap(b *Bitmap, recording bool) func() {
	nb := &NamedBitmap{internal: true, recording: recording, Bitmap: b, node: n, untrack: func() {}}
	n.bitmaps = append([]*NamedBitmap{nb}, n.bitmaps...)
	return nb.release
}

// release detaches the bitmap from its node.
func (b *NamedBitmap) release() {
	b.untrack()
	n := b.node
	for i, x := range n.bitmaps {
		if x == b {
			n.bitmaps = append(n.bitmaps[:i:i], n.bitmaps[i+1:]...)
			break
		}
	}
}

// freeze is bdrv_dirty_bitmap_create_successor: the bitmap stops recording (busy) and a
// successor records the writes from now on.
func (b *NamedBitmap) freeze() {
	b.successor = NewBitmap(b.Size(), b.Granularity())
	b.successor.SetEnabled(b.Enabled())
	b.untrack()
	untrack := b.node.TrackWrites(b.successor)
	unlist := b.node.addInternalBitmap(b.successor, b.successor.Enabled())
	b.untrackSuccessor = func() { untrack(); unlist() }
}

// thaw ends a freeze: abdicate (true) makes the successor the bitmap (it holds the writes
// since the freeze); reclaim (false) merges the successor into the bitmap.
func (b *NamedBitmap) thaw(abdicate bool) {
	s := b.successor
	b.untrackSuccessor()
	if abdicate {
		b.Bitmap.Clear()
	}
	b.Bitmap.Merge(s)
	b.successor = nil
	b.untrack = b.node.TrackWrites(b.Bitmap)
}
