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

// Create starts a blockdev-create job (drivers qcow2 and file).
func (g *Graph) Create(jobID string, o *CreateOptions) error {
	switch o.Driver {
	case DriverQcow2, DriverFile:
	default:
		return errf(ErrUnsupported, "Driver '%s' does not support blockdev-create", o.Driver)
	}
	return g.StartJob(jobID, "create", func(progress func(int64, int64)) error {
		if o.Driver == DriverFile {
			return createFile(o.Filename, o.Size)
		}
		return g.createQcow2(o)
	})
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
// top of node, taking over node's users, with node as its backing.
type SnapshotAction struct {
	Node, Overlay string
}

// Snapshot applies blockdev-snapshot actions atomically (transaction): every action is
// checked first, then all are applied.
func (g *Graph) Snapshot(actions ...SnapshotAction) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	type step struct{ node, overlay *Node }
	var steps []step
	for _, a := range actions {
		n, err := g.lookup(a.Node, a.Node)
		if err != nil {
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
		steps = append(steps, step{n, ov})
	}
	for _, s := range steps {
		parents := s.node.parents
		s.node.parents = nil
		for _, e := range parents {
			// Drain each user while its child changes (see io.go).
			switch {
			case e.backend != nil:
				e.backend.io.Lock()
				e.backend.Root = s.overlay
				e.backend.io.Unlock()
			case e.node != nil && e.role == "file":
				e.node.io.Lock()
				e.node.File = s.overlay
				e.node.io.Unlock()
			case e.node != nil && e.role == "backing":
				e.node.io.Lock()
				e.node.Backing = s.overlay
				e.node.io.Unlock()
			}
			s.overlay.addParent(e)
		}
		s.overlay.io.Lock()
		s.overlay.Backing = s.node
		s.overlay.io.Unlock()
		s.node.addParent(edge{node: s.overlay, role: "backing"})
		// QEMU reopens the old top read-only once the overlay takes the writes; its
		// persistent bitmaps are stored and become read-only.
		_ = s.node.reopenBitmapsRO()
		s.node.io.Lock()
		s.node.ReadOnly = true
		s.node.io.Unlock()
	}
	return g.refresh()
}

// hasBackend reports whether a backend uses n, directly or through its parents.
func (n *Node) hasBackend() bool {
	for _, e := range n.parents {
		if e.backend != nil || (e.node != nil && e.node.hasBackend()) {
			return true
		}
	}
	return false
}
