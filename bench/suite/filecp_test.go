package suite_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"tlcvm/bench/suite"
)

// fcResult is a made-up run: every target met but the second checkpoint's time.
func fcResult() *suite.FcResult {
	o := suite.FcOptions{DDMiB: 4096, MemMiB: 4096, FillMiB: 4000, WSMiB: 64, BigMemMiB: 16384, BigFillMiB: 6144,
		RateWSMiB: 1024, QEMUWSMiB: 4000, RestoreReps: 3, Dirty: time.Second, Window: time.Second}
	ck := func(name string, ms, written int64, inc bool) *suite.FcCheckpoint {
		return &suite.FcCheckpoint{Name: name, Status: "completed", TotalMS: p64(ms), Written: written,
			File: &suite.FileInfo{Mode: "mapped", Incremental: inc, WrittenBytes: written}}
	}
	return &suite.FcResult{
		Opts: o,
		DD:   suite.FcDD{Bytes: 4 << 30, MS: 4000, MBs: 1000},
		Checkpoints: map[string]*suite.FcCheckpoint{
			"first":    ck("first", 4000, 4_000_000_000, false), // 1000 MB/s: 100 % of dd
			"second":   ck("second", 400, 134_000_000, true),    // 10 % of the time, 3.35 % of the bytes
			"live":     ck("live", 100, 134_000_000, true),
			"streamed": ck("streamed", 8000, 4_000_000_000, false),
			"big":      {Name: "big", Status: "completed", DiskBytes: 6_500_000_000},
			"qemu":     {Name: "qemu", Status: "completed", TotalMS: p64(2000), Written: 3_000_000_000},
		},
		Restores: map[string]*suite.FcRestore{
			"4G":            {Name: "4G", ReadyMS: 10, Status: "running"},
			"4G-before-run": {Name: "4G-before-run", ReadyMS: 900, IncomMS: 880, Status: "running"},
			"big":           {Name: "big", Err: "emu: emulator exited"},
			"qemu":          {Name: "qemu", ReadyMS: 2000, Status: "paused", FileBytes: 3_000_000_000},
		},
		Rates: map[string]*suite.FcRate{
			"baseline":   {Name: "baseline", Rate: 1e8},
			"background": {Name: "background", Rate: 9e7, FileEnd: &suite.FileInfo{PagesEager: 10, PagesLazy: 20}},
			"none":       {Name: "none", Rate: 5e7},
		},
	}
}

func findRow(t *testing.T, rows []suite.FcRow, sub string) suite.FcRow {
	t.Helper()
	for _, r := range rows {
		if strings.Contains(r.Metric, sub) {
			return r
		}
	}
	t.Fatalf("no row %q", sub)
	return suite.FcRow{}
}

func TestFcRowsJudge(t *testing.T) {
	rows := suite.FcRows(fcResult())
	for _, tc := range []struct {
		sub      string
		value    float64
		compared float64 // NaN: none
		met      string  // "yes", "no", "" (not judged)
	}{
		{"first mapped-ram checkpoint, written-bytes ÷ total-time", 1000, 1, "yes"},
		{"streamed file: checkpoint, bytes", 500, 0.5, ""},
		{"stream bytes ÷ total-time", 1500, 1.5, ""},
		{"(incremental): total-time", 400, 0.1, "no"},
		{"(incremental): written-bytes", 134, 0.0335, "yes"},
		{"restore of the 4 GiB checkpoint, -incoming file:", 10, 0.005, "yes"},
		{"restore of a 16 GiB checkpoint (6.1 GiB written, 6500 MB on disk)", math.NaN(), math.NaN(), ""},
		{"populate before-run", 900, 0.45, ""},
		{"of which migrate-incoming", 880, math.NaN(), ""},
		{"never checkpointed", 1e8, math.NaN(), ""},
		{"populate background: pages written per second (then pages-eager 10, pages-lazy 20", 9e7, 0.1, "yes"},
		{"populate none", 5e7, 0.5, ""},
	} {
		r := findRow(t, rows, tc.sub)
		if !near(r.Value, tc.value) {
			t.Errorf("%s: value %v, want %v", tc.sub, r.Value, tc.value)
		}
		if got := r.Compared(); !near(got, tc.compared) {
			t.Errorf("%s: compared %v, want %v", tc.sub, got, tc.compared)
		}
		met := ""
		if r.Met != nil {
			met = map[bool]string{true: "yes", false: "no"}[*r.Met]
		}
		if met != tc.met {
			t.Errorf("%s: met %q, want %q", tc.sub, met, tc.met)
		}
	}
}

func near(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}

func TestFcMarkdown(t *testing.T) {
	md := suite.FcMarkdown(suite.FcRows(fcResult()))
	for _, want := range []string{
		"| metric | tlcvm | compared with | comparison | target | met? |",
		"| 1000 | 1000 (dd) | 100.0 % | ≥ 80 % of dd | **yes** |",
		"| 400 | 4000 (first) | 10.0 % | ≤ 5 % of the first | no |",
		"| 10.0 | 2000.0 (QEMU 7.2 exec:cat) | 0.005 (1/200.0) | ≤ 20 ms | **yes** |",
		"| error: emu: emulator exited | 2000.0 (QEMU 7.2 exec:cat) | — | ≤ 20 ms | n/a |",
		"| 90000000 | 100000000 (never checkpointed) | 10.0 % slower | slowdown < 20 % | **yes** |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
	if n := strings.Count(md, "\n"); n != len(suite.FcRows(fcResult()))+2 {
		t.Errorf("%d lines:\n%s", n, md)
	}
}

func TestFcMarkdownEmptyRun(t *testing.T) {
	// A run where every step failed still renders every row, with dashes.
	res := &suite.FcResult{Opts: fcResult().Opts, DD: suite.FcDD{MBs: math.NaN(), Err: "dd: no space"}}
	md := suite.FcMarkdown(suite.FcRows(res))
	if !strings.Contains(md, "error: dd: no space") || strings.Contains(md, "NaN") {
		t.Errorf("table:\n%s", md)
	}
}

func TestRunFileCPOptions(t *testing.T) {
	for _, o := range []suite.FcOptions{
		{},
		{TLCVM: "/bin/true", MemMiB: 1024, FillMiB: 1000, WSMiB: 64, Dir: t.TempDir()},
		{TLCVM: "/bin/true", RateWSMiB: 4096, RateMemMiB: 2048, Dir: t.TempDir()},
	} {
		if _, err := suite.RunFileCP(context.Background(), o); !errors.Is(err, suite.ErrOptions) {
			t.Errorf("RunFileCP(%+v): %v, want ErrOptions", o, err)
		}
	}
}
