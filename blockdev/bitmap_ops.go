package blockdev

// The monitor's operations on dirty bitmaps (QEMU 7.2's block/monitor/bitmap-qmp-cmds.c
// and the bitmap actions of blockdev.c's transaction), with QEMU's checks and texts. Each
// is a prepare step returning a TxnStep whose Commit or Abort the caller runs: the QMP
// command commits at once, a transaction commits every step once all are prepared and
// aborts the prepared ones, newest first, when one fails.

// TxnStep is one prepared transaction action.
type TxnStep struct {
	Commit func()
	Abort  func()
}

func (s *TxnStep) commit() {
	if s != nil && s.Commit != nil {
		s.Commit()
	}
}

// Run commits a prepared step (a single command outside a transaction).
func Run(s *TxnStep, err error) error {
	if err != nil {
		return err
	}
	s.commit()
	return nil
}

// Check flags of bdrv_dirty_bitmap_check.
type bitmapCheck uint8

const (
	checkBusy bitmapCheck = 1 << iota
	checkRO
	checkInconsistent
	checkDefault = checkBusy | checkRO | checkInconsistent
	checkAllowRO = checkBusy | checkInconsistent
)

// check is bdrv_dirty_bitmap_check. Caller holds the node's bitmap lock.
func (b *Bitmap) check(c bitmapCheck) error {
	switch {
	case c&checkBusy != 0 && b.busy:
		return errf(ErrInUse, "Bitmap '%s' is currently in use by another operation and cannot be used", b.name)
	case c&checkRO != 0 && b.readonly:
		return errf(ErrReadOnly, "Bitmap '%s' is readonly and cannot be modified", b.name)
	case c&checkInconsistent != 0 && b.inconsistent:
		return errf(ErrInvalid, "Bitmap '%s' is inconsistent and cannot be used", b.name).
			AppendHint("Try block-dirty-bitmap-remove to delete this bitmap from disk\n")
	}
	return nil
}

// Check is bdrv_dirty_bitmap_check with BDRV_BITMAP_ALLOW_RO (busy, inconsistent): what an
// export or a job that only reads the bitmap requires.
func (b *Bitmap) Check() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.check(checkAllowRO)
}

// CheckWritable is bdrv_dirty_bitmap_check with BDRV_BITMAP_DEFAULT: what a job that
// changes the bitmap requires.
func (b *Bitmap) CheckWritable() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.check(checkDefault)
}

// lookupBitmap is block_dirty_bitmap_lookup. Caller holds g.mu.
func (g *Graph) lookupBitmap(node, name string) (*Bitmap, error) {
	n, err := g.lookup(node, node)
	if err != nil {
		return nil, errf(ErrNotFound, "Node '%s' not found", node)
	}
	b, ok := n.Bitmap(name)
	if !ok {
		return nil, errf(ErrNotFound, "Dirty bitmap '%s' not found", name)
	}
	return b, nil
}

// LookupBitmap finds a bitmap by node (or drive) name and bitmap name, with QEMU's texts.
func (g *Graph) LookupBitmap(node, name string) (*Bitmap, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lookupBitmap(node, name)
}

// BitmapAddOptions are block-dirty-bitmap-add's arguments; Granularity 0 means the node's
// default.
type BitmapAddOptions struct {
	Node, Name           string
	Granularity          int64
	Persistent, Disabled bool
}

// DefaultGranularity is bdrv_get_default_bitmap_granularity: the cluster size of a qcow2
// node within [4 KiB, 64 KiB], else 64 KiB.
func (n *Node) DefaultGranularity() int64 {
	if n.hdr != nil {
		return min(max(n.hdr.ClusterSize(), 4096), 65536)
	}
	return 65536
}

// PrepareBitmapAdd is block-dirty-bitmap-add (abort: the bitmap goes again).
func (g *Graph) PrepareBitmapAdd(o BitmapAddOptions) (*TxnStep, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.prepareBitmapAdd(o)
}

// prepareBitmapAdd is PrepareBitmapAdd with the graph lock held (a transaction's prepare).
func (g *Graph) prepareBitmapAdd(o BitmapAddOptions) (*TxnStep, error) {
	if o.Name == "" {
		return nil, errf(ErrInvalid, "Bitmap name cannot be empty")
	}
	n, err := g.lookup(o.Node, o.Node)
	if err != nil {
		return nil, err
	}
	gran := o.Granularity
	if gran != 0 {
		if gran < BitmapMinGranularity || gran&(gran-1) != 0 {
			return nil, errf(ErrInvalid, "Granularity must be power of 2 and at least 512")
		}
	} else {
		gran = n.DefaultGranularity()
	}
	if o.Persistent {
		if err := n.canStoreNewBitmap(o.Name, gran); err != nil {
			return nil, err
		}
	}
	b, err := n.CreateBitmap(o.Name, gran)
	if err != nil {
		return nil, err
	}
	n.bmMu.Lock()
	b.disabled, b.persistent = o.Disabled, o.Persistent
	n.bmMu.Unlock()
	return &TxnStep{Abort: func() { n.ReleaseBitmap(b) }}, nil
}

// PrepareBitmapRemove is block-dirty-bitmap-remove. A persistent bitmap leaves the image at
// once (even if the transaction is aborted later, as in QEMU); the in-memory bitmap is
// busy and not stored until the commit releases it.
func (g *Graph) PrepareBitmapRemove(node, name string) (*TxnStep, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.prepareBitmapRemove(node, name)
}

// prepareBitmapRemove is PrepareBitmapRemove with the graph lock held (a transaction's prepare).
func (g *Graph) prepareBitmapRemove(node, name string) (*TxnStep, error) {
	b, err := g.lookupBitmap(node, name)
	if err != nil {
		return nil, err
	}
	n := b.node
	n.bmMu.Lock()
	err = b.check(checkBusy | checkRO)
	persistent := b.persistent
	n.bmMu.Unlock()
	if err != nil {
		return nil, err
	}
	if persistent {
		if err := n.removeStored(name); err != nil {
			return nil, err
		}
	}
	n.bmMu.Lock()
	b.skipStore, b.busy = true, true
	n.bmMu.Unlock()
	return &TxnStep{
		Commit: func() {
			n.bmMu.Lock()
			b.busy = false
			n.releaseLocked(b)
			n.bmMu.Unlock()
		},
		Abort: func() {
			n.bmMu.Lock()
			b.skipStore, b.busy = false, false
			n.bmMu.Unlock()
		},
	}, nil
}

// prepareOn looks a bitmap up, checks it and runs change on it under its node's bitmap
// lock; change returns what puts the bitmap back, which the step's Abort runs under the
// same lock. Caller holds g.mu.
func (g *Graph) prepareOn(node, name string, c bitmapCheck, change func(b *Bitmap) (undo func())) (*TxnStep, error) {
	b, err := g.lookupBitmap(node, name)
	if err != nil {
		return nil, err
	}
	n := b.node
	n.bmMu.Lock()
	defer n.bmMu.Unlock()
	if err := b.check(c); err != nil {
		return nil, err
	}
	undo := change(b)
	return &TxnStep{Abort: func() {
		n.bmMu.Lock()
		defer n.bmMu.Unlock()
		undo()
	}}, nil
}

// PrepareBitmapClear is block-dirty-bitmap-clear (abort: the bits come back).
func (g *Graph) PrepareBitmapClear(node, name string) (*TxnStep, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.prepareBitmapClear(node, name)
}

func (g *Graph) prepareBitmapClear(node, name string) (*TxnStep, error) {
	return g.prepareOn(node, name, checkDefault, func(b *Bitmap) func() {
		words, count := b.snapshot()
		clear(b.words)
		b.count = 0
		return func() { b.restore(words, count) }
	})
}

// PrepareBitmapEnable is block-dirty-bitmap-enable (disable when enable is false).
func (g *Graph) PrepareBitmapEnable(node, name string, enable bool) (*TxnStep, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.prepareBitmapEnable(node, name, enable)
}

func (g *Graph) prepareBitmapEnable(node, name string, enable bool) (*TxnStep, error) {
	return g.prepareOn(node, name, checkAllowRO, func(b *Bitmap) func() {
		was := b.disabled
		b.disabled = !enable
		return func() { b.disabled = was }
	})
}

// MergeSource is one of block-dirty-bitmap-merge's sources: a bitmap of the target's node
// (Node empty) or of any node.
type MergeSource struct {
	Node, Name string
}

// PrepareBitmapMerge is block-dirty-bitmap-merge: the sources are merged into an
// anonymous bitmap of the target's granularity, then into the target, which is unchanged
// on any error (abort: the target's old bits come back).
func (g *Graph) PrepareBitmapMerge(node, target string, sources []MergeSource) (*TxnStep, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.prepareBitmapMerge(node, target, sources)
}

// prepareBitmapMerge is PrepareBitmapMerge with the graph lock held (a transaction's prepare).
func (g *Graph) prepareBitmapMerge(node, target string, sources []MergeSource) (*TxnStep, error) {
	dst, err := g.lookupBitmap(node, target)
	if err != nil {
		return nil, err
	}
	n := dst.node
	anon := newBitmap(n, "", dst.Granularity(), n.Size())
	for _, s := range sources {
		var src *Bitmap
		if s.Node == "" {
			b, ok := n.Bitmap(s.Name)
			if !ok {
				return nil, errf(ErrNotFound, "Dirty bitmap '%s' not found", s.Name)
			}
			src = b
		} else if src, err = g.lookupBitmap(s.Node, s.Name); err != nil {
			return nil, err
		}
		if err := mergeChecked(anon, src); err != nil {
			return nil, err
		}
	}
	n.bmMu.Lock()
	defer n.bmMu.Unlock()
	if err := dst.check(checkDefault); err != nil {
		return nil, err
	}
	if dst.size != anon.size {
		return nil, errf(ErrInvalid, "Bitmaps are of different sizes (destination size is %d, source size is %d) and can't be merged", dst.size, anon.size)
	}
	words, count := dst.snapshot()
	dst.mergeFrom(anon)
	return &TxnStep{Abort: func() {
		n.bmMu.Lock()
		dst.restore(words, count)
		n.bmMu.Unlock()
	}}, nil
}

// mergeChecked is bdrv_merge_dirty_bitmap from src into an anonymous bitmap dst that no
// node lists: the source must be consistent and of the same size.
func mergeChecked(dst, src *Bitmap) error {
	src.mu.Lock()
	err := src.check(checkInconsistent)
	srcSize := src.size
	src.mu.Unlock()
	if err != nil {
		return err
	}
	if srcSize != dst.size {
		return errf(ErrInvalid, "Bitmaps are of different sizes (destination size is %d, source size is %d) and can't be merged", dst.size, srcSize)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	dst.mergeFrom(src)
	return nil
}
