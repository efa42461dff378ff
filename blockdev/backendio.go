package blockdev

import (
	"context"
	"io"
	"sync"
	"time"
)

// A Backend's data path: what a guest device does with its disk. Each request is checked
// against the medium (outside it: an invalid operation, ErrInvalid), waits for the
// backend's I/O limits (block_set_io_throttle; when ctx ends first the request is not made
// at all and ctx's error is returned), and is accounted in the backend's statistics as
// QEMU's devices account (block_acct_start/done/failed/invalid): bytes, operations, total
// time from submission (the throttle wait included) to completion, the last access for
// idle_time_ns.
//
// Locking: b.io is held shared by each request from its throttle grant to its completion
// and exclusively by whoever changes b.Root (Snapshot, media changes, jobs replacing the
// root): a drain of the backend. Throttle waits happen before b.io is taken.

// Stats are a backend's I/O counters (query-blockstats' "stats" of a device). A zero
// LastAccess means no request completed yet (no idle_time_ns).
type Stats struct {
	RdBytes, WrBytes, UnmapBytes                     int64
	RdOps, WrOps, FlushOps, UnmapOps                 int64
	RdTotalNs, WrTotalNs, FlushTotalNs, UnmapTotalNs int64
	FailedRdOps, FailedWrOps, FailedFlushOps         int64
	FailedUnmapOps                                   int64
	InvalidRdOps, InvalidWrOps, InvalidFlushOps      int64
	InvalidUnmapOps                                  int64
	LastAccess                                       time.Time
	// The latency histograms block-latency-histogram-set asked for (latency.go); nil: none.
	RdHist, WrHist, FlushHist *LatencyHistogram
}

// opKind is the accounting type of a request (BlockAcctType).
type opKind uint8

const (
	opRead opKind = iota
	opWrite
	opFlush
	opUnmap
)

// backendIO is the I/O state of a Backend (embedded).
type backendIO struct {
	io      sync.RWMutex // see above
	statsMu sync.Mutex
	stats   Stats          // +checklocks:statsMu
	tg      throttleMember // the throttle group (nil: no limits); changed under Graph.tgMu
}

// Stats returns a copy of the backend's counters.
func (b *Backend) Stats() Stats {
	b.statsMu.Lock()
	defer b.statsMu.Unlock()
	s := b.stats
	s.RdHist, s.WrHist, s.FlushHist = s.RdHist.clone(), s.WrHist.clone(), s.FlushHist.clone()
	return s
}

// account records a request that completed (err nil), failed, or was invalid.
func (b *Backend) account(k opKind, bytes int64, start time.Time, err error, invalid bool) {
	now := time.Now()
	ns := now.Sub(start).Nanoseconds()
	b.statsMu.Lock()
	defer b.statsMu.Unlock()
	s := &b.stats
	switch {
	case invalid:
		*pick(k, &s.InvalidRdOps, &s.InvalidWrOps, &s.InvalidFlushOps, &s.InvalidUnmapOps)++
		return // block_account_invalid does not touch last_access_time_ns
	case err != nil:
		*pick(k, &s.FailedRdOps, &s.FailedWrOps, &s.FailedFlushOps, &s.FailedUnmapOps)++
		s.hist(k).account(ns)
	default:
		s.hist(k).account(ns)
		*pick(k, &s.RdBytes, &s.WrBytes, new(int64), &s.UnmapBytes) += bytes
		*pick(k, &s.RdOps, &s.WrOps, &s.FlushOps, &s.UnmapOps)++
		*pick(k, &s.RdTotalNs, &s.WrTotalNs, &s.FlushTotalNs, &s.UnmapTotalNs) += ns
	}
	s.LastAccess = now
}

// hist is k's latency histogram (nil: none; unmaps have none to set).
func (s *Stats) hist(k opKind) *LatencyHistogram {
	switch k {
	case opRead:
		return s.RdHist
	case opWrite:
		return s.WrHist
	case opFlush:
		return s.FlushHist
	}
	return nil
}

func pick(k opKind, rd, wr, fl, un *int64) *int64 {
	switch k {
	case opRead:
		return rd
	case opWrite:
		return wr
	case opFlush:
		return fl
	}
	return un
}

// root returns the medium for a request (b.io held).
func (b *Backend) root() (*Node, error) {
	if b.Root == nil {
		return nil, errf(ErrInvalid, "No medium inserted")
	}
	return b.Root, nil
}

// Size is the medium's virtual size (0 without a medium).
func (b *Backend) Size() int64 {
	b.io.RLock()
	defer b.io.RUnlock()
	if b.Root == nil {
		return 0
	}
	return b.Root.Size()
}

// request runs one guest request: validity, the throttle wait, the operation under b.io,
// its accounting.
func (b *Backend) request(ctx context.Context, k opKind, off, length int64, do func(n *Node) error) error {
	start := time.Now()
	b.io.RLock()
	n, err := b.root()
	valid := err == nil && (k == opFlush || (off >= 0 && length >= 0 && off+length >= off && off+length <= n.Size()))
	b.io.RUnlock()
	if !valid {
		if err == nil {
			err = errf(ErrInvalid, "tlcvm: request %d+%d outside the medium", off, length)
		}
		b.account(k, length, start, err, true)
		return err
	}
	if k == opRead || k == opWrite { // QEMU throttles reads and writes (zeroes too), not discards or flushes
		if err := b.throttle(ctx, k == opWrite, length); err != nil {
			return err
		}
	}
	b.io.RLock()
	if n, err = b.root(); err == nil {
		err = do(n)
	}
	b.io.RUnlock()
	b.account(k, length, start, err, false)
	return err
}

// FirstSector is blk_pread of the medium's first 512 bytes, as a disk device reads it at
// realize to guess its geometry: not a guest request (not accounted nor throttled), but
// it goes through the nodes (a blkdebug rule may take it). nil when it cannot be read.
func (b *Backend) FirstSector() []byte {
	b.io.RLock()
	defer b.io.RUnlock()
	if b.Root == nil || b.Root.Size() < 512 {
		return nil
	}
	p := make([]byte, 512)
	if _, err := b.Root.ReadAt(p, 0); err != nil {
		return nil
	}
	return p
}

// Read reads len(p) bytes of the medium at off.
func (b *Backend) Read(ctx context.Context, p []byte, off int64) error {
	return b.request(ctx, opRead, off, int64(len(p)), func(n *Node) error {
		_, err := n.ReadAt(p, off)
		if err == io.EOF {
			err = errf(ErrIO, "tlcvm: read past the end")
		}
		return err
	})
}

// Write writes p to the medium at off. Without a write cache (cache=writethrough,
// directsync) the write is made durable before it completes (QEMU's FUA emulation: a
// flush after the write).
func (b *Backend) Write(ctx context.Context, p []byte, off int64) error {
	return b.request(ctx, opWrite, off, int64(len(p)), func(n *Node) error {
		if _, err := n.WriteAt(p, off); err != nil {
			return err
		}
		if b.WriteThrough {
			return n.Flush()
		}
		return nil
	})
}

// WriteZeroes zeroes length bytes at off (accounted as a write, as virtio-blk does).
func (b *Backend) WriteZeroes(ctx context.Context, off, length int64, fl ZeroFlags) error {
	return b.request(ctx, opWrite, off, length, func(n *Node) error { return n.WriteZeroes(off, length, fl) })
}

// Unmap discards length bytes at off.
func (b *Backend) Unmap(ctx context.Context, off, length int64) error {
	return b.request(ctx, opUnmap, off, length, func(n *Node) error { return n.Unmap(off, length) })
}

// Flush makes the medium's writes durable (nothing to do with write-through caching
// turned off or cache.no-flush).
func (b *Backend) Flush(ctx context.Context) error {
	return b.request(ctx, opFlush, 0, 0, func(n *Node) error { return n.Flush() })
}

// FlushAll flushes every medium (bdrv_flush_all, when the VM stops), without accounting;
// errors are ignored, as vm_stop's callers ignore them.
func (g *Graph) FlushAll() {
	g.mu.Lock()
	var roots []*Backend
	for _, b := range g.backends {
		if b.Root != nil {
			roots = append(roots, b)
		}
	}
	g.mu.Unlock()
	for _, b := range roots {
		b.io.RLock()
		if n := b.Root; n != nil {
			_ = n.Flush()
		}
		b.io.RUnlock()
	}
}
