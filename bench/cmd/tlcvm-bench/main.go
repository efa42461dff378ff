// Command tlcvm-bench measures tlcvm beside QEMU 7.2 in one run and prints
// a Markdown table of ratios (see bench/README.md and package suite).
//
//	tlcvm-bench [-tlcvm BIN] [-qemu BIN] [-n 20] [-json out.jsonl] [-doc BENCHMARKS.md]
//
// The table goes to stdout, progress to stderr, every raw measurement to
// -json as JSON lines, and with -doc the table, the command and the date
// replace the "foundation" section of BENCHMARKS.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"tlcvm/bench/report"
	"tlcvm/bench/suite"
)

// Section is the BENCHMARKS.md section this command owns.
const Section = "foundation"

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "checkpoint" {
		os.Exit(runCheckpoint(os.Args[2:])) // checkpoint.go
	}
	if len(os.Args) > 1 && os.Args[1] == "filecp" {
		os.Exit(runFileCP(os.Args[2:])) // filecp.go
	}
	if len(os.Args) > 1 && os.Args[1] == "qmp" {
		os.Exit(runQMP(os.Args[2:])) // qmp.go
	}
	if len(os.Args) > 1 && os.Args[1] == "blockjobs" {
		os.Exit(runBlockJobs(os.Args[2:])) // blockjobs.go
	}
	if len(os.Args) > 1 && os.Args[1] == "density" {
		os.Exit(runDensity(os.Args[2:])) // density.go
	}
	if len(os.Args) > 1 && os.Args[1] == "dump" {
		os.Exit(runDump(os.Args[2:])) // dump.go
	}
	if len(os.Args) > 1 && os.Args[1] == "migrate" {
		os.Exit(runMigrate(os.Args[2:])) // migrate.go
	}
	if len(os.Args) > 1 && os.Args[1] == "dirtyrate" {
		os.Exit(runDirtyRate(os.Args[2:])) // dump.go
	}
	os.Exit(run())
}

func run() int {
	var (
		o        suite.Options
		memExtra string
		only     string
		jsonPath string
		docPath  string
		invoc    string
		quiet    bool
	)
	flag.StringVar(&o.TLCVM.Bin, "tlcvm", envOr("TLCVM_BIN", "bin/qemu-system-x86_64"), "tlcvm binary (env TLCVM_BIN)")
	flag.StringVar(&o.QEMU.Bin, "qemu", envOr("QEMU_BIN", "/usr/bin/qemu-system-x86_64"), "QEMU 7.2 binary (env QEMU_BIN)")
	flag.IntVar(&o.N, "n", 20, "start-up runs per side and machine")
	flag.IntVar(&o.Warmup, "warmup", 1, "discarded start-up runs per side before the N")
	flag.DurationVar(&o.RTDuration, "rt-duration", 2*time.Second, "length of one QMP round-trip measurement")
	flag.IntVar(&o.RTCount, "rt-count", 0, "round trips per measurement (overrides -rt-duration when > 0)")
	flag.IntVar(&o.RTReps, "rt-reps", 3, "round-trip measurements per side")
	flag.IntVar(&o.MemReps, "mem-reps", 3, "idle-memory measurements per side")
	flag.StringVar(&o.MemSize, "m", "4G", "guest RAM (-m) for the pc start-up and the memory benchmark")
	flag.IntVar(&o.SMP, "smp", 4, "vCPUs (-smp) for the memory benchmark")
	flag.DurationVar(&o.Idle, "idle", time.Second, "time a running VM idles before its memory is read")
	flag.DurationVar(&o.Timeout, "timeout", 60*time.Second, "limit per step (greeting, running, quit)")
	flag.StringVar(&memExtra, "tlcvm-mem-args", "-fw_cfg name=opt/tlcvm/workload,string=idle",
		"extra arguments (space-separated) for tlcvm in the memory benchmark")
	flag.StringVar(&only, "only", "", "comma-separated subset of: startup,rt,memory")
	flag.StringVar(&jsonPath, "json", "", "append raw measurements here as JSON lines")
	flag.StringVar(&docPath, "doc", "", "rewrite the "+Section+" section of this BENCHMARKS.md")
	flag.StringVar(&invoc, "invocation", os.Getenv("BENCH_INVOCATION"), "how the run was started, for the record")
	flag.BoolVar(&quiet, "q", false, "no progress on stderr")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "tlcvm-bench: unexpected arguments %q\n", flag.Args())
		return 2
	}
	o.TLCVM.MemExtra = strings.Fields(memExtra)
	if only != "" {
		o.Only = map[string]bool{}
		for _, b := range strings.Split(only, ",") {
			switch b = strings.TrimSpace(b); b {
			case suite.BenchStartup, suite.BenchRT, suite.BenchMemory:
				o.Only[b] = true
			default:
				fmt.Fprintf(os.Stderr, "tlcvm-bench: -only: unknown benchmark %q\n", b)
				return 2
			}
		}
	}
	for _, b := range []*string{&o.TLCVM.Bin, &o.QEMU.Bin} {
		abs, err := filepath.Abs(*b)
		if err == nil {
			*b = abs
		}
		if _, err := os.Stat(*b); err != nil {
			fmt.Fprintf(os.Stderr, "tlcvm-bench: %v (build tlcvm with `make build`, or set TLCVM_BIN)\n", err)
			return 2
		}
	}
	if !quiet {
		o.Progress = os.Stderr
	}

	record, closeRecord, err := openRecorder(jsonPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tlcvm-bench: %v\n", err)
		return 1
	}
	defer closeRecord()
	o.Record = record

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	meta := suite.Describe(ctx, o, 20)
	meta.Invocation = invoc
	meta.Command = commandLine()
	if err := o.Record(meta); err != nil {
		fmt.Fprintf(os.Stderr, "tlcvm-bench: %v\n", err)
		return 1
	}
	if meta.StandIn {
		fmt.Fprintf(os.Stderr, "tlcvm-bench: warning: %s does not name tlcvm in -version (%q): "+
			"the tlcvm column measures a stand-in\n", o.TLCVM.Bin, meta.TLCVMVersion)
	}
	if f := strings.Fields(meta.LoadBefore); len(f) > 0 {
		if l, err := strconv.ParseFloat(f[0], 64); err == nil && l > float64(meta.CPUs)/2 {
			fmt.Fprintf(os.Stderr, "tlcvm-bench: note: load average %s on %d CPUs: absolute figures will be noisy; "+
				"the ratios are measured interleaved\n", meta.LoadBefore, meta.CPUs)
		}
	}
	rows, runErr := suite.Run(ctx, o)
	meta.LoadAfter = suite.LoadAvg()
	end := struct {
		Kind      string      `json:"kind"`
		LoadAfter string      `json:"loadavg_after"`
		Rows      []rowRecord `json:"rows"`
		Err       string      `json:"err,omitempty"`
	}{Kind: "end", LoadAfter: meta.LoadAfter}
	for _, r := range rows {
		end.Rows = append(end.Rows, toRecord(r))
	}
	if runErr != nil {
		end.Err = runErr.Error()
	}
	if err := o.Record(end); err != nil {
		fmt.Fprintf(os.Stderr, "tlcvm-bench: %v\n", err)
	}

	table := report.Markdown(rows)
	fmt.Print(table)
	if runErr != nil {
		fmt.Fprintf(os.Stderr, "tlcvm-bench: %v\n", runErr)
		return 1
	}
	if docPath != "" {
		if err := writeDoc(docPath, meta, table, jsonPath); err != nil {
			fmt.Fprintf(os.Stderr, "tlcvm-bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "tlcvm-bench: wrote section %q of %s\n", Section, docPath)
	}
	return 0
}

// rowRecord is a report.Row that JSON can carry (NaN becomes null).
type rowRecord struct {
	Metric string   `json:"metric"`
	TLCVM  *float64 `json:"tlcvm"`
	QEMU   *float64 `json:"qemu"`
	Ratio  *float64 `json:"ratio"`
	Target string   `json:"target,omitempty"`
	Met    *bool    `json:"met,omitempty"`
	Err    string   `json:"err,omitempty"`
}

func toRecord(r report.Row) rowRecord {
	num := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	rr := rowRecord{Metric: r.Metric, TLCVM: num(r.TLCVM), QEMU: num(r.QEMU), Ratio: num(r.Ratio()),
		Target: r.Target.Text, Err: strings.TrimSpace(r.TLCVMErr + " " + r.QEMUErr)}
	if met, judged := r.Target.Met(r.TLCVM, r.QEMU); judged {
		rr.Met = &met
	}
	return rr
}

// commandLine is the harness's own argv, shell-quoted, named tlcvm-bench.
func commandLine() string {
	parts := []string{"tlcvm-bench"}
	for _, a := range os.Args[1:] {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=/.,:@+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func writeDoc(path string, m suite.Meta, table, jsonPath string) error {
	var b strings.Builder
	b.WriteString(qemuLine(m, ""))
	if m.RTCeiling > 0 {
		fmt.Fprintf(&b, "- QMP round-trip ceiling of the harness (same client, in-process canned-reply server on a unix socket): %.0f/s\n",
			m.RTCeiling)
	}
	if m.StandIn {
		b.WriteString("\n> **Stand-in run:** the tlcvm binary did not name tlcvm in `-version`, so the tlcvm column " +
			"measures another binary (QEMU itself until tlcvm exists). Ratios near 1 are the harness's noise floor, " +
			"not tlcvm's performance.\n")
	}
	return writeSection(path, Section, m, b.String(), table, jsonPath, 0)
}

// openRecorder returns a function that appends each record to path as a JSON line (to
// nowhere when path is ""), and the function that closes the file.
func openRecorder(path string) (func(any) error, func(), error) {
	var out io.Writer = io.Discard
	closeFn := func() {}
	if path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, err
		}
		out, closeFn = f, func() { f.Close() }
	}
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	return func(r any) error { return enc.Encode(r) }, closeFn, nil
}
