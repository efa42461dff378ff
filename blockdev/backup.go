package blockdev

import "time"

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
	if err := b.copyClusters(a, e-a); err != nil {
		return err
	}
	return do()
}

// copyClusters copies the clusters of [off, off+length) still marked, each under its
// range lock (a guest write and the job never copy one twice, nor after it changed).
func (b *backupJob) copyClusters(off, length int64) error {
	for c := off; c < off+length; c += b.cluster {
		n := min(b.cluster, b.length-c)
		b.ranges.lock(c, n)
		err := b.copyCluster(c, n)
		b.ranges.unlock(c, n)
		if err != nil {
			return err
		}
	}
	return nil
}

// copyCluster copies one cluster if it is still marked: zeroes as zeroes, data as data
// (block_copy_task_entry); the job's progress counts it.
func (b *backupJob) copyCluster(c, n int64) error {
	if !b.copyBitmap.Get(c) {
		return nil
	}
	if b.skipUnallocted {
		if ex, err := b.src.BlockStatus(c, n); err == nil && ex.Status&StatusAllocated == 0 && ex.Length >= n {
			b.copyBitmap.Reset(c, n)
			b.j.ProgressSetRemaining(b.copyBitmap.Count())
			return nil
		}
	}
	ex, err := b.src.BlockStatusAbove(nil, c, n)
	if err != nil {
		return &copyError{err: err, read: true}
	}
	if ex.Status&StatusZero != 0 && ex.Status&StatusData == 0 && ex.Length >= n {
		if err := b.target.WriteZeroes(c, n, 0); err != nil {
			return &copyError{err: err}
		}
	} else {
		buf := make([]byte, n)
		if _, err := b.src.ReadAt(buf, c); err != nil {
			return &copyError{err: err, read: true}
		}
		if _, err := b.target.WriteAt(buf, c); err != nil {
			return &copyError{err: err}
		}
	}
	b.copyBitmap.Reset(c, n)
	b.j.ProgressUpdate(n)
	return nil
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

// loop is backup_loop: the marked clusters are copied in order, at the job's speed; a
// failed copy follows the error policy (stop: paused until resumed, then retried).
func (b *backupJob) loop(j *Job) error {
	last := time.Now()
	for {
		if j.Cancelled() {
			return nil
		}
		start, _, ok := b.copyBitmap.NextDirty(0, b.cluster)
		if !ok {
			return nil
		}
		n := min(b.cluster, b.length-start)
		err := b.copyClusters(start, n)
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
			continue
		}
		j.RateLimitProcessed(n)
		if time.Since(last) >= jobSlice || j.rateLimited() {
			j.RateLimitSleep()
			last = time.Now()
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
