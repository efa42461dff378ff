package blockdev

import (
	"sync"
	"time"
)

// Mirror (QEMU 7.2's block/mirror.c): blockdev-mirror, drive-mirror and the active commit.
// A mirror_top filter above the source sees every guest write. The job first marks in
// its bitmap what differs (sync=full: all the source's chain holds; top: what is above
// the source's backing node; none: nothing), copies it into the target (a buf-size extent
// at a time, in pieces of up to 1 MiB with up to 16 in flight, as mirror_iteration issues
// them), and goes ready when the bitmap is clean; from then on it follows the guest:
//
//	background:      a guest write marks its granules; the job copies them again
//	write-blocking:  a guest write goes to the source and the target before it completes
//
// job-complete (or a soft cancel once ready) ends it: the writes passing the filter go to
// both images from then on (the drain of mirror_exit_common), the last marked granules are
// copied, the target is flushed, and — on complete — every user of the source (or of
// "replaces") switches to the target (the pivot). A cancel before ready or a forced one
// leaves the source alone.
//
//	device ──▶ [mirror_top] ──▶ source ──▶ backing…
//	                │ writes: bitmap (background) / target (write-blocking)
//	                ▼
//	job: bitmap ──▶ read source ──▶ write target      pivot: device ──▶ target

// defaultMirrorBuf is DEFAULT_MIRROR_BUF_SIZE.
const defaultMirrorBuf = 16 << 20

// MirrorOptions are the arguments of blockdev-mirror and drive-mirror (nil: absent).
type MirrorOptions struct {
	JobID          *string
	Device         string
	Target         string // blockdev-mirror: a node; drive-mirror: the image file
	Replaces       *string
	Sync           string // "top", "full", "none", "incremental", "bitmap"
	Speed          int64
	Granularity    int64 // 0: the target's default
	BufSize        int64 // 0: 16 MiB
	OnSourceError  OnError
	OnTargetError  OnError
	Unmap          *bool
	FilterNodeName string
	CopyMode       string // "background" (default) or "write-blocking"
	ManualFinalize bool
	ManualDismiss  bool
	// drive-mirror
	Format   *string
	NodeName *string
	Mode     string // "absolute-paths" (default) or "existing"
}

// backingMode is BlockMirrorBackingMode: what the target's backing becomes at the end.
type backingMode uint8

const (
	leaveBackingChain  backingMode = iota // blockdev-mirror, active commit
	sourceBackingChain                    // drive-mirror into a new image
	openBackingChain                      // drive-mirror into an existing image
)

// BlockdevMirror is qmp_blockdev_mirror.
func (g *Graph) BlockdevMirror(o MirrorOptions) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	bs, err := g.rootNode(o.Device)
	if err != nil {
		return err
	}
	target, err := g.lookup(o.Target, o.Target)
	if err != nil {
		return err
	}
	return g.mirrorCommon(o, bs, target, leaveBackingChain, o.Sync == "full")
}

// mirrorCommon is blockdev_mirror_common.
func (g *Graph) mirrorCommon(o MirrorOptions, bs, target *Node, mode backingMode, zeroTarget bool) error {
	if o.Granularity != 0 && (o.Granularity < 512 || o.Granularity > 64<<20) {
		return errf(ErrInvalid, "Parameter 'granularity' expects a value in range [512B, 64MB]")
	}
	if o.Granularity&(o.Granularity-1) != 0 {
		return errf(ErrInvalid, "Parameter 'granularity' expects a power of 2")
	}
	if err := bs.opBlocked(opMirrorSource); err != nil {
		return err
	}
	if err := target.opBlocked(opMirrorTarget); err != nil {
		return err
	}
	sync := o.Sync
	if backingChainNext(bs) == nil && sync == "top" {
		sync = "full"
	}
	replaces := o.Replaces
	if replaces == nil {
		if u := SkipImplicit(bs); u != bs {
			replaces = &u.Name
		}
	}
	var toReplace *Node
	if replaces != nil {
		toReplace = g.node(*replaces)
		if toReplace == nil {
			return errf(ErrNotFound, "Failed to find node with node-name='%s'", *replaces)
		}
		if err := toReplace.opBlocked(opReplace); err != nil {
			return err
		}
		if skipFilters(bs) != skipFilters(toReplace) {
			return errf(ErrInvalid, "Cannot replace '%s' by a node mirrored from '%s', because it cannot be guaranteed that doing so would not lead to an abrupt change of visible data", *replaces, bs.Name)
		}
		if bs.Size() != toReplace.Size() {
			return errf(ErrInvalid, "cannot replace image with a mirror image of different size")
		}
	}
	switch sync {
	case "incremental", "bitmap":
		return errf(ErrInvalid, "Sync mode '%s' not supported", sync)
	}
	var base *Node
	if sync == "top" {
		base = backingChainNext(bs)
	}
	unmap := o.Unmap == nil || *o.Unmap
	m := &mirrorJob{g: g, src: bs, target: target, toReplace: toReplace, base: base, isNone: sync == "none",
		backing: mode, zeroTarget: zeroTarget, onSrc: o.OnSourceError, onTgt: o.OnTargetError, unmap: unmap,
		writeBlocking: o.CopyMode == "write-blocking"}
	return m.start(o, JobTypeMirror, o.Granularity, o.BufSize)
}

// commitActiveStart is commit_active_start: a mirror of type commit from the active layer
// into base, which is read-write while the job runs.
func (g *Graph) commitActiveStart(id string, o CommitOptions, top, base *Node) error {
	m := &mirrorJob{g: g, src: top, target: base, base: base, commit: true, onSrc: o.OnError, onTgt: o.OnError,
		unmap: true, backing: leaveBackingChain}
	if base.ReadOnly {
		if err := g.setReadOnly(base, false); err != nil {
			return err
		}
		m.baseRO = true
	}
	err := m.start(MirrorOptions{JobID: &id, Speed: o.Speed, FilterNodeName: o.FilterNodeName,
		ManualFinalize: o.ManualFinalize, ManualDismiss: o.ManualDismiss}, JobTypeCommit, 0, 0)
	if err != nil && m.baseRO {
		_ = g.setReadOnly(base, true)
	}
	return err
}

// mirrorJob is a running mirror (or active commit).
type mirrorJob struct {
	g                *Graph
	j                *Job
	src, target      *Node
	toReplace        *Node // replaces (nil: the source)
	base             *Node // sync=top: the source's backing; active commit: the target
	baseOverlay      *Node
	top              *Node // the mirror_top filter
	isNone, commit   bool
	backing          backingMode
	zeroTarget       bool
	onSrc, onTgt     OnError
	unmap            bool
	writeBlocking    bool
	baseRO           bool
	granularity      int64
	copyUnit         int64 // granularity, or the target's cluster when it cannot copy-on-write
	bufSize          int64
	bitmap           *Bitmap
	targetUse        *tempUse
	ranges           rangeLock // copies against write-blocking guest writes
	cursor           int64
	exited           bool
	unlist           func()      // takes the bitmap off the source's list
	zeroesNeedNoCopy bool        // the target writes zeroes without data (accounting)
	bufs             chan []byte // the copies' buffers (copyPieces), nil until first used

	mu             sync.Mutex
	shouldComplete bool  // +checklocks:mu
	passThrough    bool  // guest writes go to the target too; +checklocks:mu
	activeErr      error // s->ret from a write-blocking write; +checklocks:mu
	// hookMu is held shared by each guest write in the hook and exclusively to switch
	// passThrough on (the drain that makes the switch exact).
	hookMu sync.RWMutex
}

// defaultGranularity is bdrv_get_default_bitmap_granularity.
func defaultGranularity(n *Node) int64 {
	if cs, ok := n.ClusterSize(); ok {
		return min(max(cs, 4096), 65536)
	}
	return 65536
}

// start is mirror_start_job. Graph.mu held.
func (m *mirrorJob) start(o MirrorOptions, typ JobType, granularity, bufSize int64) error {
	g, bs, target := m.g, m.src, m.target
	if granularity == 0 {
		granularity = defaultGranularity(target)
	}
	if bufSize < 0 {
		return errf(ErrInvalid, "Invalid parameter 'buf-size'")
	}
	if bufSize == 0 {
		bufSize = defaultMirrorBuf
	}
	if skipFilters(bs) == skipFilters(target) {
		return errf(ErrInvalid, "Can't mirror node into itself")
	}
	targetIsBacking := bs.chainContains(target)
	top, err := g.insertFilter(bs, DriverMirrorTop, o.FilterNodeName, nil)
	if err != nil {
		return err
	}
	top.filter.commit = m.commit
	m.top = top
	fail := func(err error) error {
		if m.targetUse != nil {
			target.removeParent(func(e edge) bool { return e.temp == m.targetUse })
		}
		if m.j != nil {
			m.j.earlyFail()
		}
		if m.unlist != nil {
			m.unlist()
		}
		g.removeFilter(top)
		return err
	}
	id := top.deviceName()
	if o.JobID != nil {
		id = *o.JobID
	}
	drv := &JobDriver{Type: typ, Block: true, Run: m.run, Prepare: m.prepare, Abort: m.abort,
		Complete: m.complete, Cancel: m.cancel}
	j, err := g.newBlockJob(JobOptions{ID: id, Speed: o.Speed, ManualFinalize: o.ManualFinalize,
		ManualDismiss: o.ManualDismiss}, drv, top, PermConsistentRead, PermConsistentRead|PermWriteUnchanged|PermWrite)
	if err != nil {
		return fail(err)
	}
	m.j = j
	perm, shared := PermWrite, PermWriteUnchanged
	if targetIsBacking {
		if target.Size() < bs.Size() {
			perm |= PermResize
		}
		shared |= PermConsistentRead | PermWrite
	} else if bs.chainContains(skipFilters(target)) {
		return fail(errf(ErrInvalid, "Cannot mirror to a filter on top of a node in the source's backing chain"))
	}
	m.targetUse = &tempUse{perm: perm, shared: shared}
	target.addParent(edge{temp: m.targetUse, role: "root"})
	if err := g.refresh(); err != nil {
		return fail(err)
	}
	m.granularity, m.copyUnit = granularity, granularity
	m.bufSize = (bufSize + granularity - 1) &^ (granularity - 1)
	m.baseOverlay = findOverlay(bs, m.base)
	m.bitmap, m.unlist = bs.newJobBitmap(max(bs.Size(), 1), granularity, true)
	// In background mode QEMU 7.2's bitmap is an enabled one of the source: every write
	// that reaches the source marks it, not only the guest's through the filter (a write
	// of an NBD export or HMP qemu-io on the node too); write-blocking disables it.
	m.bitmap.setTracking(!m.writeBlocking)
	if err := j.addNode(bs, "source", 0, PermWriteUnchanged|PermWrite|PermConsistentRead); err != nil {
		return fail(err)
	}
	if err := j.addNode(target, "target", 0, PermAll); err != nil {
		return fail(err)
	}
	if targetIsBacking {
		filtered := findOverlay(bs, target).Backing
		shared := PermWriteUnchanged | PermWrite
		for it := bs.FilteredOrBacking(); it != target; it = it.FilteredOrBacking() {
			if it == filtered {
				shared |= PermConsistentRead
			}
			if err := j.addNode(it, "intermediate node", 0, shared); err != nil {
				return fail(err)
			}
		}
	}
	j.Opaque = m
	j.start()
	return nil
}

// complete is mirror_complete: only a ready mirror completes.
func (m *mirrorJob) complete(j *Job) error {
	if !j.IsReady() {
		return errf(ErrInvalid, "The active block job '%s' cannot be completed", j.id)
	}
	m.mu.Lock()
	m.shouldComplete = true
	m.mu.Unlock()
	j.l.mu.Lock()
	if !j.paused {
		j.enter(nil)
	}
	j.l.mu.Unlock()
	return nil
}

// cancel is mirror_cancel: before ready every cancel is forced.
func (m *mirrorJob) cancel(j *Job, force bool) bool {
	return force || !j.IsReady()
}

// write is the mirror_top filter's hook (bdrv_mirror_top_do_write): in background mode a
// guest write marks the bitmap after it reached the source; in write-blocking mode (and
// while the job ends) it goes to the target as well, serialised with the job's copies.
func (m *mirrorJob) write(k writeKind, p []byte, off, length int64, fl ZeroFlags, do func() error) error {
	m.hookMu.RLock()
	defer m.hookMu.RUnlock()
	m.mu.Lock()
	through := m.passThrough && m.activeErr == nil
	m.mu.Unlock()
	if !through {
		err := do()
		m.bitmap.Set(off, length)
		if m.j != nil {
			m.j.Kick()
		}
		return err
	}
	a, b := off&^(m.copyUnit-1), (off+length+m.copyUnit-1)&^(m.copyUnit-1)
	m.ranges.lock(a, b-a)
	defer m.ranges.unlock(a, b-a)
	if err := do(); err != nil {
		return err
	}
	m.syncTargetWrite(k, p, off, length, fl)
	return nil
}

// syncTargetWrite is do_sync_target_write: the guest's write goes to the target too; the
// granules it covers wholly are clean afterwards. A failure marks them dirty again and
// follows the target error policy.
func (m *mirrorJob) syncTargetWrite(k writeKind, p []byte, off, length int64, fl ZeroFlags) {
	j := m.j
	a, b := (off+m.granularity-1)&^(m.granularity-1), (off+length)&^(m.granularity-1)
	if a < b {
		m.bitmap.Reset(a, b-a)
	}
	j.ProgressIncreaseRemaining(length)
	var err error
	switch k {
	case writeData:
		_, err = m.target.WriteAt(p, off)
	case writeZeroes:
		err = m.target.WriteZeroes(off, length, fl)
	default:
		err = m.target.Unmap(off, length)
	}
	if err != nil {
		m.bitmap.Set(off, length)
		if j.ErrorAction(m.onTgt, false, err) == ActionReport {
			m.mu.Lock()
			if m.activeErr == nil {
				m.activeErr = err
			}
			m.mu.Unlock()
		}
		return
	}
	j.ProgressUpdate(length)
}

// run is mirror_run.
func (m *mirrorJob) run(j *Job) error {
	if j.Cancelled() {
		return nil
	}
	bs, target := m.src, m.target
	length, tlen := bs.Size(), target.Size()
	if m.base != nil && m.base == target {
		if length > tlen {
			if err := m.g.resizeForJob(target, length); err != nil {
				return err
			}
		}
	} else if length != tlen {
		return errf(ErrInvalid, "Source and target image have different sizes")
	}
	m.top.io.Lock()
	m.top.filter.hooks = m
	m.top.io.Unlock()
	m.mu.Lock()
	m.passThrough = m.writeBlocking
	m.mu.Unlock()
	if length == 0 {
		j.TransitionToReady()
		for !j.CancelRequested() && !m.completing() {
			j.Yield()
		}
		return nil
	}
	// A target that names a backing file it does not have open cannot do copy-on-write
	// into a cluster: copy whole target clusters.
	if cs, ok := target.ClusterSize(); ok && target.BackingFile != "" && backingChainNext(target) == nil && m.granularity < cs {
		m.copyUnit = cs
		m.bufSize = max(m.bufSize, cs)
	}
	m.zeroesNeedNoCopy = canZeroWithUnmap(target)
	if !m.isNone {
		if err := m.dirtyInit(j); err != nil || j.Cancelled() {
			return err
		}
	}
	last := time.Now()
	for {
		m.mu.Lock()
		err := m.activeErr
		m.mu.Unlock()
		if err != nil {
			return err
		}
		j.PausePoint()
		if j.Cancelled() {
			return nil
		}
		cnt := m.bitmap.Count()
		j.ProgressSetRemaining(cnt)
		j.l.mu.Lock()
		ok := j.ioStatus == "ok"
		j.l.mu.Unlock()
		if time.Since(last) < jobSlice && ok && cnt != 0 {
			if err := m.iteration(j); err != nil {
				return err
			}
			continue
		}
		shouldComplete := false
		if cnt == 0 {
			if !j.IsReady() {
				if err := target.Flush(); err != nil {
					if j.ErrorAction(m.onTgt, false, err) == ActionReport {
						return err
					}
					continue
				}
				j.TransitionToReady()
			}
			shouldComplete = m.completing() || j.CancelRequested()
			cnt = m.bitmap.Count()
		}
		if cnt == 0 && shouldComplete {
			return nil
		}
		if j.IsReady() && !shouldComplete {
			if cnt == 0 {
				j.Sleep(jobSlice)
			}
		} else {
			j.RateLimitSleep()
		}
		last = time.Now()
	}
}

func (m *mirrorJob) completing() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.shouldComplete
}

// dirtyInit is mirror_dirty_init: zero the target when asked (sync=full), then mark what
// the source's chain above the base holds.
func (m *mirrorJob) dirtyInit(j *Job) error {
	bs, length := m.src, m.src.Size()
	if m.zeroTarget {
		if !canZeroWithUnmap(m.target) {
			m.bitmap.SetAll() // zeroes get copied like the rest
			return nil
		}
		if !readsAsZeroes(m.target) {
			if err := m.target.WriteZeroes(0, length, m.zeroFlags()); err != nil {
				return err
			}
		}
	}
	below := m.baseOverlay.FilteredOrBacking()
	for off := int64(0); off < length; {
		if j.Cancelled() {
			return nil
		}
		ex, err := bs.BlockStatusAbove(below, off, length-off)
		if err != nil {
			return err
		}
		if ex.Status&StatusAllocated != 0 {
			m.bitmap.Set(off, ex.Length)
		}
		off += ex.Length
	}
	return nil
}

// canZeroWithUnmap is bdrv_can_write_zeroes_with_unmap: the node discards (discard=unmap)
// and its format can make zeroes without data (qcow2 version 3; an nbd export that writes
// zeroes, directly or under a raw node, whose supported_zero_flags pass it up).
func canZeroWithUnmap(n *Node) bool {
	n = skipFilters(n)
	if n.Discard != "unmap" {
		return false
	}
	if n.Driver == DriverRaw && n.File != nil {
		return n.File.nbdZeroUnmap()
	}
	return n.nbdZeroUnmap() || n.Driver == DriverQcow2 && n.hdr != nil && n.hdr.Version >= 3
}

// zeroFlags are the flags of the job's zero writes: unmapping when the job may unmap and
// the target discards (bdrv_co_pwrite_zeroes drops the flag otherwise).
func (m *mirrorJob) zeroFlags() ZeroFlags {
	if m.unmap && skipFilters(m.target).Discard == "unmap" {
		return ZeroMayUnmap
	}
	return 0
}

// readsAsZeroes reports whether every byte of n reads as zeroes without a write (a fresh
// image with nothing allocated and no backing): zeroing it would only add metadata.
func readsAsZeroes(n *Node) bool {
	length := n.Size()
	for off := int64(0); off < length; {
		ex, err := n.BlockStatusAbove(nil, off, length-off)
		if err != nil || ex.Status != StatusZero {
			return false
		}
		off += ex.Length
	}
	return true
}

// iteration is mirror_iteration: the next dirty extent (at most the buffer's size) is
// marked clean and copied, piece by piece by what the source's chain says of it: data
// copied, zeroes written as zeroes, the rest discarded.
func (m *mirrorJob) iteration(j *Job) error {
	start, l, ok := m.bitmap.NextDirty(m.cursor, m.bufSize)
	if !ok {
		m.cursor = 0
		if start, l, ok = m.bitmap.NextDirty(0, m.bufSize); !ok {
			return nil
		}
	}
	if m.copyUnit > m.granularity {
		a := start &^ (m.copyUnit - 1)
		l = min((start+l+m.copyUnit-1)&^(m.copyUnit-1), m.src.Size()) - a
		start = a
	}
	m.cursor = start + l
	m.bitmap.Reset(start, l)
	return m.copyPieces(j, start, l)
}

// maxInFlight is MAX_IN_FLIGHT: the most copies a mirror keeps going at once.
const maxInFlight = 16

// copyPieces copies [start, start+l) in pieces of at most max_io_bytes, several in flight
// as mirror_iteration issues them (at most MAX_IN_FLIGHT, and no more bytes than the
// buffer holds), each with a buffer of its own, reused piece after piece. A job with a
// speed copies one piece at a time, so that the rate limit sees each before the next:
// once it asks for a wait, the rest stays dirty for a later iteration. It returns the
// first error a piece reports (the pieces in flight end first).
func (m *mirrorJob) copyPieces(j *Job, start, l int64) error {
	piece := max(m.bufSize/16, 1<<20)
	inFlight := min(maxInFlight, max(m.bufSize/piece, 1), (l+piece-1)/piece)
	if inFlight <= 1 || j.hasSpeed() {
		buf := make([]byte, min(piece, l))
		for off := start; off < start+l; off += piece {
			n := min(piece, start+l-off)
			if err := m.copyRange(j, off, n, false, buf); err != nil {
				return err
			}
			if off+n < start+l && j.rateLimited() {
				m.bitmap.Set(off+n, start+l-off-n)
				m.cursor = off + n
				return nil
			}
		}
		return nil
	}
	if m.bufs == nil {
		m.bufs = make(chan []byte, maxInFlight)
		for range maxInFlight {
			m.bufs <- nil // allocated when first used
		}
	}
	sem := make(chan struct{}, inFlight)
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	failed := func() bool {
		errMu.Lock()
		defer errMu.Unlock()
		return firstErr != nil
	}
	for off := start; off < start+l; off += piece {
		n := min(piece, start+l-off)
		sem <- struct{}{}
		if failed() {
			break
		}
		buf := <-m.bufs
		if int64(cap(buf)) < piece {
			buf = make([]byte, piece)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { m.bufs <- buf; <-sem }()
			if err := m.copyRange(j, off, n, false, buf); err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// copyRange copies [off, off+length) from the source to the target, with the job's
// accounting and error policies (report: the job fails with the error returned), reading
// into buf when it is large enough. The range stays locked against write-blocking guest
// writes from before the source's block status is asked until the copy is written, so
// that no guest write lands between what the status says and what the target gets. In
// the final sync (final) any error fails the job at once.
func (m *mirrorJob) copyRange(j *Job, off, length int64, final bool, buf []byte) error {
	m.ranges.lock(off, length)
	defer m.ranges.unlock(off, length)
	for length > 0 {
		ex, err := m.src.BlockStatusAbove(nil, off, length)
		n := ex.Length
		if err != nil || n == 0 {
			n = length
		}
		acct := n
		switch {
		case err != nil || ex.Status&StatusData != 0:
			if int64(cap(buf)) < n {
				buf = make([]byte, n)
			}
			buf = buf[:n]
			if _, rerr := m.src.ReadAt(buf, off); rerr != nil {
				err = m.failed(j, true, rerr, off, n, final)
			} else if _, werr := m.target.WriteAt(buf, off); werr != nil {
				err = m.failed(j, false, werr, off, n, final)
			} else {
				err = nil
			}
		case ex.Status&StatusZero != 0:
			err = nil
			if zerr := m.target.WriteZeroes(off, n, m.zeroFlags()); zerr != nil {
				err = m.failed(j, false, zerr, off, n, final)
			}
			if m.zeroesNeedNoCopy {
				acct = 0
			}
		default:
			err = nil
			if derr := m.target.Unmap(off, n); derr != nil {
				err = m.failed(j, false, derr, off, n, final)
			}
			if m.zeroesNeedNoCopy {
				acct = 0
			}
		}
		if err != nil {
			return err
		}
		if final {
			j.ProgressIncreaseRemaining(n)
			j.ProgressUpdate(n)
		} else {
			j.ProgressUpdate(n)
			j.RateLimitProcessed(acct)
		}
		off += n
		length -= n
	}
	return nil
}

// failed handles a copy's I/O error (mirror_read_complete, mirror_write_complete): the
// range is dirty again; report fails the job, stop pauses it, ignore goes on.
func (m *mirrorJob) failed(j *Job, read bool, err error, off, n int64, final bool) error {
	m.bitmap.Set(off, n)
	if final {
		return err
	}
	policy := m.onTgt
	if read {
		policy = m.onSrc
	}
	if j.ErrorAction(policy, read, err) == ActionReport {
		return err
	}
	return nil
}

// prepare is mirror_prepare (mirror_exit_common on success).
func (m *mirrorJob) prepare(j *Job) error { return m.exit(j, false) }

// abort is mirror_abort.
func (m *mirrorJob) abort(j *Job) { _ = m.exit(j, true) }

// exit is mirror_exit_common: on success the target is brought exactly up to date (from
// here the guest's writes go to both images, then what the bitmap still marks is
// copied and the target flushed), gets its backing (drive-mirror), and on complete takes
// the source's place; in every case the filter goes and the job lets go. Graph.mu held.
func (m *mirrorJob) exit(j *Job, abort bool) error {
	if m.exited {
		return nil
	}
	m.exited = true
	g := m.g
	var ret error
	if !abort {
		ret = m.finalSync(j)
		abort = ret != nil
	}
	m.top.filter.stop = true
	if !abort {
		switch m.backing {
		case sourceBackingChain:
			want := m.base
			if m.isNone {
				want = m.src
			}
			if ut := skipFilters(m.target); ut.Backing != want {
				if err := g.setBackingNode(ut, want); err != nil {
					ret = err
				}
			}
		case openBackingChain:
			if ut := skipFilters(m.target); ut.Backing == nil && ut.BackingFile != "" {
				var opened []*Node
				if err := g.openBackingFile(ut, &opened); err != nil {
					ret = err
				}
			}
		}
	}
	if m.completing() && !abort {
		to := m.toReplace
		if to == nil {
			to = m.src
		}
		if to.ReadOnly != m.target.ReadOnly {
			_ = g.setReadOnly(m.target, to.ReadOnly)
		}
		g.replaceNode(to, m.target)
	}
	if m.targetUse != nil {
		u := m.targetUse
		m.target.removeParent(func(e edge) bool { return e.temp == u })
		m.targetUse = nil
	}
	j.releaseNodes()
	m.unlist()
	g.removeFilter(m.top)
	if abort && m.baseRO && !m.target.ReadOnly {
		_ = g.setReadOnly(m.target, true)
	}
	return ret
}

// finalSync makes the target equal to the source as the job ends: every write passing the
// filter goes to the target too from now on (switched while no write is inside the hook),
// then the granules still marked are copied and the target flushed.
func (m *mirrorJob) finalSync(j *Job) error {
	m.hookMu.Lock()
	m.bitmap.setTracking(false) // the filter's writes reach the target now
	m.mu.Lock()
	m.passThrough = true
	err := m.activeErr
	m.mu.Unlock()
	m.hookMu.Unlock()
	if err != nil {
		return err
	}
	for {
		start, l, ok := m.bitmap.NextDirty(0, m.bufSize)
		if !ok {
			break
		}
		m.bitmap.Reset(start, l)
		if err := m.copyRange(j, start, l, true, nil); err != nil {
			return err
		}
	}
	return m.target.Flush()
}
