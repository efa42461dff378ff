package libvirt

import (
	"math"
	"testing"
)

// TestMigrateRows: one row per case; medians of each side's successful samples of the
// case's step, a side with only failures has NaN and its last error, a case without samples
// NaN on both sides, and every row carries the ≤ 1/2 target.
func TestMigrateRows(t *testing.T) {
	for _, tc := range []struct {
		name            string
		samples         []Sample
		tlcvm, qemu     float64
		tlcvmErr, qErr  string
		wantRatioAtMost float64
	}{
		{"both", []Sample{{"tlcvm", "migrate", 0.5, ""}, {"qemu", "migrate", 1.0, ""}, {"qemu", "migrate", 1.2, ""},
			{"tlcvm", "migrate", 0.7, ""}, {"tlcvm", "migrate", 9, "boom"}, {"tlcvm", "start", 3, ""}}, 0.6, 1.1, "", "", 0.5},
		{"tlcvm failed", []Sample{{"tlcvm", "migrate", 0, "no route"}, {"qemu", "migrate", 1.0, ""}},
			math.NaN(), 1.0, "no route", "", 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := MigrateRows(tc.samples)
			if len(rows) != len(MigrateSteps()) {
				t.Fatalf("%d rows, want %d", len(rows), len(MigrateSteps()))
			}
			r := rows[0]
			same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
			if !same(r.TLCVM, tc.tlcvm) || !same(r.QEMU, tc.qemu) || r.TLCVMErr != tc.tlcvmErr || r.QEMUErr != tc.qErr {
				t.Errorf("row %+v, want tlcvm %v (%q), qemu %v (%q)", r, tc.tlcvm, tc.tlcvmErr, tc.qemu, tc.qErr)
			}
			for _, r := range rows {
				if r.Target.Value != tc.wantRatioAtMost {
					t.Errorf("%s: target %+v", r.Metric, r.Target)
				}
			}
			if c := rows[1]; !math.IsNaN(c.TLCVM) || !math.IsNaN(c.QEMU) {
				t.Errorf("%s without samples: %+v", c.Metric, c)
			}
		})
	}
}
