package suite_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tlcvm/bench/suite"
)

func TestParseMiB(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		err  bool
	}{
		{"1G", 1024, false}, {"4G", 4096, false}, {"512M", 512, false}, {"2048", 2048, false},
		{" 1G ", 1024, false}, {"", 0, true}, {"0", 0, true}, {"-1G", 0, true}, {"1T", 0, true}, {"G", 0, true},
	} {
		got, err := suite.ParseMiB(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseMiB(%q) = %d, %v; want %d, err %v", tc.in, got, err, tc.want, tc.err)
		}
		if err != nil && !errors.Is(err, suite.ErrScenario) {
			t.Errorf("ParseMiB(%q): %v is not ErrScenario", tc.in, err)
		}
	}
}

func TestParseMigScenarios(t *testing.T) {
	got, err := suite.ParseMigScenarios("1G,4G", "written,ws64")
	if err != nil || len(got) != 4 {
		t.Fatalf("ParseMigScenarios = %v, %v; want 4 scenarios", got, err)
	}
	if w := got[2]; !w.Stopped || w.WSMiB != 4094 || w.Label() != "4 GiB, all written, stopped" || w.Idle() {
		t.Errorf("written at 4 GiB = %+v %q", w, w.Label())
	}
	if got[1].Stopped {
		t.Errorf("ws64 is stopped: %+v", got[1])
	}
}

func TestParseScenarios(t *testing.T) {
	for _, tc := range []struct {
		mems, names string
		want        []string // Label()s
		err         bool
	}{
		{"1G,4G", "idle,ws64,ws512", []string{
			"1 GiB, idle never started", "1 GiB, 64 MiB hot", "1 GiB, 512 MiB hot",
			"4 GiB, idle never started", "4 GiB, 64 MiB hot", "4 GiB, 512 MiB hot"}, false},
		{"1536M", "ws64", []string{"1536 MiB, 64 MiB hot"}, false},
		{"1G", "ws1023", nil, true}, // 2 MiB + 1023 MiB does not fit
		{"1G", "ws0", nil, true},
		{"1G", "halt", nil, true},
		{"1G", "", nil, true},
		{"x", "idle", nil, true},
		{"1G", "written", nil, true}, // the migration benchmark's only
	} {
		got, err := suite.ParseScenarios(tc.mems, tc.names)
		if (err != nil) != tc.err {
			t.Errorf("ParseScenarios(%q, %q): err %v, want err %v", tc.mems, tc.names, err, tc.err)
			continue
		}
		var labels []string
		for _, s := range got {
			labels = append(labels, s.Label())
		}
		if !slices.Equal(labels, tc.want) {
			t.Errorf("ParseScenarios(%q, %q) = %q, want %q", tc.mems, tc.names, labels, tc.want)
		}
	}
}

func FuzzParseScenarios(f *testing.F) {
	f.Add("1G,4G", "idle,ws64,ws512")
	f.Add("512M", "ws1")
	f.Add("0", "wsx")
	f.Fuzz(func(t *testing.T, mems, names string) {
		scs, err := suite.ParseScenarios(mems, names)
		if err != nil {
			if !errors.Is(err, suite.ErrScenario) {
				t.Fatalf("error %v is not ErrScenario", err)
			}
			return
		}
		for _, s := range scs {
			if s.MemMiB <= 0 || s.WSMiB < 0 || s.WSMiB > 0 && s.WSMiB+2 > s.MemMiB {
				t.Fatalf("bad scenario %+v", s)
			}
			for _, side := range []string{suite.CkQEMU, suite.CkTLCVM} {
				if a := suite.CkArgs(side, s, "k.elf"); len(a) < 7 {
					t.Fatalf("args %q", a)
				}
			}
		}
	})
}

func TestCkArgs(t *testing.T) {
	ws := suite.CkScenario{Name: "ws64", WSMiB: 64, MemMiB: 4096}
	idle := suite.CkScenario{Name: "idle", MemMiB: 1024}
	base := func(m string) string { return "-machine pc -m " + m + " -nodefaults -display none" }
	for _, tc := range []struct {
		side string
		sc   suite.CkScenario
		want string
	}{
		{suite.CkQEMU, ws, base("4096") + " -kernel /k/dirty.elf -append ws=64 delay=0"},
		{suite.CkQEMU, idle, base("1024")},
		// QemuOpts: the comma inside the fw_cfg string is doubled.
		{suite.CkTLCVM, ws, base("4096") + " -fw_cfg name=opt/tlcvm/workload,string=ws=64M,,rate=max"},
		{suite.CkXTLC, ws, base("4096") + " -fw_cfg name=opt/tlcvm/workload,string=ws=64M,,rate=max"},
		{suite.CkTLCVM, idle, base("1024") + " -fw_cfg name=opt/tlcvm/workload,string=idle"},
	} {
		if got := strings.Join(suite.CkArgs(tc.side, tc.sc, "/k/dirty.elf"), " "); got != tc.want {
			t.Errorf("CkArgs(%s, %s) = %q, want %q", tc.side, tc.sc.Name, got, tc.want)
		}
	}
	// -append is one argument, not split on the space.
	a := suite.CkArgs(suite.CkQEMU, ws, "k")
	if a[len(a)-1] != "ws=64 delay=0" {
		t.Errorf("last argument %q", a[len(a)-1])
	}
}

func p64(v int64) *int64 { return &v }

func rowByMetric(t *testing.T, rows []suite.CkRow, part string) suite.CkRow {
	t.Helper()
	for _, r := range rows {
		if strings.Contains(r.Metric, part) {
			return r
		}
	}
	t.Fatalf("no row %q in %d rows", part, len(rows))
	return suite.CkRow{}
}

func TestCkRows(t *testing.T) {
	sc := suite.CkScenario{Name: "ws512", WSMiB: 512, MemMiB: 1024}
	lim := suite.Limits{PipeFileMB: 1000, ReadBackMB: 2000}
	done := func(side string, total, down, stream int64, restoreMS float64, s1b, s1ms int64) suite.CkRecord {
		return suite.CkRecord{Side: side, Status: "completed", Converged: true, TotalMS: p64(total), DowntimeMS: p64(down),
			StreamBytes: stream, RestoreMS: restoreMS, Stage1Bytes: s1b, Stage1MS: s1ms, PeakRSSMiB: 100}
	}
	recs := []suite.CkRecord{
		done(suite.CkTLCVM, 100, 10, 1e9, 1000, 800e6, 1000),
		done(suite.CkTLCVM, 300, 30, 1e9, 1000, 800e6, 1000),
		done(suite.CkTLCVM, 200, 20, 1e9, 1000, 800e6, 1000),
		done(suite.CkXTLC, 150, 2, 1e9, 500, 600e6, 1000),
		{Side: suite.CkQEMU, Status: "cancelled", Capped: true, StreamBytes: 16e9},
		{Side: suite.CkQEMU, Status: "cancelled", Capped: true, StreamBytes: 14e9},
		done(suite.CkQEMU, 1000, 400, 3e9, 4000, 0, 0),
	}
	rows := suite.CkRows(sc, recs, lim)

	total := rowByMetric(t, rows, "total time")
	if total.TLCVM != 200 || total.XTLC != 150 || total.QEMU != 1000 || total.Ratio() != 0.2 ||
		total.Met == nil || !*total.Met || total.Target != "≤ 1/4 of QEMU" {
		t.Errorf("total row %+v", total)
	}
	down := rowByMetric(t, rows, "downtime")
	if down.TLCVM != 20 || down.Ratio() != 0.05 || !*down.Met {
		t.Errorf("downtime row %+v", down)
	}
	stream := rowByMetric(t, rows, "stream size")
	// QEMU: median of 16, 14 (capped) and 3 GB.
	if stream.TLCVM != 1000 || stream.QEMU != 14000 || stream.Met == nil || !*stream.Met {
		t.Errorf("stream row %+v", stream)
	}
	conv := rowByMetric(t, rows, "converged (tries")
	if conv.TLCVM != 3 || conv.XTLC != 1 || conv.QEMU != 1 || !strings.HasSuffix(conv.Metric, "of 3") ||
		conv.Met == nil || *conv.Met != true {
		t.Errorf("converged row %+v", conv)
	}
	s1 := rowByMetric(t, rows, "stage 1 throughput")
	if s1.TLCVM != 800 || s1.Limit != 1000 || s1.Ratio() != 0.8 || !*s1.Met {
		t.Errorf("stage 1 row %+v", s1)
	}
	rt := rowByMetric(t, rows, "restore throughput")
	if rt.TLCVM != 1000 || rt.XTLC != 2000 || rt.QEMU != 750 || rt.Ratio() != 0.5 || *rt.Met {
		t.Errorf("restore throughput row %+v", rt)
	}

	// A tlcvm try that did not converge fails the 512 MiB convergence target,
	// and a stream over 2× RAM fails the stream target.
	recs[0] = suite.CkRecord{Side: suite.CkTLCVM, Status: "cancelled", Capped: true, StreamBytes: 5e9}
	rows = suite.CkRows(sc, recs, lim)
	if c := rowByMetric(t, rows, "converged (tries"); c.TLCVM != 2 || *c.Met {
		t.Errorf("converged row %+v", c)
	}
	if s := rowByMetric(t, rows, "stream size"); s.TLCVM != 1000 || !*s.Met {
		t.Errorf("stream row %+v (median of 5, 1, 1 GB)", s)
	}

	// The 64 MiB set has the x-tlc downtime row; an idle 4 GiB guest the 1/20 target.
	rows = suite.CkRows(suite.CkScenario{Name: "ws64", WSMiB: 64, MemMiB: 4096}, recs, lim)
	if x := rowByMetric(t, rows, "downtime with x-tlc"); x.Met == nil || !*x.Met || x.Target != "x-tlc ≤ 5 ms" {
		t.Errorf("x-tlc row %+v", x)
	}
	rows = suite.CkRows(suite.CkScenario{Name: "idle", MemMiB: 4096}, recs, lim)
	if tt := rowByMetric(t, rows, "total time"); tt.Target != "≤ 1/20 of QEMU" || *tt.Met {
		t.Errorf("idle total row %+v (ratio %v > 1/20)", tt, tt.Ratio())
	}
	for _, r := range rows {
		if strings.Contains(r.Metric, "throughput") {
			t.Errorf("idle scenario has a throughput row: %q", r.Metric)
		}
	}
}

func TestCkRowsNoSamples(t *testing.T) {
	rows := suite.CkRows(suite.CkScenario{Name: "ws64", WSMiB: 64, MemMiB: 1024}, nil, suite.Limits{})
	total := rowByMetric(t, rows, "total time")
	if !math.IsNaN(total.TLCVM) || !math.IsNaN(total.Ratio()) || total.Met != nil {
		t.Errorf("empty total row %+v", total)
	}
	md := suite.CkMarkdown(rows)
	if !strings.Contains(md, "| — | — | — |") || !strings.Contains(md, "| n/a |") {
		t.Errorf("empty table:\n%s", md)
	}
}

func TestCkMarkdown(t *testing.T) {
	yes, no := true, false
	nan := math.NaN()
	md := suite.CkMarkdown([]suite.CkRow{
		{Metric: "a|b", TLCVM: 10, XTLC: 5, QEMU: 100, Limit: nan, RatioSide: suite.CkTLCVM, RatioOf: "qemu", Target: "≤ 1/4 of QEMU", Met: &yes},
		{Metric: "thr", TLCVM: 700, XTLC: nan, QEMU: nan, Limit: 1000, RatioSide: suite.CkTLCVM, RatioOf: "limit", Target: "≥ 70 %", Met: &no},
		{Metric: "x", TLCVM: 1, XTLC: 8, QEMU: 2, Limit: nan, RatioSide: suite.CkXTLC, RatioOf: "qemu", Digits: 1},
	})
	for _, want := range []string{
		"| metric | tlcvm (QEMU mode) | tlcvm x-tlc | QEMU 7.2 | limit | ratio | target | met? |",
		`| a\|b | 10 | 5 | 100 | — | 0.1 (1/10.0) | ≤ 1/4 of QEMU | **yes** |`,
		"| thr | 700 | — | — | 1000 | 70 % of limit | ≥ 70 % | no |",
		"| x | 1.0 | 8.0 | 2.0 | — | 4× | — | — |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
}

func TestMeasureLimits(t *testing.T) {
	dir := t.TempDir()
	l, err := suite.MeasureLimits(context.Background(), dir, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	if l.Kind != "limits" || l.CopyGBs <= 0 || l.PipeFileMB <= 0 || l.ReadBackMB <= 0 {
		t.Errorf("limits %+v", l)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("left behind: %q", left)
	}
}

func TestCheckpointOptionsInvalid(t *testing.T) {
	_, _, err := suite.RunCheckpoint(context.Background(), suite.CkOptions{TLCVM: "x"}, 0, 0)
	if !errors.Is(err, suite.ErrOptions) {
		t.Errorf("no QEMU binary: %v", err)
	}
	sc, _ := suite.ParseScenarios("1G", "ws64")
	_, _, err = suite.RunCheckpoint(context.Background(), suite.CkOptions{TLCVM: "x", QEMU: "y", Scenarios: sc, ImageDir: t.TempDir()}, 0, 0)
	if !errors.Is(err, suite.ErrOptions) {
		t.Errorf("QEMU without -kernel: %v", err)
	}
}

// The fake emulator (TestMain) answers query-migrate with {}: the try never
// ends, is cancelled at the cap, and is given up with ErrNoEnd; the fake is
// stopped and the stream file removed either way.
func TestCheckpointNeverEnds(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("FAKE_EMU", "qmp")
	sc, _ := suite.ParseScenarios("1G", "idle")
	img := t.TempDir()
	var recs []any
	rows, _, err := suite.RunCheckpoint(context.Background(), suite.CkOptions{
		TLCVM: self, QEMU: self, Scenarios: sc, Reps: 1, Sides: []string{suite.CkTLCVM},
		Warmup: time.Millisecond, TLCVMCap: 20 * time.Millisecond, Poll: time.Millisecond,
		ImageDir: img, BaseDir: t.TempDir(), Record: func(r any) error { recs = append(recs, r); return nil },
	}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("records %+v", recs)
	}
	rec := recs[0].(suite.CkRecord)
	if !rec.Capped || rec.Converged || !strings.Contains(rec.Err, "did not end") {
		t.Errorf("record %+v", rec)
	}
	if c := rowByMetric(t, rows, "converged (tries"); c.TLCVM != 0 {
		t.Errorf("converged row %+v", c)
	}
	if left, _ := filepath.Glob(filepath.Join(img, "*")); len(left) != 0 {
		t.Errorf("left behind: %q", left)
	}
}

// Against the real binaries (skipped when absent or under -short): one idle
// never-started checkpoint and restore per side.
func TestCheckpointIdleReal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts emulators")
	}
	tlcvm, _ := filepath.Abs("../../bin/qemu-system-x86_64")
	qemu := "/usr/bin/qemu-system-x86_64"
	for _, b := range []string{tlcvm, qemu} {
		if _, err := os.Stat(b); err != nil {
			t.Skipf("no %s", b)
		}
	}
	sc, _ := suite.ParseScenarios("256M", "idle")
	var recs []suite.CkRecord
	rows, _, err := suite.RunCheckpoint(context.Background(), suite.CkOptions{
		TLCVM: tlcvm, QEMU: qemu, Scenarios: sc, Reps: 1, Warmup: time.Millisecond,
		ImageDir: t.TempDir(), BaseDir: t.TempDir(),
		Record: func(r any) error {
			if c, ok := r.(suite.CkRecord); ok {
				recs = append(recs, c)
			}
			return nil
		},
	}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records", len(recs))
	}
	for _, r := range recs {
		// A never-started source restores to prelaunch (QEMU 7.2's globalstate).
		if r.Err != "" || !r.Converged || r.StreamBytes <= 0 || r.RestoreSt != "prelaunch" {
			t.Errorf("%s: %+v", r.Side, r)
		}
	}
	if c := rowByMetric(t, rows, "converged (tries"); c.TLCVM != 1 || c.XTLC != 1 || c.QEMU != 1 {
		t.Errorf("converged row %+v", c)
	}
}

func TestQEMUNeverConverged(t *testing.T) {
	sc := suite.CkScenario{Name: "ws512", WSMiB: 512, MemMiB: 4096}
	recs := []suite.CkRecord{
		{Side: suite.CkTLCVM, Status: "completed", Converged: true, TotalMS: p64(1000), StreamBytes: 1e9},
		{Side: suite.CkQEMU, Status: "cancelled", Capped: true, WallMS: 60000, StreamBytes: 16e9},
		{Side: suite.CkQEMU, Status: "cancelled", Capped: true, WallMS: 44000, StreamBytes: 17e9},
	}
	rows := suite.CkRows(sc, recs, suite.Limits{})
	total := rowByMetric(t, rows, "total time")
	if !total.QEMUAtLeast || total.QEMU != 44000 || total.Met == nil || !*total.Met {
		t.Errorf("total row %+v", total)
	}
	md := suite.CkMarkdown([]suite.CkRow{total})
	if !strings.Contains(md, "| > 44000 (never converged) | — | < 0.0227 (1/44.0) |") {
		t.Errorf("table:\n%s", md)
	}
	if d := rowByMetric(t, rows, "downtime"); d.QEMUAtLeast || !math.IsNaN(d.QEMU) || d.Met != nil {
		t.Errorf("downtime row %+v", d)
	}
}

const replayLines = `{"kind":"meta","date":"2026-11-25T13:47:24Z","command":"tlcvm-bench checkpoint"}
{"kind":"limits","mib":1024,"reps":3,"memcpy_gb_s":20,"pipe_file_mb_s":1000,"read_back_mb_s":2000}
{"kind":"checkpoint","side":"qemu","scenario":"ws64","mem_mib":1024,"rep":0,"status":"completed","converged":true,"total_ms":400,"downtime_ms":50,"stream_bytes":200000000}
{"kind":"checkpoint","side":"tlcvm","scenario":"ws64","mem_mib":1024,"rep":0,"status":"completed","converged":true,"total_ms":100,"downtime_ms":5,"stream_bytes":134000000,"stage1_bytes":67000000,"stage1_ms":100}

{"kind":"checkpoint","side":"tlcvm","scenario":"idle","mem_mib":4096,"rep":0,"status":"completed","converged":true,"total_ms":5,"downtime_ms":1,"stream_bytes":2600}
{"kind":"summary","whatever":1}
{"kind":"end","loadavg_after":"1.0 2.0 3.0","elapsed_s":1.5}
`

func TestReplayCheckpoint(t *testing.T) {
	rp, rows, err := suite.ReplayCheckpoint(strings.NewReader(replayLines))
	meta, lim := rp.Meta, rp.Limits
	if err != nil {
		t.Fatal(err)
	}
	if meta.Command != "tlcvm-bench checkpoint" || meta.LoadAfter != "1.0 2.0 3.0" || lim.PipeFileMB != 1000 ||
		rp.Elapsed != 1500*time.Millisecond {
		t.Errorf("meta %+v limits %+v", meta, lim)
	}
	if !strings.HasPrefix(rows[0].Metric, "1 GiB, 64 MiB hot:") || !strings.HasPrefix(rows[len(rows)-1].Metric, "4 GiB, idle") {
		t.Errorf("scenario order: first %q last %q", rows[0].Metric, rows[len(rows)-1].Metric)
	}
	if total := rowByMetric(t, rows, "64 MiB hot: checkpoint total"); total.Ratio() != 0.25 || !*total.Met {
		t.Errorf("total %+v", total)
	}
	if s1 := rowByMetric(t, rows, "stage 1"); s1.TLCVM != 670 || s1.Limit != 1000 {
		t.Errorf("stage 1 %+v", s1)
	}
	for _, bad := range []string{"", "{", `{"kind":"checkpoint","mem_mib":1024,"scenario":"halt"}`,
		`{"kind":"limits","mib":"x"}` + "\n" + `{"kind":"checkpoint","mem_mib":1024,"scenario":"idle"}`} {
		if _, _, err := suite.ReplayCheckpoint(strings.NewReader(bad)); !errors.Is(err, suite.ErrReplay) {
			t.Errorf("ReplayCheckpoint(%q): %v", bad, err)
		}
	}
}

func FuzzReplayCheckpoint(f *testing.F) {
	f.Add(replayLines)
	f.Add(`{"kind":"checkpoint","mem_mib":1,"scenario":"idle"}`)
	f.Fuzz(func(t *testing.T, in string) {
		_, rows, err := suite.ReplayCheckpoint(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, suite.ErrReplay) {
				t.Fatalf("error %v is not ErrReplay", err)
			}
			return
		}
		if len(rows) == 0 {
			t.Fatal("no rows without an error")
		}
		_ = suite.CkMarkdown(rows)
	})
}
