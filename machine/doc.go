// Package machine is the virtual machine of tlcvm: QEMU's run-state machine, guest RAM,
// vCPU threads, the deterministic guest workload, and the devices it talks to (a 16550
// serial port, fw_cfg, the ACPI power button, the guest clock, and through Config.Media the
// trays of the CD-ROMs its OS may lock), with versioned save/load state for checkpoints. It
// never imports qmp, hmp, migration or compat: those drive it through its exported methods.
//
// # Run state
//
// RunState is QEMU 7.2's enum; the legal edges are softmmu/runstate.c's
// runstate_transitions_def, copied in runstate.go. Every change goes through one
// function, Machine.transition, which checks the edge (an illegal one panics, as QEMU
// aborts), logs it and emits STOP (leaving running) or RESUME (entering running). The
// operations follow QEMU 7.2 as checked against the real binary:
//
//	op          running            paused/prelaunch/postmigrate   inmigrate          shutdown/internal-error
//	Stop        STOP → paused      nothing                        autostart=false    nothing
//	Cont        nothing            RESUME → running               autostart=true     "Resetting the Virtual Machine is required"
//	Reset       RESET, runs on     RESET → prelaunch              RESET, stays       RESET → prelaunch
//	Powerdown   POWERDOWN; guest powers off: SHUTDOWN{guest:true,reason:guest-shutdown},
//	            then STOP → shutdown (-no-shutdown) or exit; a paused guest reacts on resume
//	Quit        SHUTDOWN{guest:false,reason:host-qmp-quit}, exit (-no-shutdown ignored)
//	HostSignal  SHUTDOWN{guest:false,reason:host-signal}, exit
//
// Cont in finish-migrate fails with "Migration is not finalized yet". With -no-reboot a
// reset request becomes SHUTDOWN with the reset's reason (then exit, or STOP → shutdown
// with -no-shutdown if running). On exit a running VM goes to shutdown without STOP.
// Migration helpers: EnterFinishMigrate (running → finish-migrate, STOP, vCPUs parked),
// LeaveFinishMigrate (→ running with RESUME for TLC, or → postmigrate), IncomingDone
// (inmigrate → running/paused/the source's state), PauseVCPUs (stop the world without a
// state change).
//
// # Guest RAM
//
// One mmap per RAM block (MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE), "pc.ram" for pc and
// q35, laid out as QEMU does: below 4 GiB up to 3.5 GiB (pc; 3 GiB once RAM reaches
// 3.5 GiB) or 2.75 GiB (q35; 2 GiB once RAM reaches 2.75 GiB), the rest from 4 GiB.
// Nothing touches a page the guest did not write. Each block keeps two bitmaps, one bit
// per 4 KiB page:
//
//	written  [w0 w1 w2 …]  bit p of word p/64: page p ever written (never cleared)
//	dirty    [w0 w1 w2 …]  bit p: page p written since the last SyncDirtyLog
//
// The guest stores data first, then sets the bits with an atomic OR; SyncDirtyLog swaps
// each word to zero atomically. Hence a reader that syncs and then copies a page sees
// the write or keeps the bit for next time: no write is lost. The log's other clients, a
// dirty-rate measurement and dirty limits, sync it with SyncDirtyRate, which counts the
// pages and keeps them for SyncDirtyLog; each vCPU counts the pages it takes from clean to
// dirty (its dirty ring), and a vCPU under a dirty limit sleeps per ring's worth of pages
// (dirtyrate.go).
//
// # Restore by mapping
//
// RAMBlock.MapFile replaces the block's memory by a private (copy-on-write) mapping of a
// checkpoint file's pages region (QEMU 9.0 mapped-ram: page p at off+p*4096), so the
// guest runs before its memory is read. The file's integrity rule is enforced per 1 MiB
// chunk (ChunkPages): a chunk holding present pages starts lazy and is checked (the
// caller's MapCheck, e.g. CRC32C per page) before anything in the machine reads or writes
// any page of it, by whoever gets there first:
//
//	          CAS                 check ok
//	lazy ─────────────> checking ──────────> clean   (present pages: lazy or eager count)
//	                        │ check fails
//	                        └──────────────> bad     (every access: the check's error)
//
// Other goroutines wanting a chunk in checking wait for it (one mutex + cond per block).
// Hooks: the vCPU program ensures the system pages below 2 MiB once per batch and each
// working-set / fill page before touching it (the rewrite loop remembers the last clean
// chunk); monitor reads (ReadPhys, ReadVirt's page walk, pmemsave, memsave) ensure each
// written page they copy. With nothing lazy the cost is at most one atomic load per
// page (lazyLeft; one per batch in the rewrite loop). A vCPU whose page fails parks without progress and the VM stops:
// running → internal-error (STOP), one line "tlcvm: guest RAM check failed: <err>" on
// Config.Stderr; a monitor read returns the check's text wrapped in ErrRAMCheck; the
// process keeps serving. Populate (StartPopulate: a background goroutine) checks the
// remaining chunks in order.
//
// # vCPUs and the workload
//
// One goroutine per vCPU, locked to its own OS thread, never the main thread (gettid
// recorded for query-cpus-fast; named "CPU N/TCG" with DebugThreads, as QEMU names them
// with debug-threads=on). Pausing is synchronous: Stop returns when every vCPU is parked.
// A parked or halted vCPU sleeps until the one event that concerns it (the rules are
// written beside vcpuCtl in vcpu.go), so a stopped VM costs no CPU. Each vCPU thread
// runs a backend (backend.go: run until an exit, state get/set, kick); the workload
// program below is the synthetic backend, synthCPU. vCPUs come and go with CPU hotplug
// (cpuhotplug.go: PlugCPU starts a thread, an ejected vCPU's thread is joined); the present
// ones are a copy-on-write list in index order. inject-nmi reaches every vCPU (nmi.go).
// The guest program's entire state is the vCPU's registers and guest RAM:
//
//	guest-physical
//	0x000500 + 16*i   u64 pass counter of vCPU i (vCPU 0's is the bench guest's 0x500)
//	0x000508 + 16*i   u64 pages written by vCPU i
//	0x004000          u64 APs released; u64 working-set bytes; u64 rate; u64 fill bytes;
//	                  u64 dimm= bytes (^0: all)
//	0x004100          DIMM work (dimm.go): saved stage (RIP, base, pages, index), queue
//	                  length, then the queue of (guest-physical address, pages)
//	0x005000          bitmap of the CPU indexes present at boot (1024 bits)
//	0x006000 + 64*i   disk driver of vCPU i: u64 pass, block, disk index, bytes written,
//	                  bytes read, blocks that failed verification
//	0x010000          PML4, PDPT, page directories: identity map, 2 MiB pages
//	0x200000 …        working set, split evenly between the vCPUs (vCPU i: chunk i)
//	0x200000+ws …     fill= pages (RAM-offset order: past the low-memory limit they
//	                  continue at 4 GiB), split evenly, written once
//
//	RAX pass   RBX page index   RCX pages in chunk   RDX hash accumulator
//	RSI chunk base   RDI counter address   R8 pages written   R9/R10 pacing (pages, epoch)
//	R11 next status line   R12 ws   R13 rate   R14 logical vCPU   R15 vCPU count   RIP stage
//
// After reset the CPUs are in real mode at f000:fff0 (APs halted), as QEMU shows them.
// vCPU 0 boots: reads fw_cfg "opt/tlcvm/workload" (syntax on Workload; default
// "ws=16M,rate=4M"), builds the page tables, writes the bitmap of present CPUs at
// 0x005000, prints its banner on the serial port, releases the APs; all enter 64-bit long
// mode, each with its rank in the bitmap as its logical number (R14) and the bitmap's
// count as R15. A CPU hot-added after the boot is not in the bitmap and stays halted.
// Each fills its chunk (whole pages), then its share of the fill= pages (RIP 0x100060;
// RSI, RBX, RCX then describe that share, the working-set chunk is recomputed from R12,
// R14, R15 afterwards), then
// loops: per page, the u64 at offset (pass%512)*8 becomes mix(old ^ previous pass's word
// ^ hash ^ pass) and the hash absorbs it, so corrupted memory changes all later values. The rate (bytes of
// pages dirtied per second) is paced by the guest clock, which stops while paused.
// vCPU 0 prints a status line every 5 s of guest time. The ACPI power button makes
// vCPU 0 print "powering off" and request a guest shutdown. A hot-unplug request
// (RequestEject: a PCI slot's, a DIMM's; UnplugCPU: a vCPU's) is latched in the ACPI GPE block; vCPU 0's SCI
// handler ejects it, prints "ACPI eject <what>", and the machine calls the requester back
// (hotplug.go). A DIMM (PlugDIMM: its RAM block mapped in the device-memory region) is
// onlined by vCPU 0's handler, which with dimm= writes its pages at RIP 0x1000a0 before
// resuming its stage (dimm.go).
//
// # Disks
//
// With disk= items (disk.go) each vCPU also drives the named disks: it builds a write of
// deterministic content (a function of the disk offset and the pass) and exits with
// exitDisk; the vCPU thread carries the request through a Disk (the machine's own small
// interface; cmd/ adapts block backends to it, machine never imports blockdev) and blocks
// until it completes, throttling included, or until the run period ends (pause): then the
// request was not made and is made again after the resume. The next Run takes the
// completion and moves the driver's cursor, which is part of the vCPU state (CPUState.Disk,
// section cpu/N version 2), so checkpoints restore it exactly. With disk-verify each block
// is read back and checked before it is rewritten.
//
// # Devices for the monitor's diagnostics
//
// GuestPhysBlocks (dump.go) is the memory map dump-guest-memory writes, as QEMU 7.2
// shows it before and after the firmware; CPUStates the vCPUs' registers; StopForDump
// the stop to save-vm and back. The i8042 PS/2 controller (i8042.go) takes keys and
// mouse events from the input router, raises IRQ 1 and 12 for vCPU 0, and the guest's
// handler logs each on the serial console (docs/workload.md).
//
// qtest.go is the machine as package qtest drives it: ReadMemory/WriteMemory (a bus
// master's view: writes are marked dirty), PortIn/PortOut (COM1, the i8042), IRQ
// interception, and under Config.QTest (the qtest accelerator) vCPU threads that execute
// nothing and a guest clock moved only by WarpClock.
//
// # Device state
//
// Snapshotters lists the sections ("cpu/N", "clock", "acpi", "fw_cfg", "serial0"); each
// saves a plain json-tagged struct with a version (see Snapshotter for the policy) and
// loads into the already-built device.
package machine
