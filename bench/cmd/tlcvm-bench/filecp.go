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

	"tlcvm/bench/suite"
)

// FileCPSection is the BENCHMARKS.md section "tlcvm-bench filecp" owns.
const FileCPSection = "filecp"

// runFileCP is "tlcvm-bench filecp [flags]": checkpoints to file: with mapped-ram, the
// incremental second checkpoint, restores by mapping and the guest's speed after them,
// beside dd and QEMU 7.2, in one run.
func runFileCP(argv []string) int {
	fs := flag.NewFlagSet("tlcvm-bench filecp", flag.ContinueOnError)
	var (
		o                 suite.FcOptions
		mem, fill, ws     string
		bigMem, bigFill   string
		rateWS, rateMem   string
		jsonPath, docPath string
		invoc             string
		quiet             bool
		minFreeGiB        int
	)
	fs.StringVar(&o.TLCVM, "tlcvm", envOr("TLCVM_BIN", "bin/qemu-system-x86_64"), "tlcvm binary (env TLCVM_BIN)")
	fs.StringVar(&o.QEMU, "qemu", envOr("QEMU_BIN", "/usr/bin/qemu-system-x86_64"), "QEMU 7.2 binary (env QEMU_BIN)")
	fs.StringVar(&o.Kernel, "kernel", envOr("DIRTY_ELF", "/tmp/tlcvm-bench/guest/dirty.elf"),
		"QEMU's guest, the kit's dirty.elf (env DIRTY_ELF); missing: the QEMU rows are skipped")
	fs.StringVar(&o.Dir, "image-dir", "/tmp/tlcvm-bench/ckpt", "where the files go (each deleted after use)")
	fs.IntVar(&o.DDMiB, "dd-mib", 4096, "dd's count (MiB)")
	fs.IntVar(&o.RestoreReps, "restore-reps", 3, "tries of each tlcvm restore by mapping (median kept; all recorded)")
	fs.StringVar(&mem, "m", "4G", "RAM of the checkpointed guest")
	fs.StringVar(&fill, "fill", "4000M", "its fill= (pages written once)")
	fs.StringVar(&ws, "ws", "64M", "its working set (rate=max), dirtied between the first and second checkpoint")
	fs.StringVar(&bigMem, "big-m", "16G", "RAM of the big restore's guest")
	fs.StringVar(&bigFill, "big-fill", "6G", "its fill=")
	fs.StringVar(&rateWS, "rate-ws", "1G", "working set of the page-write-rate guest (-smp 1, rate=max)")
	fs.StringVar(&rateMem, "rate-m", "2G", "its RAM")
	fs.DurationVar(&o.Dirty, "dirty", time.Second, "guest runs this long between the first and second checkpoint")
	fs.DurationVar(&o.Window, "window", time.Second, "page-write-rate window")
	fs.DurationVar(&o.Cap, "cap", 120*time.Second, "limit of one step (fill, checkpoint, restore)")
	fs.IntVar(&minFreeGiB, "min-free", 30, "refuse to start with less free space (GiB) under -image-dir")
	fs.StringVar(&jsonPath, "json", "", "append raw measurements here as JSON lines")
	fs.StringVar(&docPath, "doc", "", "rewrite the "+FileCPSection+" section of this BENCHMARKS.md")
	fs.StringVar(&invoc, "invocation", os.Getenv("BENCH_INVOCATION"), "how the run was started, for the record")
	fs.BoolVar(&quiet, "q", false, "no progress on stderr")
	if err := fs.Parse(argv); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "tlcvm-bench filecp: unexpected arguments %q\n", fs.Args())
		return 2
	}
	for _, s := range []struct {
		p *int
		v string
	}{{&o.MemMiB, mem}, {&o.FillMiB, fill}, {&o.WSMiB, ws}, {&o.BigMemMiB, bigMem}, {&o.BigFillMiB, bigFill},
		{&o.RateWSMiB, rateWS}, {&o.RateMemMiB, rateMem}} {
		n, err := suite.ParseMiB(s.v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "tlcvm-bench filecp: %v\n", err)
			return 2
		}
		*s.p = n
	}
	for _, b := range []*string{&o.TLCVM, &o.QEMU, &o.Kernel, &o.Dir} {
		if abs, err := filepath.Abs(*b); err == nil {
			*b = abs
		}
	}
	if _, err := os.Stat(o.TLCVM); err != nil {
		fmt.Fprintf(os.Stderr, "tlcvm-bench filecp: %v (make build, or set TLCVM_BIN)\n", err)
		return 2
	}
	if st := prepareDir("tlcvm-bench filecp", o.Dir, minFreeGiB); st != 0 {
		return st
	}
	if !quiet {
		o.Progress = os.Stderr
	}
	record, closeRecord, err := openRecorder(jsonPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tlcvm-bench filecp: %v\n", err)
		return 1
	}
	defer closeRecord()
	o.Record = record

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	meta := suite.Describe(ctx, suite.Options{TLCVM: suite.Side{Bin: o.TLCVM}, QEMU: suite.Side{Bin: o.QEMU},
		Only: map[string]bool{FileCPSection: true}}, 0)
	meta.Invocation, meta.Command = invoc, commandLine()
	if err := o.Record(meta); err != nil {
		fmt.Fprintf(os.Stderr, "tlcvm-bench filecp: %v\n", err)
		return 1
	}
	start := time.Now()
	res, runErr := suite.RunFileCP(ctx, o)
	took := time.Since(start)
	meta.LoadAfter = suite.LoadAvg()
	var rows []suite.FcRow
	if res != nil {
		rows = suite.FcRows(res)
		o = res.Opts // with the defaults filled in
	}
	end := map[string]any{"kind": "end", "loadavg_after": meta.LoadAfter, "elapsed_s": took.Seconds(), "rows": fcRecords(rows)}
	if res != nil && len(res.Errs) > 0 {
		end["errs"] = res.Errs
	}
	if runErr != nil {
		end["err"] = runErr.Error()
	}
	if err := o.Record(end); err != nil {
		fmt.Fprintf(os.Stderr, "tlcvm-bench filecp: %v\n", err)
	}
	table := suite.FcMarkdown(rows)
	fmt.Print(table)
	if runErr != nil {
		fmt.Fprintf(os.Stderr, "tlcvm-bench filecp: %v\n", runErr)
		return 1
	}
	if docPath != "" {
		if err := writeFileCPDoc(docPath, meta, o, res, table, jsonPath, took); err != nil {
			fmt.Fprintf(os.Stderr, "tlcvm-bench filecp: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "tlcvm-bench filecp: wrote section %q of %s\n", FileCPSection, docPath)
	}
	if len(res.Errs) > 0 {
		return 1
	}
	return 0
}

// fcRecords makes rows JSON-safe (NaN as null).
func fcRecords(rows []suite.FcRow) []map[string]any {
	out := make([]map[string]any, 0, len(rows))
	for _, r := range rows {
		out = append(out, map[string]any{"metric": r.Metric, "value": num(r.Value), "ref": num(r.Ref),
			"ref_text": r.RefText, "cmp": r.Cmp, "compared": num(r.Compared()), "target": r.Target, "met": r.Met, "err": r.Err})
	}
	return out
}

func writeFileCPDoc(path string, m suite.Meta, o suite.FcOptions, res *suite.FcResult, table, jsonPath string, took time.Duration) error {
	var b strings.Builder
	fmt.Fprintf(&b, "- QEMU: `%s` — %s, guest `%s`\n", m.QEMUBin, m.QEMUVersion, o.Kernel)
	fmt.Fprintf(&b, "- files under `%s`, each deleted after use; nothing is fsynced (dd, tlcvm and QEMU all write "+
		"into the page cache; the kernel writes back behind them, throttling writers once dirty pages pass "+
		"vm.dirty_ratio, so before each big write and each restore the harness runs syncfs, outside the timed "+
		"intervals, and every write starts with an empty dirty budget); restores read files still in the page cache\n", o.Dir)
	fmt.Fprintf(&b, "- every tlcvm guest: `-machine pc -smp 1`, workload `ws=%dM,,rate=max,,fill=…`; max-bandwidth "+
		"100 GiB/s on every source (QEMU's default is 128 MiB/s)\n", o.WSMiB)
	if res != nil && len(res.Errs) > 0 {
		b.WriteString("- **errors in this run:**\n")
		for _, e := range res.Errs {
			fmt.Fprintf(&b, "  - %s\n", strings.ReplaceAll(e, "\n", " "))
		}
	}
	return writeSection(path, FileCPSection, m, b.String(), table, jsonPath, took)
}
