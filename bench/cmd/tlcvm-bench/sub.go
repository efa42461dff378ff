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

// sub is what the "qmp" and "density" subcommands share around their measurements: the
// output flags, the binaries, the JSON-lines record with its meta and end records, the table
// and the BENCHMARKS.md section.
type sub struct {
	name, section     string // "tlcvm-bench qmp", "qmp"
	tlcvm, qemu       string
	jsonPath, docPath string
	invoc             string
	quiet             bool
}

// flags registers the binaries' and the output flags.
func (s *sub) flags(fs *flag.FlagSet) {
	fs.StringVar(&s.tlcvm, "tlcvm", envOr("TLCVM_BIN", "bin/qemu-system-x86_64"), "tlcvm binary (env TLCVM_BIN)")
	fs.StringVar(&s.qemu, "qemu", envOr("QEMU_BIN", "/usr/bin/qemu-system-x86_64"), "QEMU 7.2 binary (env QEMU_BIN)")
	fs.StringVar(&s.jsonPath, "json", "", "append raw measurements here as JSON lines")
	fs.StringVar(&s.docPath, "doc", "", "rewrite the "+s.section+" section of this BENCHMARKS.md")
	fs.StringVar(&s.invoc, "invocation", os.Getenv("BENCH_INVOCATION"), "how the run was started, for the record")
	fs.BoolVar(&s.quiet, "q", false, "no progress on stderr")
}

// parse parses argv and makes the binaries (and extra paths) absolute and checks they exist;
// it returns a non-zero exit status when something is wrong.
func (s *sub) parse(fs *flag.FlagSet, argv []string, paths ...*string) int {
	if err := fs.Parse(argv); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "%s: unexpected arguments %q\n", s.name, fs.Args())
		return 2
	}
	for _, b := range append([]*string{&s.tlcvm, &s.qemu}, paths...) {
		if abs, err := filepath.Abs(*b); err == nil {
			*b = abs
		}
		if _, err := os.Stat(*b); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", s.name, err)
			return 2
		}
	}
	return 0
}

// set turns a comma-separated list into a set of allowed words (nil for "").
func set(list string, allowed ...string) (map[string]bool, error) {
	if list == "" {
		return nil, nil
	}
	m := map[string]bool{}
	for _, x := range strings.Split(list, ",") {
		x = strings.TrimSpace(x)
		ok := false
		for _, a := range allowed {
			ok = ok || x == a
		}
		if !ok {
			return nil, fmt.Errorf("unknown %q (one of %s)", x, strings.Join(allowed, ","))
		}
		m[x] = true
	}
	return m, nil
}

// run records the meta record, calls measure with the recorder and the progress writer (nil
// with -q), records the end record, prints the table measure returns and, with -doc, writes
// it into the section after the QEMU line and head (extra description lines). It returns the
// exit status.
func (s *sub) run(head string, measure func(ctx context.Context, record func(any) error, progress *os.File) (table string, end map[string]any, err error)) int {
	record, closeRecord, err := openRecorder(s.jsonPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.name, err)
		return 1
	}
	defer closeRecord()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	meta := suite.Describe(ctx, suite.Options{TLCVM: suite.Side{Bin: s.tlcvm}, QEMU: suite.Side{Bin: s.qemu},
		Only: map[string]bool{s.section: true}}, 20)
	meta.Invocation, meta.Command = s.invoc, commandLine()
	if err := record(meta); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.name, err)
		return 1
	}
	var progress *os.File
	if !s.quiet {
		progress = os.Stderr
	}
	start := time.Now()
	table, end, runErr := measure(ctx, record, progress)
	took := time.Since(start)
	meta.LoadAfter = suite.LoadAvg()
	if end == nil {
		end = map[string]any{}
	}
	end["kind"], end["loadavg_after"], end["elapsed_s"] = "end", meta.LoadAfter, took.Seconds()
	if runErr != nil {
		end["err"] = runErr.Error()
	}
	if err := record(end); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.name, err)
	}
	fmt.Print(table)
	if runErr != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.name, runErr)
		return 1
	}
	if s.docPath != "" {
		if err := writeSection(s.docPath, s.section, meta, qemuLine(meta, "")+head, table, s.jsonPath, took); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", s.name, err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "%s: wrote section %q of %s\n", s.name, s.section, s.docPath)
	}
	return 0
}
