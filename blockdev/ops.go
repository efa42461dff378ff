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
	for !n.protocol() {
		if n.Driver != DriverRaw {
			return errf(ErrUnsupported, "tlcvm: qcow2 images can be created on file and raw nodes only")
		}
		n = n.File
	}
	if n.ReadOnly {
		return errf(ErrReadOnly, "Block node is read-only")
	}
	if n.f == nil {
		return errf(ErrUnsupported, "tlcvm: qcow2 images can be created on file and raw nodes only")
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
	if err := n.truncate(size); err != nil {
		return err
	}
	n.resizeBitmaps(n.Size())
	return nil
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
	case DriverNBD, DriverNullCo, DriverNullAIO:
		return errf(ErrUnsupported, "Image format driver does not support resize")
	}
	return n.qcow2Resize(uint64(size))
}

// qcow2Resize changes a qcow2 image's virtual size (qcow2_co_truncate). Growing beyond what
// the L1 table covers moves the L1 table to a new run of clusters (qcow2_grow_l1_table:
// written, the header switched to it, the old clusters freed); shrinking needs the
// clusters beyond the new end to be unallocated. The caller holds n.io exclusively.
func (n *Node) qcow2Resize(size uint64) error {
	q := n.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.load(); err != nil {
		return err
	}
	h := q.h
	if size%512 != 0 {
		size = (size + 511) &^ 511
	}
	need := int64(l1Entries(size, h.ClusterBits, h.ExtendedL2()))
	if size < h.Size {
		for i := need; i < int64(len(q.l1)); i++ {
			if q.l1[i]&entryOffsetMask != 0 {
				return errf(ErrUnsupported, "tlcvm: cannot shrink a qcow2 image over allocated clusters")
			}
		}
	}
	if need > int64(len(q.l1)) {
		if err := q.growL1(need); err != nil {
			return err
		}
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], size)
	if err := q.pwrite(b[:], 24); err != nil {
		return err
	}
	h.Size = size
	n.vsize.Store(int64(size))
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
	file          *Node // n's file child, made read-only with n (setReadOnly's rule)
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
	// QEMU reopens the old top read-only once the overlay takes the writes; its
	// persistent bitmaps are stored and become read-only.
	if !a.wasRO {
		_ = n.reopenBitmapsRO()
	}
	n.io.Lock()
	n.ReadOnly = true
	n.io.Unlock()
	if f := n.File; f != nil && !f.monitorOwned() && !f.ReadOnly && len(f.parents) == 1 {
		f.ReadOnly, a.file = true, f // the reopen's read-only reaches the file child it opened
	}
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
	if a.file != nil {
		a.file.ReadOnly, a.file = false, nil
	}
	if !a.wasRO {
		_ = n.reopenBitmapsRW()
	}
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
