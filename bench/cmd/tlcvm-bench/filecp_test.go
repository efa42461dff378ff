package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlcvm/bench/report"
	"tlcvm/bench/suite"
)

func TestWriteFileCPDoc(t *testing.T) {
	b, e := report.Markers(FileCPSection)
	cb, ce := report.Markers(CheckpointSection)
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	orig := "# B\n" + cb + "\nkeep\n" + ce + "\n" + b + "\nold\n" + e + "\n## later\n"
	if err := os.WriteFile(path, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	m := suite.Meta{Date: "2026-01-02T03:04:05Z", Command: "tlcvm-bench filecp -m 4G", Invocation: "bench/run-filecp.sh"}
	res := &suite.FcResult{Errs: []string{"16 GiB restore: boom"}}
	if err := writeFileCPDoc(path, m, suite.FcOptions{Dir: "/tmp/ck", WSMiB: 64}, res, "| table |\n", "/tmp/x.jsonl", 95*time.Second); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	for _, want := range []string{"Measured 2026-01-02T03:04:05Z (the whole run took 1m35s).", "`bench/run-filecp.sh`",
		"tlcvm-bench filecp -m 4G", "nothing is fsynced", "16 GiB restore: boom", "| table |", "/tmp/x.jsonl",
		"keep", "## later"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("document lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(string(got), "old") {
		t.Errorf("old section kept:\n%s", got)
	}
}

func TestFcRecordsNaN(t *testing.T) {
	r := fcRecords([]suite.FcRow{{Metric: "m", Value: math.NaN(), Ref: 2, Cmp: suite.FcShare}})
	if len(r) != 1 || r[0]["value"] != (*float64)(nil) || *r[0]["ref"].(*float64) != 2 || r[0]["compared"] != (*float64)(nil) {
		t.Fatalf("%+v", r)
	}
}
