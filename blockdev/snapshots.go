package blockdev

import (
	"encoding/binary"
	"io"
)

// Internal snapshots: the snapshot table of a qcow2 image (made by qemu-img snapshot -c, by
// QEMU's savevm or by tlcvm's: qcow2snap.go writes it), what query-block's image info
// lists, and the report HMP's `info snapshots` prints (migration/savevm.c
// hmp_info_snapshots over block/snapshot.c).
//
// The table is nb_snapshots entries from snapshots_offset, each 8-aligned, big-endian:
//
//	 0 l1_table_offset (u64)   8 l1_size (u32)   12 id_str_size (u16)   14 name_size (u16)
//	16 date_sec (u32)         20 date_nsec (u32) 24 vm_clock_nsec (u64)
//	32 vm_state_size (u32)    36 extra_data_size (u32)
//	40 extra data: vm_state_size_large (u64), disk_size (u64), icount (u64), as long as it is
//	   then id_str, then name (no terminator)

// Snapshot is one internal snapshot (QEMUSnapshotInfo).
type Snapshot struct {
	ID, Name    string
	VMStateSize uint64
	DateSec     int64
	DateNsec    int64
	VMClockNsec uint64
	ICount      int64 // -1 when the image does not record it

	// The table entry's other fields (qcow2snap.go rewrites them as they were).
	l1Offset  uint64
	l1Size    uint32
	diskSize  uint64 // the virtual disk size when taken; 0: not recorded
	extraSize uint32 // extra_data_size as read
	extraRest []byte // extra data past the 24 bytes tlcvm knows, kept as read
}

// QEMU's limits on the table (block/qcow2.h).
const (
	maxSnapshots      = 65536
	maxSnapshotsBytes = 64 << 20
	maxSnapshotExtra  = 1024
)

// Snapshots returns n's internal snapshots: a qcow2 image's table, read now; nil for other
// drivers.
func (n *Node) Snapshots() ([]Snapshot, error) {
	if n.Driver != DriverQcow2 {
		return nil, nil
	}
	n.io.RLock() // the table may be being rewritten (qcow2snap.go holds n.io exclusively)
	defer n.io.RUnlock()
	if n.hdr.NbSnapshots == 0 {
		return nil, nil
	}
	list, _, err := readSnapshots(imageReader(n.File), n.hdr.NbSnapshots, n.hdr.SnapshotsOffset)
	return list, err
}

// readSnapshots is qcow2_read_snapshots' parsing, bounded by QEMU's limits; size is the
// table's length in bytes (s->snapshots_size).
func readSnapshots(r io.ReaderAt, count uint32, off uint64) (list []Snapshot, size uint64, err error) {
	if count > maxSnapshots {
		return nil, 0, errf(ErrFormat, "Too many snapshots")
	}
	be := binary.BigEndian
	start := off
	for i := uint32(0); i < count; i++ {
		off = (off + 7) &^ 7
		if off-start > maxSnapshotsBytes {
			return nil, 0, errf(ErrFormat, "Snapshot table is too big")
		}
		var h [40]byte
		if _, err := r.ReadAt(h[:], int64(off)); err != nil {
			return nil, 0, errf(ErrFormat, "Failed to read snapshot table")
		}
		off += 40
		extraLen := be.Uint32(h[36:])
		if extraLen > maxSnapshotExtra {
			return nil, 0, errf(ErrFormat, "Too much extra metadata in snapshot table entry %d", i)
		}
		idLen, nameLen := uint64(be.Uint16(h[12:])), uint64(be.Uint16(h[14:]))
		rest := make([]byte, uint64(extraLen)+idLen+nameLen)
		if _, err := r.ReadAt(rest, int64(off)); err != nil {
			return nil, 0, errf(ErrFormat, "Failed to read snapshot table")
		}
		off += uint64(len(rest))
		extra := rest[:extraLen]
		s := Snapshot{
			DateSec: int64(be.Uint32(h[16:])), DateNsec: int64(be.Uint32(h[20:])),
			VMClockNsec: be.Uint64(h[24:]), VMStateSize: uint64(be.Uint32(h[32:])), ICount: -1,
			ID:       string(rest[extraLen : uint64(extraLen)+idLen]),
			Name:     string(rest[uint64(extraLen)+idLen:]),
			l1Offset: be.Uint64(h[0:]), l1Size: be.Uint32(h[8:]), extraSize: extraLen,
		}
		if len(extra) >= 8 {
			s.VMStateSize = be.Uint64(extra)
		}
		if len(extra) >= 16 {
			s.diskSize = be.Uint64(extra[8:])
		}
		if len(extra) >= 24 {
			s.ICount = int64(be.Uint64(extra[16:]))
			s.extraRest = append([]byte(nil), extra[24:]...)
		}
		list = append(list, s)
	}
	return list, off - start, nil
}

// SnapshotReport is what `info snapshots` shows: an error that stops it (no device can
// hold a VM state), or the snapshots every writable image has (Global, with the vmstate
// image's entries) and, per image, the ones only some have (Partial).
type SnapshotReport struct {
	Err     error
	None    bool // no image has a snapshot: "There is no snapshot available."
	Global  []Snapshot
	Partial []ImageSnapshots
}

// ImageSnapshots are one image's partial snapshots, under its backend's name ("" for a
// node without a named backend, as bdrv_get_device_name gives).
type ImageSnapshots struct {
	Image     string
	Snapshots []Snapshot
}

// topNode is one node bdrv_next yields: the root of a backend (its first), or a node the
// monitor owns that no backend uses; name is bdrv_get_device_name's.
type topNode struct {
	n      *Node
	name   string
	hasBlk bool
}

// topNodes is bdrv_first/bdrv_next: backend roots in backend order, then the monitor's
// nodes without a backend.
func (g *Graph) topNodes() []topNode {
	var out []topNode
	seen := map[*Node]bool{}
	for _, b := range g.backends {
		if b.Root == nil || seen[b.Root] {
			continue
		}
		seen[b.Root] = true
		out = append(out, topNode{n: b.Root, name: b.Root.deviceName(), hasBlk: true})
	}
	for _, n := range g.nodes {
		if n.owned && !n.hasBackendParent() {
			out = append(out, topNode{n: n, name: n.deviceName()})
		}
	}
	return out
}

// deviceName is bdrv_get_device_name: the name of the first named backend using n.
func (n *Node) deviceName() string {
	for _, e := range n.parents {
		if e.backend != nil && e.backend.Name != "" {
			return e.backend.Name
		}
	}
	return ""
}

// canSnapshot is bdrv_can_snapshot: a writable node whose driver (or, through a raw
// filter, whose file) takes internal snapshots.
func (n *Node) canSnapshot() bool {
	switch {
	case n.ReadOnly:
		return false
	case n.Driver == DriverQcow2:
		return true
	case n.Driver == DriverRaw:
		return n.File.canSnapshot()
	}
	return false
}

// hasSnapshot is bdrv_snapshot_find by name through bdrv_snapshot_list's fallback: ok is
// false where the node cannot list snapshots at all (-ENOTSUP).
func (n *Node) hasSnapshot(name string) (found, ok bool) {
	for n.Driver == DriverRaw {
		n = n.File
	}
	if n.Driver != DriverQcow2 {
		return false, false
	}
	list, err := n.Snapshots()
	if err != nil {
		return false, false
	}
	for _, s := range list {
		if s.Name == name {
			return true, true
		}
	}
	return false, true
}

// SnapshotReport computes `info snapshots` as hmp_info_snapshots does: the vmstate image is
// the first writable top node that can take snapshots (bdrv_all_find_vmstate_bs); its
// snapshots that every writable top node has are global, the rest of each image's are
// partial.
func (g *Graph) SnapshotReport() SnapshotReport {
	g.mu.Lock()
	defer g.mu.Unlock()
	tops := g.topNodes()
	devices, _ := g.snapshotDevices()
	var vmstate *Node
	for _, n := range devices {
		if n.canSnapshot() {
			vmstate = n
			break
		}
	}
	if vmstate == nil {
		return SnapshotReport{Err: errf(ErrUnsupported, "no block device can store vmstate for snapshot")}
	}
	table, err := vmstate.Snapshots()
	if err != nil {
		return SnapshotReport{Err: err}
	}
	var r SnapshotReport
	for _, t := range tops {
		if !t.n.canSnapshot() {
			continue
		}
		if list, err := t.n.Snapshots(); err == nil && len(list) > 0 {
			r.Partial = append(r.Partial, ImageSnapshots{Image: t.name, Snapshots: list})
		}
	}
	if len(r.Partial) == 0 {
		return SnapshotReport{None: true}
	}
	for _, s := range table {
		everywhere := true
		for _, n := range devices {
			if found, ok := n.hasSnapshot(s.Name); !found || !ok {
				everywhere = false
				break
			}
		}
		if !everywhere {
			continue
		}
		s.ID = "--" // the ID need not be the same on every image
		r.Global = append(r.Global, s)
		for i := range r.Partial {
			kept := r.Partial[i].Snapshots[:0]
			for _, p := range r.Partial[i].Snapshots {
				if p.Name != s.Name {
					kept = append(kept, p)
				}
			}
			r.Partial[i].Snapshots = kept
		}
	}
	return r
}

// snapshotDevices are the nodes savevm, loadvm and info snapshots act on, with the name
// error messages give them (bdrv_get_device_or_node_name). Caller holds g.mu.
func (g *Graph) snapshotDevices() (nodes []*Node, names []string) {
	for _, t := range g.topNodes() {
		if !t.n.ReadOnly && (t.hasBlk || len(t.n.parents) == 0) {
			name := t.name
			if name == "" {
				name = t.n.Name
			}
			nodes, names = append(nodes, t.n), append(names, name)
		}
	}
	return nodes, names
}
