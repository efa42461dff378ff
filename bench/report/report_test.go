package report_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"tlcvm/bench/report"
)

func TestTargetMet(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name        string
		tg          report.Target
		t, q        float64
		met, judged bool
	}{
		{"startup met", report.Target{Kind: report.RatioAtMost, Value: 1.0 / 15}, 4, 71, true, true},
		{"startup missed", report.Target{Kind: report.RatioAtMost, Value: 1.0 / 15}, 71, 71, false, true},
		{"rate met", report.Target{Kind: report.RatioAtLeast, Value: 10}, 200000, 20000, true, true},
		{"rate missed", report.Target{Kind: report.RatioAtLeast, Value: 10}, 20000, 20000, false, true},
		{"memory met", report.Target{Kind: report.AtMost, Value: 16}, 12, 300, true, true},
		{"memory met without QEMU", report.Target{Kind: report.AtMost, Value: 16}, 12, nan, true, true},
		{"memory missed", report.Target{Kind: report.AtMost, Value: 16}, 16.5, 300, false, true},
		{"no tlcvm value", report.Target{Kind: report.AtMost, Value: 16}, nan, 300, false, false},
		{"ratio without QEMU", report.Target{Kind: report.RatioAtMost, Value: 1}, 1, nan, false, false},
		{"ratio over zero", report.Target{Kind: report.RatioAtLeast, Value: 1}, 1, 0, false, false},
		{"no target", report.Target{}, 1, 1, false, false},
	}
	for _, tc := range tests {
		met, judged := tc.tg.Met(tc.t, tc.q)
		if met != tc.met || judged != tc.judged {
			t.Errorf("%s: Met = %v,%v want %v,%v", tc.name, met, judged, tc.met, tc.judged)
		}
	}
}

func TestFormatRatio(t *testing.T) {
	tests := map[float64]string{
		0.0441:     "0.0441 (1/22.7)",
		1:          "1×",
		12.34:      "12.3×",
		0:          "0",
		math.NaN(): "—",
	}
	for in, want := range tests {
		if got := report.FormatRatio(in); got != want {
			t.Errorf("FormatRatio(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestMarkdown(t *testing.T) {
	rows := []report.Row{
		{Metric: "start, median (ms)", TLCVM: 3, QEMU: 71, Digits: 1,
			Target: report.Target{Kind: report.RatioAtMost, Value: 1.0 / 15, Text: "≤ 1/15 of QEMU"}},
		{Metric: "p90 (ms)", TLCVM: 4, QEMU: 80, Digits: 1},
		{Metric: "rss", TLCVM: math.NaN(), TLCVMErr: "exited | rc=1\nusage", QEMU: 300, Digits: 1,
			Target: report.Target{Kind: report.AtMost, Value: 16, Text: "≤ 16 MiB"}},
	}
	got := report.Markdown(rows)
	want := "| metric | tlcvm | QEMU 7.2 | ratio (tlcvm ÷ QEMU) | target | met? |\n" +
		"|---|---:|---:|---:|---|---|\n" +
		"| start, median (ms) | 3.0 | 71.0 | 0.0423 (1/23.7) | ≤ 1/15 of QEMU | **yes** |\n" +
		"| p90 (ms) | 4.0 | 80.0 | 0.05 (1/20.0) | — | — |\n" +
		"| rss | failed: exited \\| rc=1 usage | 300.0 | — | ≤ 16 MiB | n/a |\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestUpdateSection(t *testing.T) {
	b, e := report.Markers("foundation")
	doc := "# B\n\n" + b + "\nold\n" + e + "\n\n## later\n"
	tests := []struct {
		name, doc, body, want string
		err                   error
	}{
		{"replace", doc, "new table", "# B\n\n" + b + "\nnew table\n" + e + "\n\n## later\n", nil},
		{"empty body", doc, "", "# B\n\n" + b + "\n" + e + "\n\n## later\n", nil},
		{"adjacent markers", b + e, "x\n", b + "\nx\n" + e, nil},
		{"missing", "# B\n", "x", "", report.ErrNoSection},
		{"reversed", e + b, "x", "", report.ErrBadSection},
		{"duplicated", doc + b, "x", "", report.ErrBadSection},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := report.UpdateSection([]byte(tc.doc), "foundation", tc.body)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	// Idempotent: the same body twice gives the same document.
	once, _ := report.UpdateSection([]byte(doc), "foundation", "t")
	twice, _ := report.UpdateSection(once, "foundation", "t")
	if !bytes.Equal(once, twice) {
		t.Fatalf("not idempotent:\n%s\n%s", once, twice)
	}
}

// Whatever the document, an update keeps the text outside the markers and
// is idempotent.
func FuzzUpdateSection(f *testing.F) {
	b, e := report.Markers("x")
	f.Add("pre\n"+b+"\nold\n"+e+"\npost", "body")
	f.Add(b+e, "")
	f.Fuzz(func(t *testing.T, doc, body string) {
		out, err := report.UpdateSection([]byte(doc), "x", body)
		if err != nil {
			return
		}
		bi, ei := strings.Index(doc, b), strings.Index(doc, e)
		if !strings.HasPrefix(string(out), doc[:bi+len(b)]) || !strings.HasSuffix(string(out), doc[ei:]) {
			t.Fatalf("outside text changed: %q -> %q", doc, out)
		}
		again, err := report.UpdateSection(out, "x", body)
		if err != nil && !strings.Contains(body, b) && !strings.Contains(body, e) {
			t.Fatalf("second update failed: %v", err)
		}
		if err == nil && !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q vs %q", out, again)
		}
	})
}
