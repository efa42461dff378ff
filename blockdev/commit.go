package blockdev

// block-commit (QEMU 7.2's qmp_block_commit and block/commit.c). Two kinds:
//
// An intermediate commit copies what the images from top down to above base hold into
// base, then drops them from the chain: the image above top (the overlay) gets base as
// its backing node and its header names base (or backing-file). A commit_top filter sits
// above top meanwhile. The copy loop (commitrun.go) keeps several extents in flight.
//
//	before:  device ──▶ active ──▶ top ──▶ mid ──▶ base      commit top-node=top base-node=base
//	running: device ──▶ active ──▶ [commit_top] ──▶ top ──▶ mid ──▶ base (read-write)
//	after:   device ──▶ active ──▶ base                      (active's header: backing file = base)
//
// An active commit (top is the active layer, or someone writes it) is a mirror job of
// type "commit" from top into base (mirror.go): it reaches ready, follows the guest's
// writes, and on job-complete the device switches to base (virsh blockcommit --pivot);
// cancelled when ready, it leaves base holding top's data and the device on top
// (--keep-overlay).

// commitBuffer is COMMIT_BUFFER_SIZE.
const commitBuffer = 512 << 10

// CommitOptions are block-commit's arguments (nil: absent).
type CommitOptions struct {
	JobID          *string
	Device         string
	BaseNode, Base *string
	TopNode, Top   *string
	BackingFile    *string
	Speed          int64
	OnError        OnError
	FilterNodeName string
	ManualFinalize bool
	ManualDismiss  bool
}

// Commit is qmp_block_commit. The device is looked up first, with DeviceNotFound when it
// does not exist (libvirt probes the command with it).
func (g *Graph) Commit(o CommitOptions) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	bs, err := g.rootNode(o.Device)
	if err != nil {
		if _, lerr := g.lookup(o.Device, o.Device); lerr != nil {
			return errf(ErrDeviceNotFound, "Device '%s' not found", o.Device)
		}
		return err
	}
	if err := bs.opBlocked(opCommitSource); err != nil {
		return err
	}
	top := bs
	switch {
	case o.TopNode != nil && o.Top != nil:
		return errf(ErrInvalid, "'top-node' and 'top' are mutually exclusive")
	case o.TopNode != nil:
		if top, err = g.lookup("", *o.TopNode); err != nil {
			return err
		}
		if !bs.chainContains(top) {
			return errf(ErrInvalid, "'%s' is not in this backing file chain", *o.TopNode)
		}
	case o.Top != nil:
		if bs.filename != *o.Top {
			top = findBackingImage(bs, *o.Top)
		}
	}
	if top == nil {
		name := "NULL"
		if o.Top != nil {
			name = *o.Top
		}
		return errf(ErrInvalid, "Top image file %s not found", name)
	}
	var base *Node
	switch {
	case o.BaseNode != nil && o.Base != nil:
		return errf(ErrInvalid, "'base-node' and 'base' are mutually exclusive")
	case o.BaseNode != nil:
		if base, err = g.lookup("", *o.BaseNode); err != nil {
			return err
		}
		if !top.chainContains(base) {
			return errf(ErrInvalid, "'%s' is not in this backing file chain", *o.BaseNode)
		}
	case o.Base != nil:
		if base = findBackingImage(top, *o.Base); base == nil {
			return errf(ErrInvalid, "Can't find '%s' in the backing chain", *o.Base)
		}
	default:
		if base = findOverlay(top, nil); base == nil {
			return errf(ErrInvalid, "There is no backimg image")
		}
	}
	for it := top; it != base.FilteredOrBacking(); it = it.FilteredOrBacking() {
		if err := it.opBlocked(opCommitTarget); err != nil {
			return err
		}
	}
	if top == base {
		return errf(ErrInvalid, "cannot commit an image into itself")
	}
	topPerm, _ := cumulative(top)
	if topPerm&PermWrite != 0 || skipFilters(top) == skipFilters(bs) {
		if o.BackingFile != nil {
			if skipFilters(top) == skipFilters(bs) {
				return errf(ErrInvalid, "'backing-file' specified, but 'top' is the active layer")
			}
			return errf(ErrInvalid, "'backing-file' specified, but 'top' has a writer on it")
		}
		id := bs.deviceName()
		if o.JobID != nil {
			id = *o.JobID
		}
		return g.commitActiveStart(id, o, top, base)
	}
	overlay := findOverlay(bs, top)
	if err := overlay.opBlocked(opCommitTarget); err != nil {
		return err
	}
	return g.commitStart(o, bs, base, top)
}

// rootNode is qmp_get_root_bs: a node (or a device's medium) only backends use.
func (g *Graph) rootNode(name string) (*Node, error) {
	n, err := g.lookup(name, name)
	if err != nil {
		return nil, err
	}
	if !n.isRoot() {
		return nil, errf(ErrInvalid, "Need a root block node")
	}
	return n, nil
}

// commitJob is a running intermediate commit.
type commitJob struct {
	g           *Graph
	top, base   *Node
	commitTop   *Node // the filter above top
	baseOverlay *Node
	backingFile *string
	onError     OnError
	baseRO      bool
	dropped     bool // bdrv_drop_intermediate ran
	targetUse   *tempUse
}

// commitStart is commit_start.
func (g *Graph) commitStart(o CommitOptions, bs, base, top *Node) error {
	if skipFilters(top) == skipFilters(base) {
		return errf(ErrInvalid, "Invalid files for merge: top and base are the same")
	}
	basePerm := PermConsistentRead | PermWrite
	if base.Size() < top.Size() {
		basePerm |= PermResize
	}
	c := &commitJob{g: g, top: top, base: base, backingFile: o.BackingFile, onError: o.OnError}
	drv := &JobDriver{Type: JobTypeCommit, Block: true, Run: c.run, Prepare: c.prepare, Abort: c.abort, Clean: c.clean}
	id := bs.deviceName()
	if o.JobID != nil {
		id = *o.JobID
	}
	j, err := g.newBlockJob(JobOptions{ID: id, Speed: o.Speed, ManualFinalize: o.ManualFinalize,
		ManualDismiss: o.ManualDismiss}, drv, bs, 0, PermAll)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		if c.targetUse != nil {
			base.removeParent(func(e edge) bool { return e.temp == c.targetUse })
		}
		if c.baseRO {
			_ = g.setReadOnly(base, true)
		}
		j.earlyFail()
		if c.commitTop != nil {
			g.removeFilter(c.commitTop)
		}
		return err
	}
	if base.ReadOnly {
		if err := g.setReadOnly(base, false); err != nil {
			return fail(err)
		}
		c.baseRO = true
	}
	if c.commitTop, err = g.insertFilter(top, DriverCommitTop, o.FilterNodeName, nil); err != nil {
		return fail(err)
	}
	c.baseOverlay = findOverlay(top, base)
	filteredBase := c.baseOverlay.Backing
	shared := PermWriteUnchanged | PermWrite
	for it := top; it != base; it = it.FilteredOrBacking() {
		if it == filteredBase {
			shared |= PermConsistentRead
		}
		if err := j.addNode(it, "intermediate node", 0, shared); err != nil {
			return fail(err)
		}
	}
	if err := j.addNode(base, "base", 0, PermAll); err != nil {
		return fail(err)
	}
	// The job's backend on base (s->base) writes and reads it.
	c.targetUse = &tempUse{perm: basePerm, shared: PermConsistentRead | PermWriteUnchanged}
	base.addParent(edge{temp: c.targetUse, role: "root"})
	if err := g.refresh(); err != nil {
		return fail(err)
	}
	j.start()
	return nil
}

// prepare is commit_prepare: the job's use of base ends, and bdrv_drop_intermediate
// puts base under the overlay, whose header then names it. Graph.mu held.
func (c *commitJob) prepare(j *Job) error {
	g := c.g
	c.releaseBase()
	c.dropped = true
	return g.dropIntermediate(c.commitTop, c.base, c.backingFile)
}

func (c *commitJob) releaseBase() {
	if c.targetUse != nil {
		u := c.targetUse
		c.base.removeParent(func(e edge) bool { return e.temp == u })
		c.targetUse = nil
		_ = c.g.refresh()
	}
}

// abort is commit_abort: the filter goes, the chain stays as it was (base may hold some
// of top's data now, which top still hides).
func (c *commitJob) abort(j *Job) {
	c.releaseBase()
	j.releaseNodes()
	if c.commitTop != nil && !c.dropped {
		c.g.removeFilter(c.commitTop)
	}
}

// clean is commit_clean: base goes back to read-only.
func (c *commitJob) clean(j *Job) {
	c.releaseBase()
	if c.baseRO {
		_ = c.g.setReadOnly(c.base, true)
	}
}

// dropIntermediate is bdrv_drop_intermediate: every parent of top (a filter above the
// images to drop) uses base instead, and each parent image's header names base (or
// backingFile) with base's format; a read-only parent is reopened for that. The dropped
// images close when nothing holds them. Graph.mu held.
func (g *Graph) dropIntermediate(top, base *Node, backingFile *string) error {
	name := skipFilters(base).filename
	if backingFile != nil {
		name = *backingFile
	}
	var parents []*Node
	for _, e := range top.parents {
		if e.node != nil && e.role == "backing" {
			parents = append(parents, e.node)
		}
	}
	g.replaceNode(top, base)
	if top.filter != nil && len(top.parents) == 0 {
		g.detach(top)
		g.removeNode(top)
	}
	_ = g.refresh()
	for _, p := range parents {
		ro := p.ReadOnly
		if ro {
			if err := g.setReadOnly(p, false); err != nil {
				return err
			}
		}
		err := p.changeBackingFile(name, skipFilters(base).Driver)
		if ro {
			_ = g.setReadOnly(p, true)
		}
		if err != nil {
			return prefix(err, "Could not update backing file link: ")
		}
	}
	return nil
}

// resizeForJob grows a node a job writes (commit into a smaller base).
func (g *Graph) resizeForJob(n *Node, size int64) error {
	n.io.Lock()
	defer n.io.Unlock()
	if err := n.truncate(size); err != nil {
		return err
	}
	n.resizeBitmaps(n.Size())
	return nil
}

// CommitImage is bdrv_commit, HMP's commit: what the device's image holds itself is
// written into its backing image, then the image is emptied so that all of it reads from
// the backing image. The device's writes wait meanwhile (QEMU runs it under the big
// lock). device "all" commits every device with a backing image. The error is HMP's
// line ("Device 'x' not found", "'commit' error for 'x': Not supported").
func (g *Graph) CommitImage(device string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if device == "all" {
		for _, b := range g.backends {
			if b.Root == nil || skipFilters(b.Root).Backing == nil {
				continue
			}
			if err := g.commitImage(b); err != nil {
				return errf(ErrIO, "'commit' error for '%s': %s", device, err.Error())
			}
		}
		return nil
	}
	b := g.backend(device)
	if b == nil {
		return errf(ErrNotFound, "Device '%s' not found", device)
	}
	if err := g.commitImage(b); err != nil {
		return errf(ErrIO, "'commit' error for '%s': %s", device, err.Error())
	}
	return nil
}

// commitImage commits backend b's image (bdrv_commit); the error is strerror's text.
// Graph.mu held.
func (g *Graph) commitImage(b *Backend) error {
	if b.Root == nil {
		return errf(ErrInvalid, "No medium found")
	}
	bs := SkipImplicit(b.Root)
	base := skipFilters(bs).Backing
	if base == nil || bs.Driver != DriverQcow2 {
		return errf(ErrUnsupported, "Not supported")
	}
	if bs.opBlocked(opCommitSource) != nil || base.opBlocked(opCommitTarget) != nil {
		return errf(ErrInUse, "Device or resource busy")
	}
	ro := base.ReadOnly
	if ro {
		if err := g.setReadOnly(base, false); err != nil {
			return errf(ErrReadOnly, "Permission denied")
		}
		defer func() { _ = g.setReadOnly(base, true) }()
	}
	u := &tempUse{perm: PermWrite | PermResize, shared: PermAll}
	base.addParent(edge{temp: u, role: "root"})
	defer func() {
		base.removeParent(func(e edge) bool { return e.temp == u })
		_ = g.refresh()
	}()
	if err := g.refresh(); err != nil {
		return errf(ErrReadOnly, "Permission denied")
	}
	b.io.Lock() // the device waits: its writes must not fall between the copy and the emptying
	defer b.io.Unlock()
	length := bs.Size()
	if base.Size() < length {
		if err := g.resizeForJob(base, length); err != nil {
			return err
		}
	}
	buf := make([]byte, commitBuffer)
	for off := int64(0); off < length; {
		ex, err := bs.BlockStatus(off, min(commitBuffer, length-off))
		if err != nil {
			return err
		}
		if ex.Status&StatusAllocated != 0 {
			p := buf[:ex.Length]
			if _, err := bs.ReadAt(p, off); err != nil {
				return err
			}
			if _, err := base.WriteAt(p, off); err != nil {
				return err
			}
		}
		off += ex.Length
	}
	bs.io.Lock()
	bs.exclusive = true
	err := bs.q.makeEmpty()
	bs.exclusive = false
	bs.io.Unlock()
	if err != nil {
		return err
	}
	_ = bs.Flush()
	return base.Flush()
}
