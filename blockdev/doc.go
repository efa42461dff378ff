// Package blockdev is tlcvm's block layer: the images behind -drive, -hda..-hdd, -cdrom and
// -blockdev, opened as QEMU 7.2 opens them, the node graph QMP shows (query-block,
// query-named-block-nodes, query-blockstats), and the operations on it (blockdev-add,
// blockdev-del, block_resize, blockdev-snapshot, the blockdev-create job, disk hotplug).
//
// # The graph
//
// A Graph holds Nodes (QEMU's BlockDriverState): "file" protocol nodes over host files, "nbd"
// protocol nodes over an NBD server's export (nbd.go: package nbd's client), and
// "null-co"/"null-aio" protocol nodes that store nothing (null.go), and "raw"/"qcow2" format
// nodes over a file child, qcow2 nodes with a read-only backing chain.
// Backends (BlockBackend) are what devices attach to: named ones come from -drive, anonymous
// ones are made when a device's drive= names a node. Nodes without a node-name get QEMU's
// generated "#block<counter><two random digits>" names, in QEMU's order (a format node's
// file child is named before it, its backing chain after it).
//
//	device ──drive=──> Backend ──root──> qcow2 node ──file──> file node ──> host file (fd, OFD locks)
//	                                         │
//	                                         └──backing──> qcow2 node (read-only) ──file──> file node
//
// # Permissions and locks
//
// Every edge asks its child for permissions (consistent read, write, write unchanged,
// resize) and says which it shares, computed as QEMU 7.2's bdrv_default_perms does (qcow2
// takes write+resize on its file when writable and never shares them; raw passes its
// users' permissions through; a backing child is only read). A file node turns what its
// users want into fcntl open-file-description locks on the image, exactly QEMU's
// file-posix bytes, so tlcvm and QEMU see each other's locks:
//
//	byte 100+i   read-locked while permission bit i is held
//	byte 200+i   read-locked while permission bit i is NOT shared
//	(i: 0 consistent read, 1 write, 2 write unchanged, 3 resize)
//
// A file node opened with locking=off takes no bytes and checks nothing.
// A new user first locks the union of old and new bytes, then tests (F_OFD_GETLK with an
// exclusive lock) that no other description holds 200+i for a bit it takes, nor 100+i for
// a bit it does not share; on a conflict QEMU's text is returned ("Failed to get "write"
// lock", hint "Is another process using the image [f]?") and the old locks are restored.
//
// # qcow2 header (version 2: bytes 0-71; version 3: 0-103 and more), big-endian
//
//	 0 magic "QFI\xfb"           4 version (2|3)            8 backing_file_offset (u64)
//	16 backing_file_size (u32)  20 cluster_bits (9..21)    24 size (u64, bytes)
//	32 crypt_method (0|1 AES|2 LUKS)                       36 l1_size (u32)
//	40 l1_table_offset (u64)    48 refcount_table_offset   56 refcount_table_clusters
//	60 nb_snapshots             64 snapshots_offset (u64)
//	72 incompatible_features    80 compatible_features     88 autoclear_features
//	96 refcount_order (u32)    100 header_length (u32)    104 compression_type (u8), pad to 112
//	header_length: extensions {u32 type, u32 length, data padded to 8} until type 0:
//	  0xe2792aca backing format name, 0x6803f857 feature name table (48-byte entries),
//	  0x23852875 bitmaps, 0x0537be77 crypto header, 0x44415441 external data file
//	backing_file_offset: the backing file name (at most 1023 bytes, inside cluster 0)
//
// A fresh image (blockdev-create, -drive snapshot=on) is laid out byte for byte as QEMU
// writes it: header cluster, refcount table (cluster 1), refcount block (cluster 2), L1
// table (cluster 3; the file ends right after it); version 3 images carry the feature name
// table when clusters exceed 4 KiB. qemu-img check finds them clean.
//
// # Removable media
//
// CD-ROMs (ide-cd, scsi-cd) have a tray the guest may lock, floppies a slot without one, a
// backend without a device takes media too; media.go holds the one transition function of
// their states (mediaStep) and the QMP operations composed from it as QEMU 7.2 composes
// them (blockdev-open-tray/-close-tray/-remove-medium/-insert-medium/-change-medium, eject),
// emitting DEVICE_TRAY_MOVED on every tray move. A removable device realized without a
// drive makes itself an empty anonymous backend.
//
// # Internal snapshots
//
// snapshots.go reads the internal snapshot tables of qcow2 images (query-block's image
// info, HMP info snapshots); qcow2snap.go writes them as QEMU 7.2's qcow2-snapshot.c does
// (create, goto, delete, each leaving refcounts and COPIED flags qemu-img check accepts)
// and keeps the VM state in the image past the disk; snapshot_ops.go runs them over the
// graph as block/snapshot.c's bdrv_all_* do for savevm, loadvm, delvm and the snapshot-*
// jobs (which nodes take part, QEMU's errors, the node holding the VM state).
//
// # Errors
//
// Every error is a *qerror.Error: it wraps a sentinel of errors.go and carries QEMU's text;
// qerror.Hint returns the extra lines QEMU prints after a command-line error. Package qmp/cmds maps them to QMP classes.
//
// # The data path (io.go, fileio.go, qcow2meta.go, qcow2io.go, backendio.go)
//
// Every Node reads and writes at byte offsets of its virtual size:
//
//	n.ReadAt(p, off)              io.ReaderAt: short read and io.EOF only at the node's end
//	n.WriteAt(p, off)             io.WriterAt: ErrInvalid past the end, ErrReadOnly, ErrIO
//	n.WriteZeroes(off, len, fl)   zero clusters / holes (ZeroMayUnmap: may deallocate)
//	n.Unmap(off, len)             discard; a no-op unless the node has discard=unmap
//	n.Flush()                     fdatasync of the host files written (not with cache.no-flush)
//	n.BlockStatus(off, len)       first extent of n alone: StatusData/Zero/Allocated
//	n.BlockStatusAbove(base, off, len)  through the backing chain down to base, with Depth
//	n.WrHighestOffset()           end of the highest write (query-blockstats per node)
//	n.SetWriteThreshold(v)        BLOCK_WRITE_THRESHOLD once a write ends past v
//
// A file node does pread/pwrite on its host file (zeroes past its end, holes for unmapping
// zeroes and discards, SEEK_DATA/SEEK_HOLE for status); a raw node passes everything to its
// file; a qcow2 node maps guest clusters through its L1/L2 tables, reads unallocated
// clusters from its backing chain (zeroes past a backing file's end), inflates compressed
// clusters (zlib), and on a write allocates what it needs — an L2 table, a data cluster
// holding the old content around the write (copy-on-write from the backing chain), a
// refcount block, a larger refcount table — copying shared (internal snapshot) L2 tables
// and clusters instead of writing into them. The image stays what qemu-img check calls
// clean; the order of writes on disk is drawn in io.go. Clusters go where QEMU 7.2 puts
// them and each request is one host write as in QEMU, so qemu-io's writes and tlcvm's
// leave byte-identical images (io_test.go), and wr_highest_offset and write-threshold
// amounts are QEMU's.
//
// HMP qemu-io (qemuio.go) runs qemu-io's read, write, discard, flush and length on a
// drive, a device's backend or a node, printing on stdout as QEMU does, and the breakpoint
// commands (break, resume, remove_break, wait_break) of the blkdebug driver.
//
// The blkdebug filter (blkdebug.go) sits between a format node and its image: the format
// drivers raise QEMU's debug events on their file child (read_aio, write_aio, l2_load,
// l2_update, cluster_alloc, flush_to_os/flush_to_disk, pwritev…; the list is in
// blkdebug.go), and its inject-error, set-state and breakpoint rules fail or suspend the
// requests that reach it, as QEMU 7.2's block/blkdebug.c does.
//
// A Backend adds what a guest device sees: Read, Write, WriteZeroes, Unmap, Flush with a
// context (for the throttle wait), the I/O limits of block_set_io_throttle (throttle.go:
// leaky buckets shared in throttle groups), the device-level accounting of
// query-blockstats (Stats) and, without a write cache, a flush after each write.
// Graph.FlushAll flushes every medium (the VM stopping).
//
// Locking (details in io.go): Node.io is shared by requests and exclusive for graph
// changes under the node and for requests that free clusters; a qcow2 node's metadata is
// under its own mutex, data moves outside it; Backend.io is shared by requests and
// exclusive for a change of Root. Order: Graph.mu, then Backend.io, then Node.io of a node
// before its children's. I/O never takes Graph.mu, so a job may do I/O from its
// goroutine while the monitor changes the graph; to change n.File, n.Backing or b.Root
// under I/O, hold n.io (b.io) exclusively while doing it.
//
// # Dirty bitmaps (bitmap.go, bitmap_ops.go, bitmap_qcow2.go)
//
// A Bitmap is QEMU's BdrvDirtyBitmap: a bit per granule (a power of two ≥ 512 bytes) of a
// node, set by every write that reaches the node while the bitmap records. The API the
// jobs, the NBD exports and the migration of bitmaps use:
//
//	n.CreateBitmap(name, gran)      named (listed, QMP) or anonymous ("") bitmap of the node
//	n.ReleaseBitmap(b), n.Bitmap(name), n.Bitmaps(), n.BitmapInfos()
//	NewBitmap(size, gran)           detached bitmap (a job's); n.TrackWrites(b) feeds it
//	b.Set/Reset(off, len), b.Get(off), b.Count() (dirty bytes), b.Clear(), b.SetAll()
//	b.NextDirty(off, max)           next dirty run (granule aligned, ≤ max bytes)
//	b.NextDirtyOffset/NextCleanOffset(off, end), b.NextDirtyArea(off, end, max)
//	b.Extents(off, len, fn)         runs of equal state (NBD's qemu:dirty-bitmap context)
//	b.Merge(src), b.Copy(), b.SetEnabled(on), b.SetBusy(on), b.Check(), b.CheckWritable()
//	b.CreateSuccessor(), b.Abdicate(), b.Reclaim()   a backup job's frozen bitmap
//	b.Serialize/Deserialize(first granule, …)        QEMU's bit layout (qcow2, migration)
//	g.PrepareBitmapAdd/Remove/Clear/Enable/Merge     the QMP operations as transaction steps
//
// Persistent bitmaps live in qcow2 images (bitmap_qcow2.go draws the format): loaded and
// marked in use when the image opens read-write, stored when the node closes or goes
// read-only, marked in use again when it comes back read-write.
//
// # Exports and reopen (export.go, reopen.go)
//
// g.UseForExport(node, writable) holds a node for an NBD export as QEMU's block export
// does (an unlisted backend: its permissions, no resize, blockdev-del refused);
// n.FindBitmapInChain finds an exported bitmap down the backing chain. g.Reopen is
// blockdev-reopen: read-only and the other in-place flags of existing nodes, all or none.
//
// # What comes next
//
// Mirror, commit, stream and backup will be Jobs (StartJob with a JobRunner reporting
// progress) driven through the same state machine and JOB_STATUS_CHANGE events, doing
// their I/O through the methods above.
package blockdev
