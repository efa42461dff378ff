package suite

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"tlcvm/bench/report"
	"tlcvm/bench/stats"
)

// CkRow is one row of the checkpoint table: a value per side, the machine's
// limit where one bounds the metric, the ratio the target judges
// (RatioOf: tlcvm side ÷ "qemu" or ÷ "limit") and the target.
type CkRow struct {
	Metric string  `json:"metric"`
	TLCVM  float64 `json:"tlcvm"`
	XTLC   float64 `json:"tlcvm_xtlc"`
	QEMU   float64 `json:"qemu"`
	Limit  float64 `json:"limit"`
	Digits int     `json:"-"`
	// QEMUAtLeast: QEMU never converged and QEMU is a lower bound (its
	// shortest capped try), so the ratio is an upper bound.
	QEMUAtLeast bool   `json:"qemu_at_least,omitempty"`
	RatioSide   string `json:"ratio_side,omitempty"` // CkTLCVM or CkXTLC
	RatioOf     string `json:"ratio_of,omitempty"`   // "qemu" or "limit"
	Target      string `json:"target,omitempty"`
	Met         *bool  `json:"met,omitempty"`
}

// Ratio returns the judged ratio, or NaN.
func (r CkRow) Ratio() float64 {
	num := r.TLCVM
	if r.RatioSide == CkXTLC {
		num = r.XTLC
	}
	den := r.QEMU
	if r.RatioOf == "limit" {
		den = r.Limit
	}
	if r.RatioOf == "" || !finite(num) || !finite(den) || den == 0 {
		return math.NaN()
	}
	return num / den
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// RunCheckpoint measures the limits, then every scenario: Reps tries per
// side, the sides' order rotating per try. It returns the table rows.
func RunCheckpoint(ctx context.Context, o CkOptions, limitMiB, limitReps int) ([]CkRow, Limits, error) {
	if err := o.defaults(); err != nil {
		return nil, Limits{}, err
	}
	var lim Limits
	if limitMiB > 0 {
		o.progress("limits: memory copy, pipe into a file, read back (%d MiB × %d)", limitMiB, limitReps)
		var err error
		lim, err = MeasureLimits(ctx, o.ImageDir, limitMiB, limitReps)
		if err != nil {
			lim.Err = err.Error()
		}
		o.progress("limits: copy %.1f GB/s, pipe→file %.0f MB/s, file→pipe %.0f MB/s", lim.CopyGBs, lim.PipeFileMB, lim.ReadBackMB)
		if err := o.record(lim); err != nil {
			return nil, lim, err
		}
	}
	var rows []CkRow
	for _, sc := range o.Scenarios {
		var recs []CkRecord
		for i := 0; i < o.Reps; i++ {
			n := len(o.Sides)
			for j := 0; j < n; j++ {
				side := o.Sides[(i+j)%n]
				if err := ctx.Err(); err != nil {
					return rows, lim, err
				}
				rec, err := oneCheckpoint(ctx, &o, side, sc, i)
				if err != nil {
					rec.Err = err.Error()
				}
				o.progress("%s %s try %d: %s total %s ms downtime %s ms stream %.1f MB restore %.0f ms resumed %s%s",
					sc.Label(), side, i+1, rec.Status, i64(rec.TotalMS), i64(rec.DowntimeMS), float64(rec.StreamBytes)/1e6,
					rec.RestoreMS, bp(rec.Resumed), errSuffix(rec.Err))
				recs = append(recs, rec)
				if err := o.record(rec); err != nil {
					return rows, lim, err
				}
			}
		}
		rows = append(rows, CkRows(sc, recs, lim)...)
	}
	return rows, lim, nil
}

func i64(p *int64) string {
	if p == nil {
		return "—"
	}
	return strconv.FormatInt(*p, 10)
}

func bp(p *bool) string {
	if p == nil {
		return "—"
	}
	return strconv.FormatBool(*p)
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return " ERROR " + e
}

// CkRows turns one scenario's records into table rows.
func CkRows(sc CkScenario, recs []CkRecord, lim Limits) []CkRow {
	type agg struct {
		total, down, stream, restore, rss, s1, rtp []float64
		conv, tries                                int
		minCapped                                  float64 // shortest capped try (ms)
	}
	by := map[string]*agg{CkTLCVM: {}, CkXTLC: {}, CkQEMU: {}}
	for _, r := range recs {
		a := by[r.Side]
		if a == nil {
			continue
		}
		a.tries++
		a.rss = append(a.rss, r.PeakRSSMiB)
		if !r.Converged {
			if r.Capped && (a.minCapped == 0 || r.WallMS < a.minCapped) {
				a.minCapped = r.WallMS
			}
			if r.StreamBytes > 0 {
				a.stream = append(a.stream, float64(r.StreamBytes)/1e6)
			}
			continue
		}
		a.conv++
		if r.TotalMS != nil {
			a.total = append(a.total, float64(*r.TotalMS))
		}
		if r.DowntimeMS != nil {
			a.down = append(a.down, float64(*r.DowntimeMS))
		}
		a.stream = append(a.stream, float64(r.StreamBytes)/1e6)
		if r.RestoreMS > 0 && r.Err == "" {
			a.restore = append(a.restore, r.RestoreMS)
			a.rtp = append(a.rtp, float64(r.StreamBytes)/1e6/(r.RestoreMS/1e3))
		}
		if r.Stage1MS > 0 {
			a.s1 = append(a.s1, float64(r.Stage1Bytes)/1e6/(float64(r.Stage1MS)/1e3))
		}
	}
	med := func(v []float64) float64 {
		m, err := stats.Median(v)
		if err != nil {
			return math.NaN()
		}
		return m
	}
	nan := math.NaN()
	mk := func(metric string, pick func(*agg) []float64, digits int) CkRow {
		return CkRow{Metric: sc.Label() + ": " + metric, TLCVM: med(pick(by[CkTLCVM])), XTLC: med(pick(by[CkXTLC])),
			QEMU: med(pick(by[CkQEMU])), Limit: nan, Digits: digits}
	}
	judge := func(r *CkRow, ok bool) {
		if finite(r.Ratio()) || r.RatioOf == "" {
			r.Met = &ok
		}
	}
	var rows []CkRow

	total := mk("checkpoint total time, median of converged (ms)", func(a *agg) []float64 { return a.total }, 0)
	total.RatioSide, total.RatioOf, total.Target = CkTLCVM, "qemu", "≤ 1/4 of QEMU"
	lim4 := 0.25
	if sc.Idle() && sc.MemMiB >= 4096 {
		total.Target, lim4 = "≤ 1/20 of QEMU", 0.05
	}
	if q := by[CkQEMU]; q.conv == 0 && q.minCapped > 0 && q.tries > 0 {
		// Every QEMU try was capped: its total time exceeds the shortest cap.
		total.QEMU, total.QEMUAtLeast = q.minCapped, true
	}
	judge(&total, total.Ratio() <= lim4)
	rows = append(rows, total)

	down := mk("downtime, median (ms)", func(a *agg) []float64 { return a.down }, 0)
	down.RatioSide, down.RatioOf, down.Target = CkTLCVM, "qemu", "≤ 1/5 of QEMU (QEMU mode)"
	judge(&down, down.Ratio() <= 0.2)
	rows = append(rows, down)
	if sc.WSMiB == 64 {
		x := down
		x.Metric = sc.Label() + ": downtime with x-tlc, median (ms)"
		x.RatioOf, x.RatioSide, x.Target, x.Met = "", "", "x-tlc ≤ 5 ms", nil
		if finite(x.XTLC) {
			ok := x.XTLC <= 5
			x.Met = &ok
		}
		rows = append(rows, x)
	}

	stream := mk("stream size, median (MB; not converged: bytes written until the cap)", func(a *agg) []float64 { return a.stream }, 3)
	stream.RatioSide, stream.RatioOf = CkTLCVM, "qemu"
	if sc.WSMiB >= 512 {
		lim := 2 * float64(sc.MemMiB) * (1 << 20) / 1e6
		stream.Target = fmt.Sprintf("≤ 2× RAM (%.0f MB)", lim)
		if finite(stream.TLCVM) {
			ok := stream.TLCVM <= lim && (!finite(stream.XTLC) || stream.XTLC <= lim)
			stream.Met = &ok
		}
	}
	rows = append(rows, stream)

	conv := CkRow{Metric: sc.Label() + ": converged (tries that completed)", Limit: nan,
		TLCVM: float64(by[CkTLCVM].conv), XTLC: float64(by[CkXTLC].conv), QEMU: float64(by[CkQEMU].conv)}
	conv.Metric += fmt.Sprintf(" of %d", max(by[CkTLCVM].tries, by[CkQEMU].tries, by[CkXTLC].tries))
	if sc.WSMiB >= 512 {
		conv.Target = "all tries (tlcvm, both modes)"
		ok := by[CkTLCVM].conv == by[CkTLCVM].tries && by[CkXTLC].conv == by[CkXTLC].tries && by[CkTLCVM].tries > 0
		conv.Met = &ok
	}
	rows = append(rows, conv)

	rst := mk("restore, exec → out of inmigrate, median (ms)", func(a *agg) []float64 { return a.restore }, 0)
	rst.RatioSide, rst.RatioOf = CkTLCVM, "qemu"
	rows = append(rows, rst)

	rows = append(rows, mk("source peak RSS during checkpoint, median (MiB)", func(a *agg) []float64 { return a.rss }, 0))

	if !sc.Idle() {
		s1 := mk("stage 1 throughput (MB/s) vs pipe into a file", func(a *agg) []float64 { return a.s1 }, 0)
		s1.Limit, s1.RatioSide, s1.RatioOf, s1.Target = lim.PipeFileMB, CkTLCVM, "limit", "≥ 70 % of the pipe"
		judge(&s1, s1.Ratio() >= 0.7)
		rows = append(rows, s1)
		rt := mk("restore throughput, stream ÷ restore time (MB/s) vs file read back through a pipe", func(a *agg) []float64 { return a.rtp }, 0)
		rt.Limit, rt.RatioSide, rt.RatioOf, rt.Target = lim.ReadBackMB, CkTLCVM, "limit", "≥ 70 % of the read-back pipe"
		judge(&rt, rt.Ratio() >= 0.7)
		rows = append(rows, rt)
	}
	return rows
}

// CkMarkdown renders the checkpoint table.
func CkMarkdown(rows []CkRow) string {
	var b strings.Builder
	b.WriteString("| metric | tlcvm (QEMU mode) | tlcvm x-tlc | QEMU 7.2 | limit | ratio | target | met? |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---|---|\n")
	for _, r := range rows {
		val := func(v float64) string {
			if !finite(v) {
				return "—"
			}
			return strconv.FormatFloat(v, 'f', r.Digits, 64)
		}
		ratio, qemu := "—", val(r.QEMU)
		if r.QEMUAtLeast && finite(r.QEMU) {
			qemu = "> " + qemu + " (never converged)"
		}
		if x := r.Ratio(); finite(x) {
			ratio = report.FormatRatio(x)
			if r.QEMUAtLeast {
				ratio = "< " + ratio
			}
			if r.RatioOf == "limit" {
				ratio = strconv.FormatFloat(100*x, 'f', 0, 64) + " % of limit"
			}
		}
		met := "—"
		if r.Met != nil {
			met = map[bool]string{true: "**yes**", false: "no"}[*r.Met]
		} else if r.Target != "" {
			met = "n/a"
		}
		tg := r.Target
		if tg == "" {
			tg = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", strings.ReplaceAll(r.Metric, "|", `\|`),
			val(r.TLCVM), val(r.XTLC), qemu, val(r.Limit), ratio, tg, met)
	}
	return b.String()
}
