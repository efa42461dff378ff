package blockdev

import (
	"sync"
	"time"
)

// Backup (QEMU 7.2's block/backup.c, block/block-copy.c, block/copy-before-write.c):
// blockdev-backup and drive-backup. A copy-before-write filter above the source copies
// the old content of every cluster a guest write is about to change to the target first,
// so the target keeps the image as it was when the job started (a point-in-time copy);
// the job copies the clusters left in its copy bitmap meanwhile:
//
//	device ──▶ [copy-before-write] ──file──▶ source
//	                   └──target──▶ target        copy bitmap: clusters not yet copied
//
//	sync=full    every cluster                  top     the clusters the source holds itself
//	sync=none    only what guest writes change  bitmap  the clusters a named bitmap marks
//	(incremental is bitmap with bitmap-mode on-success)
//
// A sync bitmap is frozen while the job runs (writes go to a successor); at the end the
// bitmap mode decides: on-success (and always) clear it on success, keeping the writes made
// during the backup; always also on failure, but with the clusters not copied; never
// keeps it.

// BackupOptions are the arguments of blockdev-backup and drive-backup (nil: absent).
type BackupOptions struct {
	JobID          *string
	Device         string
	Target         string // blockdev-backup: a node; drive-backup: the image file
	Sync           string // "top", "full", "none", "incremental", "bitmap"
	Speed          int64
	Bitmap         *string
	BitmapMode     *string // "on-success", "never", "always"
	Compress       bool
	OnSourceError  OnError
	OnTargetError  OnError
	FilterNodeName string
	ManualFinalize bool
	ManualDismiss  bool
	// drive-backup
	Format *string
	Mode   string // "absolute-paths" (default) or "existing"
}

// backupJob is a running backup.
type backupJob struct {
	g              *Graph
	j              *Job
	src, target    *Node
	cbw            *Node
	sync           string
	syncBitmap     *Bitmap
	bitmapMode     string
	copyBitmap     *Bitmap
	cluster        int64
	length         int64
	onSrc, onTgt   OnError
	ranges         rangeLock
	skipUnallocted bool
	unlist         []func() // take the job's bitmaps off the nodes' lists
}

func (b *backupJob) unlistBitmaps() {
	for _, f := range b.unlist {
		f()
	}
	b.unlist = nil
}

// backupCommon is do_backup_common: the argument checks, then backup_job_create.
// Graph.mu held; the job is created, not started.
func (g *Graph) backupCommon(o BackupOptions, bs, target *Node, txn *JobTxn) (*Job, error) {
	if (o.Sync == "bitmap" || o.Sync == "incremental") && o.Bitmap == nil {
		return nil, errf(ErrInvalid, "must provide a valid bitmap name for '%s' sync mode", o.Sync)
	}
	if o.Sync == "incremental" {
		if o.BitmapMode != nil && *o.BitmapMode != "on-success" {
			return nil, errf(ErrInvalid, "Bitmap sync mode must be 'on-success' when using sync mode 'incremental'")
		}
		mode := "on-success"
		o.Sync, o.BitmapMode = "bitmap", &mode
	}
	var bm *Bitmap
	if o.Bitmap != nil {
		var ok bool
		if bm, ok = bs.Bitmap(*o.Bitmap); !ok {
			return nil, errf(ErrNotFound, "Bitmap '%s' could not be found", *o.Bitmap)
		}
		if o.BitmapMode == nil {
			return nil, errf(ErrInvalid, "Bitmap sync mode must be given when providing a bitmap")
		}
		if err := bm.Check(); err != nil {
			return nil, err
		}
		if o.Sync == "none" {
			return nil, errf(ErrInvalid, "sync mode '%s' does not produce meaningful bitmap outputs", o.Sync)
		}
		if *o.BitmapMode == "never" && o.Sync != "bitmap" {
			return nil, errf(ErrInvalid, "Bitmap sync mode '%s' has no meaningful effect when combined with sync mode '%s'", *o.BitmapMode, o.Sync)
		}
	}
	if o.Bitmap == nil && o.BitmapMode != nil {
		return nil, errf(ErrInvalid, "Cannot specify bitmap sync mode without a bitmap")
	}
	return g.backupJobCreate(o, bs, target, bm, txn)
}

// backupJobCreate is backup_job_create.
func (g *Graph) backupJobCreate(o BackupOptions, bs, target *Node, bm *Bitmap, txn *JobTxn) (*Job, error) {
	if bs == target {
		return nil, errf(ErrInvalid, "Source and target cannot be the same")
	}
	if o.Compress {
		return nil, errf(ErrUnsupported, "Compression is not supported for this drive %s", target.deviceName())
	}
	if err := bs.opBlocked(opBackupSource); err != nil {
		return nil, err
	}
	if err := target.opBlocked(opBackupTarget); err != nil {
		return nil, err
	}
	mode := ""
	if o.BitmapMode != nil {
		mode = *o.BitmapMode
	}
	if bm != nil && mode != "never" {
		if err := bm.CheckWritable(); err != nil {
			return nil, err
		}
	}
	if bm != nil {
		if _, err := bm.CreateSuccessor(); err != nil {
			return nil, err
		}
	}
	fail := func(err error) (*Job, error) {
		if bm != nil {
			bm.Reclaim()
		}
		return nil, err
	}
	length := bs.Size()
	if target.Size() != length {
		return fail(errf(ErrInvalid, "Source and target image have different sizes"))
	}
	cbw, err := g.insertCBW(bs, target, o.FilterNodeName)
	if err != nil {
		return fail(err)
	}
	b := &backupJob{g: g, src: bs, target: target, cbw: cbw, sync: o.Sync, syncBitmap: bm, bitmapMode: mode,
		length: length, onSrc: o.OnSourceError, onTgt: o.OnTargetError}
	b.cluster = 64 << 10
	if cs, ok := target.ClusterSize(); ok {
		b.cluster = max(b.cluster, cs)
	}
	// The bitmaps QEMU's block-copy and copy-before-write keep (listed by the queries):
	// the copy bitmap on the source, done and access bitmaps on the filter.
	copyBitmap, unlistCopy := bs.newJobBitmap(max(length, 1), b.cluster, false)
	_, unlistDone := cbw.newJobBitmap(max(length, 1), b.cluster, false)
	access, unlistAccess := cbw.newJobBitmap(max(length, 1), b.cluster, false)
	access.SetAll()
	b.copyBitmap = copyBitmap
	b.unlist = []func(){unlistCopy, unlistDone, unlistAccess}
	drv := &JobDriver{Type: JobTypeBackup, Block: true, Run: b.run, Commit: b.commit, Abort: b.abort, Clean: b.clean,
		Cancel: func(*Job, bool) bool { return true }}
	id := cbw.deviceName()
	if o.JobID != nil {
		id = *o.JobID
	}
	j, err := g.newBlockJob(JobOptions{ID: id, Speed: o.Speed, ManualFinalize: o.ManualFinalize,
		ManualDismiss: o.ManualDismiss, Txn: txn}, drv, cbw, 0, PermAll)
	if err != nil {
		b.unlistBitmaps()
		g.removeFilter(cbw)
		return fail(err)
	}
	b.j = j
	if err := j.addNode(target, "target", 0, PermAll); err != nil {
		j.earlyFail()
		b.unlistBitmaps()
		g.removeFilter(cbw)
		return fail(err)
	}
	// The copy bitmap as backup_init_bcs_bitmap sets it: the sync bitmap's clusters, or
	// all (sync=top drops the ones the source does not hold as the job begins).
	if o.Sync == "bitmap" {
		b.copyBitmap.Merge(bm)
	} else {
		b.copyBitmap.SetAll()
		b.skipUnallocted = o.Sync == "top"
	}
	cbw.filter.hooks = b
	return j, nil
}

// insertCBW is bdrv_cbw_append: the copy-before-write filter above bs with target as its
// target child. Graph.mu held.
func (g *Graph) insertCBW(bs, target *Node, name string) (*Node, error) {
	cbw, err := g.insertFilter(bs, DriverCBW, name, target)
	if err != nil {
		return nil, prefix(err, "Could not create node: ")
	}
	return cbw, nil
}

// write is the copy-before-write filter's hook (cbw_do_copy_before_write): the clusters
// the write touches still to copy go to the target before the write reaches the source.
// A failed copy fails the guest's write (on-cbw-error break-guest-write).
func (b *backupJob) write(k writeKind, p []byte, off, length int64, fl ZeroFlags, do func() error) error {
	a, e := off&^(b.cluster-1), min((off+length+b.cluster-1)&^(b.cluster-1), b.length)
	var buf []byte
	if err := b.copyClusters(a, e-a, &buf); err != nil {
		return err
	}
	return do()
}

// copyClusters copies the clusters of [off, off+length) still marked, under one range
// lock (a guest write and the job never copy one twice, nor after it changed), reading
// into *buf, which grows when data needs more (zeroes need none).
func (b *backupJob) copyClusters(off, length int64, buf *[]byte) error {
	end := min(off+length, b.length)
	b.ranges.lock(off, end-off)
	defer b.ranges.unlock(off, end-off)
	for off < end {
		s, n, ok := b.copyBitmap.NextDirtyArea(off, end, end-off)
		if !ok {
			return nil
		}
		if err := b.copyRun(s, n, buf); err != nil {
			return err
		}
		off = s + n
	}
	return nil
}

// copyRun copies a run of marked clusters (block_copy_task_entry over the extents of the
// source's block status): zeroes as zeroes, data as data; with sync=top before the
// initial scan ended, what the source does not hold itself is dropped instead. The
// job's progress counts what was copied.
func (b *backupJob) copyRun(c, n int64, buf *[]byte) error {
	for n > 0 {
		if b.skipUnallocted {
			ex, err := b.src.BlockStatus(c, n)
			if k := b.extentClusters(ex.Length, n); err == nil && ex.Status&StatusAllocated == 0 && k > 0 {
				b.copyBitmap.Reset(c, k)
				b.j.ProgressSetRemaining(b.copyBitmap.Count())
				c, n = c+k, n-k
				continue
			}
		}
		ex, err := b.src.BlockStatusAbove(nil, c, n)
		if err != nil {
			return &copyError{err: err, read: true}
		}
		k := b.extentClusters(ex.Length, n)
		if k > 0 && ex.Status&StatusZero != 0 && ex.Status&StatusData == 0 {
			if err := b.target.WriteZeroes(c, k, 0); err != nil {
				return &copyError{err: err}
			}
		} else {
			if k == 0 { // an extent shorter than a cluster: the cluster is copied as data
				k = min(b.cluster, n)
			}
			if int64(cap(*buf)) < k {
				*buf = make([]byte, k)
			}
			p := (*buf)[:k]
			if _, err := b.src.ReadAt(p, c); err != nil {
				return &copyError{err: err, read: true}
			}
			if _, err := b.target.WriteAt(p, c); err != nil {
				return &copyError{err: err}
			}
		}
		b.copyBitmap.Reset(c, k)
		b.j.ProgressUpdate(k)
		c, n = c+k, n-k
	}
	return nil
}

// extentClusters is how much of a run of n bytes a status extent of l bytes covers in
// whole clusters (all of the run when it covers it: the disk's last cluster may be short).
func (b *backupJob) extentClusters(l, n int64) int64 {
	if l >= n {
		return n
	}
	return l &^ (b.cluster - 1)
}

// copyError is a failed cluster copy: the error and whether reading the source failed.
type copyError struct {
	err  error
	read bool
}

func (e *copyError) Error() string { return e.err.Error() }
func (e *copyError) Unwrap() error { return e.err }

// run is backup_run.
func (b *backupJob) run(j *Job) error {
	j.ProgressSetRemaining(b.copyBitmap.Count())
	if b.skipUnallocted {
		// block_copy_reset_unallocated over the whole disk, then copy what is left.
		for off := int64(0); off < b.length; {
			if j.Cancelled() {
				return errCanceled
			}
			j.PausePoint()
			if j.Cancelled() {
				return errCanceled
			}
			ex, err := b.src.BlockStatus(off, b.length-off)
			if err != nil {
				return err
			}
			if ex.Status&StatusAllocated == 0 {
				a, e := (off+b.cluster-1)&^(b.cluster-1), (off+ex.Length)&^(b.cluster-1)
				if off+ex.Length == b.length {
					e = b.length
				}
				if a < e {
					b.ranges.lock(a, e-a)
					b.copyBitmap.Reset(a, e-a)
					b.ranges.unlock(a, e-a)
				}
			}
			off += ex.Length
		}
		b.skipUnallocted = false
		j.ProgressSetRemaining(b.copyBitmap.Count())
	}
	if b.sync == "none" {
		for !j.Cancelled() {
			j.Yield()
		}
		return nil
	}
	return b.loop(j)
}

// backupChunk and backupWorkers: the job copies up to backupWorkers chunks of at most
// backupChunk bytes at once (block-copy's BLOCK_COPY_MAX_BUFFER tasks in its AioTaskPool,
// which QEMU bounds at BLOCK_COPY_MAX_WORKERS = 64 and BLOCK_COPY_MAX_MEM = 128 MiB).
const (
	backupChunk   = 1 << 20
	backupWorkers = 16
)

// loop is backup_loop: the marked clusters are copied in order, several chunks in flight
// (one cluster at a time with a speed, so that the rate limit sees each copy); every
// jobSlice the copies in flight end and the job passes a pause point. A failed copy
// follows the error policy (stop: paused until resumed, then retried from the start).
func (b *backupJob) loop(j *Job) error {
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	bufs := make(chan []byte, backupWorkers)
	for range backupWorkers {
		bufs <- nil // allocated when data is first copied
	}
	// The copies run on backupWorkers long-lived goroutines (a goroutine per chunk grew
	// its stack through the whole write path again each time: 4096 per full backup).
	tasks := make(chan func())
	for range backupWorkers {
		go func() {
			for f := range tasks {
				f()
			}
		}()
	}
	// drain waits for the copies in flight and returns the first error one met.
	drain := func() error {
		wg.Wait()
		errMu.Lock()
		defer errMu.Unlock()
		err := firstErr
		firstErr = nil
		return err
	}
	defer wg.Wait()
	defer close(tasks) // before the wait (deferred calls run last first): the workers end
	last := time.Now()
	cursor := int64(0)
	for {
		if j.Cancelled() {
			return nil
		}
		chunk, workers := int64(backupChunk), backupWorkers
		if j.hasSpeed() {
			chunk, workers = b.cluster, 1
		}
		start, n, ok := b.copyBitmap.NextDirty(cursor, chunk)
		var err error
		if !ok || workers == 1 || time.Since(last) >= jobSlice {
			err = drain()
		}
		if err == nil && !ok {
			if cursor == 0 {
				return nil
			}
			cursor = 0 // what failed before is still marked: once more from the start
			continue
		}
		if err != nil {
			ce, _ := err.(*copyError)
			read := ce != nil && ce.read
			policy := b.onTgt
			if read {
				policy = b.onSrc
			}
			switch j.ErrorAction(policy, read, err) {
			case ActionReport:
				return err
			case ActionStop:
				j.PausePoint()
			}
			cursor = 0
			continue
		}
		if time.Since(last) >= jobSlice || j.rateLimited() {
			j.RateLimitSleep()
			last = time.Now()
			continue // the bitmap may have changed meanwhile
		}
		cursor = start + n
		buf := <-bufs
		wg.Add(1)
		tasks <- func() {
			defer wg.Done()
			if err := b.copyClusters(start, n, &buf); err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
			}
			bufs <- buf
		}
		j.RateLimitProcessed(n)
		if workers == 1 {
			wg.Wait()
		}
	}
}

// commit and abort are backup_commit and backup_abort: the sync bitmap's outcome.
func (b *backupJob) commit(j *Job) { b.cleanupSyncBitmap(true) }
func (b *backupJob) abort(j *Job)  { b.cleanupSyncBitmap(false) }

// cleanupSyncBitmap is backup_cleanup_sync_bitmap.
func (b *backupJob) cleanupSyncBitmap(ok bool) {
	bm := b.syncBitmap
	if bm == nil {
		return
	}
	b.syncBitmap = nil
	sync := (ok || b.bitmapMode == "always") && b.bitmapMode != "never"
	if sync {
		bm = bm.Abdicate()
	} else {
		bm.Reclaim()
	}
	if !ok && b.bitmapMode == "always" {
		bm.Merge(b.copyBitmap)
	}
}

// clean is backup_clean: the job lets go of its nodes and the filter goes.
func (b *backupJob) clean(j *Job) {
	j.releaseNodes()
	b.unlistBitmaps()
	b.g.removeFilter(b.cbw)
}
