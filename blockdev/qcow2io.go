package blockdev

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
)

// qcow2's data path over the metadata of qcow2meta.go: reads cluster by cluster (data
// clusters from the file, zero clusters as zeroes, unallocated ones from the backing
// chain, compressed ones inflated), allocating writes (a new cluster holds what the
// cluster read as, with the write on top: QEMU's copy-on-write from the backing file),
// zero clusters and discards as QEMU 7.2's qcow2_co_pwrite_zeroes and qcow2_co_pdiscard.

// errExclusive asks the caller to redo the request holding n.io exclusively: it met a
// cluster whose host clusters it would free (a compressed cluster), which a concurrent
// request might be reading.
var errExclusive = errors.New("blockdev: request needs the node exclusively")

// span is the part of one guest cluster a request covers: cluster start g, bytes [a, b).
type span struct{ g, a, b int64 }

// spans splits [off, off+length) at cluster boundaries.
func (q *qcow2) spans(off, length int64, f func(s span) error) error {
	for length > 0 {
		g := off &^ (q.cs - 1)
		a := off - g
		b := min(q.cs, a+length)
		if err := f(span{g, a, b}); err != nil {
			return err
		}
		off += b - a
		length -= b - a
	}
	return nil
}

// read reads p at guest offset off, one request per run of clusters that read alike
// (qcow2_co_preadv_part over qcow2_get_host_offset's contiguous ranges): data clusters
// that follow each other in the file are one pread, unallocated clusters one read of the
// backing chain, zero clusters one clear.
func (q *qcow2) read(p []byte, off int64) error {
	for len(p) > 0 {
		g := off &^ (q.cs - 1)
		a := off - g
		q.mu.Lock()
		e, n, err := q.run(g, a, int64(len(p)))
		q.mu.Unlock()
		if err != nil {
			return err
		}
		if err := q.readCluster(e, span{g, a, a + n}, p[:n]); err != nil {
			return err
		}
		p, off = p[n:], off+n
	}
	return nil
}

// run maps guest cluster g's entry and how many of the length bytes from g+a read the
// same way: following clusters of the same kind, data clusters only while their host
// clusters follow each other (valid ones), compressed ones never. Caller holds q.mu.
func (q *qcow2) run(g, a, length int64) (uint64, int64, error) {
	e, err := q.entry(g)
	if err != nil {
		return 0, 0, err
	}
	n := min(q.cs-a, length)
	k := q.kind(e)
	if k == kindCompressed {
		return e, n, nil
	}
	for n < length {
		next := g + a + n
		if l1i, _ := q.index(next); l1i >= int64(len(q.l1)) {
			break
		}
		ne, err := q.entry(next)
		if err != nil {
			return 0, 0, err
		}
		nk := q.kind(ne)
		if nk != k && !(isZeroKind(nk) && isZeroKind(k)) {
			break
		}
		if k == kindNormal {
			host := ne & entryOffsetMask
			if host != e&entryOffsetMask+uint64(next-g) || q.checkOffset(host, "data cluster") != nil {
				break
			}
		}
		n += min(q.cs, length-n)
	}
	return e, n, nil
}

// isZeroKind reports whether clusters of kind k read as zeroes by themselves.
func isZeroKind(k clusterKind) bool { return k == kindZeroPlain || k == kindZeroAlloc }

// readCluster reads bytes [s.a, s.b) of guest cluster s.g, whose L2 entry is e, into dst;
// s.b may pass the cluster's end when the clusters after it read alike (run).
func (q *qcow2) readCluster(e uint64, s span, dst []byte) error {
	switch q.kind(e) {
	case kindUnallocated:
		return q.readBacking(dst, s.g+s.a)
	case kindZeroPlain, kindZeroAlloc:
		clear(dst)
		return nil
	case kindCompressed:
		buf, err := q.inflate(e)
		if err != nil {
			return err
		}
		copy(dst, buf[s.a:s.b])
		return nil
	}
	host := e & entryOffsetMask
	if err := q.checkOffset(host, "data cluster"); err != nil {
		return err
	}
	q.n.File.debugEvent(evReadAIO)
	return q.pread(dst, int64(host)+s.a)
}

// readBacking reads what an unallocated range reads as: the backing chain's data, zeroes
// past its end or without one.
func (q *qcow2) readBacking(dst []byte, off int64) error {
	b := q.n.Backing
	if b == nil {
		clear(dst)
		return nil
	}
	q.n.File.debugEvent(evReadBackingAIO)
	got, err := b.ReadAt(dst, off)
	if err != nil && err != io.EOF {
		return err
	}
	clear(dst[got:])
	return nil
}

// compressed returns a compressed cluster's host offset and size in bytes.
func (q *qcow2) compressed(e uint64) (int64, int64) {
	x := 62 - (q.bits - 8)
	off := int64(e & (1<<x - 1))
	sectors := int64(e>>x&(1<<(q.bits-8)-1)) + 1
	return off, sectors*512 - off&511
}

// inflate reads and decompresses a compressed cluster (raw deflate, zlib compression
// type; zstd is not supported).
func (q *qcow2) inflate(e uint64) ([]byte, error) {
	if q.h.CompressionType != 0 {
		return nil, errf(ErrUnsupported, "tlcvm: zstd-compressed qcow2 clusters are not supported")
	}
	off, size := q.compressed(e)
	if off <= 0 || off+size > maxHostOffset {
		return nil, errf(ErrIO, "tlcvm: qcow2 image '%s' is corrupt: compressed cluster at %#x", q.n.filename, off)
	}
	raw := make([]byte, size)
	if err := q.pread(raw, off); err != nil {
		return nil, err
	}
	out := make([]byte, q.cs)
	r := flate.NewReader(bytes.NewReader(raw))
	defer r.Close()
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, errf(ErrIO, "tlcvm: qcow2 image '%s': cannot decompress cluster at %#x", q.n.filename, off)
	}
	return out, nil
}

// write writes p at off request by request, as qcow2_co_pwritev_part does: each request
// is one contiguous range of the image file (qcow2_alloc_host_offset) — clusters the node
// owns alone (COPIED) at consecutive host offsets, written in place, and clusters that need
// new ones (unallocated, zero, shared, compressed), allocated contiguously (right after the
// part before them when the request already has one: qcow2_alloc_clusters_at) — written
// with one host write that also holds the old content around the data in new clusters
// (QEMU's copy-on-write merged into the data write). A part stays within one L2 table.
func (q *qcow2) write(p []byte, off int64) error {
	for len(p) > 0 {
		n, err := q.writeRequest(p, off)
		if err != nil {
			return err
		}
		p, off = p[n:], off+n
	}
	return nil
}

// inPlace reports whether a write goes into e's cluster where it is (normal, or
// preallocated zero, and COPIED: cluster_needs_new_alloc false).
func (q *qcow2) inPlace(e uint64) bool {
	k := q.kind(e)
	return (k == kindNormal || k == kindZeroAlloc) && e&oflagCopied != 0
}

// link is an L2 entry a request changes once its data is written.
type link struct {
	g, l2i  int64 // guest cluster, its index in its L2 table
	new     uint64
	release bool // the old entry's clusters are released
}

// writeRequest writes the first request of p at off and returns its length.
func (q *qcow2) writeRequest(p []byte, off int64) (int64, error) {
	q.mu.Lock()
	locked := true
	defer func() {
		if locked {
			q.mu.Unlock()
		}
	}()
	if err := q.load(); err != nil {
		return 0, err
	}
	end := min(off+int64(len(p)), q.awaitAllocs(off, off+int64(len(p))))
	host := int64(-1) // host offset of off, once the first part is placed
	var links []link
	var cow []span        // guest clusters whose old content goes around the data
	var cowEntry []uint64 // their entries
	cur := off
	for cur < end {
		g := cur &^ (q.cs - 1)
		a := cur - g
		_, l2i := q.index(g)
		most := min((a+end-cur+q.cs-1)/q.cs, q.l2n-l2i)
		e, err := q.entry(g)
		if err != nil {
			return 0, err
		}
		var k, h int64 // clusters in this part, host offset of its first cluster
		var t []uint64 // the part's L2 table, when its entries change
		inplace := q.inPlace(e)
		if inplace {
			h = int64(e & entryOffsetMask)
			if err := q.checkOffset(uint64(h), "data cluster"); err != nil {
				return 0, err
			}
			if host >= 0 && h != host+(cur-off)-a {
				break
			}
			zeroes := q.kind(e) == kindZeroAlloc
			for k = 1; k < most; k++ {
				ek, err := q.entry(g + k*q.cs)
				if err != nil || !q.inPlace(ek) || int64(ek&entryOffsetMask) != h+k*q.cs {
					break
				}
				zeroes = zeroes || q.kind(ek) == kindZeroAlloc
			}
			if zeroes { // preallocated zero clusters lose their zero flag once written
				if t, _, err = q.l2ForWrite(g); err != nil {
					return 0, err
				}
				for j := int64(0); j < k; j++ {
					if ej := t[l2i+j]; q.kind(ej) == kindZeroAlloc {
						links = append(links, link{g: g + j*q.cs, l2i: l2i + j, new: ej &^ oflagZero})
					}
				}
			}
		} else {
			if q.kind(e) == kindCompressed && !q.n.exclusive {
				if cur == off {
					return 0, errExclusive
				}
				break
			}
			if t, _, err = q.l2ForWrite(g); err != nil {
				return 0, err
			}
			for k = 1; k < most; k++ {
				ek := t[l2i+k]
				if q.inPlace(ek) || q.kind(ek) == kindCompressed && !q.n.exclusive {
					break
				}
			}
			if host < 0 {
				q.n.File.debugEvent(evClusterAlloc)
				if h, err = q.allocRun(k); err != nil {
					return 0, err
				}
			} else {
				h = host + (cur - off) - a
				if k, err = q.allocAt(h, k); err != nil {
					return 0, err
				}
				if k == 0 {
					break
				}
			}
			for j := int64(0); j < k; j++ {
				links = append(links, link{g: g + j*q.cs, l2i: l2i + j,
					new: uint64(h+j*q.cs) | oflagCopied, release: true})
			}
		}
		if host < 0 {
			host = h + a
		}
		n := min(end-cur, k*q.cs-a)
		// The old content around the data, in the clusters at the part's edges that get
		// new clusters or lose their zero flag (zeroes then).
		lastIdx := (a + n - 1) / q.cs
		edge := func(i int64) (uint64, error) {
			if t != nil {
				return t[l2i+i], nil
			}
			return q.entry(g + i*q.cs)
		}
		needs := func(x uint64) bool { return !q.inPlace(x) || q.kind(x) == kindZeroAlloc }
		if a > 0 {
			if fe, err := edge(0); err != nil {
				return 0, err
			} else if needs(fe) {
				cow, cowEntry = append(cow, span{g, 0, a}), append(cowEntry, fe)
			}
		}
		if tail := (a + n) % q.cs; tail != 0 {
			if le, err := edge(lastIdx); err != nil {
				return 0, err
			} else if needs(le) {
				cow, cowEntry = append(cow, span{g + lastIdx*q.cs, tail, q.cs}), append(cowEntry, le)
			}
		}
		cur += n
	}
	n := cur - off
	wstart, wend := host, host+n
	for _, c := range cow {
		if c.a == 0 {
			wstart = host - (off - c.g)
		} else {
			wend = host + (c.g - off) + q.cs
		}
	}
	if len(links) == 0 {
		q.mu.Unlock() // in place only: the data moves outside the lock
		locked = false
		q.n.File.debugEvent(evWriteAIO)
		return n, q.pwrite(p[:n], wstart)
	}
	// The clusters are allocated (their refcounts raised) and the guest clusters the
	// request covers are in flight: the data and the old content around it move outside
	// the lock, then the L2 entries are linked under it (QEMU's QCowL2Meta and
	// qcow2_alloc_cluster_link_l2). A request meeting an allocation in flight waits for it
	// (awaitAllocs); nothing else looks past the entries it has not linked yet.
	a := q.startAlloc(off, off+n)
	q.mu.Unlock()
	locked = false
	err := q.writeAllocated(p[:n], off, host, wstart, wend, cow, cowEntry)
	q.mu.Lock()
	locked = true
	defer q.endAlloc(a)
	if err != nil {
		return 0, q.abortLinks(links, err)
	}
	for i, l := range links {
		// The table is looked up again: the cache may have dropped the one mapped, and a
		// zeroing request may have changed the entry meanwhile (what it held is released).
		t, l2off, err := q.l2ForWrite(l.g)
		if err != nil {
			return 0, q.abortLinks(links[i:], err)
		}
		old := t[l.l2i]
		if err := q.setEntry(t, l2off, l.l2i, l.new); err != nil {
			return 0, q.abortLinks(links[i:], err)
		}
		if l.release {
			if err := q.unrefEntry(old); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// writeAllocated writes the n bytes of p at guest offset off to host offset host, with
// the old content of the clusters in cow (entries cowEntry) around them in new clusters:
// one host write of [wstart, wend). Caller does not hold q.mu.
func (q *qcow2) writeAllocated(p []byte, off, host, wstart, wend int64, cow []span, cowEntry []uint64) error {
	buf := p
	if wstart != host || wend != host+int64(len(p)) {
		buf = make([]byte, wend-wstart)
		for i, c := range cow {
			at := host + (c.g - off) - wstart
			if err := q.readCluster(cowEntry[i], span{c.g, c.a, c.b}, buf[at+c.a:at+c.b]); err != nil {
				return err
			}
		}
		copy(buf[host-wstart:], p)
	}
	q.n.File.debugEvent(evWriteAIO)
	return q.pwrite(buf, wstart)
}

// abortLinks frees the clusters allocated for the links not made (qcow2_alloc_cluster_abort),
// so that a failed write leaks nothing, and returns err. Caller holds q.mu.
func (q *qcow2) abortLinks(links []link, err error) error {
	for _, l := range links {
		if l.release {
			_ = q.unrefEntry(l.new)
		}
	}
	return err
}

// inflight is an allocating write between its allocation and the L2 entries that point
// to its clusters: guest clusters [g0, g1) (QCowL2Meta's range), done closed once linked.
type inflight struct {
	g0, g1 int64
	done   chan struct{}
}

// startAlloc registers the guest clusters under [off, end) as in flight. Caller holds q.mu.
func (q *qcow2) startAlloc(off, end int64) *inflight {
	a := &inflight{g0: off &^ (q.cs - 1), g1: (end + q.cs - 1) &^ (q.cs - 1), done: make(chan struct{})}
	q.allocs = append(q.allocs, a)
	return a
}

// endAlloc ends a's flight and wakes who waits for it. Caller holds q.mu.
func (q *qcow2) endAlloc(a *inflight) {
	for i, x := range q.allocs {
		if x == a {
			q.allocs = append(q.allocs[:i], q.allocs[i+1:]...)
			break
		}
	}
	close(a.done)
}

// awaitAllocs is handle_dependencies for a request on guest bytes [off, end): while an
// allocation in flight covers off's cluster it waits for it (releasing q.mu meanwhile);
// then it returns where the request must stop, the first cluster of a later allocation
// in flight that overlaps it (end when none does). Caller holds q.mu.
func (q *qcow2) awaitAllocs(off, end int64) int64 {
	g0, g1 := off&^(q.cs-1), (end+q.cs-1)&^(q.cs-1)
again:
	for _, a := range q.allocs {
		if a.g1 <= g0 || a.g0 >= g1 {
			continue
		}
		if a.g0 <= g0 {
			q.mu.Unlock()
			<-a.done
			q.mu.Lock()
			goto again
		}
		end = min(end, a.g0)
	}
	return end
}

// writeZeroes is bdrv_co_do_pwrite_zeroes over qcow2_co_pwrite_zeroes, cluster by cluster:
// a whole cluster (or the image's last, partial one) becomes a zero cluster on version 3
// (deallocated with ZeroMayUnmap, a compressed one always), is discarded on version 2
// without a backing file (it then reads as zeroes), and is written as zeroes on version 2
// with one; a part of a cluster becomes the whole zero cluster when the rest of it reads
// as zeroes already and it holds no data, else zeroes are written.
func (q *qcow2) writeZeroes(off, length int64, fl ZeroFlags) error {
	size := int64(q.h.Size)
	done := q.requestFrees()
	defer func() { done() }()
	for length > 0 {
		g := off &^ (q.cs - 1)
		a := off - g
		b := min(q.cs, a+length)
		n := b - a
		ok := false
		var err error
		switch {
		case a > 0 || (b < q.cs && g+b != size):
			// the head and tail are requests of their own (bdrv_co_do_pwrite_zeroes)
			done()
			done = q.requestFrees()
			ok, err = q.zeroWhole(span{g, a, b}, fl)
			done()
			done = q.requestFrees()
		case q.h.Version >= 3:
			whole := length / q.cs // whole clusters from g, the image's last one counting
			if off+length == size && length%q.cs != 0 {
				whole++
			}
			var k int64
			if k, err = q.zeroClusters(g, whole, fl); k > 0 {
				n, ok = min(k*q.cs, length), true
			} else if err == nil {
				ok, err = q.zeroize(g, fl)
			}
		default:
			ok, err = q.zeroize(g, fl)
		}
		if err != nil {
			return err
		}
		if !ok {
			if err := q.n.writeZeroBuffers(off, n); err != nil {
				return err
			}
		}
		off, length = off+n, length-n
	}
	return nil
}

// zeroClusters is zeroCluster over up to k whole clusters from g within one L2 table
// whose entries only gain the zero flag (nothing to deallocate): their entries change in
// the cached table, written back once later, as in QEMU's L2 cache. It returns how many clusters it zeroed, 0 when g's cluster must be
// deallocated (zeroCluster does it). Caller holds n.io.
func (q *qcow2) zeroClusters(g, k int64, fl ZeroFlags) (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.load(); err != nil {
		return 0, err
	}
	k = min(k, (q.awaitAllocs(g, g+k*q.cs)-g)/q.cs)
	t, l2off, err := q.l2ForWrite(g)
	if err != nil {
		return 0, err
	}
	_, l2i := q.index(g)
	k = min(k, q.l2n-l2i)
	changed := false
	for j := int64(0); j < k; j++ {
		e := t[l2i+j]
		kd := q.kind(e)
		if kd == kindCompressed || (fl&ZeroMayUnmap != 0 && (kd == kindNormal || kd == kindZeroAlloc)) {
			k = j
			break
		}
		changed = changed || e&oflagZero == 0
	}
	if k == 0 || !changed {
		return k, nil
	}
	ct := q.l2Dirty(t, l2off)
	for j := int64(0); j < k; j++ {
		ct[l2i+j] |= oflagZero
		t[l2i+j] |= oflagZero
	}
	return k, nil
}

// zeroize is qcow2_subcluster_zeroize for guest cluster g: a zero cluster on version 3, a
// discarded one on version 2 without a backing file; false (-ENOTSUP) on version 2 over a
// backing file. Caller holds n.io.
func (q *qcow2) zeroize(g int64, fl ZeroFlags) (bool, error) {
	switch {
	case q.h.Version >= 3:
		return true, q.zeroCluster(g, fl)
	case q.n.Backing == nil:
		return true, q.discardCluster(g)
	}
	return false, nil
}

// zeroCluster is zero_in_l2_slice for guest cluster g. Caller holds n.io.
func (q *qcow2) zeroCluster(g int64, fl ZeroFlags) error {
	return q.withL2(g, func(e uint64) error {
		k := q.kind(e)
		unmap := k == kindCompressed || (fl&ZeroMayUnmap != 0 && (k == kindNormal || k == kindZeroAlloc))
		ne := e
		if unmap {
			ne = 0
		}
		ne |= oflagZero
		if ne == e {
			return nil
		}
		if unmap && !q.n.exclusive {
			return errExclusive
		}
		return q.replaceEntry(g, ne, unmap)
	})
}

// zeroWhole is qcow2_co_pwrite_zeroes' head and tail rule for the part s of a cluster:
// when the cluster holds no data (unallocated or zero) and what s leaves of it reads as
// zeroes (bdrv_co_is_zero_fast: the backing chain's status says so), the whole cluster is
// zeroized. false: zeroes must be written.
func (q *qcow2) zeroWhole(s span, fl ZeroFlags) (bool, error) {
	q.mu.Lock()
	e, err := q.entry(s.g)
	q.mu.Unlock()
	if err != nil {
		return false, err
	}
	switch q.kind(e) {
	case kindZeroPlain, kindZeroAlloc:
	case kindUnallocated:
		end := min(s.g+q.cs, int64(q.h.Size))
		for _, r := range [][2]int64{{s.g, s.g + s.a}, {s.g + s.b, end}} {
			if ok, err := q.backingZero(r[0], r[1]-r[0]); err != nil || !ok {
				return false, err
			}
		}
	default:
		return false, nil
	}
	return q.zeroize(s.g, fl)
}

// backingZero reports whether [off, off+n) of an unallocated cluster reads as zeroes as far
// as one block status query of the backing chain tells.
func (q *qcow2) backingZero(off, n int64) (bool, error) {
	b := q.n.Backing
	if n <= 0 || b == nil || off >= b.Size() {
		return true, nil
	}
	if off+n > b.Size() {
		n = b.Size() - off
	}
	ex, err := b.BlockStatusAbove(nil, off, n)
	if err != nil {
		return false, err
	}
	return ex.Length == n && ex.Status&StatusZero != 0, nil
}

// discardCluster is discard_in_l2_slice (QCOW2_DISCARD_REQUEST, not a full discard) for
// guest cluster g: with content, or over a backing file, it reads as zeroes afterwards on
// version 3 (a zero cluster) and as the backing file on version 2; its clusters are freed
// and, once free, discarded in the image file. Caller holds n.io.
func (q *qcow2) discardCluster(g int64) error {
	return q.withL2(g, func(e uint64) error {
		k := q.kind(e)
		allocated := k == kindNormal || k == kindZeroAlloc || k == kindCompressed
		ne := e
		if q.n.Backing != nil || allocated {
			ne = 0
			if q.h.Version >= 3 {
				ne = oflagZero
			}
		}
		if ne == e {
			return nil
		}
		if allocated && !q.n.exclusive {
			return errExclusive
		}
		return q.replaceEntry(g, ne, true)
	})
}

// withL2 runs f with guest cluster g's L2 entry, holding q.mu, after making its L2 table
// writable as get_cluster_table does for zeroing and discarding (a missing table is
// allocated, a shared one copied, even when nothing changes in it).
func (q *qcow2) withL2(g int64, f func(e uint64) error) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.awaitAllocs(g, g+q.cs)
	t, _, err := q.l2ForWrite(g)
	if err != nil {
		return err
	}
	_, l2i := q.index(g)
	return f(t[l2i])
}

// discard is qcow2_co_pdiscard: every whole cluster in the range is discarded
// (discardCluster); partial clusters are left alone, as QEMU leaves them (the image's
// last, partial cluster counts as whole); nothing at all on version 2 over a backing file.
func (q *qcow2) discard(off, length int64) error {
	if q.h.Version < 3 && q.n.Backing != nil {
		return nil // without zero clusters a discard would expose the backing file (-ENOTSUP)
	}
	size := int64(q.h.Size)
	defer q.requestFrees()()
	return q.spans(off, length, func(s span) error {
		if s.a > 0 || (s.b < q.cs && s.g+s.b != size) {
			return nil
		}
		return q.discardCluster(s.g)
	})
}

// requestFrees marks the clusters freed until the returned function runs as freed by a
// discard or zeroing request: their discards are queued, and passed to the image file
// when it runs (the caller holds n.io).
func (q *qcow2) requestFrees() func() {
	q.mu.Lock()
	q.discarding = true
	q.mu.Unlock()
	return func() {
		q.mu.Lock()
		q.discarding = false
		q.mu.Unlock()
		q.flushDiscards()
	}
}

// replaceEntry sets guest cluster g's L2 entry to ne and, with release, frees what the
// old entry held (after the entry no longer points to it). Caller holds q.mu.
func (q *qcow2) replaceEntry(g int64, ne uint64, release bool) error {
	t, l2off, err := q.l2ForWrite(g)
	if err != nil {
		return err
	}
	_, l2i := q.index(g)
	old := t[l2i]
	if err := q.setEntry(t, l2off, l2i, ne); err != nil {
		return err
	}
	if release {
		return q.unrefEntry(old)
	}
	return nil
}

// status is the node's own status of [off, off+length): whole clusters of the same kind
// from off on (0: unallocated, the backing chain decides).
func (q *qcow2) status(off, length int64) (Status, int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var st Status
	var done int64
	first := true
	err := q.spans(off, length, func(s span) error {
		e, err := q.entry(s.g)
		if err != nil {
			return err
		}
		var cur Status
		switch q.kind(e) {
		case kindZeroPlain, kindZeroAlloc:
			cur = StatusZero
		case kindNormal, kindCompressed:
			cur = StatusData
		}
		if first {
			st, first = cur, false
		} else if cur != st {
			return errStop
		}
		done += s.b - s.a
		return nil
	})
	if err != nil && err != errStop {
		return 0, 0, err
	}
	return st, done, nil
}

// errStop ends a spans walk early.
var errStop = errors.New("stop")

// copyUp writes data, whole clusters from cluster-aligned off (the last may end at the
// virtual size), into the clusters still unallocated in this image only: the
// copy-on-read of block-stream, which must not overwrite what a guest wrote meanwhile.
// Each cluster is checked and filled under q.mu, so a concurrent guest write to it is
// wholly before (the cluster is skipped) or after. All-zero clusters become zero
// clusters on version 3.
func (q *qcow2) copyUp(off int64, data []byte) error {
	for len(data) > 0 {
		n, err := q.copyUpRun(off, data)
		if err != nil {
			return err
		}
		off, data = off+n, data[n:]
	}
	return nil
}

// copyUpRun is copyUp from guest cluster g, under q.mu: an allocated cluster is skipped,
// an all-zero one becomes a zero cluster (version 3), and a run of unallocated clusters
// with data (within one L2 table) gets one run of new host clusters, written with one
// write before the L2 entries point to it. It returns the bytes of data it consumed.
func (q *qcow2) copyUpRun(g int64, data []byte) (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.load(); err != nil {
		return 0, err
	}
	if lim := q.awaitAllocs(g, g+int64(len(data))); lim < g+int64(len(data)) {
		data = data[:lim-g] // a guest write allocates from lim on: copy up to it
	}
	chunk := func(k int64) []byte { return data[k*q.cs : min((k+1)*q.cs, int64(len(data)))] }
	zero := func(k int64) bool { return q.h.Version >= 3 && isZero(chunk(k)) }
	e, err := q.entry(g)
	if err != nil {
		return 0, err
	}
	if q.kind(e) != kindUnallocated {
		return int64(len(chunk(0))), nil
	}
	if zero(0) {
		return int64(len(chunk(0))), q.replaceEntry(g, oflagZero, false)
	}
	_, l2i := q.index(g)
	most := min((int64(len(data))+q.cs-1)/q.cs, q.l2n-l2i)
	k := int64(1)
	for ; k < most; k++ {
		ek, err := q.entry(g + k*q.cs)
		if err != nil || q.kind(ek) != kindUnallocated || zero(k) {
			break
		}
	}
	n := min(k*q.cs, int64(len(data)))
	q.n.File.debugEvent(evClusterAlloc)
	h, err := q.allocRun(k)
	if err != nil {
		return 0, err
	}
	q.n.File.debugEvent(evWriteAIO)
	if err := q.pwrite(data[:n], h); err != nil {
		for j := int64(0); j < k; j++ { // nothing points to them: free them again
			_ = q.unref(h/q.cs + j)
		}
		return 0, err
	}
	for j := int64(0); j < k; j++ {
		if err := q.replaceEntry(g+j*q.cs, uint64(h+j*q.cs)|oflagCopied, false); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// makeEmpty frees every cluster of the image, so that all of it reads from the backing
// file again (qcow2_make_empty after a commit: a full discard); the freed host clusters
// are discarded in the image file. Caller holds n.io.
func (q *qcow2) makeEmpty() error {
	defer q.requestFrees()()
	return q.spans(0, q.n.Size(), func(s span) error {
		q.mu.Lock()
		defer q.mu.Unlock()
		if err := q.load(); err != nil {
			return err
		}
		e, err := q.entry(s.g)
		if err != nil || e == 0 {
			return err
		}
		if q.kind(e) == kindCompressed && !q.n.exclusive {
			return errExclusive
		}
		return q.replaceEntry(s.g, 0, true)
	})
}
