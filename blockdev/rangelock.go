package blockdev

import "sync"

// rangeLock serialises overlapping byte ranges of the requests that must not interleave
// (QEMU's serialising tracked requests): a job's copy of a range against a guest write
// into it.
type rangeLock struct {
	mu   sync.Mutex
	cond *sync.Cond
	held [][2]int64
}

// lock waits until no held range overlaps [off, off+length), then holds it.
func (r *rangeLock) lock(off, length int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cond == nil {
		r.cond = sync.NewCond(&r.mu)
	}
	for r.overlaps(off, off+length) {
		r.cond.Wait()
	}
	r.held = append(r.held, [2]int64{off, off + length})
}

// unlock releases a range taken by lock.
func (r *rangeLock) unlock(off, length int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, h := range r.held {
		if h == [2]int64{off, off + length} {
			r.held = append(r.held[:i], r.held[i+1:]...)
			break
		}
	}
	r.cond.Broadcast()
}

func (r *rangeLock) overlaps(a, b int64) bool {
	for _, h := range r.held {
		if a < h[1] && h[0] < b {
			return true
		}
	}
	return false
}
