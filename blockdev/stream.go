package blockdev

// block-stream (QEMU 7.2's blockdev.c qmp_block_stream and block/stream.c): the data of
// the images between a node and a base is copied up into the node, then the node's
// backing becomes the base (none when the whole chain was streamed) and its header
// names it. A copy-on-read filter sits above the node while the job runs.
//
//	before:  device ──▶ top ──▶ mid ──▶ base       stream top, base=base
//	running: device ──▶ [copy-on-read] ──▶ top ──▶ mid ──▶ base
//	after:   device ──▶ top ──▶ base               (top's header: backing file = base)

// streamChunk is STREAM_CHUNK: the most a stream iteration looks at.
const streamChunk = 512 << 10

// StreamOptions are block-stream's arguments (nil: absent).
type StreamOptions struct {
	JobID          *string
	Device         string
	Base           *string // a backing file name
	BaseNode       *string
	BackingFile    *string
	Bottom         *string
	Speed          int64
	OnError        OnError
	FilterNodeName string
	ManualFinalize bool
	ManualDismiss  bool
}

// Stream is qmp_block_stream.
func (g *Graph) Stream(o StreamOptions) error {
	switch {
	case o.Base != nil && o.BaseNode != nil:
		return errf(ErrInvalid, "'base' and 'base-node' cannot be specified at the same time")
	case o.Base != nil && o.Bottom != nil:
		return errf(ErrInvalid, "'base' and 'bottom' cannot be specified at the same time")
	case o.Bottom != nil && o.BaseNode != nil:
		return errf(ErrInvalid, "'bottom' and 'base-node' cannot be specified at the same time")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	bs, err := g.lookup(o.Device, o.Device)
	if err != nil {
		return err
	}
	var base, bottom *Node
	if o.Base != nil {
		if base = findBackingImage(bs, *o.Base); base == nil {
			return errf(ErrInvalid, "Can't find '%s' in the backing chain", *o.Base)
		}
	}
	if o.BaseNode != nil {
		if base, err = g.lookup("", *o.BaseNode); err != nil {
			return err
		}
		if bs == base || !bs.chainContains(base) {
			return errf(ErrInvalid, "Node '%s' is not a backing image of '%s'", *o.BaseNode, o.Device)
		}
	}
	if o.Bottom != nil {
		if bottom, err = g.lookup("", *o.Bottom); err != nil {
			return err
		}
		if bottom.filter != nil {
			return errf(ErrInvalid, "Node '%s' is a filter, use a non-filter node as 'bottom'", *o.Bottom)
		}
		if !bs.chainContains(bottom) {
			return errf(ErrInvalid, "Node '%s' is not in a chain starting from '%s'", *o.Bottom, o.Device)
		}
	}
	end := base
	if bottom != nil {
		end = bottom.FilteredOrBacking()
	}
	for it := bs; it != nil && it != end; it = it.FilteredOrBacking() {
		if err := it.opBlocked(opStream); err != nil {
			return err
		}
	}
	if base == nil && o.BackingFile != nil {
		return errf(ErrInvalid, "backing file specified, but streaming the entire chain")
	}
	return g.streamStart(o, bs, base, bottom)
}

// streamJob is a running block-stream.
type streamJob struct {
	g           *Graph
	bs          *Node // the node the data is copied into
	cor         *Node // the copy-on-read filter above it
	baseOverlay *Node // the lowest image copied from
	aboveBase   *Node
	backingFile *string
	onError     OnError
	readOnly    bool   // bs was read-only and goes back to it
	buf         []byte // populate's buffer, reused chunk after chunk
}

// streamStart is stream_start.
func (g *Graph) streamStart(o StreamOptions, bs, base, bottom *Node) error {
	s := &streamJob{g: g, bs: bs, backingFile: o.BackingFile, onError: o.OnError}
	if bottom != nil {
		s.baseOverlay, s.aboveBase = bottom, bottom
	} else {
		s.baseOverlay = findOverlay(bs, base)
		if s.baseOverlay == nil {
			return errf(ErrInvalid, "'%s' is not in the backing chain of '%s'", base.Name, bs.Name)
		}
		s.aboveBase = s.baseOverlay
		if s.aboveBase.Backing != base {
			s.aboveBase = s.aboveBase.Backing
			for s.aboveBase.Filtered() != base {
				s.aboveBase = s.aboveBase.Filtered()
			}
		}
	}
	if bs.ReadOnly {
		if err := g.setReadOnly(bs, false); err != nil {
			return err
		}
		s.readOnly = true
	}
	fail := func(err error) error {
		if s.cor != nil {
			g.removeFilter(s.cor)
		}
		if s.readOnly {
			_ = g.setReadOnly(bs, true)
		}
		return err
	}
	cor, err := g.insertFilter(bs, DriverCOR, o.FilterNodeName, nil)
	if err != nil {
		return fail(prefix(err, "Could not create node: "))
	}
	s.cor = cor
	id := cor.deviceName()
	if o.JobID != nil {
		id = *o.JobID
	}
	drv := &JobDriver{Type: JobTypeStream, Block: true, Run: s.run, Prepare: s.prepare, Clean: s.clean}
	j, err := g.newBlockJob(JobOptions{ID: id, Speed: o.Speed, ManualFinalize: o.ManualFinalize,
		ManualDismiss: o.ManualDismiss}, drv, cor, 0, PermAll)
	if err != nil {
		return fail(err)
	}
	basic := PermConsistentRead | PermWriteUnchanged
	if err := j.addNode(bs, "active node", 0, basic|PermWrite); err != nil {
		j.earlyFail()
		return fail(err)
	}
	below := s.aboveBase.FilteredOrBacking()
	for it := bs.FilteredOrBacking(); it != below; it = it.FilteredOrBacking() {
		if err := j.addNode(it, "intermediate node", 0, basic); err != nil {
			j.earlyFail()
			return fail(err)
		}
	}
	j.start()
	return nil
}

// run is stream_run: chunk by chunk, what the node does not hold itself but an image down
// to the base overlay does is copied up.
func (s *streamJob) run(j *Job) error {
	bs := skipFilters(s.bs)
	if bs == s.baseOverlay {
		return nil
	}
	length := bs.Size()
	j.ProgressSetRemaining(length)
	var firstErr error
	below := s.baseOverlay.FilteredOrBacking()
	for off, n := int64(0), int64(0); off < length; off += n {
		j.RateLimitSleep()
		if j.Cancelled() {
			break
		}
		want := min(int64(streamChunk), length-off)
		copyUp := false
		ex, err := bs.BlockStatus(off, want)
		n = ex.Length
		if err == nil && ex.Status&StatusAllocated == 0 {
			ex, err = bs.Backing.BlockStatusAbove(below, off, n)
			n = ex.Length
			if err == nil && ex.Status&StatusAllocated == 0 && n == 0 {
				n = length - off
			}
			copyUp = err == nil && ex.Status&StatusAllocated != 0
		}
		if copyUp {
			err = s.populate(bs, off, n)
		}
		if err != nil {
			switch j.ErrorAction(s.onError, true, err) {
			case ActionStop:
				n = 0
				continue
			case ActionReport:
				return err
			}
			if firstErr == nil {
				firstErr = err
			}
		}
		j.ProgressUpdate(n)
		if copyUp {
			j.RateLimitProcessed(n)
		}
	}
	return firstErr
}

// populate is stream_populate: [off, off+n) widened to bs's clusters is read through bs
// (from its backing chain) and written into the clusters bs still leaves unallocated.
func (s *streamJob) populate(bs *Node, off, n int64) error {
	cs, ok := bs.ClusterSize()
	if !ok || bs.q == nil {
		return errf(ErrUnsupported, "tlcvm: block-stream into a %s node", bs.Driver)
	}
	a := off &^ (cs - 1)
	b := min((off+n+cs-1)&^(cs-1), bs.Size())
	if int64(cap(s.buf)) < b-a {
		s.buf = make([]byte, b-a)
	}
	buf := s.buf[:b-a]
	if _, err := bs.ReadAt(buf, a); err != nil {
		return err
	}
	bs.io.RLock()
	err := bs.q.copyUp(a, buf)
	bs.io.RUnlock()
	if err != nil {
		return err
	}
	bs.wrote(a, b-a)
	return nil
}

// prepare is stream_prepare: the filter goes, the node's backing becomes what is below
// the streamed images and its header says so. Graph.mu held.
func (s *streamJob) prepare(j *Job) error {
	g := s.g
	g.removeFilter(s.cor)
	s.cor = nil
	bs := skipFilters(s.bs)
	base := s.aboveBase.FilteredOrBacking()
	ubase := skipFilters(base)
	if bs.Backing == nil {
		return nil
	}
	name, format := "", ""
	if ubase != nil {
		name, format = ubase.filename, ubase.Driver
		if s.backingFile != nil {
			name = *s.backingFile
		}
	}
	if err := g.setBackingNode(bs, base); err != nil {
		return errf(ErrPermission, "Operation not permitted")
	}
	if err := bs.changeBackingFile(name, format); err != nil {
		return errf(ErrPermission, "Operation not permitted")
	}
	return nil
}

// clean is stream_clean: a node that was read-only becomes it again.
func (s *streamJob) clean(j *Job) {
	if s.cor != nil {
		s.g.removeFilter(s.cor)
		s.cor = nil
	}
	if s.readOnly {
		_ = s.g.setReadOnly(s.bs, true)
	}
}
