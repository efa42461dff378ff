package suite

import (
	"fmt"
	"strconv"
	"strings"

	"tlcvm/bench/report"
)

// How an FcRow compares Value with Ref.
const (
	FcShare    = "share"    // Value ÷ Ref, shown as a percentage
	FcTimes    = "times"    // Value ÷ Ref, shown as report.FormatRatio does
	FcSlowdown = "slowdown" // 1 − Value ÷ Ref, as a percentage
)

// FcRow is one row of the file-checkpoint table: a tlcvm figure, what it is compared
// with (Ref, named by RefText), how (Cmp), and the target.
type FcRow struct {
	Metric  string  `json:"metric"`
	Value   float64 `json:"value"`
	Ref     float64 `json:"ref"`
	RefText string  `json:"ref_text,omitempty"`
	Cmp     string  `json:"cmp,omitempty"` // FcShare, FcTimes, FcSlowdown or ""
	Digits  int     `json:"-"`
	Target  string  `json:"target,omitempty"`
	// Absolute: the target judges Value itself, not the comparison.
	Absolute bool   `json:"absolute,omitempty"`
	Met      *bool  `json:"met,omitempty"`
	Err      string `json:"err,omitempty"`
}

// Compared returns the comparison Cmp names, or NaN.
func (r FcRow) Compared() float64 {
	if r.Cmp == "" || !finite(r.Value) || !finite(r.Ref) || r.Ref == 0 {
		return nan
	}
	if r.Cmp == FcSlowdown {
		return 1 - r.Value/r.Ref
	}
	return r.Value / r.Ref
}

func (r *FcRow) judge(ok func(float64) bool) {
	x := r.Value
	if r.Cmp != "" && !r.Absolute {
		x = r.Compared()
	}
	if finite(x) {
		m := ok(x)
		r.Met = &m
	}
}

func gib(mib int) string {
	if mib < 1024 {
		return fmt.Sprintf("%d MiB", mib)
	}
	if mib%1024 == 0 {
		return fmt.Sprintf("%d GiB", mib/1024)
	}
	return fmt.Sprintf("%.1f GiB", float64(mib)/1024)
}

func ckMS(c *FcCheckpoint) float64 {
	if c.TotalMS == nil || c.Status != "completed" {
		return nan
	}
	return float64(*c.TotalMS)
}

func ckMB(c *FcCheckpoint) float64 {
	if c.Status != "completed" || c.Written <= 0 {
		return nan
	}
	return float64(c.Written) / 1e6
}

func rsMS(r *FcRestore) float64 {
	if r.Err != "" || r.ReadyMS <= 0 {
		return nan
	}
	return r.ReadyMS
}

// FcRows turns a run into the table's rows, with each target judged.
func FcRows(res *FcResult) []FcRow {
	o := res.Opts
	var rows []FcRow
	add := func(r FcRow) *FcRow {
		rows = append(rows, r)
		return &rows[len(rows)-1]
	}
	dd := res.DD.MBs
	add(FcRow{Metric: fmt.Sprintf("dd if=/dev/zero bs=1M count=%d into a file, page cache, no fsync (MB/s)", o.DDMiB),
		Value: dd, Ref: nan, Err: res.DD.Err})

	guest := fmt.Sprintf("%s guest, %s written, paused", gib(o.MemMiB), gib(o.FillMiB+o.WSMiB))
	first, second, live := res.ck("first"), res.ck("second"), res.ck("live")
	streamed, qemu := res.ck("streamed"), res.ck("qemu")
	add(FcRow{Metric: guest + ": first mapped-ram checkpoint (x-tlc), total-time (ms)", Value: ckMS(first), Ref: nan, Err: first.Err})
	add(FcRow{Metric: guest + ": first mapped-ram checkpoint, written-bytes (MB)", Value: ckMB(first), Ref: nan, Digits: 1})
	r := add(FcRow{Metric: guest + ": first mapped-ram checkpoint, written-bytes ÷ total-time (MB/s)", Value: first.MBs(),
		Ref: dd, RefText: "dd", Cmp: FcShare, Target: "≥ 80 % of dd"})
	r.judge(func(x float64) bool { return x >= 0.8 })
	add(FcRow{Metric: guest + ": streamed file: checkpoint (mapped-ram off, x-tlc), total-time (ms)", Value: ckMS(streamed), Ref: nan, Err: streamed.Err})
	add(FcRow{Metric: guest + ": streamed file: checkpoint, bytes ÷ total-time (MB/s)", Value: streamed.MBs(), Ref: dd, RefText: "dd", Cmp: FcShare})
	if res.Checkpoints["qemu"] != nil {
		qg := fmt.Sprintf("QEMU 7.2, %s guest (kit's dirty.elf, ws=%d clamped below 4 GiB), paused", gib(o.MemMiB), o.QEMUWSMiB)
		add(FcRow{Metric: qg + ": migrate exec:cat > FILE, total-time (ms)", Value: ckMS(qemu), Ref: nan, Err: qemu.Err})
		add(FcRow{Metric: qg + ": stream bytes ÷ total-time (MB/s)", Value: qemu.MBs(), Ref: dd, RefText: "dd", Cmp: FcShare})
	}

	inc := "incremental"
	if second.File != nil && !second.File.Incremental {
		inc = "NOT incremental: " + second.File.Reason
	}
	sg := fmt.Sprintf("second checkpoint, same file, %s dirtied for %v (%s)", gib(o.WSMiB), o.Dirty, inc)
	r = add(FcRow{Metric: sg + ": total-time (ms) vs the first's", Value: ckMS(second), Ref: ckMS(first), RefText: "first",
		Cmp: FcShare, Target: "≤ 5 % of the first", Err: second.Err})
	r.judge(func(x float64) bool { return x <= 0.05 })
	r = add(FcRow{Metric: sg + ": written-bytes (MB) vs the first's", Value: ckMB(second), Ref: ckMB(first), RefText: "first",
		Cmp: FcShare, Target: "≤ 5 % of the first", Digits: 1})
	r.judge(func(x float64) bool { return x <= 0.05 })
	add(FcRow{Metric: "third checkpoint, same file, guest running (x-tlc live; restored below): total-time (ms)",
		Value: ckMS(live), Ref: nan, Err: live.Err})
	add(FcRow{Metric: "third checkpoint: written-bytes (MB)", Value: ckMB(live), Ref: nan, Digits: 1})

	qr := res.rs("qemu")
	qref, qtext := rsMS(qr), "QEMU 7.2 exec:cat"
	if res.Restores["qemu"] == nil {
		qref, qtext = nan, ""
	}
	cmpQ := func(r FcRow) FcRow {
		r.Ref, r.RefText = qref, qtext
		if qtext != "" {
			r.Cmp = FcTimes
		}
		return r
	}
	r4, rb, big := res.rs("4G"), res.rs("4G-before-run"), res.rs("big")
	r = add(cmpQ(FcRow{Metric: fmt.Sprintf("restore of the %s checkpoint, -incoming file: (populate background): exec → running, median of %d (ms)",
		gib(o.MemMiB), o.RestoreReps), Value: rsMS(r4), Digits: 1, Target: "≤ 20 ms", Absolute: true, Err: r4.Err}))
	r.judge(func(x float64) bool { return x <= 20 })
	bigW := res.ck("big")
	r = add(cmpQ(FcRow{Metric: fmt.Sprintf("restore of a %s checkpoint (%s written, %.0f MB on disk), -incoming file:: exec → running, median of %d (ms)",
		gib(o.BigMemMiB), gib(o.BigFillMiB+o.WSMiB), float64(bigW.DiskBytes)/1e6, o.RestoreReps), Value: rsMS(big), Digits: 1,
		Target: "≤ 20 ms", Absolute: true, Err: strings.TrimSpace(bigW.Err + " " + big.Err)}))
	r.judge(func(x float64) bool { return x <= 20 })
	add(cmpQ(FcRow{Metric: fmt.Sprintf("restore of the %s checkpoint, populate before-run (-incoming defer): exec → running, median of %d (ms)",
		gib(o.MemMiB), o.RestoreReps), Value: rsMS(rb), Digits: 1, Err: rb.Err}))
	add(FcRow{Metric: "… of which migrate-incoming → running (ms)", Value: nanIfZero(rb.IncomMS), Ref: nan, Digits: 1})
	if res.Restores["qemu"] != nil {
		add(FcRow{Metric: fmt.Sprintf("QEMU 7.2 restoring its %s checkpoint (%.0f MB), -incoming exec:cat FILE: exec → out of inmigrate (ms)",
			gib(o.MemMiB), float64(qr.FileBytes)/1e6), Value: rsMS(qr), Ref: nan, Err: qr.Err})
	}

	base := res.rate("baseline")
	rg := fmt.Sprintf("-smp 1, ws=%dM rate=max", o.RateWSMiB)
	add(FcRow{Metric: rg + ", never checkpointed: pages written per second", Value: base.Rate, Ref: nan, Err: base.Err})
	for _, pop := range []string{"background", "none"} {
		x := res.rate(pop)
		m := fmt.Sprintf("%s, first %v after a mapped restore (running, query-migrate completed), populate %s: pages written per second", rg, o.Window, pop)
		if f := x.FileEnd; f != nil {
			m += fmt.Sprintf(" (then pages-eager %d, pages-lazy %d, pages-left %d)", f.PagesEager, f.PagesLazy, f.PagesLeft)
		}
		r := add(FcRow{Metric: m, Value: x.Rate, Ref: base.Rate, RefText: "never checkpointed", Cmp: FcSlowdown,
			Err: strings.TrimSpace(res.rs("rate-"+pop).Err + " " + x.Err)})
		if pop == "background" {
			r.Target = "slowdown < 20 %"
			r.judge(func(x float64) bool { return x < 0.2 })
		}
	}
	return rows
}

func nanIfZero(v float64) float64 {
	if v == 0 {
		return nan
	}
	return v
}

// FcMarkdown renders the file-checkpoint table.
func FcMarkdown(rows []FcRow) string {
	var b strings.Builder
	b.WriteString("| metric | tlcvm | compared with | comparison | target | met? |\n")
	b.WriteString("|---|---:|---:|---:|---|---|\n")
	for _, r := range rows {
		val := func(v float64) string {
			if !finite(v) {
				return "—"
			}
			return strconv.FormatFloat(v, 'f', r.Digits, 64)
		}
		v := val(r.Value)
		if r.Err != "" && !finite(r.Value) {
			v = "error: " + r.Err
			if rs := []rune(v); len(rs) > 120 {
				v = string(rs[:117]) + "…"
			}
		}
		ref := "—"
		if finite(r.Ref) {
			ref = val(r.Ref)
			if r.RefText != "" {
				ref += " (" + r.RefText + ")"
			}
		}
		cmp := "—"
		if x := r.Compared(); finite(x) {
			switch r.Cmp {
			case FcShare:
				cmp = strconv.FormatFloat(100*x, 'f', 1, 64) + " %"
			case FcSlowdown:
				cmp = strconv.FormatFloat(100*x, 'f', 1, 64) + " % slower"
			default:
				cmp = report.FormatRatio(x)
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
		esc := strings.NewReplacer("|", `\|`, "\n", " ")
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", esc.Replace(r.Metric), esc.Replace(v), ref, cmp, tg, met)
	}
	return b.String()
}
