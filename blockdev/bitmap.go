package blockdev

import (
	"math/bits"
	"sync"
)

// Dirty bitmaps and the write hook.
//
// QEMU marks every write that reaches a node in each dirty bitmap attached to the node
// (bdrv_set_dirty, from bdrv_co_write_req_finish): data, zeroes and discards alike. tlcvm
// does the same through WriteTracker: Node.TrackWrites attaches one, and every
// successful write-type request on the node (WriteAt, WriteZeroes, Unmap) reports its
// range to every tracker, after the node changed. The block jobs use it (a mirror's
// bitmap of what still differs from the target, a backup's successor bitmap), and so
// do named dirty bitmaps (block-dirty-bitmap-add and the rest: a Bitmap, enabled or not,
// attached to its node).
//
//	guest ──▶ Backend ──▶ Node.WriteAt ──▶ driver ──▶ host file
//	                         │ (done)
//	                         └──▶ each WriteTracker.MarkDirty(off, len)   (bdrv_set_dirty)
//
// Bitmap is the granule bitmap (QEMU's HBitmap role): one bit per granule of a
// power-of-two size over a byte range, with the operations the jobs and the bitmap
// commands need (set, reset, test, next dirty extent, count, merge, copy).

// WriteTracker is told of every write that changed a node: [off, off+length) in bytes.
// MarkDirty must not block and must not do I/O (it runs inside the request).
type WriteTracker interface {
	MarkDirty(off, length int64)
}

// TrackWrites attaches t to n: from now on every successful write-type request on n is
// reported to it. The returned function detaches it.
func (n *Node) TrackWrites(t WriteTracker) (untrack func()) {
	n.trackMu.Lock()
	n.trackers = append(n.trackers, t)
	n.trackMu.Unlock()
	return func() {
		n.trackMu.Lock()
		defer n.trackMu.Unlock()
		for i, x := range n.trackers {
			if x == t {
				n.trackers = append(n.trackers[:i:i], n.trackers[i+1:]...)
				return
			}
		}
	}
}

// markDirty reports a write to n's trackers.
func (n *Node) markDirty(off, length int64) {
	n.trackMu.Lock()
	ts := n.trackers
	n.trackMu.Unlock()
	for _, t := range ts {
		t.MarkDirty(off, length)
	}
}

// Bitmap is a bitmap of dirty granules over size bytes. It is safe for concurrent use.
// A disabled bitmap ignores MarkDirty (a WriteTracker that records nothing) but still
// takes Set and Reset.
type Bitmap struct {
	mu       sync.Mutex
	gran     int64 // bytes per bit, a power of two
	shift    uint
	size     int64
	words    []uint64
	count    int64 // dirty granules
	disabled bool
}

// NewBitmap returns a clean bitmap of granularity bytes (a power of two, at least 512)
// over size bytes.
func NewBitmap(size, granularity int64) *Bitmap {
	if granularity < 512 || granularity&(granularity-1) != 0 {
		panic("blockdev: bitmap granularity must be a power of two of at least 512")
	}
	nbits := (size + granularity - 1) / granularity
	return &Bitmap{gran: granularity, shift: uint(bits.TrailingZeros64(uint64(granularity))), size: size,
		words: make([]uint64, (nbits+63)/64)}
}

// Granularity is the bytes a bit stands for.
func (b *Bitmap) Granularity() int64 { return b.gran }

// Size is the byte range the bitmap covers.
func (b *Bitmap) Size() int64 { return b.size }

// SetEnabled enables or disables recording of writes (block-dirty-bitmap-enable/-disable).
func (b *Bitmap) SetEnabled(on bool) {
	b.mu.Lock()
	b.disabled = !on
	b.mu.Unlock()
}

// Enabled reports whether writes are recorded.
func (b *Bitmap) Enabled() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.disabled
}

// MarkDirty implements WriteTracker: an enabled bitmap records the write.
func (b *Bitmap) MarkDirty(off, length int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.disabled {
		b.update(off, length, true)
	}
}

// Set marks every granule [off, off+length) touches dirty.
func (b *Bitmap) Set(off, length int64) {
	b.mu.Lock()
	b.update(off, length, true)
	b.mu.Unlock()
}

// Reset marks every granule [off, off+length) touches clean.
func (b *Bitmap) Reset(off, length int64) {
	b.mu.Lock()
	b.update(off, length, false)
	b.mu.Unlock()
}

// SetAll and Clear set or clear every granule.
func (b *Bitmap) SetAll() { b.Set(0, b.size) }

// Clear makes the bitmap clean (block-dirty-bitmap-clear).
func (b *Bitmap) Clear() { b.Reset(0, b.size) }

// update sets or clears the bits of the granules [off, off+length) touches (b.mu held).
func (b *Bitmap) update(off, length int64, set bool) {
	if length <= 0 || off >= b.size {
		return
	}
	end := min(off+length, b.size)
	first, last := off>>b.shift, (end-1)>>b.shift
	for i := first; i <= last; i++ {
		w, m := i/64, uint64(1)<<(i%64)
		was := b.words[w]&m != 0
		if set && !was {
			b.words[w] |= m
			b.count++
		} else if !set && was {
			b.words[w] &^= m
			b.count--
		}
	}
}

// Get reports whether the granule holding off is dirty.
func (b *Bitmap) Get(off int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if off < 0 || off >= b.size {
		return false
	}
	i := off >> b.shift
	return b.words[i/64]&(1<<(i%64)) != 0
}

// Count is the number of dirty bytes (whole granules; the last may be partial).
func (b *Bitmap) Count() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.count * b.gran
	if last := (b.size - 1) >> b.shift; b.count > 0 && b.words[last/64]&(1<<(last%64)) != 0 {
		n -= (last+1)*b.gran - b.size
	}
	return n
}

// NextDirty returns the first dirty extent at or after off, at most max bytes long,
// granule aligned and clipped to the bitmap's size; ok is false when none is left.
func (b *Bitmap) NextDirty(off, max int64) (start, length int64, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if off < 0 {
		off = 0
	}
	nbits := (b.size + b.gran - 1) >> b.shift
	i := off >> b.shift
	for i < nbits {
		w := b.words[i/64] >> (i % 64)
		if w == 0 {
			i = (i/64 + 1) * 64
			continue
		}
		i += int64(bits.TrailingZeros64(w))
		break
	}
	if i >= nbits {
		return 0, 0, false
	}
	j := i
	for j < nbits && b.words[j/64]&(1<<(j%64)) != 0 && (j-i+1)<<b.shift <= max {
		j++
	}
	if j == i {
		j = i + 1 // max below one granule: one granule anyway
	}
	start = i << b.shift
	end := min(j<<b.shift, b.size)
	return start, end - start, true
}

// Merge sets every bit that is set in src (same granularity and size).
func (b *Bitmap) Merge(src *Bitmap) {
	if src == b {
		return
	}
	src.mu.Lock()
	words := append([]uint64(nil), src.words...)
	src.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.words {
		if i < len(words) {
			b.words[i] |= words[i]
		}
	}
	b.recount()
}

// Copy returns a copy of b (enabled, whatever b is).
func (b *Bitmap) Copy() *Bitmap {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := &Bitmap{gran: b.gran, shift: b.shift, size: b.size, words: append([]uint64(nil), b.words...), count: b.count}
	return c
}

func (b *Bitmap) recount() {
	b.count = 0
	for _, w := range b.words {
		b.count += int64(bits.OnesCount64(w))
	}
}

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
