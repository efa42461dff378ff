package blockdev

import (
	"math/bits"
	"sync"
	"unsafe"
)

// Dirty bitmaps (QEMU's BdrvDirtyBitmap, block/dirty-bitmap.c): one bit per granule of a
// node's bytes, set by every write that reaches the node, for as long as the bitmap
// records. A granule is a power of two of at least 512 bytes; bit i covers bytes
// [i·granularity, (i+1)·granularity) of the node; the last granule may extend past the
// node's end. Count is reported in bytes: set granules × granularity, as QEMU's
// hbitmap_count does.
//
//	node ──bitmaps (newest first)──> Bitmap "b2" (persistent, disabled)
//	                                 Bitmap "b1" (recording)
//	                                 Bitmap ""   (anonymous: a job's, never listed)
//
// Who marks: Node.WriteAt, WriteZeroes, Unmap (when it discards) and the writes a format
// driver makes to its file child all end in Node.wrote, which marks every enabled bitmap
// of the node (markDirty). A node's bitmaps are marked with the node's own offsets: a
// bitmap on a qcow2 node sees guest offsets, one on its file node host offsets.
//
// States (bdrv_dirty_bitmap_status): recording or disabled; busy while an export, a job
// or a transaction uses it (QMP may then neither change nor remove it); readonly when it
// was loaded from an image opened read-only (nothing may change it); inconsistent when
// the image marked it in use (a process holding it died): it can only be removed. A
// bitmap with a successor (a backup job's) is busy, and its writes go to the successor,
// which is merged back (Reclaim) or takes its place (Abdicate) when the job ends.
//
// Locking: a node's bitmap list and every bitmap's bits and flags are guarded by the
// node's bitmap mutex (nodeBitmaps.mu, QEMU's dirty_bitmap_mutex). It is a leaf: nothing
// else is locked while it is held, so the write hook may take it under n.io and the
// monitor under Graph.mu.

// BitmapMinGranularity is the smallest granularity (BDRV_SECTOR_SIZE).
const BitmapMinGranularity = 512

// nodeBitmaps is the bitmap state a node carries.
type nodeBitmaps struct {
	bmMu     sync.Mutex
	bitmaps  []*Bitmap      // newest first; +checklocks:bmMu
	trackers []WriteTracker // jobs' write trackers; +checklocks:bmMu
}

// Bitmap is a dirty bitmap: of one node (CreateBitmap), or detached (NewBitmap), a plain
// granule bitmap that a job keeps and that learns of writes only when it is attached as
// a WriteTracker.
type Bitmap struct {
	node  *Node       // nil for a detached bitmap
	mu    *sync.Mutex // the node's bmMu; a detached bitmap's own
	name  string      // "" for an anonymous bitmap (a job's)
	shift uint        // log2 granularity

	// Guarded by mu.
	size         int64    // bytes covered (the node's size when created or resized)
	words        []uint64 // bit i of words[i/64]: granule i is dirty
	count        int64    // set bits
	disabled     bool
	busy         bool
	persistent   bool
	inconsistent bool
	readonly     bool
	skipStore    bool    // removed inside a transaction: not written back meanwhile
	successor    *Bitmap // while frozen by a job; writes go there
	job          bool    // a job's own bitmap (newJobBitmap): only the job sets it
	jobRecording bool    // what query-block says of a job's bitmap ("recording")
}

// newBitmap makes a clean bitmap of size bytes on n (nil: detached).
func newBitmap(n *Node, name string, gran, size int64) *Bitmap {
	b := &Bitmap{node: n, name: name, shift: uint(bits.TrailingZeros64(uint64(gran))), size: size}
	if n != nil {
		b.mu = &n.bmMu
	} else {
		b.mu = new(sync.Mutex)
	}
	b.words = make([]uint64, wordsFor(b.granules()))
	return b
}

// NewBitmap returns a clean detached bitmap of granularity bytes (a power of two, at
// least 512) over size bytes: a job's bitmap of what it still has to copy. It records
// writes only while attached to a node with Node.TrackWrites.
func NewBitmap(size, granularity int64) *Bitmap {
	if granularity < BitmapMinGranularity || granularity&(granularity-1) != 0 {
		panic("blockdev: bitmap granularity must be a power of two of at least 512")
	}
	return newBitmap(nil, "", granularity, size)
}

func wordsFor(granules int64) int64 { return (granules + 63) / 64 }

// granules is the number of bits: the size rounded up to whole granules. Caller holds
// the node's bitmap lock (or owns b).
func (b *Bitmap) granules() int64 { return (b.size + b.Granularity() - 1) >> b.shift }

// Name is the bitmap's name ("" for an anonymous one).
func (b *Bitmap) Name() string { return b.name }

// Node is the node the bitmap belongs to (nil when detached).
func (b *Bitmap) Node() *Node { return b.node }

// Granularity is the bytes one bit covers.
func (b *Bitmap) Granularity() int64 { return 1 << b.shift }

// Size is the bytes the bitmap covers.
func (b *Bitmap) Size() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size
}

// Count is the dirty bytes: set granules times the granularity (hbitmap_count).
func (b *Bitmap) Count() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count << b.shift
}

// Enabled reports whether the bitmap itself records writes (not disabled).
func (b *Bitmap) Enabled() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.disabled
}

// Recording reports whether writes to the node are recorded, in the bitmap or in its
// successor (query-block's "recording").
func (b *Bitmap) Recording() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.recording()
}

func (b *Bitmap) recording() bool {
	if b.job {
		return b.jobRecording
	}
	return !b.disabled || (b.successor != nil && !b.successor.disabled)
}

// Busy reports whether an operation (export, job, transaction) holds the bitmap.
func (b *Bitmap) Busy() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.busy
}

// SetBusy marks the bitmap as held by an operation (bdrv_dirty_bitmap_set_busy).
func (b *Bitmap) SetBusy(busy bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.busy = busy
}

// Persistent reports whether the bitmap is stored in its image when the node closes.
func (b *Bitmap) Persistent() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.persistent
}

// SetPersistent makes the bitmap stored in its image when the node closes (or not).
func (b *Bitmap) SetPersistent(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.persistent = on
}

// SetSkipStore keeps a persistent bitmap out of its image while it is migrated
// (bdrv_dirty_bitmap_skip_store): the destination owns it.
func (b *Bitmap) SetSkipStore(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.skipStore = on
}

// Inconsistent reports whether the image had the bitmap marked in use when it was loaded.
func (b *Bitmap) Inconsistent() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inconsistent
}

// Readonly reports whether the bitmap came from an image opened read-only.
func (b *Bitmap) Readonly() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.readonly
}

// Enable and Disable start and stop recording (no checks: see PrepareBitmapEnable).
func (b *Bitmap) Enable() { b.SetEnabled(true) }

// Disable stops the bitmap recording writes.
func (b *Bitmap) Disable() { b.SetEnabled(false) }

// SetEnabled starts or stops recording writes; Set and Reset work either way.
func (b *Bitmap) SetEnabled(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.disabled = !on
}

// MarkDirty implements WriteTracker: an enabled bitmap records the write.
func (b *Bitmap) MarkDirty(off, length int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.disabled {
		b.markLocked(off, length)
	}
}

// markLocked records a write of [off, off+length); a write past the bitmap's end (a file
// node growing) grows it first, as bdrv_co_write_req_finish truncates the node's bitmaps.
// Caller holds the lock.
func (b *Bitmap) markLocked(off, length int64) {
	if end := off + length; end > b.size && b.node != nil {
		b.resize((end + 511) &^ 511)
	}
	if first, last, ok := b.span(off, length); ok {
		b.setRange(first, last)
	}
}

// span is the granule range [first, last] holding bytes [off, off+length), clipped to
// the bitmap; ok is false when it is empty. Caller holds the lock.
func (b *Bitmap) span(off, length int64) (first, last int64, ok bool) {
	if length <= 0 || off >= b.size || off+length <= 0 {
		return 0, 0, false
	}
	off = max(off, 0)
	end := min(off+length, b.size)
	return off >> b.shift, (end - 1) >> b.shift, true
}

// setRange sets granules [first, last]; caller holds the lock.
func (b *Bitmap) setRange(first, last int64) { b.fill(first, last, true) }

// resetRange clears granules [first, last]; caller holds the lock.
func (b *Bitmap) resetRange(first, last int64) { b.fill(first, last, false) }

// fill sets or clears granules [first, last] a word at a time, keeping count.
func (b *Bitmap) fill(first, last int64, set bool) {
	for i := first; i <= last; {
		w := i / 64
		lo := uint(i % 64)
		hi := uint(63)
		if w == last/64 {
			hi = uint(last % 64)
		}
		mask := (^uint64(0) >> (63 - hi)) &^ (uint64(1)<<lo - 1)
		if set {
			b.count += int64(bits.OnesCount64(mask &^ b.words[w]))
			b.words[w] |= mask
		} else {
			b.count -= int64(bits.OnesCount64(mask & b.words[w]))
			b.words[w] &^= mask
		}
		i = (w + 1) * 64
	}
}

// Set marks the granules holding [off, off+length) dirty (bdrv_set_dirty_bitmap).
func (b *Bitmap) Set(off, length int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if first, last, ok := b.span(off, length); ok {
		b.setRange(first, last)
	}
}

// Reset marks the granules holding [off, off+length) clean (bdrv_reset_dirty_bitmap);
// callers pass granule-aligned ranges (or ones that end at the bitmap's end), as QEMU
// requires.
func (b *Bitmap) Reset(off, length int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if first, last, ok := b.span(off, length); ok {
		b.resetRange(first, last)
	}
}

// SetAll marks the whole bitmap dirty.
func (b *Bitmap) SetAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := b.granules(); n > 0 {
		b.setRange(0, n-1)
	}
}

// Clear resets the whole bitmap.
func (b *Bitmap) Clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.words)
	b.count = 0
}

// Get reports whether the granule holding byte off is dirty.
func (b *Bitmap) Get(off int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.get(off)
}

func (b *Bitmap) get(off int64) bool {
	if off < 0 || off >= b.size {
		return false
	}
	i := off >> b.shift
	return b.words[i/64]&(1<<(i%64)) != 0
}

// NextDirtyOffset returns the first byte offset ≥ off and < end whose granule is dirty
// (the granule's start when it begins after off), or -1 (bdrv_dirty_bitmap_next_dirty).
func (b *Bitmap) NextDirtyOffset(off, end int64) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.next(off, end, true)
}

// NextCleanOffset is NextDirtyOffset for a clean granule (bdrv_dirty_bitmap_next_zero).
func (b *Bitmap) NextCleanOffset(off, end int64) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.next(off, end, false)
}

// next finds the first granule in [off, end) whose bit equals dirty; caller holds the lock.
func (b *Bitmap) next(off, end int64, dirty bool) int64 {
	off = max(off, 0)
	end = min(end, b.size)
	if off >= end {
		return -1
	}
	first, last := off>>b.shift, (end-1)>>b.shift
	for i := first; i <= last; {
		w := b.words[i/64]
		if !dirty {
			w = ^w
		}
		w &= ^uint64(0) << (i % 64)
		if w == 0 {
			i = (i/64 + 1) * 64
			continue
		}
		g := i/64*64 + int64(bits.TrailingZeros64(w))
		if g > last {
			return -1
		}
		return max(g<<b.shift, off)
	}
	return -1
}

// NextDirty returns the first dirty extent at or after off, at most maxLen bytes long (one
// granule when maxLen is smaller), granule aligned and clipped to the bitmap's size; ok is
// false when none is left. This is how a job walks what it still has to copy.
func (b *Bitmap) NextDirty(off, maxLen int64) (start, length int64, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if off >= b.size {
		return 0, 0, false
	}
	first := b.next(max(off, 0)&^(b.Granularity()-1), b.size, true)
	if first < 0 {
		return 0, 0, false
	}
	start = first &^ (b.Granularity() - 1)
	end := b.size
	if limit := maxLen &^ (b.Granularity() - 1); limit > 0 {
		end = min(end, start+limit)
	} else {
		end = min(end, start+b.Granularity())
	}
	stop := b.next(start, end, false)
	if stop < 0 {
		stop = end
	}
	return start, stop - start, true
}

// NextDirtyArea returns the first dirty run in [off, end) no longer than maxLen
// (bdrv_dirty_bitmap_next_dirty_area); ok is false when there is none.
func (b *Bitmap) NextDirtyArea(off, end, maxLen int64) (start, length int64, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	end = min(end, b.size)
	start = b.next(off, end, true)
	if start < 0 {
		return 0, 0, false
	}
	if maxLen > 0 {
		end = min(end, start+maxLen)
	}
	stop := b.next(start, end, false)
	if stop < 0 {
		stop = end
	}
	return start, stop - start, true
}

// Extents calls fn for the runs of equal state in [off, off+length) (clipped to the
// bitmap), in order, until fn returns false: the NBD qemu:dirty-bitmap context's view.
func (b *Bitmap) Extents(off, length int64, fn func(off, length int64, dirty bool) bool) {
	b.mu.Lock()
	size := b.size
	b.mu.Unlock()
	end := min(off+length, size)
	for off < end {
		d := b.Get(off)
		var next int64
		if d {
			next = b.NextCleanOffset(off, end)
		} else {
			next = b.NextDirtyOffset(off, end)
		}
		if next < 0 {
			next = end
		}
		if !fn(off, next-off, d) {
			return
		}
		off = next
	}
}

// resize changes the covered size (bdrv_dirty_bitmap_truncate): bits past the new end
// are dropped; growing adds clean granules. Caller holds the lock.
func (b *Bitmap) resize(size int64) {
	b.size = size
	n := b.granules()
	words := make([]uint64, wordsFor(n))
	copy(words, b.words)
	if n%64 != 0 && int64(len(words)) > 0 {
		words[len(words)-1] &= uint64(1)<<(n%64) - 1
	}
	b.words = words
	b.count = 0
	for _, w := range words {
		b.count += int64(bits.OnesCount64(w))
	}
}

// mergeFrom sets in b every byte range src has dirty (hbitmap_merge, granularities may
// differ). Caller holds the lock of both nodes' bitmaps (the same lock when they share a
// node; see lockPair).
func (b *Bitmap) mergeFrom(src *Bitmap) {
	if src.shift == b.shift && len(src.words) == len(b.words) {
		for i, w := range src.words {
			b.count += int64(bits.OnesCount64(w &^ b.words[i]))
			b.words[i] |= w
		}
		return
	}
	for g := int64(0); g < src.granules(); g++ {
		if src.words[g/64]&(1<<(g%64)) == 0 {
			continue
		}
		if f, l, ok := b.span(g<<src.shift, src.Granularity()); ok {
			b.setRange(f, l)
		}
	}
}

// Merge sets in b everything src has dirty (any granularity; the sizes should be equal:
// PrepareBitmapMerge checks it with QEMU's text).
func (b *Bitmap) Merge(src *Bitmap) {
	if src == b {
		return
	}
	unlock := lockPair(b, src)
	defer unlock()
	b.mergeFrom(src)
}

// Copy returns a detached, enabled copy of b.
func (b *Bitmap) Copy() *Bitmap {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := newBitmap(nil, "", b.Granularity(), b.size)
	copy(c.words, b.words)
	c.count = b.count
	return c
}

// lockPair takes two bitmaps' locks (once when they share one) in a fixed order.
func lockPair(a, c *Bitmap) func() {
	if a.mu == c.mu {
		a.mu.Lock()
		return a.mu.Unlock
	}
	x, y := a.mu, c.mu
	if uintptr(unsafe.Pointer(x)) > uintptr(unsafe.Pointer(y)) {
		x, y = y, x
	}
	x.Lock()
	y.Lock()
	return func() { y.Unlock(); x.Unlock() }
}

// snapshot returns a copy of the bits (for a transaction's undo); caller holds the lock.
func (b *Bitmap) snapshot() ([]uint64, int64) {
	return append([]uint64(nil), b.words...), b.count
}

// restore puts back what snapshot returned; caller holds the lock.
func (b *Bitmap) restore(words []uint64, count int64) {
	if len(words) == len(b.words) {
		copy(b.words, words)
		b.count = count
	}
}

// Serialize returns the bits of granules [first, first+n) as QEMU serialises them
// (hbitmap_serialize_part): little-endian 64-bit words, bit j of byte k is granule
// first+8k+j; n is rounded up to whole words. first must be a multiple of 64.
func (b *Bitmap) Serialize(first, n int64) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]byte, wordsFor(n)*8)
	for k := int64(0); k < wordsFor(n); k++ {
		w := first/64 + k
		if w >= int64(len(b.words)) {
			break
		}
		v := b.words[w]
		for j := 0; j < 8; j++ {
			out[k*8+int64(j)] = byte(v >> (8 * j))
		}
	}
	return out
}

// Deserialize ORs serialised bits (Serialize's layout) into granules from first (a
// multiple of 64); bits past the bitmap's end are ignored.
func (b *Bitmap) Deserialize(first int64, p []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	total := b.granules()
	for k := 0; k+8 <= len(p); k += 8 {
		w := first/64 + int64(k/8)
		if w >= int64(len(b.words)) {
			break
		}
		var v uint64
		for j := 0; j < 8; j++ {
			v |= uint64(p[k+j]) << (8 * j)
		}
		if rem := total - w*64; rem < 64 {
			v &= uint64(1)<<uint(rem) - 1
		}
		b.count += int64(bits.OnesCount64(v &^ b.words[w]))
		b.words[w] |= v
	}
}

// setGranules marks granules [first, first+n) dirty (an "all ones" bitmap table entry).
func (b *Bitmap) setGranules(first, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	last := min(first+n, b.granules()) - 1
	if last >= first {
		b.setRange(first, last)
	}
}

// WriteTracker is told of every write that changed a node: [off, off+length) in bytes,
// after the node changed. MarkDirty must not block and must not do I/O (it runs inside the
// request). A detached Bitmap is one (a job's); a node's own bitmaps are marked without it.
type WriteTracker interface {
	MarkDirty(off, length int64)
}

// TrackWrites attaches t to n: from now on every successful write-type request on n is
// reported to it. The returned function detaches it.
func (n *Node) TrackWrites(t WriteTracker) (untrack func()) {
	n.bmMu.Lock()
	n.trackers = append(n.trackers, t)
	n.bmMu.Unlock()
	return func() {
		n.bmMu.Lock()
		defer n.bmMu.Unlock()
		for i, x := range n.trackers {
			if x == t {
				n.trackers = append(n.trackers[:i:i], n.trackers[i+1:]...)
				return
			}
		}
	}
}

// markDirty records a write of [off, off+length) in every recording bitmap of n
// (bdrv_set_dirty) and tells n's trackers. A bitmap frozen by a job does not record; its
// successor, an anonymous bitmap of the node, does.
func (n *Node) markDirty(off, length int64) {
	if length <= 0 {
		return
	}
	n.bmMu.Lock()
	for _, b := range n.bitmaps {
		if !b.disabled {
			b.markLocked(off, length)
		}
	}
	ts := n.trackers
	n.bmMu.Unlock()
	for _, t := range ts {
		t.MarkDirty(off, length)
	}
}

// CreateBitmap adds a bitmap of granularity gran (a power of two ≥ 512) covering the
// node (bdrv_create_dirty_bitmap). An empty name makes an anonymous bitmap, which jobs
// use and queries never list; a named one must be new on the node ("Bitmap already
// exists: NAME").
func (n *Node) CreateBitmap(name string, gran int64) (*Bitmap, error) {
	if gran < BitmapMinGranularity || gran&(gran-1) != 0 {
		return nil, errf(ErrInvalid, "Granularity must be power of 2 and at least 512")
	}
	size := n.Size()
	n.bmMu.Lock()
	defer n.bmMu.Unlock()
	if name != "" && n.findBitmap(name) != nil {
		return nil, errf(ErrExists, "Bitmap already exists: %s", name)
	}
	b := newBitmap(n, name, gran, size)
	n.bitmaps = append([]*Bitmap{b}, n.bitmaps...)
	return b, nil
}

// ReleaseBitmap removes b from its node (bdrv_release_dirty_bitmap); it does not touch
// the image (see Graph.BitmapRemove).
func (n *Node) ReleaseBitmap(b *Bitmap) {
	n.bmMu.Lock()
	defer n.bmMu.Unlock()
	n.releaseLocked(b)
}

func (n *Node) releaseLocked(b *Bitmap) {
	out := n.bitmaps[:0]
	for _, x := range n.bitmaps {
		if x != b {
			out = append(out, x)
		}
	}
	clear(n.bitmaps[len(out):])
	n.bitmaps = out
}

// Bitmap returns the node's bitmap called name.
func (n *Node) Bitmap(name string) (*Bitmap, bool) {
	n.bmMu.Lock()
	defer n.bmMu.Unlock()
	b := n.findBitmap(name)
	return b, b != nil
}

func (n *Node) findBitmap(name string) *Bitmap {
	for _, b := range n.bitmaps {
		if b.name != "" && b.name == name {
			return b
		}
	}
	return nil
}

// Bitmaps returns the node's named bitmaps, newest first (query-block's order).
func (n *Node) Bitmaps() []*Bitmap {
	n.bmMu.Lock()
	defer n.bmMu.Unlock()
	var out []*Bitmap
	for _, b := range n.bitmaps {
		if b.name != "" {
			out = append(out, b)
		}
	}
	return out
}

// BitmapInfo is one element of a node's "dirty-bitmaps" (BlockDirtyInfo).
type BitmapInfo struct {
	Name         string
	Count        int64 // dirty bytes
	Granularity  int64
	Recording    bool
	Busy         bool
	Persistent   bool
	Inconsistent bool
}

// BitmapInfos describes the node's bitmaps, newest first (bdrv_query_dirty_bitmaps): the
// anonymous ones too (a job's, a frozen bitmap's successor), without a name, as QEMU
// lists them.
func (n *Node) BitmapInfos() []BitmapInfo {
	n.bmMu.Lock()
	defer n.bmMu.Unlock()
	var out []BitmapInfo
	for _, b := range n.bitmaps {
		out = append(out, BitmapInfo{Name: b.name, Count: b.count << b.shift, Granularity: b.Granularity(),
			Recording: b.recording(), Busy: b.busy, Persistent: b.persistent, Inconsistent: b.inconsistent})
	}
	return out
}

// CreateSuccessor freezes b for a job (bdrv_dirty_bitmap_create_successor): an anonymous
// successor takes over recording (enabled if b was), b stops recording and is busy.
func (b *Bitmap) CreateSuccessor() (*Bitmap, error) {
	n := b.node
	size := n.Size()
	n.bmMu.Lock()
	defer n.bmMu.Unlock()
	if b.busy {
		return nil, errf(ErrInUse, "Cannot create a successor for a bitmap that is in-use by an operation")
	}
	if b.successor != nil {
		return nil, errf(ErrInUse, "Cannot create a successor for a bitmap that already has one")
	}
	s := newBitmap(n, "", b.Granularity(), size)
	s.disabled = b.disabled
	b.disabled = true
	b.successor, b.busy = s, true
	n.bitmaps = append([]*Bitmap{s}, n.bitmaps...)
	return s, nil
}

// Abdicate ends a successful job: the successor takes b's name and persistence and b
// goes away (bdrv_dirty_bitmap_abdicate). It returns the successor.
func (b *Bitmap) Abdicate() *Bitmap {
	n := b.node
	n.bmMu.Lock()
	defer n.bmMu.Unlock()
	s := b.successor
	if s == nil {
		return b
	}
	s.name, s.persistent = b.name, b.persistent
	b.name, b.persistent, b.successor, b.busy = "", false, nil, false
	// The successor takes b's place in the list (the order query-block shows).
	for i, x := range n.bitmaps {
		if x == b {
			n.bitmaps[i] = s
		} else if x == s {
			n.bitmaps[i] = b
		}
	}
	n.releaseLocked(b)
	return s
}

// Reclaim ends a failed job: the successor's bits are merged back into b, which records
// again if the successor did, and is no longer busy (bdrv_reclaim_dirty_bitmap).
func (b *Bitmap) Reclaim() {
	n := b.node
	n.bmMu.Lock()
	defer n.bmMu.Unlock()
	s := b.successor
	if s == nil {
		return
	}
	b.mergeFrom(s)
	b.disabled = s.disabled
	b.busy, b.successor = false, nil
	n.releaseLocked(s)
}

// newJobBitmap gives a job a bitmap of granularity gran over size bytes, listed on n
// (anonymous, newest first) as QEMU lists the bitmaps block jobs create on their nodes: a
// mirror's bitmap of what still differs, a backup's copy bitmap and its filter's. The job
// alone sets and resets it (the node's writes do not mark it); recording is what the
// queries say of it. release takes it off the node.
func (n *Node) newJobBitmap(size, gran int64, recording bool) (b *Bitmap, release func()) {
	b = newBitmap(n, "", gran, size)
	b.disabled, b.job, b.jobRecording = true, true, recording
	n.bmMu.Lock()
	n.bitmaps = append([]*Bitmap{b}, n.bitmaps...)
	n.bmMu.Unlock()
	return b, func() { n.ReleaseBitmap(b) }
}

// setTracking makes a job's bitmap record every write to its node (on) or only what
// the job sets (off).
func (b *Bitmap) setTracking(on bool) {
	b.mu.Lock()
	b.disabled = !on
	b.mu.Unlock()
}

// HasReadonlyBitmaps reports whether a bitmap of n is readonly (writes must then fail).
func (n *Node) HasReadonlyBitmaps() bool {
	n.bmMu.Lock()
	defer n.bmMu.Unlock()
	for _, b := range n.bitmaps {
		if b.readonly {
			return true
		}
	}
	return false
}

// resizeBitmaps follows a resize of n (block_resize).
func (n *Node) resizeBitmaps(size int64) {
	n.bmMu.Lock()
	defer n.bmMu.Unlock()
	for _, b := range n.bitmaps {
		b.resize(size)
	}
}
