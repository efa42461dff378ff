package libvirt

import (
	"math"
	"testing"
)

// TestMigrateRows: medians of each side's successful samples, a side with only failures
// has NaN and its last error, and the row carries the ≤ 1/2 target.
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
			if len(rows) != 1 {
				t.Fatalf("%d rows", len(rows))
			}
			r := rows[0]
			same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
			if !same(r.TLCVM, tc.tlcvm) || !same(r.QEMU, tc.qemu) || r.TLCVMErr != tc.tlcvmErr || r.QEMUErr != tc.qErr {
				t.Errorf("row %+v, want tlcvm %v (%q), qemu %v (%q)", r, tc.tlcvm, tc.tlcvmErr, tc.qemu, tc.qErr)
			}
			if r.Target.Value != tc.wantRatioAtMost {
				t.Errorf("target %+v", r.Target)
			}
		})
	}
}
