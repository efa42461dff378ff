package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tlcvm/bench/report"
	"tlcvm/bench/suite"
)

func TestShellQuote(t *testing.T) {
	tests := map[string]string{
		"-n":                                  "-n",
		"/tmp/x.jsonl":                        "/tmp/x.jsonl",
		"":                                    "''",
		"a b":                                 "'a b'",
		"it's":                                `'it'\''s'`,
		"name=opt/tlcvm/workload,string=idle": "name=opt/tlcvm/workload,string=idle",
	}
	for in, want := range tests {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestToRecordNaN(t *testing.T) {
	r := toRecord(report.Row{Metric: "m", TLCVM: math.NaN(), QEMU: 2, TLCVMErr: "exited",
		Target: report.Target{Kind: report.AtMost, Value: 1, Text: "≤ 1"}})
	if r.TLCVM != nil || r.QEMU == nil || *r.QEMU != 2 || r.Ratio != nil || r.Met != nil || r.Err != "exited" {
		t.Fatalf("%+v", r)
	}
}

func TestWriteDoc(t *testing.T) {
	b, e := report.Markers(Section)
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := os.WriteFile(path, []byte("# B\n"+b+"\nold\n"+e+"\n## later\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := suite.Meta{Date: "2026-01-02T03:04:05Z", Command: "tlcvm-bench -n 3", Invocation: "bench/run.sh -n 3",
		StandIn: true, RTCeiling: 1000}
	if err := writeDoc(path, m, "| table |\n", "/tmp/x.jsonl"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	for _, want := range []string{"Measured 2026-01-02T03:04:05Z.", "`bench/run.sh -n 3`", "tlcvm-bench -n 3",
		"Stand-in run", "| table |", "/tmp/x.jsonl", "ceiling", "## later"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("document lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(string(got), "old") {
		t.Errorf("old section kept:\n%s", got)
	}
}
