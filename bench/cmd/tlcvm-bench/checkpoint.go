package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"tlcvm/bench/suite"
)

// CheckpointSection is the BENCHMARKS.md section "tlcvm-bench checkpoint" owns.
const CheckpointSection = "checkpoint"

// runCheckpoint is "tlcvm-bench checkpoint [flags]": the checkpoint/restore
// matrix beside QEMU 7.2 and the machine's limits, in one run.
func runCheckpoint(argv []string) int {
	fs := flag.NewFlagSet("tlcvm-bench checkpoint", flag.ContinueOnError)
	var (
		o                   suite.CkOptions
		mems, scen, sides   string
		jsonPath, docPath   string
		invoc               string
		limitMiB, limitReps int
		quiet               bool
		replay              string
		minFreeGiB          int
	)
	fs.StringVar(&o.TLCVM, "tlcvm", envOr("TLCVM_BIN", "bin/qemu-system-x86_64"), "tlcvm binary (env TLCVM_BIN)")
	fs.StringVar(&o.QEMU, "qemu", envOr("QEMU_BIN", "/usr/bin/qemu-system-x86_64"), "QEMU 7.2 binary (env QEMU_BIN)")
	fs.StringVar(&o.Kernel, "kernel", envOr("DIRTY_ELF", "/tmp/tlcvm-bench/guest/dirty.elf"), "QEMU's guest: the kit's dirty.elf (env DIRTY_ELF)")
	fs.StringVar(&mems, "mems", "1G,4G", "comma-separated guest RAM sizes")
	fs.StringVar(&scen, "scenarios", "idle,ws64,ws512", "comma-separated: idle (never started) or wsN (N MiB rewritten continuously)")
	fs.StringVar(&sides, "sides", "qemu,tlcvm,tlcvm-xtlc", "comma-separated subset of qemu,tlcvm,tlcvm-xtlc")
	fs.IntVar(&o.Reps, "reps", 3, "tries per side and scenario")
	fs.DurationVar(&o.Warmup, "warmup", 5*time.Second, "guest runs this long before migrate")
	fs.DurationVar(&o.QEMUCap, "qemu-cap", 60*time.Second, "cap of one QEMU checkpoint (then migrate_cancel: not converged) or restore")
	fs.DurationVar(&o.TLCVMCap, "tlcvm-cap", 60*time.Second, "cap of one tlcvm checkpoint or restore")
	fs.Int64Var(&o.MaxBandwidth, "max-bandwidth", 100<<30, "migrate-set-parameters max-bandwidth, bytes/s, both sides")
	fs.Int64Var(&o.MaxStream, "max-stream", 16<<30, "cancel a try (as capped) once its stream exceeds this many bytes")
	fs.Int64Var(&o.DowntimeLimit, "downtime-limit", 0, "migrate-set-parameters downtime-limit, ms, both sides (0 = the default, 300)")
	fs.StringVar(&o.ImageDir, "image-dir", "/tmp/tlcvm-bench/ckpt", "where streams are written (deleted after each try)")
	fs.IntVar(&minFreeGiB, "min-free", 20, "refuse to start with less free space (GiB) under -image-dir")
	fs.IntVar(&limitMiB, "limit-mib", 1024, "buffer/file size of the limit measurements (0 = skip)")
	fs.IntVar(&limitReps, "limit-reps", 3, "repetitions of each limit measurement")
	fs.StringVar(&jsonPath, "json", "", "append raw measurements here as JSON lines")
	fs.StringVar(&docPath, "doc", "", "rewrite the "+CheckpointSection+" section of this BENCHMARKS.md")
	fs.StringVar(&invoc, "invocation", os.Getenv("BENCH_INVOCATION"), "how the run was started, for the record")
	fs.BoolVar(&quiet, "q", false, "no progress on stderr")
	fs.StringVar(&replay, "from", "", "measure nothing: rebuild the table from this run's JSON lines (pass the run's flags too, for the text)")
	if err := fs.Parse(argv); err != nil {
		return 2
	}
	if replay != "" {
		return replayCheckpoint(replay, docPath, o)
	}
	var err error
	if o.Scenarios, err = suite.ParseScenarios(mems, scen); err != nil {
		fmt.Fprintf(os.Stderr, "tlcvm-bench checkpoint: %v\n", err)
		return 2
	}
	for _, s := range strings.Split(sides, ",") {
		switch s = strings.TrimSpace(s); s {
		case suite.CkQEMU, suite.CkTLCVM, suite.CkXTLC:
			o.Sides = append(o.Sides, s)
		default:
			fmt.Fprintf(os.Stderr, "tlcvm-bench checkpoint: -sides: unknown side %q\n", s)
			return 2
		}
	}
	for _, b := range []*string{&o.TLCVM, &o.QEMU, &o.Kernel} {
		if abs, err := filepath.Abs(*b); err == nil {
			*b = abs
		}
		if _, err := os.Stat(*b); err != nil {
			fmt.Fprintf(os.Stderr, "tlcvm-bench checkpoint: %v (bench/run-checkpoint.sh builds dirty.elf)\n", err)
			return 2
		}
	}
	if st := prepareDir("tlcvm-bench checkpoint", o.ImageDir, minFreeGiB); st != 0 {
		return st
	}
	if !quiet {
		o.Progress = os.Stderr
	}
	record, closeRecord, err := openRecorder(jsonPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tlcvm-bench checkpoint: %v\n", err)
		return 1
	}
	defer closeRecord()
	o.Record = record

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	meta := suite.Describe(ctx, suite.Options{TLCVM: suite.Side{Bin: o.TLCVM}, QEMU: suite.Side{Bin: o.QEMU},
		Only: map[string]bool{CheckpointSection: true}}, 0)
	meta.Invocation, meta.Command = invoc, commandLine()
	if err := o.Record(meta); err != nil {
		fmt.Fprintf(os.Stderr, "tlcvm-bench checkpoint: %v\n", err)
		return 1
	}
	start := time.Now()
	rows, lim, runErr := suite.RunCheckpoint(ctx, o, limitMiB, limitReps)
	meta.LoadAfter = suite.LoadAvg()
	end := map[string]any{"kind": "end", "loadavg_after": meta.LoadAfter, "rows": rows, "elapsed_s": time.Since(start).Seconds()}
	if runErr != nil {
		end["err"] = runErr.Error()
	}
	if err := o.Record(sanitize(end)); err != nil {
		fmt.Fprintf(os.Stderr, "tlcvm-bench checkpoint: %v\n", err)
	}
	table := suite.CkMarkdown(rows)
	fmt.Print(table)
	if runErr != nil {
		fmt.Fprintf(os.Stderr, "tlcvm-bench checkpoint: %v\n", runErr)
		return 1
	}
	if docPath != "" {
		if err := writeCheckpointDoc(docPath, meta, o, lim, table, jsonPath, time.Since(start)); err != nil {
			fmt.Fprintf(os.Stderr, "tlcvm-bench checkpoint: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "tlcvm-bench checkpoint: wrote section %q of %s\n", CheckpointSection, docPath)
	}
	return 0
}

// sanitize round-trips v through JSON with NaN/Inf numbers as null, since
// encoding/json refuses them.
func sanitize(v map[string]any) any {
	rows, _ := v["rows"].([]suite.CkRow)
	out := make([]map[string]any, 0, len(rows))
	for _, r := range rows {
		out = append(out, map[string]any{"metric": r.Metric, "tlcvm": num(r.TLCVM), "tlcvm_xtlc": num(r.XTLC),
			"qemu": num(r.QEMU), "limit": num(r.Limit), "ratio": num(r.Ratio()), "target": r.Target, "met": r.Met})
	}
	v["rows"] = out
	return v
}

func num(v float64) *float64 {
	if v != v || v > 1e300 || v < -1e300 {
		return nil
	}
	return &v
}

func writeCheckpointDoc(path string, m suite.Meta, o suite.CkOptions, lim suite.Limits, table, jsonPath string, took time.Duration) error {
	var b strings.Builder
	fmt.Fprintf(&b, "- QEMU: `%s` — %s, guest `%s`\n", m.QEMUBin, m.QEMUVersion, o.Kernel)
	fmt.Fprintf(&b, "- %d tries per side and scenario, guest warm-up %v, max-bandwidth %d B/s on both sides, "+
		"cap per checkpoint or restore: QEMU %v, tlcvm %v, and %g GiB of stream (a capped try is cancelled "+
		"and counts as not converged)\n",
		o.Reps, o.Warmup, o.MaxBandwidth, o.QEMUCap, o.TLCVMCap, float64(o.MaxStream)/(1<<30))
	if o.DowntimeLimit > 0 {
		fmt.Fprintf(&b, "- downtime-limit %d ms on both sides\n", o.DowntimeLimit)
	} else {
		b.WriteString("- downtime-limit left at the default (300 ms) on both sides\n")
	}
	if lim.MiB > 0 {
		fmt.Fprintf(&b, "- machine limits, same run (%d MiB, median of %d): memory copy %.1f GB/s, "+
			"pipe into a file (`cat > FILE`, page cache) %.0f MB/s, file read back through a pipe (`cat FILE`) %.0f MB/s%s\n",
			lim.MiB, lim.Reps, lim.CopyGBs, lim.PipeFileMB, lim.ReadBackMB, map[bool]string{true: " (error: " + lim.Err + ")", false: ""}[lim.Err != ""])
	}
	return writeSection(path, CheckpointSection, m, b.String(), table, jsonPath, took)
}

// replayCheckpoint is -from: the table (and with -doc the section) rebuilt
// from a run's JSON lines.
func replayCheckpoint(path, docPath string, o suite.CkOptions) int {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tlcvm-bench checkpoint: %v\n", err)
		return 1
	}
	defer f.Close()
	rp, rows, err := suite.ReplayCheckpoint(f)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tlcvm-bench checkpoint: %v\n", err)
		return 1
	}
	table := suite.CkMarkdown(rows)
	fmt.Print(table)
	if docPath == "" {
		return 0
	}
	if err := writeCheckpointDoc(docPath, rp.Meta, o, rp.Limits, table, path, rp.Elapsed); err != nil {
		fmt.Fprintf(os.Stderr, "tlcvm-bench checkpoint: %v\n", err)
		return 1
	}
	return 0
}

// prepareDir creates dir, where checkpoints of GBs go, and checks that it has at least
// minFreeGiB free. It reports a failure on stderr as cmd and returns the exit status
// (0: ready).
func prepareDir(cmd, dir string, minFreeGiB int) int {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", cmd, err)
		return 1
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err == nil {
		if free := sfs.Bavail * uint64(sfs.Bsize) >> 30; free < uint64(minFreeGiB) {
			fmt.Fprintf(os.Stderr, "%s: only %d GiB free under %s (-min-free %d)\n", cmd, free, dir, minFreeGiB)
			return 1
		}
	}
	return 0
}
