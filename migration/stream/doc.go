// Package stream is tlcvm's checkpoint and migration stream: QEMU 7.2's framing (so that
// QEMU's scripts/analyze-migration.py reads a tlcvm checkpoint) plus an integrity section
// that lets a restore detect any flipped byte or truncation before the guest runs.
//
// Writer produces a stream, Reader parses and verifies one. Neither knows about machines
// or transports: the engine (package migration) feeds pages and device state in, and
// package transport supplies the io.Writer / io.Reader.
//
// # Format
//
// All integers are big-endian. "idstr" is a u8 length followed by that many bytes.
//
//	offset 0   ┌──────────────────────────────────────────────────────────────┐
//	           │ be32 0x5145564d "QEVM"   be32 0x00000003                     │ header
//	           ├──────────────────────────────────────────────────────────────┤
//	           │ 0x07  be32 len  machine type ("pc-i440fx-7.2")               │ configuration
//	           ├──────────────────────────────────────────────────────────────┤
//	           │ 0x01  be32 id=0  idstr "ram"  be32 instance 0  be32 version 4│ START "ram"
//	           │   be64 total_bytes|0x04 (MEM_SIZE)                           │
//	           │   per block: idstr name  be64 size      (sum = total_bytes)  │
//	           │   be64 0x10 (EOS)                                            │
//	           │ 0x7e  be32 id=0                                              │ footer
//	           ├──────────────────────────────────────────────────────────────┤
//	           │ 0x02  be32 id=0                                              │ PART "ram"
//	           │   page records …  (stage 1 chunk, stage 2 iteration)         │  (repeated)
//	           │   be64 0x10 (EOS)   0x7e be32 id=0                           │
//	           ├──────────────────────────────────────────────────────────────┤
//	           │ 0x03  be32 id=0  page records …  be64 0x10  0x7e be32 id=0   │ END "ram"
//	           ├──────────────────────────────────────────────────────────────┤
//	           │ 0x04  be32 id=n  idstr  be32 instance  be32 version          │ FULL device
//	           │   be32 len  len bytes of state (tlcvm: the Snapshotter JSON) │  (one per
//	           │ 0x7e  be32 id=n                                              │   section)
//	           ├──────────────────────────────────────────────────────────────┤
//	  L ─────> │ 0x04  be32 id=last  idstr "tlcvm/integrity"  be32 0  be32 1  │ integrity
//	           │   be64 L  be32 CRC32C(bytes [0, L))                          │
//	           │   be32 D  be32 CRC32C(vmdesc JSON)                           │
//	           │ 0x7e  be32 id=last                                           │
//	           ├──────────────────────────────────────────────────────────────┤
//	           │ 0x00                                                         │ EOF
//	           │ 0x06  be32 D  D bytes of vmdesc JSON                         │ vmdesc
//	           └──────────────────────────────────────────────────────────────┘
//
// Page records (QEMU's ram_save_page_header; flags in the low 12 bits of the first word):
//
//	be64 offset|0x08 [|0x20]  [idstr block]  4096 bytes     PAGE
//	be64 offset|0x02 [|0x20]  [idstr block]  u8 fill (0)    ZERO: every byte equals fill
//
// 0x20 (CONTINUE) means "same block as the previous record of this section": the name is
// omitted. The first record of every section names its block (QEMU keeps the previous
// block across sections; tlcvm does not rely on it). offset is the byte offset within the
// block, page aligned and below the block's size. XBZRLE 0x40 carries a page as its
// difference from the destination's copy and COMPRESS_PAGE 0x100 the page deflated
// (xbzrle.go); other flags (HOOK 0x80, MULTIFD_FLUSH 0x200) are refused.
//
// The Writer numbers sections from 0 in the order they first appear (QEMU numbers them in
// registration order: its "ram" is 2); the Reader requires distinct ids. PART, END and
// footers repeat the id of their section. The RAM section is optional (a machine without RAM);
// when present its END must come before the integrity section and no PART may follow it.
// Device sections may appear between any two sections; each idstr/instance pair once.
//
// # Commands (QEMU_VM_COMMAND)
//
// Between sections a stream may carry commands: 0x08, be16 command, be16 length, data
// (QEMU 7.2's qemu_savevm_command_send and numbering; command.go). tlcvm writes and reads
// OPEN_RETURN_PATH (1), PING (2, be32), POSTCOPY_ADVISE (3: be64 4096, be64 4096),
// POSTCOPY_LISTEN (4), POSTCOPY_RUN (5), POSTCOPY_RAM_DISCARD (6: u8 0, u8 len, block,
// NUL, up to 12 be64 start/length pairs in bytes), PACKAGED (7: be32 n, then n bytes),
// POSTCOPY_RESUME (9) and RECV_BITMAP (10: u8 len, block); ENABLE_COLO and unknown commands
// are refused, and so is a length other than QEMU's for the fixed-size ones. A postcopy
// source wraps what the destination needs to run in a package (NewPackageWriter):
//
//	LISTEN  device sections …  PING 3  RUN  tlcvm/integrity (length and CRC32C of the
//	                                        package's bytes before it; vmdesc fields 0)
//
// so the destination verifies the device state before the guest runs on it; the pages
// that follow in the main stream are covered by its own integrity section at the end.
// After a broken channel (postcopy recovery) Writer.Resume and Reader.Resume continue
// the stream on a new channel at a section boundary: the bytes lost in the old channel
// are dropped on both ends and the final integrity section covers the new channel's bytes.
//
// The return path (rp.go: SHUT, PONG, REQ_PAGES_ID, REQ_PAGES, RECV_BITMAP, RESUME_ACK)
// and multifd channels (multifd.go: QEMU 7.2's init and page packets, plus a CRC32C of
// each packet's pages in a field QEMU leaves unused) are drawn beside their code.
//
// With the dirty-bitmaps capability, a START section "dirty-bitmap" (instance 0, version
// 1) follows the RAM setup and its END section RAM's END: QEMU's chunk encoding of the
// block layer's dirty bitmaps, drawn in bitmaps.go (Reader: BitmapsSetup, BitmapsData).
//
// # Device state
//
// A device section carries the Snapshotter's JSON as two VMState fields, described per
// device in the vmdesc so that analyze-migration.py decodes them:
//
//	{"name": "serial0", "instance_id": 0, "vmsd_name": "serial0", "version": 1,
//	 "fields": [{"name": "length", "type": "uint32", "size": 4},
//	            {"name": "state",  "type": "buffer", "size": <length>}]}
//
// (the same shape as QEMU's own "globalstate" section: a uint32 size and a buffer).
//
// # Integrity
//
// The tlcvm/integrity section is an ordinary FULL device section to QEMU's tools (it is
// described in the vmdesc with four uint64/uint32 fields). It records L, the offset of its
// own first byte, with the CRC32C (Castagnoli, hardware accelerated by hash/crc32) of
// every byte before it, and the length and CRC32C of the vmdesc JSON. The bytes it does
// not cover are checked by value: its header (name, instance 0, version 1), its footer id,
// the EOF byte, the 0x06 byte and the vmdesc length (equal to the recorded D). So a
// flipped byte anywhere fails with ErrFormat or ErrIntegrity, and a cut anywhere with
// ErrTruncated, before Reader.Next returns End; a stream without the integrity section
// (QEMU's own) is refused.
//
// Restore applies pages as they arrive; the engine must not run the guest until Next has
// returned End. The Reader stops after the vmdesc and does not look at what follows.
//
// # Mapped RAM
//
// NewMappedWriter writes QEMU 9.0's mapped-ram layout (capability "mapped-ram", file: only):
// the same sections, but no page records; every page of a block has a fixed place in the
// file and the stream's bytes flow around the blocks' regions. Offsets are absolute file
// offsets (base = N of file:PATH,offset=N), as QEMU's qemu_get_offset gives them.
//
//	base ──> ┌──────────────────────────────────────────────────────────────────┐
//	         │ QEVM 3  0x07 be32 len machine type                               │
//	         │   0x05 idstr "configuration/capabilities" be32 1                 │ configuration
//	         │   be32 1  u8 10 "mapped-ram"                                     │  (QEMU 9.0)
//	         │ 0x01 START "ram"  be64 total|MEM_SIZE                            │
//	         │   idstr block  be64 size                                         │ per block:
//	  H ───> │   MappedRamHeader: be32 1, be64 4096, be64 B=H+28, be64 P        │
//	  B ───> │   bitmap: ceil(pages/64) little-endian u64 (bit p = page present) │ (written last)
//	         │   … zero padding (a hole) …                                       │
//	  P ───> │   page 0 … page n-1: PAGE_SIZE each at P + p*4096, P 1 MiB aligned│ (pwrite, holes
//	         │   (absent pages: holes or stale bytes, ignored)                   │  where absent)
//	P+size─> │   next block's idstr/size/header … ;  be64 EOS  0x7e footer        │
//	         │ PART / END "ram": be64 EOS + footer only (pages went to P)        │
//	         │ FULL device sections                                              │
//	         │ FULL "tlcvm/mapped-ram" v2: be32 len, per block: be32 CRC32C(bitmap)│ digests
//	         │   then one be32 CRC32C per page (0 for an absent page)           │
//	         │ FULL "tlcvm/integrity" (CRC32C of the sequential bytes only)      │
//	         │ 0x00 EOF  0x06 vmdesc (with a "configuration" member)             │
//	         └──────────────────────────────────────────────────────────────────┘
//
// A page written again in a later pass is overwritten in place; a page found zero is
// cleared from the bitmap (QEMU: "zero pages are not transferred with mapped-ram") and, if
// its place held data, zeroed, so that in every file tlcvm writes an absent page reads as
// zero (restore by mapping relies on it; QEMU 9.0 leaves stale bytes). The file is bounded
// by the RAM size whatever the number of passes. Contiguous pages are gathered into writes
// of up to 1 MiB.
//
// Integrity. The sequential bytes are covered by tlcvm/integrity as in a streamed file
// (the skipped regions are not part of the CRC or of its length). The RAM regions are
// covered by tlcvm/mapped-ram: the CRC32C of each bitmap and of each present page (4 bytes
// per page: 4 MiB for 4 GiB, so the section's size limit is its exact expected size, not
// MaxStateSize). The writer keeps the per-page CRC32C and replaces it when a page is
// rewritten: no read-back. Reader.MappedData, once Next has returned End, reads a block's
// bitmap, checks it and returns it with the page digests; MappedData.Check verifies pages
// where they lie (a restore by mapping checks each 1 MiB chunk before the guest touches
// it). Reader.ReadMapped reads each chunk's present pages and checks them before handing
// any over. A flipped byte in a present page, the bitmap, a header or the sequential part
// fails with ErrIntegrity or ErrFormat, and any truncation with ErrTruncated (the
// sequential stream ends the file). A flipped byte of an absent page is not part of the
// checkpoint and is not looked at. Digest (length and CRC32C of the sequential part, which
// includes every page digest) identifies a checkpoint's content.
//
// # Incremental checkpoints
//
// NewMappedWriterFrom starts from the previous checkpoint of the same file (its bitmaps and
// page digests): only the pages handed to RAMPage are written, the rest keep their place.
// Its writes go through a Journal (journal.go: the records after the old checkpoint's end,
// then a 64-byte trailer that commits them, then the same writes in place, then the journal
// is cut off), so the file is always the old checkpoint or the new one: a reader calls
// RecoverJournal first, which replays a committed journal and ignores an uncommitted one.
//
// Reading needs a seekable file: NewFileReader (NewReader refuses a mapped-ram stream
// with ErrFormat). The Reader checks that every header places its bitmap right after it
// and its pages at the next 1 MiB boundary after the bitmap, as QEMU computes them.
//
// # vmdesc
//
// After EOF: 0x06, be32 length, JSON in QEMU 7.2's QJSON style (", " and ": "
// separators; keys page_size, devices; per device name, instance_id, vmsd_name, version,
// fields). analyze-migration.py finds it as the first '{' after the last NUL byte of the
// file's last 10 MiB and checks that the byte five before it is 0x06; the Writer pads the
// JSON with trailing blanks if its length's bytes would contain '{'. QEMU 7.2 has no
// "configuration" member: the analyser then reads the configuration section as be32
// length and name, which is what is written.
//
// # Version policy
//
// The framing is QEMU's stream version 3 and RAM section version 4 and does not change.
// The integrity section has version 1: a new layout takes a new version, and the Reader
// refuses versions it does not know. Device state versions are the Snapshotters'
// (StateVersion): carried in the section header, checked by the device on load.
//
// # Limits
//
// Checked by the Reader before allocating (ErrFormat), refused by the Writer (ErrUsage):
// idstr and block names 1–255 bytes (QEMU's idstr[256]; the analyser reads the length as
// a signed byte, so keep names under 128 bytes for it); machine type 256 bytes; 1024 RAM
// blocks of at most 64 TiB each, sizes multiples of 4096; 4096 device sections; 16 MiB of
// state per device section (grown as bytes arrive, so a lying length costs nothing);
// 4 MiB of vmdesc.
//
// # Performance
//
// Writer.RAMPage appends to a 256 KiB buffer without allocating and hands the underlying
// writer 256 KiB chunks (a bufio.Writer passes them straight through); zero pages are
// found by comparing against a zero page with the platform's vector compare. Reader
// aliases page data into its own buffer (16 KiB, doubling up to 256 KiB). Both fold bytes into the CRC32C in large
// batches. BenchmarkWriterPages and BenchmarkReaderPages measure them.
package stream
