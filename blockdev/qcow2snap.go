package blockdev

import (
	"encoding/binary"
	"strconv"
)

// Writing qcow2 internal snapshots, as QEMU 7.2's block/qcow2-snapshot.c does: create
// (qcow2_snapshot_create), goto (qcow2_snapshot_goto), delete (qcow2_snapshot_delete), the
// table rewrite (qcow2_write_snapshots) and the refcount walk they share
// (qcow2_update_snapshot_refcount), plus the VM state area (qcow2_save_vmstate /
// qcow2_load_vmstate). Every method here runs with q.mu held, under n.io held
// exclusively by the caller (snapshot_ops.go), as QEMU runs them drained.
//
// Sharing: a snapshot is a copy of the active L1 table; every L2 table and data cluster
// it reaches gets one more reference, and loses COPIED in the active tables, so the next
// guest write copies it (l2ForWrite, writeRequest) and the snapshot's data stays intact.
//
//	refcount(cluster) = number of (L1 table, L2 entry) paths reaching it
//	COPIED set       ⇔ refcount == 1 (kept true for the active L1 by every operation)
//
// The VM state lives in the active image past the disk, from the first L1 entry the
// disk does not use (qcow2_vm_state_offset): savevm writes it there, the snapshot's L1
// copy keeps it, and the active image then drops it again (zero clusters, as QEMU's
// qcow2_cluster_discard after the create); loadvm reads it after goto made the snapshot's
// L1 active.

// snapshotEntryHeader is the fixed part of a table entry; QEMU writes 24 bytes of extra data.
const (
	snapshotEntryHeader = 40
	snapshotExtraKnown  = 24
	maxL1Entries        = 32 << 20 / 8 // QCOW_MAX_L1_SIZE
)

// snapshots reads the image's table now, with its size in bytes.
func (q *qcow2) snapshots() ([]Snapshot, uint64, error) {
	return readSnapshots(nodeReader{q.n.File}, q.h.NbSnapshots, q.h.SnapshotsOffset)
}

// vmStateOffset is qcow2_vm_state_offset: the guest offset of the VM state area.
func (q *qcow2) vmStateOffset() int64 {
	span := q.cs * q.l2n
	return (int64(q.h.Size) + span - 1) / span * span
}

// addRef changes host cluster c's refcount by addend (±1) and returns the new count,
// as qcow2_update_cluster_refcount does; a cluster that reaches 0 is free again.
func (q *qcow2) addRef(c int64, addend int) (uint64, error) {
	r, err := q.refcount(c)
	if err != nil {
		return 0, err
	}
	if addend < 0 {
		return r - 1, q.unref(c)
	}
	if width := uint64(1) << q.order; width < 64 && r+1 >= uint64(1)<<width {
		return 0, errf(ErrIO, "tlcvm: qcow2 image '%s': refcount overflow on cluster %d", q.n.filename, c)
	}
	return r + 1, q.setRefcount(c, r+1)
}

// freeRange is qcow2_free_clusters: every host cluster [off, off+n) touches loses a
// reference.
func (q *qcow2) freeRange(off, n int64) error {
	if n <= 0 {
		return nil
	}
	for c := off / q.cs; c <= (off+n-1)/q.cs; c++ {
		if err := q.unref(c); err != nil {
			return err
		}
	}
	return nil
}

// updateSnapshotRefcount is qcow2_update_snapshot_refcount: every L2 table and cluster
// the L1 table at l1off (size entries; the active one when it is at the active offset)
// reaches gets addend (+1, -1, or 0 to recompute COPIED only), and COPIED is set in its
// L2 and L1 entries exactly where the refcount is 1. The L1 table is written back when
// its flags changed, unless it is being dropped (addend -1).
func (q *qcow2) updateSnapshotRefcount(l1off int64, size uint32, addend int) error {
	active := uint64(l1off) == q.h.L1TableOffset
	var l1 []uint64
	if active {
		l1 = q.l1
	} else {
		var err error
		if l1, err = q.readTable(l1off, int64(size)); err != nil {
			return err
		}
	}
	count := func(c int64) (uint64, error) {
		if addend == 0 {
			return q.refcount(c)
		}
		return q.addRef(c, addend)
	}
	modified := false
	for i, le := range l1 {
		l2off := int64(le & entryOffsetMask)
		if l2off == 0 {
			continue
		}
		t, err := q.l2Table(l2off)
		if err != nil {
			return err
		}
		for j, old := range t {
			e := old &^ oflagCopied
			switch q.kind(old) {
			case kindCompressed:
				if addend != 0 {
					off, n := q.compressed(old)
					for c := off / q.cs; c <= (off+n-1)/q.cs; c++ {
						if _, err := q.addRef(c, addend); err != nil {
							return err
						}
					}
				}
			case kindNormal, kindZeroAlloc:
				c := int64(old&entryOffsetMask) / q.cs
				r, err := count(c)
				if err != nil {
					return err
				}
				if r == 1 {
					e |= oflagCopied
				}
			}
			if e != old {
				if err := q.setEntry(t, l2off, int64(j), e); err != nil {
					return err
				}
			}
		}
		r, err := count(l2off / q.cs)
		if err != nil {
			return err
		}
		if r == 0 {
			q.uncacheL2(l2off) // freed: the cluster may hold data next
		}
		ne := uint64(l2off)
		if r == 1 {
			ne |= oflagCopied
		}
		if ne != le {
			l1[i] = ne
			modified = true
		}
	}
	if modified && addend >= 0 {
		return q.writeL1(l1off, l1)
	}
	return nil
}

// writeL1 writes an L1 table's entries at off.
func (q *qcow2) writeL1(off int64, l1 []uint64) error {
	if err := q.writeback(); err != nil { // what the table reaches is counted on disk first
		return err
	}
	buf := make([]byte, len(l1)*8)
	for i, v := range l1 {
		binary.BigEndian.PutUint64(buf[i*8:], v)
	}
	return q.pwrite(buf, off)
}

// writeSnapshots is qcow2_write_snapshots: list goes to newly allocated clusters, the
// header points to it (nb_snapshots and snapshots_offset in one write), and the old table
// (oldSize bytes) is freed.
func (q *qcow2) writeSnapshots(list []Snapshot, oldSize uint64) error {
	var size int64
	for _, s := range list {
		size = (size+7)&^7 + snapshotEntryHeader + int64(max(snapshotExtraKnown, s.extraSize)) +
			int64(len(s.ID)) + int64(len(s.Name))
		if size > maxSnapshotsBytes {
			return errf(ErrInvalid, "tlcvm: qcow2 image '%s': snapshot table too large", q.n.filename)
		}
	}
	off, err := q.allocRun((size + q.cs - 1) / q.cs)
	if err != nil {
		return err
	}
	be := binary.BigEndian
	buf := make([]byte, size)
	var at int64
	for _, s := range list {
		at = (at + 7) &^ 7
		h := buf[at:]
		be.PutUint64(h[0:], s.l1Offset)
		be.PutUint32(h[8:], s.l1Size)
		be.PutUint16(h[12:], uint16(len(s.ID)))
		be.PutUint16(h[14:], uint16(len(s.Name)))
		be.PutUint32(h[16:], uint32(s.DateSec))
		be.PutUint32(h[20:], uint32(s.DateNsec))
		be.PutUint64(h[24:], s.VMClockNsec)
		if s.VMStateSize <= 0xffffffff { // else old readers see a disk-only snapshot
			be.PutUint32(h[32:], uint32(s.VMStateSize))
		}
		extra := max(snapshotExtraKnown, s.extraSize)
		be.PutUint32(h[36:], extra)
		x := h[snapshotEntryHeader:]
		be.PutUint64(x[0:], s.VMStateSize)
		be.PutUint64(x[8:], s.diskSize)
		be.PutUint64(x[16:], uint64(s.ICount))
		copy(x[snapshotExtraKnown:extra], s.extraRest)
		at += snapshotEntryHeader + int64(extra)
		at += int64(copy(buf[at:], s.ID))
		at += int64(copy(buf[at:], s.Name))
	}
	if err := q.pwrite(buf, off); err != nil {
		return err
	}
	if err := q.writeback(); err != nil { // the refcounts before the header points to them
		return err
	}
	var hb [12]byte
	be.PutUint32(hb[0:], uint32(len(list)))
	be.PutUint64(hb[4:], uint64(off))
	if err := q.pwrite(hb[:], 60); err != nil {
		return err
	}
	oldOff := int64(q.h.SnapshotsOffset)
	q.h.NbSnapshots, q.h.SnapshotsOffset = uint32(len(list)), uint64(off)
	return q.freeRange(oldOff, int64(oldSize))
}

// newSnapshotID is find_new_snapshot_id: one more than the largest numeric ID.
func newSnapshotID(list []Snapshot) string {
	var top uint64
	for _, s := range list {
		if v, err := strconv.ParseUint(s.ID, 10, 64); err == nil && v > top {
			top = v
		}
	}
	return strconv.FormatUint(top+1, 10)
}

// findSnapshot is find_snapshot_by_id_and_name: the first entry matching the ID and the
// name, each when given (-1: none).
func findSnapshot(list []Snapshot, id, name string) int {
	for i, s := range list {
		if (id == "" || s.ID == id) && (name == "" || s.Name == name) && (id != "" || name != "") {
			return i
		}
	}
	return -1
}

// checkSnapshotL1 is qcow2_validate_table for a snapshot's L1 table.
func (q *qcow2) checkSnapshotL1(s Snapshot) error {
	if s.l1Size > maxL1Entries || s.l1Offset%uint64(q.cs) != 0 || s.l1Offset == 0 && s.l1Size > 0 ||
		int64(s.l1Offset) >= maxHostOffset {
		return errf(ErrIO, "Snapshot L1 table offset invalid")
	}
	return nil
}

// createSnapshot is qcow2_snapshot_create: sn (its ID generated when empty) gets a copy
// of the active L1 table, everything it reaches one more reference, and an entry at the
// end of the table; then the VM state area leaves the active image. The caller has
// written sn.VMStateSize bytes of VM state (or none).
func (q *qcow2) createSnapshot(sn Snapshot) error {
	if q.h.DataFile != "" {
		return errf(ErrUnsupported, "tlcvm: snapshots of images with an external data file are not supported")
	}
	list, oldSize, err := q.snapshots()
	if err != nil {
		return err
	}
	if len(list) >= maxSnapshots {
		return errf(ErrInvalid, "Too many snapshots")
	}
	if sn.ID == "" {
		sn.ID = newSnapshotID(list)
	}
	if findSnapshot(list, sn.ID, "") >= 0 {
		return errf(ErrExists, "tlcvm: snapshot ID '%s' exists", sn.ID)
	}
	sn.diskSize, sn.extraSize, sn.extraRest = q.h.Size, snapshotExtraKnown, nil
	off, err := q.allocRun((int64(len(q.l1))*8 + q.cs - 1) / q.cs)
	if err != nil {
		return err
	}
	if err := q.writeL1(off, q.l1); err != nil {
		return err
	}
	sn.l1Offset, sn.l1Size = uint64(off), uint32(len(q.l1))
	if err := q.updateSnapshotRefcount(int64(q.h.L1TableOffset), uint32(len(q.l1)), 1); err != nil {
		return err
	}
	if err := q.writeSnapshots(append(list, sn), oldSize); err != nil {
		return err
	}
	return q.dropVMState(sn.VMStateSize)
}

// dropVMState discards the VM state area's first size bytes (rounded up to clusters)
// from the active image: QCOW2_DISCARD_NEVER, not a full discard.
func (q *qcow2) dropVMState(size uint64) error {
	start := q.vmStateOffset()
	end := start + (int64(size)+q.cs-1)/q.cs*q.cs
	for g := start; g < end; g += q.cs {
		if l1i, _ := q.index(g); l1i >= int64(len(q.l1)) {
			break
		}
		e, err := q.entry(g)
		if err != nil {
			return err
		}
		k := q.kind(e)
		if q.n.Backing == nil && k != kindNormal && k != kindZeroAlloc && k != kindCompressed {
			continue
		}
		ne := uint64(0)
		if q.h.Version >= 3 {
			ne = oflagZero
		}
		if e == ne {
			continue
		}
		if err := q.replaceEntry(g, ne, true); err != nil {
			return err
		}
	}
	return nil
}

// gotoSnapshot is qcow2_snapshot_goto for an ID or, failing that, a name: the snapshot's
// L1 table becomes the active one (the active table grown to hold it, padded with zeroes),
// its clusters gaining the references the old active table's lose.
func (q *qcow2) gotoSnapshot(idOrName string) error {
	list, _, err := q.snapshots()
	if err != nil {
		return err
	}
	i := findSnapshot(list, idOrName, "")
	if i < 0 {
		i = findSnapshot(list, "", idOrName)
	}
	if i < 0 {
		return errf(ErrNotFound, "Failed to load snapshot: No such file or directory")
	}
	sn := list[i]
	if err := q.checkSnapshotL1(sn); err != nil {
		return err
	}
	if sn.diskSize != 0 && sn.diskSize != q.h.Size {
		return errf(ErrUnsupported, "tlcvm: snapshot '%s' has a disk size of %d bytes, the image %d: resizing on load is not supported",
			sn.Name, sn.diskSize, q.h.Size)
	}
	if int(sn.l1Size) > len(q.l1) {
		if err := q.growL1(int64(sn.l1Size)); err != nil {
			return err
		}
	}
	snl1, err := q.readTable(int64(sn.l1Offset), int64(sn.l1Size))
	if err != nil {
		return err
	}
	if err := q.updateSnapshotRefcount(int64(sn.l1Offset), sn.l1Size, 1); err != nil {
		return err
	}
	next := make([]uint64, len(q.l1))
	copy(next, snl1)
	if err := q.writeL1(int64(q.h.L1TableOffset), next); err != nil {
		return err
	}
	if err := q.updateSnapshotRefcount(int64(q.h.L1TableOffset), uint32(len(q.l1)), -1); err != nil {
		return err
	}
	copy(q.l1, next)
	return q.updateSnapshotRefcount(int64(q.h.L1TableOffset), uint32(len(q.l1)), 0)
}

// deleteSnapshot is qcow2_snapshot_delete of the entry matching id and name (each when
// given): out of the table first, then its clusters lose their references, its L1 table
// is freed and COPIED is recomputed for the active table.
func (q *qcow2) deleteSnapshot(id, name string) error {
	list, oldSize, err := q.snapshots()
	if err != nil {
		return err
	}
	i := findSnapshot(list, id, name)
	if i < 0 {
		return errf(ErrNotFound, "Can't find the snapshot")
	}
	sn := list[i]
	if err := q.checkSnapshotL1(sn); err != nil {
		return err
	}
	rest := append(append([]Snapshot(nil), list[:i]...), list[i+1:]...)
	if err := q.writeSnapshots(rest, oldSize); err != nil {
		return err
	}
	if err := q.updateSnapshotRefcount(int64(sn.l1Offset), sn.l1Size, -1); err != nil {
		return err
	}
	if err := q.freeRange(int64(sn.l1Offset), int64(sn.l1Size)*8); err != nil {
		return err
	}
	if err := q.updateSnapshotRefcount(int64(q.h.L1TableOffset), uint32(len(q.l1)), 0); err != nil {
		return err
	}
	// What the snapshot held is counted free on disk at once: QEMU 7.2's image is clean
	// for qemu-img check -U right after delvm (after savevm it shows the old snapshot
	// table leaked until a flush, as tlcvm's does).
	return q.writeback()
}

// growL1For makes the active L1 table cover guest offset end-1, growing it by half again
// each time as qcow2_grow_l1_table does when not asked for an exact size.
func (q *qcow2) growL1For(end int64) error {
	l1i, _ := q.index(end - 1)
	need := l1i + 1
	if need <= int64(len(q.l1)) {
		return nil
	}
	size := max(int64(len(q.l1)), 1)
	for need > size {
		size = (size*3 + 1) / 2
	}
	if size > maxL1Entries {
		return errf(ErrIO, "tlcvm: qcow2 image '%s': L1 table too large", q.n.filename)
	}
	return q.growL1(size)
}
