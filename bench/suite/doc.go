// Package suite runs the foundation benchmarks of tlcvm beside QEMU 7.2 in
// one run and turns them into report rows:
//
//   - start-up: fork/exec → QMP greeting received, for
//     "-machine none -nodefaults -display none" and
//     "-machine pc -m 4G -nodefaults -display none"; N runs per side,
//     interleaved (tlcvm, QEMU, QEMU, tlcvm, …) so drifting load on a
//     shared machine hits both alike; median and p90.
//   - QMP round trips per second: one connection, sequential
//     {"execute":"query-status"} → {"return": …}, for a fixed time or count,
//     after a short warm-up; median over reps.
//   - idle memory: "-machine pc -m 4G -smp 4", wait until query-status says
//     running, let it idle (1 s), then VmRSS from /proc/PID/status and Pss
//     from /proc/PID/smaps_rollup; median over reps.
//
// Every raw measurement is handed to Options.Record (the harness writes it
// as a JSON line) as it happens, so a run that is interrupted still leaves
// its numbers. A side that fails is reported with its error and the
// benchmark carries on with the other side.
//
// RunCheckpoint (checkpoint*.go, "tlcvm-bench checkpoint", issue 3) measures
// checkpoint and restore through exec:cat beside QEMU 7.2 and the machine's
// limits (MeasureLimits), one try at a time:
//
//	start -S ─ cont, warm-up ─ max-bandwidth [x-tlc] ─ migrate "exec:cat > F"
//	  ─ query-migrate every 20 ms (cap → migrate_cancel) ─ xp 0x500 ─ writer exits ─ quit
//	start -S -incoming "exec:cat F" ─ query-status until not inmigrate (restore time)
//	  ─ xp 0x500 ─ cont 300 ms ─ stop ─ xp 0x500 (counter moved on) ─ quit ─ rm F
//
// RunQMP (qmpio.go, qmpmem.go, "tlcvm-bench qmp", issue 10) measures QMP round trips and
// start-up to the greeting beside bench/cmd/qmp-floor and QEMU 7.2, and memory on huge QMP
// lines beside QEMU 7.2; RunDensity (density.go, "tlcvm-bench density") hundreds of VMs.
//
// RunFileCP (filecp*.go, "tlcvm-bench filecp", issue 6) measures checkpoints to file: with
// mapped-ram, the incremental second x-tlc checkpoint into the same file, restores by
// mapping (exec → query-status running) and the guest's page-write rate after them,
// beside dd and QEMU 7.2's exec:cat; the sequence is drawn at the top of filecp.go.
//
// RunDump (dump.go, "tlcvm-bench dump", issue 11) times dump-guest-memory (ELF, kdump-zlib) of
// a 4 GiB guest that wrote 64 MiB beside QEMU 7.2 and measures the files' apparent size and
// blocks; RunDirtyRate (dirtyrate.go, "tlcvm-bench dirtyrate") compares calc-dirty-rate in each
// mode with the workload's configured rate and with the rate its own counters show.
package suite
