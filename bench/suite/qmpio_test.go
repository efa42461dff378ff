package suite_test

import (
	"context"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"tlcvm/bench/suite"
)

// RunQMP end to end against the fake emulator standing in for all three sides.
func TestRunQMPAgainstFake(t *testing.T) {
	t.Setenv("FAKE_EMU", "qmp")
	o, recs := options(t)
	self := o.TLCVM.Bin
	q := suite.QOptions{TLCVM: self, QEMU: self, Floor: self, RTReps: 2, RTDuration: 20 * time.Millisecond,
		StartN: 2, Hogs: 1, Only: map[string]bool{suite.QPartRT: true, suite.QPartStartup: true},
		Timeout: time.Minute, BaseDir: o.BaseDir, Record: o.Record}
	rows, err := suite.RunQMP(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2*2+2*3 {
		t.Fatalf("%d rows, want 10", len(rows))
	}
	for _, r := range rows {
		if math.IsNaN(r.TLCVM) || math.IsNaN(r.Floor) || math.IsNaN(r.QEMU) || r.TLCVMErr+r.FloorErr+r.QEr != "" {
			t.Errorf("row %+v", r)
		}
	}
	// 2 machines × 2 reps per side; 2 loads × (1 warm-up + 2) per side.
	for _, side := range []string{suite.TLCVM, suite.SideFloor, suite.QEMU} {
		if n := count(*recs, "qmp-rt", side); n != 4 {
			t.Errorf("%s: %d qmp-rt records, want 4", side, n)
		}
		if n := count(*recs, "qmp-startup", side); n != 6 {
			t.Errorf("%s: %d qmp-startup records, want 6", side, n)
		}
	}
	// Each side goes first in turn.
	var order []string
	for _, r := range *recs {
		if r["kind"] == "qmp-rt" && len(order) < 6 {
			order = append(order, r["side"].(string))
		}
	}
	if got := strings.Join(order, ","); got != "floor,tlcvm,qemu,tlcvm,qemu,floor" {
		t.Errorf("order %s", got)
	}
	md := suite.QMarkdown(rows)
	if !strings.Contains(md, "≥ 80 % of the floor") || strings.Count(md, "\n") != len(rows)+2 {
		t.Errorf("table:\n%s", md)
	}
}

func TestQRowMet(t *testing.T) {
	for _, tc := range []struct {
		r      suite.QRow
		met, j bool
	}{
		{suite.QRow{TLCVM: 80, Floor: 100, Target: suite.QFloorAtLeast, Value: 0.8}, true, true},
		{suite.QRow{TLCVM: 79, Floor: 100, Target: suite.QFloorAtLeast, Value: 0.8}, false, true},
		{suite.QRow{TLCVM: 5, Floor: 2.5, Target: suite.QFloorAtMost, Value: 2}, true, true},
		{suite.QRow{TLCVM: 200, QEMU: 99, Target: suite.QQEMUAtMost, Value: 2}, false, true},
		{suite.QRow{TLCVM: 9, Target: suite.QAtMost, Value: 10}, true, true},
		{suite.QRow{TLCVM: math.NaN(), Floor: 1, Target: suite.QFloorAtLeast, Value: 0.8}, false, false},
		{suite.QRow{TLCVM: 1, Floor: 0, Target: suite.QFloorAtMost, Value: 2}, false, false},
		{suite.QRow{TLCVM: 1}, false, false},
	} {
		if met, j := tc.r.Met(); met != tc.met || j != tc.j {
			t.Errorf("%+v: Met() = %v, %v; want %v, %v", tc.r, met, j, tc.met, tc.j)
		}
	}
}

// RunDensity with a handful of fake VMs per side and phase.
func TestRunDensityAgainstFake(t *testing.T) {
	t.Setenv("FAKE_EMU", "qmp")
	o, recs := options(t)
	self, _ := os.Executable()
	d := suite.DOptions{TLCVM: self, QEMU: self, Prelaunched: 3, Running: 2, QEMUMax: 2, MinAvailMiB: 1,
		Settle: time.Millisecond, Window: 50 * time.Millisecond, IdleWindow: 50 * time.Millisecond, Sweeps: 2, Timeout: time.Minute,
		BaseDir: o.BaseDir, Record: o.Record}
	out, err := suite.RunDensity(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"prelaunched/tlcvm": 3, "prelaunched/qemu": 2, "running/tlcvm": 2, "running/qemu": 2,
		"running-idle/tlcvm": 2, "running-idle/qemu": 2}
	if len(out) != 6 {
		t.Fatalf("%d records, want 6", len(out))
	}
	for _, r := range out {
		if r.VMs != want[r.Phase+"/"+r.Side] || r.Err != "" || r.RSSMedian <= 0 || r.PSSMedian <= 0 {
			t.Errorf("record %+v", r)
		}
		if r.Phase != suite.DPhasePrelaunched && r.LatUS.N != 2*r.VMs {
			t.Errorf("%s: %d latencies, want %d", r.Side, r.LatUS.N, 2*r.VMs)
		}
	}
	if n := count(*recs, "density", ""); n != 6 {
		t.Errorf("%d density records, want 6", n)
	}
	md := suite.DMarkdown(suite.DRows(out), out)
	if !strings.Contains(md, "VMs started | 3 | 2 |") || !strings.Contains(md, "p99") {
		t.Errorf("table:\n%s", md)
	}
}
