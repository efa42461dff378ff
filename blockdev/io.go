package blockdev

import (
	"io"
	"math"
	"sync"
	"sync/atomic"
)

// The data path. Every node reads and writes at byte offsets: a file node on its host file,
// a raw node through its file child, a qcow2 node through its cluster mapper (qcow2io.go)
// onto its file child, reading what it does not hold from its backing chain. The methods
// below are what jobs, the NBD server and the guest's devices (through a Backend) call.
//
// Requests must lie inside the node's virtual size (Size): ReadAt returns the bytes up to
// the end and io.EOF beyond it, as io.ReaderAt does; a write, discard or write-zeroes that
// does not fit fails with ErrInvalid. Any other failure wraps ErrIO (or ErrReadOnly for a
// write to a read-only node, ErrUnsupported for what tlcvm cannot do on that image).
//
// Locking. Node.io is a reader/writer lock that separates requests from graph changes and
// from the few requests that free clusters:
//
//	holder                                        takes n.io
//	ReadAt, WriteAt, Flush, BlockStatus*          RLock (shared: requests run concurrently)
//	Unmap, WriteZeroes with ZeroMayUnmap, any     Lock  (exclusive: clusters they free may be
//	  request that meets clusters it would free          in use by a request in flight; the
//	  (a compressed cluster; version 2 zeroes)           shared attempt returns errExclusive)
//	graph changes under n (close, reopen of the   Lock  (a drain: waits for n's requests,
//	  host file, resize, replacing n.File or             and no new one starts meanwhile)
//	  n.Backing, Snapshot, jobs' graph changes)
//
// A request on n takes n's lock, then its children's (file, backing) as it reaches them:
// the order is always parent before child, so requests never deadlock, and a graph change
// that holds n.io exclusively may still do I/O on n's children. I/O never takes Graph.mu;
// code holding Graph.mu may take node locks (Graph.mu before Node.io). Inside a qcow2 node
// a mutex (qcow2.mu) guards the metadata caches and allocation: mapping a cluster, allocating
// clusters, writing L2/L1 entries and refcounts are serialised; reading and writing data in
// clusters already allocated to the node happen outside it, concurrently.
//
// Ordering on the image (what a crash of the process leaves): a refcount is raised before
// the cluster is used, data is written before the L2 entry that points to it, an L2 table
// before the L1 entry that points to it, a new refcount table before the header points to
// it; a cluster is freed (refcount lowered) only after nothing points to it. A crash leaks
// clusters at worst (qemu-img check -r leaks), never corrupts. L2 tables and refcount
// blocks are cached and written back (qcow2meta.go: at a flush, a close, a reopen
// read-only, a job's end, or when a root of the metadata is written), in the order above;
// Flush writes them back and makes the host file durable (fdatasync), unless
// cache.no-flush.

// ZeroFlags modify WriteZeroes.
type ZeroFlags uint8

const (
	// ZeroMayUnmap lets the node deallocate the range instead of writing zeroes
	// (BDRV_REQ_MAY_UNMAP); reads return zeroes either way.
	ZeroMayUnmap ZeroFlags = 1 << iota
)

// Status describes what a range of a node reads as (BDRV_BLOCK_*).
type Status uint8

const (
	// StatusData: the range's content is stored (a data cluster, a file's data).
	StatusData Status = 1 << iota
	// StatusZero: the range reads as zeroes.
	StatusZero
	// StatusAllocated: a node above the base of the query (BlockStatusAbove) decides the
	// range's content; without it the content comes from the base and below.
	StatusAllocated

	// statusNone is a layer's answer (layerStatus) that it decides the range's content and
	// says nothing of it: neither data nor zero nor allocated (a null node without
	// read-zeroes, whose block status is BDRV_BLOCK_OFFSET_VALID alone).
	statusNone Status = 1 << 7
)

// Extent is the answer of a status query: Length bytes from Offset share Status.
type Extent struct {
	Offset, Length int64
	Status         Status
	// Depth is the layer that decides the content: 1 for the queried node, 2 for its
	// backing, …; 0 when no layer down to the base does (the qemu:allocation-depth of NBD).
	Depth int
}

// checkRange refuses a request outside the node's virtual size.
func checkRange(n *Node, off, length int64) error {
	if off < 0 || length < 0 || off > math.MaxInt64-length || off+length > n.Size() {
		return errf(ErrInvalid, "tlcvm: request %d+%d outside node '%s' (%d bytes)", off, length, n.Name, n.Size())
	}
	return nil
}

// ReadAt reads len(p) bytes at off (io.ReaderAt): through a format node to its file,
// falling through a qcow2 node's unallocated clusters to its backing chain (zeroes past
// the backing file's end). It returns fewer bytes and io.EOF only at the node's end.
func (n *Node) ReadAt(p []byte, off int64) (int, error) {
	n.io.RLock()
	defer n.io.RUnlock()
	if off < 0 {
		return 0, errf(ErrInvalid, "tlcvm: negative offset %d", off)
	}
	size := n.Size()
	if off >= size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := p
	if int64(len(p)) > size-off {
		want = p[:size-off]
	}
	if err := n.read(want, off); err != nil {
		return 0, err
	}
	if len(want) < len(p) {
		return len(want), io.EOF
	}
	return len(p), nil
}

// WriteAt writes p at off (io.WriterAt). A qcow2 node allocates what it needs (L2 tables,
// data clusters, refcount blocks, a larger refcount table), copying the part of a new
// cluster the write does not cover from the backing chain. With detect-zeroes on (or
// unmap) a buffer of zeroes is written as WriteZeroes.
func (n *Node) WriteAt(p []byte, off int64) (int, error) {
	if err := checkRange(n, off, int64(len(p))); err != nil {
		return 0, err
	}
	if n.DetectZeroes != "off" && len(p) > 0 && isZero(p) {
		var fl ZeroFlags
		if n.DetectZeroes == "unmap" {
			fl = ZeroMayUnmap
		}
		if err := n.WriteZeroes(off, int64(len(p)), fl); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	err := n.withWrite(false, func() error { return n.write(p, off) })
	if err == errExclusive {
		err = n.withWrite(true, func() error { return n.write(p, off) })
	}
	if err != nil {
		return 0, err
	}
	n.wrote(off, int64(len(p)))
	return len(p), nil
}

// WriteZeroes makes length bytes at off read as zeroes: zero clusters on qcow2 version 3
// (deallocated with ZeroMayUnmap), holes punched on a file node with ZeroMayUnmap and
// discard=unmap, zeroes written otherwise.
func (n *Node) WriteZeroes(off, length int64, fl ZeroFlags) error {
	if err := checkRange(n, off, length); err != nil {
		return err
	}
	excl := fl&ZeroMayUnmap != 0
	err := n.withWrite(excl, func() error { return n.writeZeroes(off, length, fl) })
	if err == errExclusive {
		err = n.withWrite(true, func() error { return n.writeZeroes(off, length, fl) })
	}
	if err != nil {
		return err
	}
	n.wrote(off, length)
	return nil
}

// Unmap (discard) tells the node the range's content is no longer needed (unmap, TRIM). It does
// nothing unless the node was opened with discard=unmap, as in QEMU; a qcow2 node frees
// the whole clusters in the range (they read as zeroes on version 3, from the backing
// file on version 2), a file node punches a hole.
func (n *Node) Unmap(off, length int64) error {
	if err := checkRange(n, off, length); err != nil {
		return err
	}
	if n.Discard != "unmap" || length == 0 {
		return nil
	}
	err := n.withWrite(true, func() error { return n.discard(off, length) })
	if err == nil {
		n.markDirty(off, length)
	}
	return err
}

// Flush makes everything written to the node durable: fdatasync of the host files of the
// node and the children it writes to (not its read-only backing chain). cache.no-flush
// makes it a no-op, as in QEMU.
func (n *Node) Flush() error {
	n.io.RLock()
	defer n.io.RUnlock()
	return n.flush()
}

// BlockStatus describes the first extent of [off, off+length) in n alone: StatusAllocated
// when n itself decides the content (a file node always does; a qcow2 node for its
// allocated and zero clusters), StatusData/StatusZero for what it reads as. For a qcow2
// range n leaves to its backing file, Status is 0 (or StatusZero when n has no backing).
func (n *Node) BlockStatus(off, length int64) (Extent, error) {
	return n.BlockStatusAbove(n.Backing, off, length)
}

// BlockStatusAbove describes the first extent of [off, off+length) through n's backing
// chain down to, not including, base (nil: the whole chain). StatusAllocated: some node
// above base decides the content (Depth says which); otherwise the content is base's, and
// Status says only whether it is known to read as zeroes (no backing left at all).
func (n *Node) BlockStatusAbove(base *Node, off, length int64) (Extent, error) {
	if err := checkRange(n, off, length); err != nil {
		return Extent{}, err
	}
	ex := Extent{Offset: off, Length: length}
	if length == 0 {
		return ex, nil
	}
	n = skipFilters(n)
	depth := 1
	for cur := n; ; {
		st, l, next, err := cur.layerStatus(off, ex.Length)
		if err != nil {
			return Extent{}, err
		}
		ex.Length = l
		if st == statusNone {
			return ex, nil
		}
		if st != 0 {
			ex.Status, ex.Depth = st|StatusAllocated, depth
			return ex, nil
		}
		backing := next
		next = skipFilters(next)
		if next == nil || next == base || backing == base {
			if next == nil {
				ex.Status = StatusZero
			}
			return ex, nil
		}
		if off >= next.Size() { // past the backing file's end: zeroes
			ex.Status = StatusZero
			return ex, nil
		}
		ex.Length = min(ex.Length, next.Size()-off)
		depth++
		cur = next
	}
}

// layerStatus is n's own status of [off, off+length): a nonzero Status when n decides the
// content, the length of the extent, and n's backing node (read under n's lock).
func (n *Node) layerStatus(off, length int64) (Status, int64, *Node, error) {
	n.io.RLock()
	defer n.io.RUnlock()
	var st Status
	var l int64
	var err error
	switch n.Driver {
	case DriverQcow2:
		var q *qcow2
		if q, err = n.qcow2(); err == nil {
			st, l, err = q.status(off, length)
		}
	case DriverRaw, DriverBlkdebug:
		st, l, _, err = n.File.layerStatus(off, length)
	case DriverNBD:
		st, l, err = n.nbdStatus(off, length)
	case DriverNullCo, DriverNullAIO:
		st, l = n.nullStatus(length)
	default:
		st, l, err = n.fileStatus(off, length)
	}
	return st, l, n.Backing, err
}

// WrHighestOffset is the end of the highest write to the node (query-blockstats'
// wr_highest_offset of a node).
func (n *Node) WrHighestOffset() int64 { return n.wrHighest.Load() }

// withWrite runs f under n's lock, shared or exclusive, for a write-type request.
func (n *Node) withWrite(exclusive bool, f func() error) error {
	if exclusive {
		n.io.Lock()
		n.exclusive = true
		defer func() {
			n.exclusive = false
			n.io.Unlock()
		}()
	} else {
		n.io.RLock()
		defer n.io.RUnlock()
	}
	if n.ReadOnly {
		return errf(ErrReadOnly, "Block node is read-only")
	}
	if n.closed {
		return errf(ErrIO, "tlcvm: node '%s' is closed", n.Name)
	}
	return f()
}

// wrote records a successful write of [off, off+length) for the node's statistics, write
// threshold, dirty bitmaps and write trackers (bitmap.go).
func (n *Node) wrote(off, length int64) {
	end := off + length
	for {
		cur := n.wrHighest.Load()
		if end <= cur || n.wrHighest.CompareAndSwap(cur, end) {
			break
		}
	}
	n.checkThreshold(end)
	n.markDirty(off, length)
}

// checkThreshold fires the node's write threshold once when a write ends past it.
func (n *Node) checkThreshold(end int64) {
	t := n.threshold.Load()
	if t <= 0 || end <= t {
		return
	}
	if n.threshold.CompareAndSwap(t, 0) && n.g != nil {
		n.g.emit("BLOCK_WRITE_THRESHOLD", WriteThresholdEvent{NodeName: n.Name, AmountExceeded: end - t, WriteThreshold: t})
	}
}

// WriteThresholdEvent is BLOCK_WRITE_THRESHOLD's data.
type WriteThresholdEvent struct {
	NodeName       string
	AmountExceeded int64
	WriteThreshold int64
}

// read, write, writeZeroes, discard, flush dispatch to the driver; the caller holds n.io
// and has checked the range.
func (n *Node) read(p []byte, off int64) error {
	if n.closed {
		return errf(ErrIO, "tlcvm: node '%s' is closed", n.Name)
	}
	if n.filter != nil {
		_, err := n.Filtered().ReadAt(p, off)
		if err == io.EOF {
			err = nil
		}
		return err
	}
	switch n.Driver {
	case DriverQcow2:
		q, err := n.qcow2()
		if err != nil {
			return err
		}
		return q.read(p, off)
	case DriverRaw, DriverBlkdebug:
		if n.dbg == nil {
			n.File.debugEvent(evReadAIO)
		}
		if err := n.debugCheck(off, int64(len(p)), ioRead); err != nil {
			return err
		}
		_, err := n.File.ReadAt(p, off)
		if err == io.EOF {
			err = nil // a raw node is as big as its file
		}
		return err
	case DriverNBD:
		return n.nbdRead(p, off)
	case DriverNullCo, DriverNullAIO:
		return n.nullRead(p)
	}
	return n.fileRead(p, off)
}

func (n *Node) write(p []byte, off int64) error {
	n.debugEvent(evPwritev) // QEMU's generic write path, on the node itself
	defer n.debugEvent(evPwritevDone)
	if n.filter != nil {
		return n.filterWrite(writeData, p, off, int64(len(p)), 0)
	}
	switch n.Driver {
	case DriverQcow2:
		q, err := n.qcow2()
		if err != nil {
			return err
		}
		return q.write(p, off)
	case DriverRaw, DriverBlkdebug:
		if n.dbg == nil {
			n.File.debugEvent(evWriteAIO)
		}
		if err := n.debugCheck(off, int64(len(p)), ioWrite); err != nil {
			return err
		}
		_, err := n.File.WriteAt(p, off)
		return err
	case DriverNBD:
		return n.nbdWrite(p, off)
	case DriverNullCo, DriverNullAIO:
		n.nullWait()
		return nil
	}
	return n.fileWrite(p, off)
}

func (n *Node) writeZeroes(off, length int64, fl ZeroFlags) error {
	if n.filter != nil {
		return n.filterWrite(writeZeroes, nil, off, length, fl)
	}
	switch n.Driver {
	case DriverQcow2:
		q, err := n.qcow2()
		if err != nil {
			return err
		}
		return q.writeZeroes(off, length, fl)
	case DriverRaw, DriverBlkdebug:
		if err := n.debugCheck(off, length, ioWriteZeroes); err != nil {
			return err
		}
		return n.File.WriteZeroes(off, length, fl)
	case DriverNBD:
		return n.nbdWriteZeroes(off, length, fl)
	case DriverNullCo, DriverNullAIO:
		n.nullWait() // no pwrite_zeroes: QEMU writes a zeroed buffer through pwritev
		return nil
	}
	return n.fileWriteZeroes(off, length, fl)
}

func (n *Node) discard(off, length int64) error {
	if n.filter != nil {
		return n.filterWrite(writeDiscard, nil, off, length, 0)
	}
	switch n.Driver {
	case DriverQcow2:
		q, err := n.qcow2()
		if err != nil {
			return err
		}
		return q.discard(off, length)
	case DriverRaw, DriverBlkdebug:
		if err := n.debugCheck(off, length, ioDiscard); err != nil {
			return err
		}
		return n.File.Unmap(off, length)
	case DriverNBD:
		return n.nbdDiscard(off, length)
	case DriverNullCo, DriverNullAIO:
		return nil // no pdiscard: bdrv_co_pdiscard succeeds doing nothing
	}
	return n.fileDiscard(off, length)
}

func (n *Node) flush() error {
	if n.closed {
		return errf(ErrIO, "tlcvm: node '%s' is closed", n.Name)
	}
	if n.filter != nil {
		return n.Filtered().Flush()
	}
	if n.File != nil {
		if n.ReadOnly {
			return nil
		}
		if err := n.debugCheck(0, 0, ioFlush); err != nil {
			return err
		}
		if err := n.writebackMeta(); err != nil { // qcow2_co_flush_to_os: the caches first
			return err
		}
		if n.dbg == nil {
			n.File.debugEvent(evFlushToOS)
			n.File.debugEvent(evFlushToDisk)
		}
		return n.File.Flush()
	}
	if n.Driver == DriverNBD {
		return n.nbdFlush()
	}
	if n.null != nil {
		n.nullWait()
		return nil
	}
	return n.fileFlush()
}

// isZero reports whether p holds only zero bytes.
func isZero(p []byte) bool {
	for len(p) >= 8 {
		if p[0]|p[1]|p[2]|p[3]|p[4]|p[5]|p[6]|p[7] != 0 {
			return false
		}
		p = p[8:]
	}
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}

// nodeIO is the I/O state every node carries (embedded in Node).
type nodeIO struct {
	io        sync.RWMutex
	closed    bool         // the host file is closed; written under io.Lock
	exclusive bool         // a request holds io.Lock (set and read under it)
	wrHighest atomic.Int64 // end of the highest successful write
	threshold atomic.Int64 // write threshold (block-set-write-threshold); 0: none
	q         *qcow2       // qcow2 nodes: the cluster mapper, set at open
	vsize     atomic.Int64 // qcow2 nodes: the virtual size (the header's, kept in step by resize)
	fmu       sync.Mutex   // file nodes: held to swap or close f, and to stat it
	discardOK atomic.Int64 // file nodes: discards done (discard-nb-ok)
	discardNo atomic.Int64 // file nodes: discards failed (discard-nb-failed)
	discardB  atomic.Int64 // file nodes: bytes discarded (discard-bytes-ok)
}

// SetWriteThreshold arms (v > 0) or disarms (0) the node's write threshold
// (block-set-write-threshold): the first write ending past v emits BLOCK_WRITE_THRESHOLD
// {node-name, amount-exceeded, write-threshold} and disarms it.
func (n *Node) SetWriteThreshold(v int64) { n.threshold.Store(v) }

// WriteThreshold is the armed threshold (0: none), query-named-block-nodes' write_threshold.
func (n *Node) WriteThreshold() int64 { return n.threshold.Load() }
