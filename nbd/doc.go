// Package nbd is tlcvm's NBD server (QEMU 7.2's nbd/server.c and the NBD part of
// block/export): the exports of block nodes that nbd-server-start/-add/-remove/-stop,
// block-export-add/-del and query-block-exports manage, served to qemu-img, qemu-nbd,
// libvirt's backup clients and a migration's storage copy. It never imports qmp, hmp or
// blockdev: an export serves a Device and offers DirtyBitmaps, small interfaces this
// package owns and the composition root (qmp/cmds) adapts from block nodes and their
// bitmaps. Its Client speaks the same protocol as QEMU's client (Connect: structured replies,
// meta contexts, GO or EXPORT_NAME; one request at a time, each reply checked against its
// request by ReadReply, the connection broken on any reply it cannot trust): package
// blockdev's nbd driver (a migration's storage copy mirrors into a destination's export
// through it) and the tests use it.
//
// # Exports
//
//	monitor ──Add(ExportConfig)──▶ Server ──▶ export {id, name, Device, bitmaps, flags}
//	                                  │             ▲ held by the monitor (user owned)
//	client ──accept──▶ conn ──GO/EXPORT_NAME──────┘ and by each client that opened it
//	monitor ──Remove(id, hard)──▶ shut down: name gone, clients closed (hard); refused
//	                              while clients use it (safe: "export 'x' still in use")
//	last hold dropped ──▶ Deleted() (the monitor releases the node, emits BLOCK_EXPORT_DELETED)
//	Stop ──▶ every export shut down, Stop returns once all are deleted, listener closed
//
// An export's size is fixed when it is made (whole sectors). Its transmission flags are
// QEMU's: HAS_FLAGS SEND_FLUSH SEND_FUA SEND_CACHE, CAN_MULTI_CONN unless the server takes
// one connection at most, READ_ONLY or SEND_TRIM SEND_WRITE_ZEROES SEND_FAST_ZERO, and
// SEND_DF for a client that negotiated structured replies (a read-only export: 0x58f).
//
// # Protocol (fixed newstyle; negotiate.go and transmit.go draw the messages)
//
//	greeting  ─▶ options: LIST, INFO, GO, EXPORT_NAME, STRUCTURED_REPLY, LIST/SET_META_CONTEXT,
//	             ABORT; STARTTLS refused (no TLS), others NBD_REP_ERR_UNSUP
//	transmission: READ (structured: OFFSET_DATA / OFFSET_HOLE chunks), WRITE, FLUSH, TRIM,
//	             WRITE_ZEROES, CACHE, BLOCK_STATUS, DISC
//
// Meta contexts, with QEMU's ids: base:allocation (0: NBD_STATE_HOLE where no data,
// NBD_STATE_ZERO where it reads as zeroes, through the backing chain),
// qemu:allocation-depth (1: the layer deciding the content, 0 for none; when the export
// was made with allocation-depth) and qemu:dirty-bitmap:NAME (2+i: NBD_STATE_DIRTY).
// LIST_META_CONTEXT accepts the namespaces "base:", "qemu:", "qemu:dirty-bitmap:" and an
// empty query list; SET_META_CONTEXT only full names.
//
// Limits a hostile client meets (QEMU's): reads and writes of 32 MiB at most (a longer
// read is refused with EINVAL, a longer write closes the connection: its data cannot be
// trusted to follow), names and descriptions of 4096 bytes, option data of 32 MiB (64 KiB
// are read into memory, longer known options get NBD_REP_ERR_TOO_BIG), 1024 meta queries,
// block status replies of 131072 extents. Every length read from the wire is checked
// against what was received before it is used. Requests are served one at a time per
// connection, in order.
package nbd
