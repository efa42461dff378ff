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
//	                                        dirty ≤ bandwidth × downtime-limit, else send and
//	                                        repeat (convergence rules below)
//	                                      stage 3: EnterFinishMigrate (STOP), last sync,       stopped
//	                                        device state:
//	                                        QEMU mode: write pages + devices, close, postmigrate
//	                                        x-tlc: copy pages to memory, resume (RESUME),      runs
//	                                        then write and close
//	                                      MIGRATION completed (or failed / cancelled)
//
// Downtime is measured from the stop to the resume (x-tlc: the in-memory copy) or to the
// closed stream (QEMU mode). No write is lost: the guest stores data and then sets the
// page's dirty bit atomically; the thread takes a bitmap word atomically and only then
// reads the pages, so a page written after it was read is dirty again for the next pass
// and stage 3 takes the last dirty set with the vCPUs parked.
//
// Convergence: stage 2 ends when the dirty set fits the downtime budget at the bandwidth
// measured over the previous pass, or after 30 passes, or when the dirty set has not shrunk
// below 95 % of its smallest size for 3 passes, or before the stream would exceed twice
// the RAM the guest ever wrote. A guest that dirties faster than the channel drains
// therefore finishes in bounded time with a stream of at most about 2× its written RAM
// (QEMU 7.2 keeps iterating and wrote 36 GB for a 512 MiB hot set).
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
// CPU are reported per stage (query-migrate "x-tlc-stages", HMP).
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
// # mapped-ram (QEMU 9.0)
//
// With the capability mapped-ram (listed after x-tlc), migrate accepts only file: URIs
// ("Migration requires seekable transport (e.g. file)", QEMU 9.0's text, before anything
// starts; migrate-incoming and -incoming likewise when the capability is on) and writes
// the file in QEMU 9.0's layout (stream.NewMappedWriter): the file transport.Open created
// is reopened so that pages can be written at their offsets, through the same rate limit
// and cancellation as a stream. A file: restore always reads the file itself
// (stream.NewFileReader) and recognises either layout from its configuration section,
// whatever the destination's capability (QEMU 9.0 requires it on both sides): the
// sequential part is verified first, then block by block, chunk by chunk, the pages are
// verified and copied into guest RAM; pages absent from the file are zero. Mapping the
// file instead of reading it, and incremental checkpoints in place, come later.
package migration
