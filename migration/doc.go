// Package migration is tlcvm's migration engine: the threaded three-stage live checkpoint
// (kvm-tlc's algorithm, ../shared/DESIGN.md) behind QEMU 7.2's migrate, the incoming side
// (-incoming, migrate-incoming), capabilities, parameters, statistics and the MIGRATION /
// MIGRATION_PASS events. The wire format is migration/stream, the channels
// migration/transport; the QMP and HMP commands are thin layers over Engine (qmp/cmds,
// hmp). It never imports machine, qmp or hmp: Machine, RAMBlock and Section are the small
// interfaces it needs, adapted by the composition root.
//
// # A checkpoint
//
//	monitor (owner goroutine)            checkpoint thread (locked OS thread, pinned)      guest
//	migrate ─ checks (QEMU's texts) ─┐
//	          MIGRATION setup        │
//	          transport.Open         │
//	  {"return": {}} <───────────────┴──> setup: wait for the channel, header, StartDirtyLog,  runs
//	                                      written bitmap = pass 1, MIGRATION_PASS 1, active
//	                                      stage 1: every page ever written (never-written      runs
//	                                        pages are skipped unread; zero pages → ZERO)
//	                                      stage 2: SyncDirtyLog (MIGRATION_PASS n), stop if    runs
//	                                        dirty ≤ estimated bandwidth × downtime-limit
//	                                        (fit.go), else send and
//	                                        repeat (convergence rules below)
//	                                      stage 3: EnterFinishMigrate (STOP), last sync,       stopped
//	                                        device state:
//	                                        QEMU mode: write pages + devices, close, postmigrate
//	                                        x-tlc: guard the final pages, resume (RESUME),     runs
//	                                        copy those the guest has not touched yet,
//	                                        then write and close
//	                                      MIGRATION completed (or failed / cancelled)
//
// Downtime is measured from the stop to the resume (x-tlc) or to the closed stream (QEMU
// mode). x-tlc's final pages are copied on first touch: with the vCPUs parked each block
// is guarded (Guarder: every 1 MiB chunk holding a final page gets a copy function that
// runs before anything in the machine touches the chunk, once), the guest resumes at once,
// and the chunks are copied by whoever comes first, a vCPU about to change one or the
// checkpoint thread walking them all; the downtime is the last sync and the device state,
// not a copy of the final set (a 64 MiB hot set: 7-8 ms copying, under 1 ms guarded). A
// block that cannot be guarded (a restore by mapping still populating, a machine without
// the hook) is copied during the downtime, split between the CPUs the parked vCPUs leave
// free. No write is lost: the guest stores data and then sets the
// page's dirty bit atomically; the thread takes a bitmap word atomically and only then
// reads the pages, so a page written after it was read is dirty again for the next pass
// and stage 3 takes the last dirty set with the vCPUs parked.
//
// Convergence: stage 2 ends when the dirty set fits the downtime budget (QEMU's
// threshold_size = bandwidth × downtime-limit) at an estimated bandwidth with a margin
// (fit.go): 90 % of the lower of the previous pass's rate and a smoothed rate, never above
// max-bandwidth. QEMU takes the previous pass's rate alone, and so overshot the limit when
// the link slowed down at the stop or a short pass was measured fast (481 ms against 300).
// query-migrate's expected-downtime is unchanged.
// When it cannot — after 30 passes, or when the dirty set has not shrunk below 95 % of its
// smallest size for 3 passes, or before the stream would exceed twice the RAM the guest
// ever wrote — a guest that dirties faster than the channel drains is throttled
// (throttle.go's convergence throttle: auto-converge's steps, one per pass, up to
// max-cpu-throttle, shown as cpu-throttle-percentage) and stage 2 goes on while the
// throttle rises and for 3 passes at its maximum; then stage 3 takes what is left. A
// machine that cannot be throttled, and x-tlc, go to stage 3 at once. Such a guest
// therefore finishes in bounded time (at most 30 passes) and with a downtime within the
// limit when the throttle brings its dirtying under the link (QEMU 7.2 without
// auto-converge keeps iterating: it wrote 36 GB for a 512 MiB hot set).
//
// Rate: max-bandwidth (bytes/s; 0 or ≥ 2^50 unlimited) is enforced in 100 ms windows as
// QEMU's rate limiter does. Cancel (migrate_cancel) moves to cancelling, aborts the channel
// (an exec'd command is killed) and the thread ends in cancelled with the guest running
// (QEMU mode in stage 3: resumed). A failure — the command exits, the disk fills, the
// socket closes, the destination is unreachable — ends in failed with error-desc, the
// error on stderr as QEMU's error_report prints it, and the guest running; a later
// migrate works.
//
// CPU: the thread locks its OS thread and pins it to x-checkpoint-cpu, or by default to
// the highest CPU the process may use when it may use two or more; when the process has
// more CPUs than vCPUs, the vCPU threads are kept off that CPU meanwhile. Its thread id and
// CPU are reported per stage (query-migrate "x-tlc-stages", HMP). Where the pin is refused
// (sched_setaffinity → EPERM under -sandbox resourcecontrol=deny) the thread runs unpinned.
//
// # Switchover, return path, images (switchover.go, rp.go)
//
// With pause-before-switchover the stopped source waits in pre-switchover until
// migrate-continue (or a cancel), then goes on in device. In QEMU mode it then
// inactivates its images (Disks, adapted from the block graph by the composition root)
// before it takes the device state; any later failure or cancel activates them again and
// resumes the guest. With return-path (or postcopy-ram) the source sends OPEN_RETURN_PATH
// and PING 1 after the header and reads the destination's messages on a goroutine of its
// own; it completes only once the destination has sent SHUT 0 (it has loaded and applied
// everything), and fails without error-desc, as QEMU 7.2, when the destination sends SHUT 1
// or goes away instead. The destination opens its images inactive (-incoming) and
// activates them when it completes, unless late-block-activate is on and the guest does
// not start now (-S): then QMP cont does it; an activation that fails is reported and
// keeps the guest paused.
//
// # Postcopy (postcopy.go, postcopy_in.go)
//
// With postcopy-ram on both ends, migrate-start-postcopy makes the source stop its pass,
// stop the guest and send what the destination needs to run (the pages it must still
// get, then the device state in a package verified by its own integrity section); the
// destination runs at once and the source sends the remaining pages, those the
// destination's guest touches first on demand. The destination waits for a page through
// the machine's first-touch hook (Guarder: a guarded 1 MiB chunk is fetched whole before
// anything touches it; a vCPU waiting for it still parks when the VM stops). A broken link
// pauses both ends (postcopy-paused) until migrate-recover and migrate resume=true, and
// the recovery resends every page the destination lacks, so none is lost. The diagrams
// are in those files.
//
// # Device sections
//
// Every Section is written as a device section: idstr "cpu" with instance N for "cpu/N",
// else the section id with instance 0, version StateVersion's current, the state the JSON
// of SaveState. A "globalstate" section first carries the source's run state
// ({"runstate": "running"}), which decides the destination's state (QEMU's
// vmstate_globalstate): running (or paused under -S) for a running source, else the
// source's state (prelaunch for one never started).
//
// # Incoming
//
//	-incoming URI ──> StartIncoming: transport.Listen before the monitors serve
//	-incoming defer ──> SetDefer ──> migrate-incoming URI ──> StartIncoming (once)
//	  MIGRATION setup (always, as QEMU) ─> Accept ─> Ready (machine started, inmigrate)
//	  ─> active ─> Load: pages straight into guest RAM (zero pages into never-written
//	     pages are skipped), device sections held back ─> stream verified (integrity) ─>
//	     device state applied ─> IncomingDone(source state) ─> completed
//	  any error: "prog: <error>", "prog: load of migration failed: <strerror>", exit 1
//
// Nothing of the loaded state runs before the stream's integrity is verified.
//
// # Throughput (handoff.go, prefetch.go, readahead.go)
//
// A byte of a page is copied once in user space on each side, and the system calls overlap
// the work around them:
//
//	source:       checkpoint thread: page → stream buffer (CRC) ─ handoff ─> goroutine: rate
//	              limit, transport, write(2); two 1 MiB buffers swapped (handoffWriter)
//	destination:  goroutine: read(2) into 1 MiB buffers ─ handed to stream.Reader
//	              (prefetchReader) ─> loader: decode, CRC, copy into guest RAM
//	              goroutine: MADV_POPULATE_WRITE ahead of a run of pages, as far as the run
//	              is long, up to 4 MiB (readahead)
//	multifd:      the saver gathers a packet's pages behind room for its header in a
//	              reused buffer; the channel's goroutine writes header and pages in one
//	              write(2). The destination reads a packet whose pages are a run straight
//	              into guest RAM (populated first, one call), no copy in user space, and
//	              checks its CRC32C there; other packets are copied page by page.
//
// The last matters most here: a fresh page of guest RAM costs the destination a fault, an
// allocation and its zeroing, 2-5 µs each on this host (more than the copy), and populating
// a run of them in one call costs a half to a fifth of that; on a host whose fresh memory
// is slow to populate the destination cannot load faster than it does (BENCHMARKS.md,
// issue 12). The pages are sent in QEMU 7.2's format, one record per page; the socket
// buffers are the kernel's autotuned ones (SO_SNDBUF/SO_RCVBUF would turn autotuning off
// and cap them at wmem_max/rmem_max).
//
// # Internal snapshots (savevm.go)
//
// SaveVM and LoadVM are qemu_savevm_state and qemu_loadvm_state for savevm and loadvm:
// the same stream, written and read in one go while the guest is stopped, into and out
// of the VM state area of a qcow2 image (package blockdev). A save is a migration to the
// monitor, as QEMU's is (MIGRATION events, query-migrate completed); a migration in
// progress forbids both.
//
// # Dirty bitmaps (bitmaps.go)
//
// With the capability dirty-bitmaps, the block layer's dirty bitmaps (Options.Bitmaps, the
// engine's own interface, adapted by the composition root) travel in QEMU 7.2's
// "dirty-bitmap" section: headers at setup, bits at completion, named by
// block-bitmap-mapping's aliases when it is set; a restore creates them before the guest
// runs.
//
// # mapped-ram (QEMU 9.0)
//
// With the capability mapped-ram (listed after x-tlc), migrate accepts only file: URIs
// ("Migration requires seekable transport (e.g. file)", QEMU 9.0's text, before anything
// starts; migrate-incoming and -incoming likewise when the capability is on) and writes
// the file in QEMU 9.0's layout (stream.NewMappedWriter), through the same rate limit and
// cancellation as a stream. A file: restore always reads the file itself
// (stream.NewFileReader) and recognises either layout from its configuration section,
// whatever the destination's capability (QEMU 9.0 requires it on both sides).
//
// # Checkpoint files (filecp.go)
//
// How a mapped-ram checkpoint is written (query-migrate x-tlc-file, HMP info migrate):
//
//	x-tlc, and the file is the baseline ──> incremental, in place, through a journal
//	  (the baseline: the last x-tlc mapped checkpoint this engine wrote, or the file it
//	   restored by mapping; identified by device, inode, offset and stream.Digest, and
//	   valid while nothing else consumed the dirty log. The pages sent are the dirty log's
//	   since then (ResumeDirtyLog, no clearing); the journal is committed, applied and cut
//	   off: the file is the old checkpoint or the new one, never a mix, whenever the
//	   process dies (stream.Journal))
//	otherwise, offset 0 of a regular file ──> full, written aside (".NAME.tlcvm-PID-N" in
//	  the same directory) and renamed over NAME at the end: the old file stays whole until
//	  then, and a guest mapping the old inode is never touched. The writer holds an OFD
//	  lock on one byte of its aside file; every checkpoint to file:PATH first removes
//	  NAME's aside files whose pid is gone and whose lock is free (a writer killed -9)
//	otherwise (file:PATH,offset=N) ──> full, in place, the file cut to N first
//
// Restore by mapping: a file: restore of a mapped-ram file maps each RAM block's pages
// region privately over guest RAM (MappableRAM.MapFile): copy-on-write, so the guest's
// writes never reach the file. Only the sequential part (headers, bitmaps, page digests,
// device state) is read and verified before the guest runs; each page is verified against
// its CRC32C when its 1 MiB chunk is first touched by anything in the machine (the vCPUs,
// the monitor's memory commands, a checkpoint's reads): a corrupted page is detected
// before the guest can read it, and stops the guest in internal-error. The migration
// parameter x-restore-populate chooses what happens meanwhile: background (default: a
// thread populates and verifies every chunk the guest has not touched yet), none (only on
// first touch), before-run (every page read and verified before the guest runs, so a
// corrupt file fails the restore with QEMU's "load of migration failed").
//
// The file under a restored guest must not change under it. This engine keeps it open and
// read-locks one byte of it (an OFD lock at 0x7fff_ffff_ffff_0000, as QEMU locks images),
// and tlcvm's writers respect that lock: a full mapped-ram checkpoint to it is written
// aside (a new inode: the guest keeps the old one, even once the name is removed); an
// incremental one in place only when the only guest mapping it is this engine's own
// (whose pages in the dirty log are its private copies already); a streamed checkpoint or
// one at an offset, which would rewrite it in place, is refused ("'PATH' holds the memory
// of a running guest …"). Programs that ignore advisory locks (cp, dd, truncate) are not
// stopped: do not write such a file with them while a guest runs on it.
package migration
