package blockdev

import (
	"sync"
	"time"
)

// The intermediate commit's copy loop (commit_run). QEMU walks top's chain down to the
// base overlay extent by extent (at most COMMIT_BUFFER_SIZE each) and copies what is
// allocated there into base, one extent after the other. tlcvm walks it the same way but
// keeps up to commitWorkers copies in flight, each with a buffer of its own, so that
// reading one extent overlaps writing the others (qcow2 allocating writes run outside the
// metadata lock). What QEMU shows of the job stays as QEMU's:
//
//	progress   counted in the order of the extents: an extent counts once it and every
//	           extent before it are done, so offset is always a point below which all of
//	           base holds top's data (as QEMU's single-extent loop reports it)
//	speed      with a speed the copies run one at a time, each measured before the next
//	pause      the job passes a pause point (job_sleep_ns) only with no copy in flight:
//	           a pause or a drain sees no I/O of the job once it took effect
//	errors     the copies in flight end, the first failure (in extent order) takes the
//	           error policy (BLOCK_JOB_ERROR, stop pauses); stop and ignore copy the
//	           failed extents again, as QEMU retries the extent it failed on
//	cancel     no new copy starts; the ones in flight end before the job does
//
//	walk: status(off, 512K) ──allocated──▶ queue [e0 e1 e2 …] ──▶ ≤4 goroutines: read top, write base
//	                        └─not────────▶ queue (done)           progress: the done prefix of the queue

// commitWorkers is the most copies an intermediate commit keeps in flight. Its writes all
// go to base's file, where buffered writes serialise on the inode's lock: a few in flight
// overlap a read of the chain with a write of base, more only add threads blocked in
// pwrite (16, mirror's MAX_IN_FLIGHT, measured no faster and sometimes slower under load).
const commitWorkers = 4

// commitExtent is one extent of the walk.
type commitExtent struct {
	off, n   int64
	done     bool  // copied, or nothing to copy
	err      error // the copy failed
	inSource bool  // reading top failed (else writing base)
}

// commitCopier runs an intermediate commit's copies and counts its progress.
type commitCopier struct {
	j         *Job
	top, base *Node
	bufs      chan []byte // a buffer per copy in flight (the semaphore), allocated when first used
	wg        sync.WaitGroup

	mu       sync.Mutex
	queue    []*commitExtent // not yet counted, in walk order; +checklocks:mu
	inFlight int             // +checklocks:mu
	failed   bool            // +checklocks:mu
}

func newCommitCopier(j *Job, top, base *Node) *commitCopier {
	p := &commitCopier{j: j, top: top, base: base, bufs: make(chan []byte, commitWorkers)}
	for range commitWorkers {
		p.bufs <- nil
	}
	return p
}

// skip queues an extent with nothing to copy.
func (p *commitCopier) skip(off, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.queue = append(p.queue, &commitExtent{off: off, n: n, done: true})
	p.count()
}

// copy queues an extent to copy (e nil) or starts a failed one again, and starts its copy
// once a buffer is free.
func (p *commitCopier) copy(e *commitExtent, off, n int64) {
	buf := <-p.bufs
	if int64(cap(buf)) < commitBuffer {
		buf = make([]byte, commitBuffer)
	}
	p.mu.Lock()
	if e == nil {
		e = &commitExtent{off: off, n: n}
		p.queue = append(p.queue, e)
	}
	e.err = nil
	p.inFlight++
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		b := buf[:e.n]
		_, err := p.top.ReadAt(b, e.off)
		inSource := err != nil
		if err == nil {
			_, err = p.base.WriteAt(b, e.off)
		}
		p.bufs <- buf
		if err == nil {
			p.j.RateLimitProcessed(e.n)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.inFlight--
		if err != nil {
			e.err, e.inSource = err, inSource
			p.failed = true
			return
		}
		e.done = true
		p.count()
	}()
}

// count adds to the job's progress the extents done at the head of the queue.
// +checklocks:p.mu
func (p *commitCopier) count() {
	var n int64
	i := 0
	for ; i < len(p.queue) && p.queue[i].done; i++ {
		n += p.queue[i].n
	}
	if i == 0 {
		return
	}
	p.queue = p.queue[i:]
	p.j.ProgressUpdate(n)
}

// busy reports whether a copy is in flight or one failed (the loop must settle first).
func (p *commitCopier) busy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inFlight > 0 || p.failed
}

// settle waits for the copies in flight and returns the failed extents in walk order.
func (p *commitCopier) settle() []*commitExtent {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failed = false
	var failed []*commitExtent
	for _, e := range p.queue {
		if e.err != nil {
			failed = append(failed, e)
		}
	}
	return failed
}

// run is commit_run: what the images from top down to the base overlay hold is copied
// into base, extent by extent, several in flight.
func (c *commitJob) run(j *Job) error {
	top, base := c.top, c.base
	length := top.Size()
	j.ProgressSetRemaining(length)
	if base.Size() < length {
		if err := c.g.resizeForJob(base, length); err != nil {
			return err
		}
	}
	below := c.baseOverlay.FilteredOrBacking()
	p := newCommitCopier(j, top, base)
	defer p.wg.Wait()
	var retry []*commitExtent
	last := time.Now()
	for off := int64(0); ; {
		// QEMU's job_sleep_ns at the top of each iteration, a pause point: here only once
		// the copies in flight ended, which a speed, a pause, a failure, the end of a time
		// slice or of the walk asks for.
		end := off >= length && len(retry) == 0
		if end || !p.busy() || j.hasSpeed() || j.pauseRequested() || time.Since(last) >= jobSlice {
			failed := p.settle()
			if len(failed) > 0 {
				f := failed[0]
				if j.ErrorAction(c.onError, f.inSource, f.err) == ActionReport {
					return f.err
				}
				retry = failed
			} else if end {
				return nil
			}
			j.RateLimitSleep()
			last = time.Now()
		}
		if j.Cancelled() {
			break
		}
		if len(retry) > 0 {
			p.copy(retry[0], 0, 0)
			retry = retry[1:]
			continue
		}
		ex, err := top.BlockStatusAbove(below, off, min(commitBuffer, length-off))
		if err != nil {
			retry = p.settle() // the copies before it end first; a failed one is copied again
			if j.ErrorAction(c.onError, true, err) == ActionReport {
				return err
			}
			continue
		}
		if ex.Status&StatusAllocated != 0 {
			p.copy(nil, off, ex.Length)
		} else {
			p.skip(off, ex.Length)
		}
		off += ex.Length
	}
	return nil
}
