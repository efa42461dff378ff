package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"tlcvm/bench/report"
	"tlcvm/bench/suite"
)

// QMPSection is the BENCHMARKS.md section "tlcvm-bench qmp" owns.
const QMPSection = "qmp"

// runQMP is "tlcvm-bench qmp [flags]": QMP round trips and start-up beside the floor
// (bench/cmd/qmp-floor) and QEMU 7.2, and memory on huge QMP lines beside QEMU 7.2.
func runQMP(argv []string) int {
	s := &sub{name: "tlcvm-bench qmp", section: QMPSection}
	fs := flag.NewFlagSet(s.name, flag.ContinueOnError)
	var (
		o            suite.QOptions
		only, inputs string
	)
	s.flags(fs)
	fs.StringVar(&o.Floor, "floor", envOr("QMP_FLOOR", ""), "the floor, bench/cmd/qmp-floor built (env QMP_FLOOR)")
	fs.IntVar(&o.RTReps, "rt-reps", 5, "round-trip measurements per side and machine")
	fs.DurationVar(&o.RTDuration, "rt-duration", 2*time.Second, "length of one round-trip measurement")
	fs.IntVar(&o.StartN, "n", 20, "start-ups per side, on an idle machine and under CPU hogs")
	fs.IntVar(&o.Hogs, "hogs", 0, "CPU hogs for the loaded start-ups (0: one per CPU)")
	fs.StringVar(&only, "only", "", "comma-separated subset of: rt,startup,memory")
	fs.StringVar(&inputs, "inputs", "", "comma-separated subset of the memory inputs: str50,tok100,deep,many")
	fs.DurationVar(&o.Timeout, "timeout", 60*time.Second, "limit per step")
	if st := s.parse(fs, argv, &o.Floor); st != 0 {
		if o.Floor == "" {
			fmt.Fprintf(os.Stderr, "%s: -floor (QMP_FLOOR) is needed: go build -o FLOOR ./bench/cmd/qmp-floor\n", s.name)
		}
		return st
	}
	var err error
	if o.Only, err = set(only, suite.QPartRT, suite.QPartStartup, suite.QPartMemory); err != nil {
		fmt.Fprintf(os.Stderr, "%s: -only: %v\n", s.name, err)
		return 2
	}
	if inputs != "" {
		o.MemInputs = strings.Split(inputs, ",")
	}
	o.TLCVM, o.QEMU = s.tlcvm, s.qemu
	head := fmt.Sprintf("- floor: `%s` (bench/cmd/qmp-floor: listens, greets, answers every line with one fixed reply; "+
		"Go's netpoller, a buffered reader, one write per reply)\n", o.Floor)
	return s.run(head, func(ctx context.Context, record func(any) error, progress *os.File) (string, map[string]any, error) {
		o.Record = record
		if progress != nil {
			o.Progress = io.Writer(progress)
		}
		rows, err := suite.RunQMP(ctx, o)
		return suite.QMarkdown(rows), map[string]any{"rows": qRecords(rows)}, err
	})
}

// qRecords makes rows JSON-safe (NaN as null).
func qRecords(rows []suite.QRow) []map[string]any {
	out := make([]map[string]any, 0, len(rows))
	for _, r := range rows {
		m := map[string]any{"metric": r.Metric, "tlcvm": num(r.TLCVM), "floor": num(r.Floor), "qemu": num(r.QEMU), "target": r.Text}
		if met, judged := r.Met(); judged {
			m["met"] = met
		}
		out = append(out, m)
	}
	return out
}

// writeSection replaces section of the document at path with the run's description: the
// date (and how long the run took, when took > 0), the command, the host, tlcvm, then head
// (the QEMU line and what else the section says about the run), the table and where the raw
// measurements are.
func writeSection(path, section string, m suite.Meta, head, table, jsonPath string, took time.Duration) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s", m.Date)
	if took > 0 {
		fmt.Fprintf(&b, " (the whole run took %s)", took.Round(time.Second))
	}
	b.WriteString(".\n\n")
	if m.Invocation != "" {
		fmt.Fprintf(&b, "Started as `%s`, which ran:\n\n", m.Invocation)
	} else {
		b.WriteString("Command:\n\n")
	}
	fmt.Fprintf(&b, "```\n%s\n```\n\n", m.Command)
	fmt.Fprintf(&b, "- host: %d CPUs (%s), Linux %s, load average %s before and %s after; %s\n",
		m.CPUs, m.CPUModel, m.Kernel, m.LoadBefore, m.LoadAfter, m.GoVersion)
	fmt.Fprintf(&b, "- tlcvm: `%s` — %s\n", m.TLCVMBin, m.TLCVMVersion)
	b.WriteString(head)
	b.WriteString("\n")
	b.WriteString(table)
	if jsonPath != "" {
		fmt.Fprintf(&b, "\nRaw measurements (JSON lines, not committed): `%s`.\n", jsonPath)
	}
	updated, err := report.UpdateSection(doc, section, b.String())
	if err != nil {
		return err
	}
	tmp := path + "." + section + ".tmp"
	if err := os.WriteFile(tmp, updated, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// qemuLine is the head's usual first lines: QEMU and the harness's exec floor.
func qemuLine(m suite.Meta, extra string) string {
	s := fmt.Sprintf("- QEMU: `%s` — %s%s\n", m.QEMUBin, m.QEMUVersion, extra)
	if m.ExecFloorMS.N > 0 {
		s += fmt.Sprintf("- exec floor (fork/exec/wait of /bin/true from the harness): median %.2f ms, p90 %.2f ms\n",
			m.ExecFloorMS.Median, m.ExecFloorMS.P90)
	}
	return s
}
