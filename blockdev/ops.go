package blockdev

import (
	"encoding/binary"

	"tlcvm/compat/qerror"
)

// CreateOptions is blockdev-create's options: the driver and its members.
type CreateOptions struct {
	Driver string
	// File is the node the qcow2 image is written to (qcow2).
	File string
	// Filename is the host file to create (file).
	Filename string
	Size     int64
	Qcow2    Qcow2Create
}

// Create starts a blockdev-create job (drivers qcow2 and file). The job stays concluded
// until job-dismiss (QEMU creates it with JOB_MANUAL_DISMISS).
func (g *Graph) Create(jobID string, o *CreateOptions) error {
	switch o.Driver {
	case DriverQcow2, DriverFile:
	default:
		return errf(ErrUnsupported, "Driver '%s' does not support blockdev-create", o.Driver)
	}
	drv := &JobDriver{Type: JobTypeCreate, Run: func(j *Job) error {
		j.ProgressSetRemaining(1)
		var err error
		if o.Driver == DriverFile {
			err = createFile(o.Filename, o.Size)
		} else {
			err = g.createQcow2(o)
		}
		j.ProgressUpdate(1)
		return err
	}}
	_, err := g.StartJob(JobOptions{ID: jobID, ManualDismiss: true}, drv)
	return err
}

// createQcow2 writes a fresh qcow2 image into the node o.File, holding write and resize
// permission on it for the duration (as the create job's BlockBackend does).
func (g *Graph) createQcow2(o *CreateOptions) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, err := g.lookup(o.File, o.File)
	if err != nil {
		return err
	}
	for n.Driver != DriverFile {
		if n.Driver != DriverRaw {
			return errf(ErrUnsupported, "tlcvm: qcow2 images can be created on file and raw nodes only")
		}
		n = n.File
	}
	if n.ReadOnly {
		return errf(ErrReadOnly, "Block node is read-only")
	}
	t := &tempUse{perm: PermWrite | PermResize, shared: PermAll}
	n.addParent(edge{temp: t, role: "root"})
	defer func() {
		n.removeParent(func(e edge) bool { return e.temp == t })
		_ = g.refresh()
	}()
	if err := g.refresh(); err != nil {
		return err
	}
	c := o.Qcow2
	c.Size = uint64(o.Size)
	if err := writeQcow2(n.f, &c); err != nil {
		return err
	}
	if st, err := n.f.Stat(); err == nil && st.Size() > n.wrHighest.Load() {
		n.wrHighest.Store(st.Size())
	}
	return nil
}

// Resize is block_resize: device (a drive name) or nodeName selects the node.
func (g *Graph) Resize(device, nodeName string, size int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, err := g.lookup(device, nodeName)
	if err != nil {
		return err
	}
	if size < 0 {
		return errf(ErrInvalid, "Parameter 'size' expects a >0 size")
	}
	if n.ReadOnly {
		return errf(ErrReadOnly, "Image is read-only")
	}
	t := &tempUse{perm: PermResize, shared: PermAll}
	n.addParent(edge{temp: t, role: "root"})
	defer func() {
		n.removeParent(func(e edge) bool { return e.temp == t })
		_ = g.refresh()
	}()
	if err := g.refresh(); err != nil {
		return err
	}
	n.io.Lock() // drain: the size and the qcow2 tables change
	defer n.io.Unlock()
	if n.q != nil {
		defer n.q.reset()
	}
	return n.truncate(size)
}

func (n *Node) truncate(size int64) error {
	switch n.Driver {
	case DriverFile:
		if err := n.f.Truncate(size); err != nil {
			return qerror.Errno(ErrIO, err, "Failed to resize file")
		}
		return nil
	case DriverRaw:
		return n.File.truncate(size)
	}
	return n.qcow2Resize(uint64(size))
}

// qcow2Resize changes a qcow2 image's virtual size. Growing beyond what the L1 table covers
// moves the L1 table to new clusters at the end of the file (refcounts updated, the old
// clusters freed), as qcow2_grow_l1_table does; shrinking needs the clusters beyond the new
// end to be unallocated.
func (n *Node) qcow2Resize(size uint64) error {
	h := n.hdr
	if size%512 != 0 {
		size = (size + 511) &^ 511
	}
	f := n.File.f
	be := binary.BigEndian
	cs := uint64(h.ClusterSize())
	need := l1Entries(size, h.ClusterBits, h.ExtendedL2())
	l1 := make([]byte, uint64(h.L1Size)*8)
	if len(l1) > 0 {
		if _, err := f.ReadAt(l1, int64(h.L1TableOffset)); err != nil {
			return qerror.Errno(ErrIO, err, "Could not read L1 table")
		}
	}
	if size < h.Size {
		for i := need; i < uint64(h.L1Size); i++ {
			if be.Uint64(l1[i*8:])&0x00fffffffffffe00 != 0 {
				return errf(ErrUnsupported, "tlcvm: cannot shrink a qcow2 image over allocated clusters")
			}
		}
	}
	if need > uint64(h.L1Size) {
		if err := n.growL1(l1, need); err != nil {
			return err
		}
	}
	var b [8]byte
	be.PutUint64(b[:], size)
	if _, err := f.WriteAt(b[:], 24); err != nil {
		return qerror.Errno(ErrIO, err, "Could not update qcow2 header")
	}
	h.Size = size
	_ = cs
	return nil
}

// growL1 writes a larger L1 table at the end of the file and switches the header to it.
func (n *Node) growL1(old []byte, entries uint64) error {
	h := n.hdr
	f := n.File.f
	be := binary.BigEndian
	cs := h.ClusterSize()
	st, err := f.Stat()
	if err != nil {
		return errf(ErrIO, "%s", qerror.Strerror(err))
	}
	start := (st.Size() + cs - 1) / cs * cs
	nb := int64(entries) * 8
	clusters := (nb + cs - 1) / cs
	// Refcounts: the table's first block must cover the new clusters.
	var rt [8]byte
	if _, err := f.ReadAt(rt[:], int64(h.RefcountTableOffset)); err != nil {
		return qerror.Errno(ErrIO, err, "Could not read refcount table")
	}
	rbOff := int64(be.Uint64(rt[:]))
	perBlock := cs * 8 / (int64(1) << h.RefcountOrder)
	last := start/cs + clusters
	if rbOff == 0 || last > perBlock {
		return errf(ErrUnsupported, "tlcvm: cannot grow this qcow2 image's L1 table")
	}
	rb := make([]byte, cs)
	if _, err := f.ReadAt(rb, rbOff); err != nil {
		return qerror.Errno(ErrIO, err, "Could not read refcount block")
	}
	buf := make([]byte, nb)
	copy(buf, old)
	if _, err := f.WriteAt(buf, start); err != nil {
		return qerror.Errno(ErrIO, err, "Could not write L1 table")
	}
	for c := start / cs; c < last; c++ {
		setRefcount(rb, c, h.RefcountOrder, getRefcount(rb, c, h.RefcountOrder)+1)
	}
	if h.L1Size > 0 {
		oc := int64(h.L1TableOffset) / cs
		for c := oc; c < oc+(int64(h.L1Size)*8+cs-1)/cs; c++ {
			if r := getRefcount(rb, c, h.RefcountOrder); r > 0 {
				setRefcount(rb, c, h.RefcountOrder, r-1)
			}
		}
	}
	if _, err := f.WriteAt(rb, rbOff); err != nil {
		return qerror.Errno(ErrIO, err, "Could not write refcount block")
	}
	var hb [12]byte
	be.PutUint32(hb[0:], uint32(entries))
	be.PutUint64(hb[4:], uint64(start))
	if _, err := f.WriteAt(hb[:], 36); err != nil {
		return qerror.Errno(ErrIO, err, "Could not update qcow2 header")
	}
	h.L1Size, h.L1TableOffset = uint32(entries), uint64(start)
	return nil
}

// SnapshotAction is one blockdev-snapshot: overlay (a qcow2 node nobody uses yet) goes on
// top of node, taking over node's users, with node as its backing. In a transaction it
// is applied in prepare (external_snapshot_prepare's bdrv_append) and undone on abort.
type SnapshotAction struct {
	Node, Overlay string
	node, overlay *Node
	moved         []movedEdge
	wasRO         bool
}

func (a *SnapshotAction) prepare(g *Graph, txn *JobTxn) error {
	n, err := g.lookup(a.Node, a.Node)
	if err != nil {
		return err
	}
	if err := n.opBlocked(opExternalSnapshot); err != nil {
		return err
	}
	ov, err := g.lookup(a.Overlay, a.Overlay)
	if err != nil {
		return err
	}
	if ov.hasBackend() {
		return errf(ErrInUse, "The overlay is already in use")
	}
	if ov.Backing != nil {
		return errf(ErrInvalid, "The overlay already has a backing image")
	}
	if ov.Driver != DriverQcow2 {
		return errf(ErrUnsupported, "The overlay does not support backing images")
	}
	a.node, a.overlay = n, ov
	n.addParent(edge{node: ov, role: "backing"})
	ov.io.Lock()
	ov.Backing = n
	ov.io.Unlock()
	a.moved = g.replaceNode(n, ov)
	a.wasRO = n.ReadOnly
	// QEMU reopens the old top read-only once the overlay takes the writes.
	n.io.Lock()
	n.ReadOnly = true
	n.io.Unlock()
	if err := g.refresh(); err != nil {
		a.abort(g)
		return err
	}
	return nil
}

func (a *SnapshotAction) commit(g *Graph) {}

// abort undoes a prepared snapshot.
func (a *SnapshotAction) abort(g *Graph) {
	n, ov := a.node, a.overlay
	if ov == nil || ov.Backing != n {
		return
	}
	g.undoReplace(a.moved)
	n.removeParent(func(e edge) bool { return e.node == ov && e.role == "backing" })
	ov.io.Lock()
	ov.Backing = nil
	ov.io.Unlock()
	n.io.Lock()
	n.ReadOnly = a.wasRO
	n.io.Unlock()
	_ = g.refresh()
}

func (a *SnapshotAction) clean(g *Graph) {}

// hasBackend reports whether a backend uses n, directly or through its parents.
func (n *Node) hasBackend() bool {
	for _, e := range n.parents {
		if e.backend != nil || (e.node != nil && e.node.hasBackend()) {
			return true
		}
	}
	return false
}
