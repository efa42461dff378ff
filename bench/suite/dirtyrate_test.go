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

func TestDrWSMiB(t *testing.T) {
	for _, c := range []struct{ rate, calc, want int }{{1, 10, 16}, {10, 10, 150}, {100, 2, 300}, {1000, 2, 3000}, {7, 1, 16}} {
		if got := suite.DrWSMiB(c.rate, c.calc); got != c.want {
			t.Errorf("DrWSMiB(%d, %d) = %d, want %d", c.rate, c.calc, got, c.want)
		}
	}
}

func TestDrArgs(t *testing.T) {
	o := suite.DrOptions{SMP: 2, RingSize: 4096}
	got := strings.Join(o.DrArgs(100, 2, true), " ")
	want := "-machine pc -m 812 -smp 2 -nodefaults -display none -fw_cfg name=opt/tlcvm/workload,string=ws=300M,,rate=100M " +
		"-accel tcg,x-dirty-ring-size=4096"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestDrRows(t *testing.T) {
	res := &suite.DrResult{
		Guests: []suite.DrGuest{{Rate: 10, Achieved: 9.9}, {Rate: 10, Ring: true, Achieved: math.NaN()}},
	}
	add := func(mode string, v float64, err string) {
		res.Measures = append(res.Measures, suite.DrMeasure{Rate: 10, CalcTime: 2, Mode: mode, Measured: v, Err: err})
	}
	add(suite.ModePageSampling, 9, "")
	add(suite.ModeDirtyBitmap, 10, "")
	add(suite.ModeDirtyBitmap, 10, "")
	add(suite.ModePageSampling, 12, "")
	add(suite.ModeDirtyRing, 10, "")
	add(suite.ModeDirtyRing, -1, "timeout")
	rows := suite.DrRows(res)
	if len(rows) != 3 {
		t.Fatalf("%d rows: %+v", len(rows), rows)
	}
	ps, bm, ring := rows[0], rows[1], rows[2]
	if ps.Mode != suite.ModePageSampling || ps.Met || ps.Ratio.Min != 0.9 || ps.Ratio.Max != 1.2 || ps.Achieved != 9.9 ||
		math.Abs(ps.VsAchieved-10.5/9.9) > 1e-9 {
		t.Errorf("page-sampling: %+v", ps)
	}
	if !bm.Met || bm.Ratio.Median != 1 || bm.Ratio.Stddev != 0 {
		t.Errorf("dirty-bitmap: %+v", bm)
	}
	if ring.Met || ring.Err != "timeout" || len(ring.Measured) != 1 || !math.IsNaN(ring.Achieved) {
		t.Errorf("dirty-ring: %+v", ring)
	}
	md := suite.DrMarkdown(rows)
	for _, want := range []string{"| 10 | page-sampling | 2 s | 9, 12 | 1.050 [0.900–1.200] |", "| 10 | dirty-bitmap | 2 s | 10, 10 | 1.000 [1.000–1.000] | 0.000 | 9.90 | 1.010 | ±10 % | yes |",
		"(failed: timeout)", "| — | — | ±10 % | **no** |"} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
}

func TestRunDirtyRateOptions(t *testing.T) {
	for _, o := range []suite.DrOptions{
		{},
		{TLCVM: "/bin/true", Rates: []int{1, 10}, CalcTimes: []int{1}},
		{TLCVM: "/bin/true", Rates: []int{0}},
		{TLCVM: "/bin/true", Rates: []int{10}, CalcTimes: []int{61}},
	} {
		if _, err := suite.RunDirtyRate(context.Background(), o); !errors.Is(err, suite.ErrOptions) {
			t.Errorf("RunDirtyRate(%+v): %v, want ErrOptions", o, err)
		}
	}
}

func TestDrCeiling(t *testing.T) {
	o := suite.DrOptions{CeilingWSMiB: 1024, SMP: 1, CeilingWindow: 3 * time.Second}
	for _, c := range []struct {
		g    *suite.DrGuest
		want string
	}{
		{nil, ""},
		{&suite.DrGuest{Achieved: 51234.4}, "(`ws=1024M`, 1 vCPU), its counters over 3s: 51234 MiB/s."},
		{&suite.DrGuest{Achieved: math.NaN()}, "not measured"},
		{&suite.DrGuest{Achieved: math.NaN(), Err: "emu: exited"}, "failed: emu: exited"},
	} {
		got := suite.DrCeiling(&suite.DrResult{Opts: o, Ceiling: c.g})
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%+v: %q, want %q", c.g, got, c.want)
		}
	}
}
