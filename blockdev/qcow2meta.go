package blockdev

import (
	"encoding/binary"
	"slices"
	"sync"
)

// qcow2's metadata as the data path uses it: the L1 table (written through), L2 tables and
// refcount blocks cached in memory and written back (below), the cluster allocator with its refcount updates
// (new refcount blocks, a larger refcount table), following docs/interop/qcow2.txt and QEMU
// 7.2's block/qcow2-cluster.c and qcow2-refcount.c:
//
//	guest offset ─┬─ l1 index = off >> (cluster_bits + l2_bits)
//	              ├─ l2 index = off >> cluster_bits & (l2 entries - 1)
//	              └─ in-cluster offset
//	L1 entry:  bit 63 COPIED (refcount 1) | bits 9-55 L2 table offset
//	L2 entry:  bit 63 COPIED | bit 62 compressed | bits 9-55 cluster offset | bit 0 reads as zeroes
//	           compressed: bits 0..x-1 host offset, x..61 additional 512-byte sectors,
//	           x = 62 - (cluster_bits - 8)
//	refcount:  table (u64 block offsets) → blocks of 2^refcount_order-bit entries, one per
//	           host cluster
//
// The caches are write-back, as QEMU 7.2's qcow2 caches are (qcow2-cache.c): a changed L2
// entry or refcount only marks its table dirty; dirty tables go to the file when the node
// is flushed, closed or goes read-only, when a block job that holds it ends, when the
// cache must make room, and before a root of the metadata (an L1 entry or table, the
// header, the snapshot table) is written to point to something new. Two dependencies keep
// what a killed process leaves on disk consistent (clusters may leak, nothing is
// referenced without its refcount, nothing referenced is counted free), as QEMU's
// qcow2_cache_set_dependency does:
//
//	refcount raised, then an L2 entry points to the cluster  → L2 tables wait for the
//	                                                            refcount blocks (l2AfterRB)
//	L2 entry cleared, then the cluster's refcount lowered    → refcount blocks wait for the
//	                                                            L2 tables (rbAfterL2)
//
// Setting one dependency while the other holds writes the waiting side first, so at most
// one holds at a time. Nothing here calls fdatasync between the two writes (QEMU's
// dependency flush does): the order is the page cache's, which a killed process keeps; a
// host crash is what Flush (fdatasync) guards against, as before.
//
// Everything read from the image is untrusted: offsets are checked (aligned, not into the
// header) and sizes bounded before use; a bad one is an ErrIO naming it, never a panic.

const (
	oflagCopied     = uint64(1) << 63
	oflagCompressed = uint64(1) << 62
	oflagZero       = uint64(1)
	entryOffsetMask = uint64(0x00fffffffffffe00) // L1 and L2 entries
	reftOffsetMask  = ^uint64(0x1ff)

	maxRefcountTable = 8 << 20 // QEMU's QCOW_MAX_REFTABLE_SIZE
	maxCacheBytes    = 32 << 20
	maxHostOffset    = int64(1) << 56 // what an L2 entry can address
)

// clusterKind is what an L2 entry says of its cluster (QCow2ClusterType).
type clusterKind uint8

const (
	kindUnallocated clusterKind = iota // read from the backing chain (zeroes without one)
	kindZeroPlain                      // reads as zeroes, no host cluster
	kindZeroAlloc                      // reads as zeroes, host cluster kept (preallocated)
	kindNormal                         // data in a host cluster
	kindCompressed                     // deflated data inside one or two host clusters
)

func (q *qcow2) kind(e uint64) clusterKind {
	switch {
	case e&oflagCompressed != 0:
		return kindCompressed
	case e&oflagZero != 0 && e&entryOffsetMask == 0:
		return kindZeroPlain
	case e&oflagZero != 0:
		return kindZeroAlloc
	case e&entryOffsetMask != 0:
		return kindNormal
	}
	return kindUnallocated
}

// qcow2 is a qcow2 node's cluster mapper. mu guards every field below it: the caches,
// the allocator, and each write of metadata. An allocating write holds it to map and
// allocate, writes its data without it, and takes it again to link the L2 entries; the
// guest clusters in between are in flight (allocs) and other requests wait for them.
type qcow2 struct {
	n     *Node
	h     *Qcow2Header
	cs    int64  // cluster size
	bits  uint32 // cluster bits
	l2n   int64  // entries per L2 table
	perRB int64  // refcount entries per refcount block
	order uint32 // refcount order

	mu     sync.Mutex
	loaded bool
	l1     []uint64           // active L1 table (host-endian)
	rt     []uint64           // refcount table
	l2     map[int64][]uint64 // L2 tables by host offset
	rb     map[int64][]byte   // refcount blocks by host offset (on-disk bytes)
	cached int64              // bytes held by l2 and rb
	// dirtyL2 and dirtyRB are the cached tables changed since they were last written;
	// l2AfterRB and rbAfterL2 the dependencies between them (at most one set).
	dirtyL2, dirtyRB     map[int64]struct{}
	l2AfterRB, rbAfterL2 bool
	// discarding is set while a discard or zeroing request frees clusters (their discard
	// goes to the image file, QCOW2_DISCARD_REQUEST); discards queues those ranges.
	discarding bool
	discards   []hostRange
	hint       int64       // lowest host cluster that may be free
	allocs     []*inflight // allocating writes whose L2 entries are not linked yet
	end        int64       // host clusters: one past the file's end and every allocation
}

func newQcow2(n *Node, h *Qcow2Header) *qcow2 {
	cs := h.ClusterSize()
	return &qcow2{n: n, h: h, cs: cs, bits: h.ClusterBits, l2n: cs / 8,
		perRB: cs * 8 >> h.RefcountOrder, order: h.RefcountOrder}
}

// qcow2 returns n's cluster mapper, refusing images the data path does not handle.
func (n *Node) qcow2() (*qcow2, error) {
	if n.q == nil {
		return nil, errf(ErrIO, "tlcvm: node '%s' has no qcow2 state", n.Name)
	}
	if n.hdr.ExtendedL2() {
		return nil, errf(ErrUnsupported, "tlcvm: I/O on qcow2 images with extended L2 entries is not supported")
	}
	return n.q, nil
}

// pread reads from the image file (zeroes past its end).
func (q *qcow2) pread(p []byte, off int64) error { return q.n.File.pread(p, off) }

// pwrite writes to the image file.
func (q *qcow2) pwrite(p []byte, off int64) error { return q.n.File.pwrite(p, off) }

// load reads the L1 and refcount tables once. Caller holds q.mu.
func (q *qcow2) load() error {
	if q.loaded {
		return nil
	}
	h := q.h
	if h.Dirty() && !q.n.ReadOnly {
		return errf(ErrUnsupported, "tlcvm: the qcow2 image '%s' was not closed cleanly (dirty bit, lazy refcounts); repair it with 'qemu-img check -r all'", q.n.filename)
	}
	if int64(h.RefcountTableClusters)*q.cs > maxRefcountTable {
		return errf(ErrIO, "Reference count table too large")
	}
	if h.L1Size > 0 && (h.L1TableOffset == 0 || int64(h.L1TableOffset) >= maxHostOffset) {
		return errf(ErrIO, "Invalid L1 table offset")
	}
	if int64(h.RefcountTableOffset) >= maxHostOffset {
		return errf(ErrIO, "Invalid reference count table offset")
	}
	l1, err := q.readTable(int64(h.L1TableOffset), int64(h.L1Size))
	if err != nil {
		return prefix(err, "Could not read L1 table: ")
	}
	rt, err := q.readTable(int64(h.RefcountTableOffset), int64(h.RefcountTableClusters)*q.cs/8)
	if err != nil {
		return prefix(err, "Could not read refcount table: ")
	}
	q.l1, q.rt = l1, rt
	q.l2, q.rb = map[int64][]uint64{}, map[int64][]byte{}
	q.dirtyL2, q.dirtyRB = map[int64]struct{}{}, map[int64]struct{}{}
	end, err := q.n.File.hostSize()
	if err != nil {
		return err
	}
	q.end = (end + q.cs - 1) / q.cs
	q.hint = 0
	q.loaded = true
	return nil
}

// readTable reads n big-endian u64 entries at off.
func (q *qcow2) readTable(off, n int64) ([]uint64, error) {
	b := make([]byte, n*8)
	if err := q.pread(b, off); err != nil {
		return nil, err
	}
	t := make([]uint64, n)
	for i := range t {
		t[i] = binary.BigEndian.Uint64(b[i*8:])
	}
	return t, nil
}

// writeEntry writes one big-endian u64 at off.
func (q *qcow2) writeEntry(off int64, v uint64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return q.pwrite(b[:], off)
}

// checkOffset refuses a metadata or data offset that cannot be right: unaligned, inside
// the header cluster, or beyond what an entry can address.
func (q *qcow2) checkOffset(off uint64, what string) error {
	if off%uint64(q.cs) != 0 || off < uint64(q.cs) || int64(off) >= maxHostOffset || q.overlapsTables(int64(off)/q.cs) {
		return errf(ErrIO, "tlcvm: qcow2 image '%s' is corrupt: %s offset %#x invalid", q.n.filename, what, off)
	}
	return nil
}

// overlapsTables reports whether host cluster c holds the header, the active L1 table or
// the refcount table (QEMU's metadata overlap check for the fixed tables): a corrupt entry
// pointing there must not be written through, and the allocator must not hand it out.
func (q *qcow2) overlapsTables(c int64) bool {
	in := func(off uint64, bytes int64) bool {
		first := int64(off) / q.cs
		return bytes > 0 && c >= first && c < first+(bytes+q.cs-1)/q.cs
	}
	return c == 0 || in(q.h.L1TableOffset, int64(q.h.L1Size)*8) ||
		in(q.h.RefcountTableOffset, int64(q.h.RefcountTableClusters)*q.cs)
}

// trim makes room in the caches for one more table, under maxCacheBytes: a clean table
// goes; when every table is dirty, they are all written back first (a failed write-back
// leaves the cache larger, and the tables dirty for the next flush). Caller holds q.mu.
func (q *qcow2) trim() {
	for q.cached+q.cs > maxCacheBytes && q.cached > 0 {
		if q.evictClean() {
			continue
		}
		if q.writeback() != nil || !q.evictClean() {
			return
		}
	}
}

// evictClean drops one clean table from the caches, false when there is none.
// Caller holds q.mu.
func (q *qcow2) evictClean() bool {
	for off := range q.l2 {
		if _, dirty := q.dirtyL2[off]; !dirty {
			delete(q.l2, off)
			q.cached -= q.cs
			return true
		}
	}
	for off := range q.rb {
		if _, dirty := q.dirtyRB[off]; !dirty {
			delete(q.rb, off)
			q.cached -= q.cs
			return true
		}
	}
	return false
}

// writeback writes every dirty table to the file, in the order the dependencies ask
// (qcow2_cache_flush of both caches, without the file flush). Caller holds q.mu.
func (q *qcow2) writeback() error {
	if !q.loaded {
		return nil
	}
	if err := q.writeRBs(); err != nil {
		return err
	}
	return q.writeL2s()
}

// writeL2s writes the dirty L2 tables, writeRBs the dirty refcount blocks, each after
// the other kind when it waits for it. Caller holds q.mu.
func (q *qcow2) writeL2s() error { return q.writeTables(true) }
func (q *qcow2) writeRBs() error { return q.writeTables(false) }

func (q *qcow2) writeTables(l2 bool) error {
	dirty, waits, held := q.dirtyRB, q.rbAfterL2, &q.l2AfterRB
	if l2 {
		dirty, waits, held = q.dirtyL2, q.l2AfterRB, &q.rbAfterL2
	}
	if waits {
		if err := q.writeTables(!l2); err != nil {
			return err
		}
	}
	for _, off := range sortedOffsets(dirty) {
		b := q.rb[off]
		if l2 {
			q.n.File.debugEvent(evL2Update) // qcow2_cache_entry_flush raises it, not the change
			b = encodeTable(q.l2[off])
		}
		if err := q.pwrite(b, off); err != nil {
			return err
		}
		delete(dirty, off)
	}
	*held = false // nothing of this kind is pending any more: the other need not wait
	return nil
}

// l2DependsOnRB: L2 entries about to change may point to clusters whose refcounts were
// raised in the cache. rbDependsOnL2: a refcount is about to be lowered for a cluster an
// L2 entry pointed to until it changed in the cache. Each first writes what waits for the
// other way round (qcow2_cache_set_dependency). Caller holds q.mu.
func (q *qcow2) l2DependsOnRB() error { return q.dependOn(true) }
func (q *qcow2) rbDependsOnL2() error { return q.dependOn(false) }

func (q *qcow2) dependOn(l2 bool) error {
	reverse, set := q.rbAfterL2, &q.l2AfterRB
	if !l2 {
		reverse, set = q.l2AfterRB, &q.rbAfterL2
	}
	if reverse {
		if err := q.writeTables(l2); err != nil {
			return err
		}
	}
	*set = true
	return nil
}

// sortedOffsets returns a dirty set's offsets in ascending order (one pass over the file).
func sortedOffsets(set map[int64]struct{}) []int64 {
	offs := make([]int64, 0, len(set))
	for off := range set {
		offs = append(offs, off)
	}
	slices.Sort(offs)
	return offs
}

// encodeTable is a table of u64 entries as the file holds it (big-endian).
func encodeTable(t []uint64) []byte {
	buf := make([]byte, len(t)*8)
	for i, v := range t {
		binary.BigEndian.PutUint64(buf[i*8:], v)
	}
	return buf
}

// writebackMeta writes a qcow2 node's dirty metadata to its file (nothing for other
// nodes): before a flush, a close, a reopen read-only, and when a job holding it ends.
func (n *Node) writebackMeta() error {
	q := n.q
	if q == nil {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.writeback()
}

// cacheL2 and cacheRB keep a table in the cache. Caller holds q.mu.
func (q *qcow2) cacheL2(off int64, t []uint64) {
	if _, ok := q.l2[off]; !ok {
		q.trim()
		q.cached += q.cs
	}
	q.l2[off] = t
}

func (q *qcow2) cacheRB(off int64, b []byte) {
	if _, ok := q.rb[off]; !ok {
		q.trim()
		q.cached += q.cs
	}
	q.rb[off] = b
}

// uncacheL2 forgets a freed L2 table, dirty or not: its cluster may hold data next.
func (q *qcow2) uncacheL2(off int64) {
	if _, ok := q.l2[off]; ok {
		delete(q.l2, off)
		delete(q.dirtyL2, off)
		q.cached -= q.cs
	}
}

// l2Dirty marks the L2 table at off dirty and returns the cached copy to change: t, the
// copy the caller mapped, unless the cache dropped it meanwhile (it was clean then, so a
// copy read again equals it) and holds another. Caller holds q.mu.
func (q *qcow2) l2Dirty(t []uint64, off int64) []uint64 {
	ct, ok := q.l2[off]
	if !ok {
		q.cacheL2(off, t)
		ct = t
	}
	q.dirtyL2[off] = struct{}{}
	return ct
}

// l2Table returns the L2 table at off (cached). Caller holds q.mu.
func (q *qcow2) l2Table(off int64) ([]uint64, error) {
	if t, ok := q.l2[off]; ok {
		return t, nil
	}
	if err := q.checkOffset(uint64(off), "L2 table"); err != nil {
		return nil, err
	}
	q.n.File.debugEvent(evL2Load)
	t, err := q.readTable(off, q.l2n)
	if err != nil {
		return nil, prefix(err, "Could not read L2 table: ")
	}
	q.cacheL2(off, t)
	return t, nil
}

// entry returns the L2 entry of the guest cluster holding off (0 when its L2 table is not
// allocated). Caller holds q.mu.
func (q *qcow2) entry(off int64) (uint64, error) {
	if err := q.load(); err != nil {
		return 0, err
	}
	l1i, l2i := q.index(off)
	if l1i >= int64(len(q.l1)) {
		return 0, errf(ErrIO, "tlcvm: qcow2 offset %d beyond the L1 table", off)
	}
	l2off := q.l1[l1i] & entryOffsetMask
	if l2off == 0 {
		return 0, nil
	}
	t, err := q.l2Table(int64(l2off))
	if err != nil {
		return 0, err
	}
	return t[l2i], nil
}

// index splits a guest offset into L1 and L2 indexes.
func (q *qcow2) index(off int64) (int64, int64) {
	c := off >> q.bits
	return c / q.l2n, c % q.l2n
}

// l2ForWrite returns the L2 table of guest offset off and its host offset, allocating
// a new table when there is none or copying it when it is shared (L1 entry without
// COPIED), as get_cluster_table/l2_allocate do. Caller holds q.mu.
func (q *qcow2) l2ForWrite(off int64) ([]uint64, int64, error) {
	if err := q.load(); err != nil {
		return nil, 0, err
	}
	l1i, _ := q.index(off)
	if l1i >= int64(len(q.l1)) {
		return nil, 0, errf(ErrIO, "tlcvm: qcow2 offset %d beyond the L1 table", off)
	}
	e := q.l1[l1i]
	old := int64(e & entryOffsetMask)
	if old != 0 && e&oflagCopied != 0 {
		t, err := q.l2Table(old)
		return t, old, err
	}
	t := make([]uint64, q.l2n)
	if old != 0 {
		ot, err := q.l2Table(old)
		if err != nil {
			return nil, 0, err
		}
		copy(t, ot)
	}
	noff, err := q.alloc()
	if err != nil {
		return nil, 0, err
	}
	// l2_allocate: the refcount (and L2) caches go to the file before the L1 entry
	// points to the new table, which is written whole.
	fail := func(err error) ([]uint64, int64, error) {
		_ = q.unref(noff / q.cs) // l2_allocate's failure path frees the new table's cluster
		return nil, 0, err
	}
	if err := q.writeback(); err != nil {
		return fail(err)
	}
	q.n.File.debugEvent(evL2Update) // the table leaves the cache (qcow2_cache_entry_flush)
	if err := q.pwrite(encodeTable(t), noff); err != nil {
		return fail(err)
	}
	if err := q.writeEntry(int64(q.h.L1TableOffset)+l1i*8, uint64(noff)|oflagCopied); err != nil {
		return fail(err)
	}
	q.l1[l1i] = uint64(noff) | oflagCopied
	q.cacheL2(noff, t)
	if old != 0 {
		q.uncacheL2(old)
		if err := q.unref(old / q.cs); err != nil {
			return nil, 0, err
		}
	}
	return t, noff, nil
}

// setEntry changes L2 entry l2i of the table at l2off in the cache (written back later).
// An entry that now points to a cluster the node did not reference there before waits for
// the refcount blocks; one that stops pointing to a cluster makes the refcount blocks wait
// for it (the caller lowers the refcount next). Caller holds q.mu.
func (q *qcow2) setEntry(t []uint64, l2off, l2i int64, v uint64) error {
	old := t[l2i]
	if v&entryOffsetMask != 0 && v&entryOffsetMask != old&entryOffsetMask {
		if err := q.l2DependsOnRB(); err != nil {
			return err
		}
	}
	ct := q.l2Dirty(t, l2off)
	ct[l2i], t[l2i] = v, v
	return nil
}

// refBlock returns the refcount block at off (cached). Caller holds q.mu.
func (q *qcow2) refBlock(off int64) ([]byte, error) {
	if b, ok := q.rb[off]; ok {
		return b, nil
	}
	if err := q.checkOffset(uint64(off), "refcount block"); err != nil {
		return nil, err
	}
	b := make([]byte, q.cs)
	if err := q.pread(b, off); err != nil {
		return nil, prefix(err, "Could not read refcount block: ")
	}
	q.cacheRB(off, b)
	return b, nil
}

// refcount returns host cluster c's refcount (0 where no refcount block covers it).
// Caller holds q.mu.
func (q *qcow2) refcount(c int64) (uint64, error) {
	i := c / q.perRB
	if i >= int64(len(q.rt)) || q.rt[i]&reftOffsetMask == 0 {
		return 0, nil
	}
	b, err := q.refBlock(int64(q.rt[i] & reftOffsetMask))
	if err != nil {
		return 0, err
	}
	return getRefcount(b, c%q.perRB, q.order), nil
}

// setRefcount stores host cluster c's refcount in its (existing) block in the cache
// (written back later); a lowered refcount waits for the L2 tables. Caller holds q.mu.
func (q *qcow2) setRefcount(c int64, v uint64) error {
	i := c / q.perRB
	if i >= int64(len(q.rt)) || q.rt[i]&reftOffsetMask == 0 {
		return errf(ErrIO, "tlcvm: qcow2 image '%s' is corrupt: no refcount block for cluster %d", q.n.filename, c)
	}
	off := int64(q.rt[i] & reftOffsetMask)
	b, err := q.refBlock(off)
	if err != nil {
		return err
	}
	j := c % q.perRB
	if v < getRefcount(b, j, q.order) {
		if err := q.rbDependsOnL2(); err != nil {
			return err
		}
	}
	setRefcount(b, j, q.order, v)
	q.dirtyRB[off] = struct{}{}
	return nil
}

// unref lowers host cluster c's refcount; at zero the cluster is free again.
// Caller holds q.mu.
func (q *qcow2) unref(c int64) error {
	r, err := q.refcount(c)
	if err != nil {
		return err
	}
	if r == 0 {
		return errf(ErrIO, "tlcvm: qcow2 image '%s' is corrupt: freeing cluster %d with refcount 0", q.n.filename, c)
	}
	if err := q.setRefcount(c, r-1); err != nil {
		return err
	}
	if r == 1 && c < q.hint {
		q.hint = c
	}
	if r == 1 && q.discarding && q.n.Discard == "unmap" {
		q.queueDiscard(c*q.cs, q.cs) // pass-discard-request
	}
	return nil
}

// hostRange is a range of the image file.
type hostRange struct{ off, n int64 }

// queueDiscard adds a freed range to the discards of the running discard or zeroing
// request, merged with a range it touches (update_refcount_discard). Caller holds q.mu.
func (q *qcow2) queueDiscard(off, n int64) {
	for i := range q.discards {
		d := &q.discards[i]
		if off != d.off+d.n && off+n != d.off {
			continue
		}
		d.off, d.n = min(d.off, off), d.n+n
		for j := 0; j < len(q.discards); j++ { // merge with any other range now touching d
			p := q.discards[j]
			if j == i || (p.off != d.off+d.n && p.off+p.n != d.off) {
				continue
			}
			d.off, d.n = min(d.off, p.off), d.n+p.n
			q.discards = append(q.discards[:j], q.discards[j+1:]...)
			if j < i {
				i--
				d = &q.discards[i]
			}
			j--
		}
		return
	}
	q.discards = append(q.discards, hostRange{off, n})
}

// flushDiscards passes the queued discards to the image file, in order
// (qcow2_process_discards): one discard per merged range.
func (q *qcow2) flushDiscards() {
	q.mu.Lock()
	ds := q.discards
	q.discards = nil
	q.mu.Unlock()
	for _, d := range ds {
		_ = q.n.File.Unmap(d.off, d.n)
	}
}

// unrefEntry frees what an L2 entry held (qcow2_free_any_cluster): its data cluster, or
// the host clusters a compressed cluster lies in. Caller holds q.mu.
func (q *qcow2) unrefEntry(e uint64) error {
	switch q.kind(e) {
	case kindNormal, kindZeroAlloc:
		return q.unref(int64(e&entryOffsetMask) / q.cs)
	case kindCompressed:
		off, size := q.compressed(e)
		for c := off / q.cs; c <= (off+size-1)/q.cs; c++ {
			if err := q.unref(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// alloc allocates one host cluster (refcount 1) and returns its offset.
// Caller holds q.mu.
func (q *qcow2) alloc() (int64, error) { return q.allocRun(1) }

// allocRun allocates n contiguous host clusters (refcount 1) and returns the offset of the
// first, as qcow2_alloc_clusters does: the first run of n clusters with refcount 0 from
// the hint (which moves past it), then the refcounts (needBlock); when a refcount block had
// to be made, the search starts again at the run (QEMU's -EAGAIN: the clusters counted are
// rolled back, the same ones tried first), so that every cluster goes where QEMU puts it.
// Caller holds q.mu.
func (q *qcow2) allocRun(n int64) (int64, error) {
	for tries := 0; tries < 64+int(n); tries++ {
		c, err := q.findRun(n)
		if err != nil {
			return 0, err
		}
		if again, err := q.countRun(c, n); err != nil || !again {
			return c * q.cs, err
		}
	}
	return 0, errf(ErrIO, "tlcvm: qcow2 image '%s': cannot allocate %d clusters", q.n.filename, n)
}

// allocAt is qcow2_alloc_clusters_at: as many of the n clusters from host offset off as
// are free, counted; 0 when the first is in use. The hint does not move (but for the
// restart after a new refcount block). Caller holds q.mu.
func (q *qcow2) allocAt(off, n int64) (int64, error) {
	c := off / q.cs
	for tries := 0; tries < 64+int(n); tries++ {
		k := int64(0)
		for ; k < n && !q.overlapsTables(c+k); k++ {
			r, err := q.refcount(c + k)
			if err != nil {
				return 0, err
			}
			if r != 0 {
				break
			}
		}
		if k == 0 {
			return 0, nil
		}
		if again, err := q.countRun(c, k); err != nil || !again {
			return k, err
		}
	}
	return 0, errf(ErrIO, "tlcvm: qcow2 image '%s': cannot allocate %d clusters", q.n.filename, n)
}

// countRun is update_refcount(+1) over clusters [c, c+n): it sets their refcounts to 1,
// or, when one of them has no refcount block yet, makes that block (needBlock), moves the
// hint back to c and reports again (QEMU's -EAGAIN). Caller holds q.mu.
func (q *qcow2) countRun(c, n int64) (again bool, err error) {
	for x := c; x < c+n; x++ {
		made, err := q.needBlock(x)
		if err != nil {
			return false, err
		}
		if made {
			q.hint = min(q.hint, c)
			return true, nil
		}
	}
	for x := c; x < c+n; x++ {
		if err := q.setRefcount(x, 1); err != nil {
			return false, err
		}
	}
	q.end = max(q.end, c+n)
	return false, nil
}

// needBlock is alloc_refcount_block for host cluster x: nothing when a refcount block
// covers it; else the block goes to the next free cluster (counting itself when it lies in
// x's range), after the refcount table grows when x's range is past its end.
// Caller holds q.mu.
func (q *qcow2) needBlock(x int64) (bool, error) {
	i := x / q.perRB
	if i < int64(len(q.rt)) && q.rt[i]&reftOffsetMask != 0 {
		return false, nil
	}
	b, err := q.findRun(1)
	if err != nil {
		return false, err
	}
	if b/q.perRB != i {
		b = x // QEMU would count it in yet another new block: keep it in its range
	}
	if i >= int64(len(q.rt)) {
		err = q.growRefcountTable(i, x, b)
	} else {
		err = q.newRefBlock(i, b)
	}
	return err == nil, err
}

// findRun is alloc_clusters_noref: the first n consecutive host clusters with refcount 0
// from the hint; the hint moves past them. Caller holds q.mu.
func (q *qcow2) findRun(n int64) (int64, error) {
	for run := int64(0); run < n; {
		x := q.hint
		if (x+1)*q.cs >= maxHostOffset {
			return 0, errf(ErrIO, "tlcvm: qcow2 image '%s' is full", q.n.filename)
		}
		q.hint++
		r, err := q.refcount(x)
		if err != nil {
			return 0, err
		}
		if r != 0 {
			run = 0
			continue
		}
		if q.overlapsTables(x) {
			return 0, errf(ErrIO, "tlcvm: qcow2 image '%s' is corrupt: cluster %d of the image's tables has refcount 0", q.n.filename, x)
		}
		run++
	}
	return q.hint - n, nil
}

// newRefBlock makes a refcount block for refcount table entry i in host cluster c, which
// that block covers (so it counts itself), then points the table at it.
// Caller holds q.mu.
func (q *qcow2) newRefBlock(i, c int64) error {
	b := make([]byte, q.cs)
	setRefcount(b, c%q.perRB, q.order, 1)
	off := c * q.cs
	if err := q.pwrite(b, off); err != nil {
		return err
	}
	if err := q.writeEntry(int64(q.h.RefcountTableOffset)+i*8, uint64(off)); err != nil {
		return err
	}
	q.rt[i] = uint64(off)
	q.cacheRB(off, b)
	q.end = max(q.end, c+1)
	return nil
}

// growRefcountTable is alloc_refcount_block's growth of the table (qcow2_refcount_area):
// the new refcount blocks and then the new table go at the start of the first range after
// x and b (b: the new block of range i, which counts itself when it lies in range i); the
// table has room for the refcount blocks of everything up to there and 50 % more; the
// header switches to it and the old table is freed. Caller holds q.mu.
func (q *qcow2) growRefcountTable(i, x, b int64) error {
	if err := q.writeback(); err != nil { // the blocks it rewrites hold no pending change
		return err
	}
	perCluster := q.cs / 8
	start := (max(x, b)/q.perRB + 1) * q.perRB // meta_offset, in clusters
	total := refcountBlocksFor(start, q.cs, q.order)
	size := total + (total+1)/2
	size = (size + perCluster - 1) / perCluster * perCluster
	tableClusters := size / perCluster
	if size*8 > maxRefcountTable || total <= i {
		return errf(ErrIO, "tlcvm: qcow2 image '%s': refcount table too large", q.n.filename)
	}
	rt := make([]uint64, size)
	copy(rt, q.rt)
	blocks := map[int64][]byte{}
	bb := make([]byte, q.cs) // b, the block of range i
	if b/q.perRB == i {
		setRefcount(bb, b%q.perRB, q.order, 1)
	}
	rt[i] = uint64(b * q.cs)
	blocks[b*q.cs] = bb
	area := start / q.perRB
	var added int64
	for r := area; r < total; r++ {
		if rt[r] == 0 {
			added++
		}
	}
	table := start + added
	end := table + tableClusters
	next := start
	touched := map[int64][]byte{}
	for r := area; r < total; r++ {
		var blk []byte
		if rt[r] != 0 {
			var err error
			if blk, err = q.refBlock(int64(rt[r] & reftOffsetMask)); err != nil {
				return err
			}
			touched[int64(rt[r]&reftOffsetMask)] = blk
		} else {
			blk = make([]byte, q.cs)
			rt[r] = uint64(next * q.cs)
			blocks[next*q.cs] = blk
			next++
		}
		first := r * q.perRB
		for j := max(start-first, 0); j < min(end-first, q.perRB); j++ {
			setRefcount(blk, j, q.order, 1)
		}
	}
	for _, set := range []map[int64][]byte{blocks, touched} {
		for off, blk := range set {
			if err := q.pwrite(blk, off); err != nil {
				return err
			}
		}
	}
	buf := make([]byte, tableClusters*q.cs)
	for k, v := range rt {
		binary.BigEndian.PutUint64(buf[k*8:], v)
	}
	if err := q.pwrite(buf, table*q.cs); err != nil {
		return err
	}
	var hb [12]byte
	binary.BigEndian.PutUint64(hb[0:], uint64(table*q.cs))
	binary.BigEndian.PutUint32(hb[8:], uint32(tableClusters))
	if err := q.pwrite(hb[:], 48); err != nil {
		return err
	}
	oldOff, oldClusters := int64(q.h.RefcountTableOffset), int64(q.h.RefcountTableClusters)
	q.h.RefcountTableOffset, q.h.RefcountTableClusters = uint64(table*q.cs), uint32(tableClusters)
	q.rt = rt
	for off, blk := range blocks {
		q.cacheRB(off, blk)
	}
	q.end = max(q.end, end, b+1)
	for c := oldOff / q.cs; c < oldOff/q.cs+oldClusters; c++ {
		if err := q.unref(c); err != nil {
			return err
		}
	}
	return nil
}

// refcountBlocksFor is qcow2_refcount_metadata_size's count of refcount blocks for an
// image of clusters host clusters, generously (50 % more of the table counted in), as
// alloc_refcount_block asks it.
func refcountBlocksFor(clusters, cs int64, order uint32) int64 {
	perTable := cs / 8
	perBlock := cs * 8 >> order
	var table, blocks, n int64
	generous := true
	for {
		last := n
		blocks = (clusters + table + blocks + perBlock - 1) / perBlock
		table = (blocks + perTable - 1) / perTable
		n = clusters + blocks + table
		if n == last && generous {
			clusters += (table + 1) / 2
			n, generous = 0, false
			continue
		}
		if n == last {
			return blocks
		}
	}
}

// growL1 is qcow2_grow_l1_table with an exact size: a new L1 table of entries entries in a
// run of new clusters, the header pointing to it (l1_size and l1_table_offset in one
// write), the old table's clusters freed. Caller holds q.mu.
func (q *qcow2) growL1(entries int64) error {
	clusters := (entries*8 + q.cs - 1) / q.cs
	off, err := q.allocRun(clusters)
	if err != nil {
		return err
	}
	if err := q.writeback(); err != nil { // the new table's refcounts before the header
		return err
	}
	l1 := make([]uint64, entries)
	copy(l1, q.l1)
	buf := make([]byte, clusters*q.cs)
	for i, v := range l1 {
		binary.BigEndian.PutUint64(buf[i*8:], v)
	}
	if err := q.pwrite(buf, off); err != nil {
		return err
	}
	var hb [12]byte
	binary.BigEndian.PutUint32(hb[0:], uint32(entries))
	binary.BigEndian.PutUint64(hb[4:], uint64(off))
	if err := q.pwrite(hb[:], 36); err != nil {
		return err
	}
	oldOff, oldSize := int64(q.h.L1TableOffset), int64(q.h.L1Size)
	q.h.L1Size, q.h.L1TableOffset = uint32(entries), uint64(off)
	q.l1 = l1
	if oldSize > 0 {
		for c := oldOff / q.cs; c < oldOff/q.cs+(oldSize*8+q.cs-1)/q.cs; c++ {
			if err := q.unref(c); err != nil {
				return err
			}
		}
	}
	return nil
}
