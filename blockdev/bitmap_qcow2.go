package blockdev

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// Persistent dirty bitmaps in qcow2 images (docs/interop/qcow2.txt "Bitmaps extension",
// QEMU 7.2's block/qcow2-bitmap.c), so that qemu-img info / qemu-img bitmap see and edit
// what tlcvm stores, and tlcvm loads what they wrote:
//
//	header extension 0x23852875 (24 bytes), valid only while autoclear bit 0 is set:
//	   0 nb_bitmaps (u32)   4 reserved (0)   8 bitmap_directory_size (u64)
//	  16 bitmap_directory_offset (u64, cluster aligned)
//	bitmap directory (contiguous clusters), one entry per bitmap, each padded to 8:
//	   0 bitmap_table_offset (u64)   8 bitmap_table_size (u32, entries)   12 flags (u32:
//	     bit 0 in-use, bit 1 auto)   16 type (1: dirty tracking)   17 granularity_bits
//	     (9..31)   18 name_size (u16, ≤ 1023)   20 extra_data_size (u32, 0)   24 name
//	bitmap table (contiguous clusters): u64 per data cluster, offset | bit 0 "all ones"
//	  (offset 0), offset 0 and bit 0 clear: all zeroes
//	data cluster i: granules [i·cs·8, (i+1)·cs·8) as little-endian 64-bit words
//
// Life of a persistent bitmap, as QEMU's: opening an image read-write loads its bitmaps
// and marks them in use in the image (the directory rewritten in place with the autoclear
// bit cleared meanwhile, so that a crash leaves the bitmaps stale, never wrong); a bitmap
// marked in use when loaded is inconsistent (its writer died) and can only be removed.
// Closing the node (or reopening it read-only, or a migration handing the image over)
// stores every persistent bitmap: new tables and data clusters, a new directory, the
// header, then the old clusters are freed. Removing a persistent bitmap removes it from the
// image at once. Opening read-only loads them read-only and never writes. Every cluster
// is allocated and freed through the image's refcounts, so qemu-img check stays clean.

const (
	autoclearBitmaps = 1 << 0
	autoclearMask    = autoclearBitmaps | 1<<1 // and raw external data (QCOW2_AUTOCLEAR_MASK)

	maxBitmaps         = 65535
	maxBitmapDirSize   = 1024 * maxBitmaps
	bmeMaxTableSize    = 0x8000000
	bmeMaxPhysSize     = 0x20000000
	bmeMaxGranBits     = 31
	bmeMinGranBits     = 9
	bmeMaxNameSize     = 1023
	bmeFlagInUse       = 1 << 0
	bmeFlagAuto        = 1 << 1
	bmeReservedFlags   = 0xfffffffc
	bmeEntryReserved   = 0xff000000000001fe
	bmeEntryOffsetMask = 0x00fffffffffffe00
	bmeEntryAllOnes    = 1
	bmeTypeDirty       = 1
	bmeDirEntryHeader  = 24
)

// BitmapsExt is the qcow2 bitmaps header extension.
type BitmapsExt struct {
	NbBitmaps uint32
	DirSize   uint64
	DirOffset uint64
}

func (e BitmapsExt) encode() []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint32(b[0:], e.NbBitmaps)
	binary.BigEndian.PutUint64(b[8:], e.DirSize)
	binary.BigEndian.PutUint64(b[16:], e.DirOffset)
	return b
}

// readBitmapsExt parses the extension as qcow2_read_extensions does.
func (h *Qcow2Header) readBitmapsExt(data []byte) error {
	if len(data) != 24 {
		return errf(ErrFormat, "bitmaps_ext: Invalid extension length")
	}
	if h.AutoclearFeatures&autoclearBitmaps == 0 {
		h.StaleBitmaps = true // dropped at the next header update
		return nil
	}
	be := binary.BigEndian
	if be.Uint32(data[4:]) != 0 {
		return errf(ErrFormat, "bitmaps_ext: Reserved field is not zero")
	}
	e := BitmapsExt{NbBitmaps: be.Uint32(data[0:]), DirSize: be.Uint64(data[8:]), DirOffset: be.Uint64(data[16:])}
	switch {
	case e.NbBitmaps > maxBitmaps:
		return errf(ErrFormat, "bitmaps_ext: Image has %d bitmaps, exceeding the QEMU supported maximum of %d", e.NbBitmaps, maxBitmaps)
	case e.NbBitmaps == 0:
		return errf(ErrFormat, "found bitmaps extension with zero bitmaps")
	case e.DirOffset%uint64(h.ClusterSize()) != 0:
		return errf(ErrFormat, "bitmaps_ext: invalid bitmap directory offset")
	case e.DirSize > maxBitmapDirSize:
		return errf(ErrFormat, "bitmaps_ext: bitmap directory size (%d) exceeds the maximum supported size (%d)", e.DirSize, maxBitmapDirSize)
	}
	h.Bitmaps = e
	return nil
}

// dirEntry is one bitmap of an image's directory.
type dirEntry struct {
	tableOffset uint64
	tableSize   uint32
	flags       uint32
	granBits    uint8
	name        string

	bm *Bitmap // storing: the in-memory bitmap written into this entry
}

func dirEntrySize(name string) uint64 { return (bmeDirEntryHeader + uint64(len(name)) + 7) &^ 7 }

// ImageBitmap is one bitmap of a qcow2 image's directory (qemu-img info's "bitmaps").
type ImageBitmap struct {
	Name        string
	Granularity int64
	InUse, Auto bool
}

// serialBytes is the size of a bitmap's serialisation (hbitmap_serialization_size): whole
// 64-bit words of granules.
func serialBytes(size int64, granBits uint8) int64 {
	if size <= 0 {
		return 0
	}
	return ((size-1)>>granBits/64 + 1) * 8
}

// tableSizeFor is the number of data clusters (bitmap table entries) a bitmap needs.
func tableSizeFor(size int64, granBits uint8, cs int64) int64 {
	return (serialBytes(size, granBits) + cs - 1) / cs
}

// checkEntry is check_dir_entry.
func (q *qcow2) checkEntry(e *dirEntry, size int64) bool {
	if e.tableSize == 0 || e.tableOffset == 0 || e.tableOffset%uint64(q.cs) != 0 ||
		e.tableSize > bmeMaxTableSize || e.granBits > bmeMaxGranBits || e.granBits < bmeMinGranBits ||
		e.flags&bmeReservedFlags != 0 || len(e.name) > bmeMaxNameSize {
		return false
	}
	phys := uint64(e.tableSize) * uint64(q.cs)
	if phys > bmeMaxPhysSize {
		return false
	}
	return e.flags&bmeFlagInUse != 0 || uint64(size) <= (phys*8)<<e.granBits
}

// loadDir reads and checks the image's bitmap directory (bitmap_list_load).
func (q *qcow2) loadDir() ([]*dirEntry, error) {
	ext := q.h.Bitmaps
	if ext.NbBitmaps == 0 {
		return nil, nil
	}
	if ext.DirSize == 0 {
		return nil, errf(ErrFormat, "Requested bitmap directory size is zero")
	}
	if ext.DirSize > maxBitmapDirSize {
		return nil, errf(ErrFormat, "Requested bitmap directory size is too big")
	}
	dir := make([]byte, ext.DirSize)
	if err := q.pread(dir, int64(ext.DirOffset)); err != nil {
		return nil, prefix(err, "Failed to read bitmap directory: ")
	}
	be := binary.BigEndian
	size := int64(q.h.Size)
	var out []*dirEntry
	for off := 0; off < len(dir); {
		if off+bmeDirEntryHeader > len(dir) {
			return nil, errf(ErrFormat, "Broken bitmap directory")
		}
		if len(out)+1 > int(ext.NbBitmaps) {
			return nil, errf(ErrFormat, "More bitmaps found than specified in header extension")
		}
		d := dir[off:]
		nameSize, extra := int(be.Uint16(d[18:])), int(be.Uint32(d[20:]))
		esz := (bmeDirEntryHeader + nameSize + extra + 7) &^ 7
		if extra > len(dir) || off+esz > len(dir) || esz < bmeDirEntryHeader {
			return nil, errf(ErrFormat, "Broken bitmap directory")
		}
		if extra != 0 {
			return nil, errf(ErrFormat, "Bitmap extra data is not supported")
		}
		e := &dirEntry{tableOffset: be.Uint64(d[0:]), tableSize: be.Uint32(d[8:]), flags: be.Uint32(d[12:]),
			granBits: d[17], name: string(d[bmeDirEntryHeader : bmeDirEntryHeader+nameSize])}
		if d[16] != bmeTypeDirty || !q.checkEntry(e, size) {
			return nil, errf(ErrFormat, "Bitmap '%s' doesn't satisfy the constraints", e.name)
		}
		out = append(out, e)
		off += esz
	}
	if len(out) != int(ext.NbBitmaps) {
		return nil, errf(ErrFormat, "Less bitmaps found than specified in header extension")
	}
	return out, nil
}

// encodeDir is the directory's on-disk form.
func encodeDir(list []*dirEntry) []byte {
	var out []byte
	be := binary.BigEndian
	for _, e := range list {
		b := make([]byte, dirEntrySize(e.name))
		be.PutUint64(b[0:], e.tableOffset)
		be.PutUint32(b[8:], e.tableSize)
		be.PutUint32(b[12:], e.flags)
		b[16], b[17] = bmeTypeDirty, e.granBits
		be.PutUint16(b[18:], uint16(len(e.name)))
		copy(b[bmeDirEntryHeader:], e.name)
		out = append(out, b...)
	}
	return out
}

// loadTable reads and checks a bitmap table (bitmap_table_load).
func (q *qcow2) loadTable(e *dirEntry) ([]uint64, error) {
	t, err := q.readTable(int64(e.tableOffset), int64(e.tableSize))
	if err != nil {
		return nil, err
	}
	for _, v := range t {
		if v&bmeEntryReserved != 0 || (v&bmeEntryOffsetMask != 0 && (v&bmeEntryAllOnes != 0 || (v&bmeEntryOffsetMask)%uint64(q.cs) != 0)) {
			return nil, errf(ErrFormat, "Invalid argument")
		}
	}
	return t, nil
}

// loadData fills b from its table (load_bitmap_data).
func (q *qcow2) loadData(e *dirEntry, b *Bitmap) error {
	t, err := q.loadTable(e)
	if err != nil {
		return errf(ErrFormat, "Could not read bitmap_table table from image for bitmap '%s': Invalid argument", e.name)
	}
	size := b.Size()
	if int64(len(t)) != tableSizeFor(size, e.granBits, q.cs) {
		return errf(ErrFormat, "Could not read bitmap '%s' from image: Invalid argument", e.name)
	}
	per := q.cs * 8 // granules per data cluster
	buf := make([]byte, q.cs)
	for i, v := range t {
		first := int64(i) * per
		off := int64(v & bmeEntryOffsetMask)
		switch {
		case off == 0 && v&bmeEntryAllOnes != 0:
			b.setGranules(first, per)
		case off == 0:
		default:
			if err := q.pread(buf, off); err != nil {
				return prefix(err, fmt.Sprintf("Could not read bitmap '%s' from image: ", e.name))
			}
			b.Deserialize(first, buf)
		}
	}
	return nil
}

// freeRun lowers the refcount of the clusters holding [off, off+bytes). Caller holds q.mu.
func (q *qcow2) freeRun(off, bytes int64) error {
	for c := off / q.cs; c <= (off+bytes-1)/q.cs; c++ {
		if err := q.unref(c); err != nil {
			return err
		}
	}
	return nil
}

// freeTable frees a stored bitmap's data clusters and table (free_bitmap_clusters).
// Caller holds q.mu.
func (q *qcow2) freeTable(off uint64, size uint32) error {
	if off == 0 || size == 0 {
		return nil
	}
	t, err := q.readTable(int64(off), int64(size))
	if err != nil {
		return err
	}
	for _, v := range t {
		if a := int64(v & bmeEntryOffsetMask); a != 0 {
			if err := q.unref(a / q.cs); err != nil {
				return err
			}
		}
	}
	return q.freeRun(int64(off), int64(size)*8)
}

// writeHeader rewrites the header cluster from q.h (qcow2_update_header) and makes it
// durable. Caller holds q.mu.
func (q *qcow2) writeHeader() error {
	b := q.h.encode()
	if int64(len(b)) > q.cs {
		return errf(ErrIO, "tlcvm: qcow2 header of '%s' does not fit its cluster", q.n.filename)
	}
	if err := q.writeback(); err != nil { // what the header reaches is counted on disk first
		return err
	}
	buf := make([]byte, q.cs)
	copy(buf, b)
	if err := q.pwrite(buf, 0); err != nil {
		return err
	}
	return q.n.File.Flush()
}

// updateDirInPlace rewrites the directory where it is (the in-use flags changed), with
// the autoclear bit cleared while it is written (update_ext_header_and_dir_in_place).
// Caller holds q.mu.
func (q *qcow2) updateDirInPlace(list []*dirEntry) error {
	dir := encodeDir(list)
	if q.h.AutoclearFeatures&autoclearBitmaps == 0 || len(list) == 0 || uint64(len(dir)) != q.h.Bitmaps.DirSize {
		return errf(ErrInvalid, "Invalid argument")
	}
	q.h.AutoclearFeatures &^= autoclearBitmaps
	if err := q.writeHeader(); err != nil {
		return err
	}
	if err := q.pwrite(dir, int64(q.h.Bitmaps.DirOffset)); err != nil {
		return err
	}
	if err := q.writeHeader(); err != nil {
		return err
	}
	q.h.AutoclearFeatures |= autoclearBitmaps
	return q.writeHeader()
}

// updateDir writes list as a new directory, points the header at it and frees the old
// one (update_ext_header_and_dir). An empty list removes the extension. Caller holds q.mu.
func (q *qcow2) updateDir(list []*dirEntry) error {
	old := q.h.Bitmaps
	oldAuto := q.h.AutoclearFeatures
	var ext BitmapsExt
	if len(list) > 0 {
		if len(list) > maxBitmaps {
			return errf(ErrInvalid, "Invalid argument")
		}
		dir := encodeDir(list)
		off, err := q.allocRun((int64(len(dir)) + q.cs - 1) / q.cs)
		if err != nil {
			return err
		}
		if err := q.pwrite(dir, off); err != nil {
			_ = q.freeRun(off, int64(len(dir)))
			return err
		}
		ext = BitmapsExt{NbBitmaps: uint32(len(list)), DirSize: uint64(len(dir)), DirOffset: uint64(off)}
		q.h.AutoclearFeatures |= autoclearBitmaps
	} else {
		q.h.AutoclearFeatures &^= autoclearBitmaps
	}
	q.h.Bitmaps = ext
	if err := q.writeHeader(); err != nil {
		if ext.DirOffset != 0 {
			_ = q.freeRun(int64(ext.DirOffset), int64(ext.DirSize))
		}
		q.h.Bitmaps, q.h.AutoclearFeatures = old, oldAuto
		return err
	}
	if old.DirSize > 0 {
		return q.freeRun(int64(old.DirOffset), int64(old.DirSize))
	}
	return nil
}

// storeData writes b's dirty clusters and its table (store_bitmap) into e.
// Caller holds q.mu.
func (q *qcow2) storeData(e *dirEntry, b *Bitmap) error {
	size := b.Size()
	tb := tableSizeFor(size, e.granBits, q.cs)
	if tb > bmeMaxTableSize || tb*q.cs > bmeMaxPhysSize {
		return errf(ErrInvalid, "Bitmap '%s' is too big", b.name)
	}
	table := make([]uint64, tb)
	per := q.cs * 8
	total := (size + b.Granularity() - 1) >> b.shift
	var allocated []int64
	fail := func(err error) error {
		for _, off := range allocated {
			_ = q.unref(off / q.cs)
		}
		return err
	}
	for i := int64(0); i < tb; i++ {
		first := i * per
		lo, hi := first<<b.shift, min(first+per, total)<<b.shift
		if b.NextDirtyOffset(lo, hi) < 0 {
			continue
		}
		off, err := q.alloc()
		if err != nil {
			return fail(prefix(err, fmt.Sprintf("Failed to allocate clusters for bitmap '%s': ", b.name)))
		}
		allocated = append(allocated, off)
		buf := make([]byte, q.cs)
		copy(buf, b.Serialize(first, min(per, total-first)))
		if err := q.pwrite(buf, off); err != nil {
			return fail(prefix(err, fmt.Sprintf("Failed to write bitmap '%s' to file: ", b.name)))
		}
		table[i] = uint64(off)
	}
	tbytes := tb * 8
	toff, err := q.allocRun((tbytes + q.cs - 1) / q.cs)
	if err != nil {
		return fail(prefix(err, fmt.Sprintf("Failed to allocate clusters for bitmap '%s': ", b.name)))
	}
	raw := make([]byte, tbytes)
	for i, v := range table {
		binary.BigEndian.PutUint64(raw[i*8:], v)
	}
	if err := q.pwrite(raw, toff); err != nil {
		_ = q.freeRun(toff, tbytes)
		return fail(prefix(err, fmt.Sprintf("Failed to write bitmap '%s' to file: ", b.name)))
	}
	e.tableOffset, e.tableSize = uint64(toff), uint32(tb)
	return nil
}

// loadBitmaps loads a qcow2 node's persistent bitmaps when it is opened
// (qcow2_load_dirty_bitmaps), marking them in use in the image when the node is writable;
// on a read-only node they are read-only. It also clears autoclear bits QEMU does not know
// (a writable image), as qcow2_do_open does.
func (n *Node) loadBitmaps(warn io.Writer) error {
	q := n.q
	h := n.hdr
	if h.StaleBitmaps {
		fmt.Fprintf(warn, "qemu-system-x86_64: warning: a program lacking bitmap support modified this file, so all bitmaps are now considered inconsistent\n"+
			"Some clusters may be leaked, run 'qemu-img check -r' on the image file to fix.")
	}
	writable := !n.ReadOnly
	q.mu.Lock()
	defer q.mu.Unlock()
	updateHeader := writable && h.AutoclearFeatures&^autoclearMask != 0
	if updateHeader {
		h.AutoclearFeatures &= autoclearMask
	}
	list, err := q.loadDir()
	if err != nil {
		return err
	}
	var created []*Bitmap
	undo := func() {
		for _, b := range created {
			n.ReleaseBitmap(b)
		}
	}
	needsUpdate := false
	for _, e := range list {
		if e.flags&bmeFlagInUse != 0 {
			if _, ok := n.Bitmap(e.name); ok {
				continue // migrated in: the image's copy is outdated
			}
		}
		b, err := n.CreateBitmap(e.name, int64(1)<<e.granBits)
		if err != nil {
			undo()
			return err
		}
		created = append(created, b)
		if e.flags&bmeFlagInUse == 0 {
			if err := q.loadData(e, b); err != nil {
				undo()
				return err
			}
		}
		n.bmMu.Lock()
		b.persistent = true
		if e.flags&bmeFlagInUse != 0 {
			b.inconsistent = true
		} else {
			e.flags |= bmeFlagInUse
			needsUpdate = true
		}
		b.disabled = e.flags&bmeFlagAuto == 0
		b.readonly = !writable
		n.bmMu.Unlock()
	}
	if needsUpdate && writable {
		if err := q.load(); err != nil {
			undo()
			return err
		}
		if err := q.updateDirInPlace(list); err != nil {
			undo()
			return prefix(err, "Can't update bitmap directory: ")
		}
		updateHeader = false
	}
	if updateHeader {
		if err := q.writeHeader(); err != nil {
			undo()
			return err
		}
	}
	return nil
}

// storeBitmaps writes the node's persistent bitmaps into its image
// (qcow2_store_persistent_dirty_bitmaps); with release they are dropped from memory
// afterwards (the node closes or hands the image over). Read-only and inconsistent
// bitmaps stay as the image has them.
func (n *Node) storeBitmaps(release bool) error {
	q := n.q
	if q == nil {
		if release {
			n.releasePersistent()
		}
		return nil
	}
	n.io.Lock() // drain: no write marks a bitmap while it is stored
	defer n.io.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	err := n.storeLocked()
	if release {
		n.releasePersistent()
	}
	return err
}

func (n *Node) storeLocked() error {
	q := n.q
	list, err := q.loadDir()
	if err != nil {
		return err
	}
	byName := map[string]*dirEntry{}
	for _, e := range list {
		byName[e.name] = e
	}
	type drop struct {
		off  uint64
		size uint32
	}
	var drops []drop
	needWrite := false
	nb, dirSize := len(list), uint64(0)
	for _, e := range list {
		dirSize += dirEntrySize(e.name)
	}
	// New bitmaps join the directory's end in the node's order, newest first, as
	// FOR_EACH_DIRTY_BITMAP walks them.
	for _, b := range n.Bitmaps() {
		n.bmMu.Lock()
		persistent, inconsistent, readonly, skip := b.persistent, b.inconsistent, b.readonly, b.skipStore
		enabled := !b.disabled
		n.bmMu.Unlock()
		if !persistent || inconsistent || skip {
			continue
		}
		if readonly {
			continue
		}
		needWrite = true
		if err := n.checkConstraints(b.name, b.Granularity()); err != nil {
			return prefix(err, fmt.Sprintf("Bitmap '%s' doesn't satisfy the constraints: ", b.name))
		}
		e := byName[b.name]
		if e == nil {
			if nb++; nb > maxBitmaps {
				return errf(ErrInvalid, "Too many persistent bitmaps")
			}
			if dirSize += dirEntrySize(b.name); dirSize > maxBitmapDirSize {
				return errf(ErrInvalid, "Bitmap directory is too large")
			}
			e = &dirEntry{name: b.name}
			list = append(list, e)
			byName[b.name] = e
		} else {
			if e.flags&bmeFlagInUse == 0 {
				return errf(ErrExists, "Bitmap '%s' already exists in the image", b.name)
			}
			drops = append(drops, drop{e.tableOffset, e.tableSize})
			e.tableOffset, e.tableSize = 0, 0
		}
		e.flags = 0
		if enabled {
			e.flags = bmeFlagAuto
		}
		e.granBits = uint8(b.shift)
		e.bm = b
	}
	if !needWrite {
		return nil
	}
	if n.ReadOnly {
		return errf(ErrReadOnly, "No write access")
	}
	if err := q.load(); err != nil {
		return err
	}
	fail := func(err error) error {
		for _, e := range list {
			if e.bm != nil && e.tableOffset != 0 {
				_ = q.freeTable(e.tableOffset, e.tableSize)
			}
		}
		return err
	}
	for _, e := range list {
		if e.bm == nil {
			continue
		}
		if err := q.storeData(e, e.bm); err != nil {
			return fail(err)
		}
	}
	if err := q.updateDir(list); err != nil {
		return fail(prefix(err, "Failed to update bitmap extension: "))
	}
	for _, d := range drops {
		if err := q.freeTable(d.off, d.size); err != nil {
			return err
		}
	}
	return nil
}

// releasePersistent drops the persistent bitmaps from memory (after storing them), as
// qcow2_store_persistent_dirty_bitmaps releases what it stored: a bitmap a migration
// carries (skip-store: not persistent to QEMU meanwhile) or an inconsistent one stays.
func (n *Node) releasePersistent() {
	n.bmMu.Lock()
	defer n.bmMu.Unlock()
	out := n.bitmaps[:0]
	for _, b := range n.bitmaps {
		if !b.persistent || b.name == "" || b.skipStore || b.inconsistent {
			out = append(out, b)
		}
	}
	clear(n.bitmaps[len(out):])
	n.bitmaps = out
}

// storeBeforeClose stores the persistent bitmaps of a qcow2 node that is about to close
// (qcow2_inactivate); a failure is reported as QEMU reports it and the close goes on.
func (n *Node) storeBeforeClose() {
	if n.Driver != DriverQcow2 || n.closed || n.ReadOnly {
		n.releasePersistent()
	} else if err := n.storeBitmaps(true); err != nil && n.g != nil {
		fmt.Fprintf(n.g.cfg.Warn, "qemu-system-x86_64: Lost persistent bitmaps during inactivation of node '%s': %s\n", n.Name, err)
	}
	// qcow2_inactivate: then the metadata caches go to the image.
	if !n.closed && n.File != nil {
		if err := n.writebackMeta(); err != nil && n.g != nil {
			fmt.Fprintf(n.g.cfg.Warn, "qemu-system-x86_64: Failed to flush the L2 table cache: %s\n", err)
		}
	}
}

// reopenBitmapsRO stores the persistent bitmaps and makes them read-only, as a reopen of
// the node to read-only does (qcow2_reopen_bitmaps_ro).
func (n *Node) reopenBitmapsRO() error {
	if n.Driver != DriverQcow2 {
		return nil
	}
	if err := n.storeBitmaps(false); err != nil {
		return err
	}
	if err := n.writebackMeta(); err != nil { // qcow2_reopen_prepare flushes the caches
		return err
	}
	n.bmMu.Lock()
	defer n.bmMu.Unlock()
	for _, b := range n.bitmaps {
		if b.persistent {
			b.readonly = true
		}
	}
	return nil
}

// removeStored removes a bitmap from the image's directory at once
// (qcow2_co_remove_persistent_dirty_bitmap); a bitmap the image does not hold is no error.
func (n *Node) removeStored(name string) error {
	q := n.q
	if q == nil || n.hdr.Bitmaps.NbBitmaps == 0 {
		return nil
	}
	n.io.Lock()
	defer n.io.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	list, err := q.loadDir()
	if err != nil {
		return err
	}
	var keep []*dirEntry
	var gone *dirEntry
	for _, e := range list {
		if e.name == name && gone == nil {
			gone = e
			continue
		}
		keep = append(keep, e)
	}
	if gone == nil {
		return nil
	}
	if err := q.load(); err != nil {
		return err
	}
	if err := q.updateDir(keep); err != nil {
		return prefix(err, "Failed to update bitmap extension: ")
	}
	return q.freeTable(gone.tableOffset, gone.tableSize)
}

// checkConstraints is check_constraints_on_bitmap.
func (n *Node) checkConstraints(name string, gran int64) error {
	gb := 0
	for g := gran; g > 1; g >>= 1 {
		gb++
	}
	if gb > bmeMaxGranBits {
		return errf(ErrInvalid, "Granularity exceeds maximum (%d bytes)", int64(1)<<bmeMaxGranBits)
	}
	if gb < bmeMinGranBits {
		return errf(ErrInvalid, "Granularity is under minimum (%d bytes)", int64(1)<<bmeMinGranBits)
	}
	need := ((n.Size()+gran-1)/gran + 7) / 8 // get_bitmap_bytes_needed
	if need > bmeMaxPhysSize || need > bmeMaxTableSize*n.hdr.ClusterSize() {
		return errf(ErrInvalid, "Too much space will be occupied by the bitmap. Use larger granularity")
	}
	if len(name) > bmeMaxNameSize {
		return errf(ErrInvalid, "Name length exceeds maximum (%d characters)", bmeMaxNameSize)
	}
	return nil
}

// canStoreNewBitmap is bdrv_can_store_new_dirty_bitmap: whether a new persistent bitmap
// name of granularity gran can be stored in n's image, with QEMU's texts.
func (n *Node) canStoreNewBitmap(name string, gran int64) error {
	if n.Driver != DriverQcow2 {
		return errf(ErrUnsupported, "Can't store persistent bitmaps to %s: Operation not supported", n.deviceOrNodeName())
	}
	if _, ok := n.Bitmap(name); ok {
		return errf(ErrExists, "Bitmap already exists: %s", name)
	}
	fail := func(err error) error {
		return prefix(err, fmt.Sprintf("Can't make bitmap '%s' persistent in '%s': ", name, n.deviceOrNodeName()))
	}
	if n.hdr.Version < 3 {
		return fail(errf(ErrUnsupported, "Cannot store dirty bitmaps in qcow2 v2 files"))
	}
	if err := n.checkConstraints(name, gran); err != nil {
		return fail(err)
	}
	nb, size := 1, dirEntrySize(name)
	for _, b := range n.Bitmaps() {
		if b.Persistent() {
			nb++
			size += dirEntrySize(b.name)
		}
	}
	if nb > maxBitmaps {
		return fail(errf(ErrInvalid, "Maximum number of persistent bitmaps is already reached"))
	}
	if size > maxBitmapDirSize {
		return fail(errf(ErrInvalid, "Not enough space in the bitmap directory"))
	}
	return nil
}

// deviceOrNodeName is bdrv_get_device_or_node_name: the name of a backend whose root n
// is, else the node name.
func (n *Node) deviceOrNodeName() string {
	for _, e := range n.parents {
		if e.backend != nil && e.backend.Name != "" {
			return e.backend.Name
		}
	}
	return n.Name
}

// ImageBitmaps lists the bitmaps the node's qcow2 image holds, as qemu-img info shows
// them (read from the image, in directory order); nil when it has none.
func (n *Node) ImageBitmaps() ([]ImageBitmap, error) {
	q := n.q
	if q == nil || n.hdr.Bitmaps.NbBitmaps == 0 {
		return nil, nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	list, err := q.loadDir()
	if err != nil {
		return nil, err
	}
	out := make([]ImageBitmap, 0, len(list))
	for _, e := range list {
		out = append(out, ImageBitmap{Name: e.name, Granularity: int64(1) << e.granBits,
			InUse: e.flags&bmeFlagInUse != 0, Auto: e.flags&bmeFlagAuto != 0})
	}
	return out, nil
}

// Flags is qemu-img's list of a stored bitmap's flags ("in-use", "auto").
func (b ImageBitmap) Flags() []string {
	out := []string{}
	if b.InUse {
		out = append(out, "in-use")
	}
	if b.Auto {
		out = append(out, "auto")
	}
	return out
}

// String is for logs.
func (b ImageBitmap) String() string {
	return fmt.Sprintf("%s(%d %s)", b.Name, b.Granularity, strings.Join(b.Flags(), ","))
}

// reopenBitmapsRW marks the read-only bitmaps of a node reopened read-write in use in the
// image and writable again (qcow2_reopen_bitmaps_rw).
func (n *Node) reopenBitmapsRW() error {
	q := n.q
	if q == nil || n.hdr.Bitmaps.NbBitmaps == 0 {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	list, err := q.loadDir()
	if err != nil {
		return err
	}
	var ro []*Bitmap
	update := false
	for _, e := range list {
		b, ok := n.Bitmap(e.name)
		if !ok {
			return errf(ErrFormat, "Unexpected bitmap '%s' in image '%s'", e.name, n.filename)
		}
		if e.flags&bmeFlagInUse == 0 {
			if !b.Readonly() {
				return errf(ErrFormat, "Corruption: bitmap '%s' is not marked IN_USE in the image '%s' and not marked readonly in RAM", e.name, n.filename)
			}
			e.flags |= bmeFlagInUse
			update = true
		}
		if b.Readonly() {
			ro = append(ro, b)
		}
	}
	if update {
		if err := q.load(); err != nil {
			return err
		}
		if err := q.updateDirInPlace(list); err != nil {
			return prefix(err, "Cannot update bitmap directory: ")
		}
	}
	n.bmMu.Lock()
	for _, b := range ro {
		b.readonly = false
	}
	n.bmMu.Unlock()
	return nil
}
