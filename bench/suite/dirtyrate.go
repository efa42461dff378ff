package suite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"tlcvm/bench/emu"
	"tlcvm/bench/stats"
)

// RunDirtyRate ("tlcvm-bench dirtyrate", issue 11) measures how close calc-dirty-rate comes
// to the rate the workload is configured to dirty pages at (tlcvm only: QEMU 7.2 has no
// workload with a configured rate, and under TCG it crashes on the dirty-bitmap and
// dirty-ring modes). Per configured rate R MiB/s, with calc-time T:
//
//	tlcvm -m ws+512M -smp N -fw_cfg …ws=WS,,rate=R   (WS ≥ 1.5·R·T: no page is rewritten
//	                                                  within one period, which would count once)
//	  xp 0x500 ≥ 2 (filled, two passes) ─ per rep, page-sampling (sample-pages 16384) and
//	  dirty-bitmap in turns: calc-dirty-rate ─ query-dirty-rate every 20 ms until measured
//	tlcvm … -accel tcg,x-dirty-ring-size=4096: the same with dirty-ring (the mode QEMU allows
//	  with a dirty ring, where dirty-bitmap is refused)
//
// While it polls, the harness also reads the workload's own counters (xp: vCPU i's pages
// written at 0x508+16·i, which the guest publishes at the end of each pass over its share
// of the working set) and timestamps each change: the pages between the first and the last
// change seen, over the time between them, is the rate the workload achieved, measured
// without the dirty log.

// ErrDirtyRate means a step of the dirty-rate benchmark went wrong.
var ErrDirtyRate = errors.New("suite: dirtyrate")

// calc-dirty-rate modes.
const (
	ModePageSampling = "page-sampling"
	ModeDirtyBitmap  = "dirty-bitmap"
	ModeDirtyRing    = "dirty-ring"
)

// DrOptions configure RunDirtyRate. Zero values take the defaults noted.
type DrOptions struct {
	TLCVM       string
	BaseDir     string
	Rates       []int // configured rates, MiB/s (1, 10, 100, 1000)
	CalcTimes   []int // calc-time per rate, s (10 below 100 MiB/s, else 2)
	Reps        int   // measurements per rate and mode (3)
	SMP         int   // vCPUs (1)
	SamplePages int   // page-sampling's sample-pages (16384, QEMU's most)
	RingSize    int   // x-dirty-ring-size of the dirty-ring guest (4096; -1: no dirty-ring part)
	// CeilingWSMiB is the working set of the last guest, rate=max, whose counters show how
	// fast the workload can dirty pages on this host (1024; -1: no ceiling part); it runs
	// CeilingWindow (3 s) after its first pass.
	CeilingWSMiB  int
	CeilingWindow time.Duration
	Cap           time.Duration
	Poll          time.Duration // query-dirty-rate and counter poll (20 ms)
	Output
}

func (o *DrOptions) defaults() error {
	if len(o.Rates) == 0 {
		o.Rates = []int{1, 10, 100, 1000}
	}
	if len(o.CalcTimes) == 0 {
		for _, r := range o.Rates {
			o.CalcTimes = append(o.CalcTimes, map[bool]int{true: 10, false: 2}[r < 100])
		}
	}
	if len(o.CalcTimes) != len(o.Rates) {
		return fmt.Errorf("%w: one calc-time per rate", ErrOptions)
	}
	for i, r := range o.Rates {
		if r <= 0 || o.CalcTimes[i] < 1 || o.CalcTimes[i] > 60 {
			return fmt.Errorf("%w: rates > 0, calc-time 1..60 s", ErrOptions)
		}
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&o.Reps, 3)
	def(&o.SMP, 1)
	def(&o.SamplePages, 16384)
	def(&o.RingSize, 4096)
	def(&o.CeilingWSMiB, 1024)
	if o.CeilingWindow == 0 {
		o.CeilingWindow = 3 * time.Second
	}
	if o.Cap == 0 {
		o.Cap = 120 * time.Second
	}
	if o.Poll == 0 {
		o.Poll = 20 * time.Millisecond
	}
	if o.TLCVM == "" {
		return fmt.Errorf("%w: need the tlcvm binary", ErrOptions)
	}
	return nil
}

func (o *DrOptions) progress(format string, a ...any) { o.say("dirtyrate", format, a...) }

// DrWSMiB is the working set for rate MiB/s and calc-time s: 1.5 periods' worth, at
// least 16 MiB.
func DrWSMiB(rate, calcTime int) int { return max(16, (3*rate*calcTime+1)/2) }

// DrMeasure is one calc-dirty-rate.
type DrMeasure struct {
	Kind     string          `json:"kind"` // "dirtyrate"
	Rate     int             `json:"rate_mib_s"`
	Mode     string          `json:"mode"`
	CalcTime int             `json:"calc_time_s"`
	Rep      int             `json:"rep"`
	Measured float64         `json:"dirty_rate"` // query-dirty-rate's dirty-rate (MiB/s; -1: none or failed)
	WallMS   float64         `json:"wall_ms"`    // calc-dirty-rate sent → measured seen
	Reply    json.RawMessage `json:"reply,omitempty"`
	Err      string          `json:"err,omitempty"`
}

// DrGuest is one guest of the run, with the rate its counters show.
type DrGuest struct {
	Kind     string   `json:"kind"` // "dirtyrate-guest"
	Rate     int      `json:"rate_mib_s"`
	Ring     bool     `json:"ring"`
	Args     []string `json:"args"`
	FillMS   float64  `json:"fill_ms"`         // start → pass counter ≥ 2 (ceiling: ≥ 1)
	Changes  []int    `json:"counter_changes"` // per vCPU: counter changes seen
	Achieved float64  `json:"-"`               // from the counters (NaN: fewer than 2 changes of a vCPU)
	// AchievedJSON is Achieved in the record (null for NaN).
	AchievedJSON *float64 `json:"achieved_mib_s"`
	Err          string   `json:"err,omitempty"`
}

// DrResult is what RunDirtyRate measured.
type DrResult struct {
	Opts     DrOptions
	Measures []DrMeasure
	Guests   []DrGuest
	Ceiling  *DrGuest // the rate=max guest (Rate 0), nil when left out
}

// RunDirtyRate runs every rate's guests (see the top of dirtyrate.go). A guest that fails
// is recorded with its error and the run goes on; only a cancelled ctx or a failing Record
// stops it.
func RunDirtyRate(ctx context.Context, o DrOptions) (*DrResult, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	res := &DrResult{Opts: o}
	for i, rate := range o.Rates {
		for _, ring := range []bool{false, true} {
			if ring && o.RingSize < 0 {
				continue
			}
			if err := ctx.Err(); err != nil {
				return res, err
			}
			g, err := o.runGuest(ctx, res, rate, o.CalcTimes[i], ring)
			if g != nil {
				res.Guests = append(res.Guests, *g)
				if rerr := o.record(g); rerr != nil {
					return res, rerr
				}
			}
			if err != nil && ctx.Err() != nil {
				return res, ctx.Err()
			}
		}
	}
	if o.CeilingWSMiB > 0 {
		res.Ceiling = o.runCeiling(ctx)
		if err := o.record(res.Ceiling); err != nil {
			return res, err
		}
	}
	return res, ctx.Err()
}

// runCeiling runs a guest dirtying its working set as fast as it can (rate=max) and reads
// the rate from its counters over CeilingWindow.
func (o *DrOptions) runCeiling(ctx context.Context) *DrGuest {
	g := &DrGuest{Kind: "dirtyrate-guest", Achieved: nan, Args: []string{"-machine", "pc", "-m",
		strconv.Itoa(o.CeilingWSMiB + 512), "-smp", strconv.Itoa(o.SMP), "-nodefaults", "-display", "none", "-fw_cfg",
		fmt.Sprintf("name=opt/tlcvm/workload,string=ws=%dM,,rate=max", o.CeilingWSMiB)}}
	err := func() error {
		v, err := startVM(ctx, CkTLCVM, o.TLCVM, g.Args, o.BaseDir, o.Cap, 2*o.Cap+o.CeilingWindow)
		if err != nil {
			return err
		}
		defer v.stop()
		if err := v.waitU64(ctx, addrPass, 1, o.Cap); err != nil {
			return err
		}
		g.FillMS = ms(time.Since(v.t0))
		var cs counters
		for end := time.Now().Add(o.CeilingWindow); time.Now().Before(end); {
			pages, err := v.readCounters(o.SMP)
			if err != nil {
				return err
			}
			cs.observe(time.Now(), pages)
			if err := sleepCtx(ctx, o.Poll, v.p); err != nil {
				return err
			}
		}
		g.Changes, g.Achieved = cs.changes, cs.rate()
		if finite(g.Achieved) {
			g.AchievedJSON = &g.Achieved
		}
		return nil
	}()
	if err != nil {
		g.Err = err.Error()
	}
	o.progress("ceiling (rate=max, ws=%d MiB): the workload's counters: %.0f MiB/s%s", o.CeilingWSMiB, g.Achieved,
		errSuffix(g.Err))
	return g
}

// DrCeiling is the sentence under the table about the ceiling guest ("" when left out).
func DrCeiling(res *DrResult) string {
	if res == nil || res.Ceiling == nil {
		return ""
	}
	g, o := res.Ceiling, res.Opts
	what := fmt.Sprintf("%.0f MiB/s", g.Achieved)
	switch {
	case g.Err != "":
		what = "failed: " + short(errors.New(g.Err))
	case !finite(g.Achieved):
		what = "not measured (its counters changed fewer than twice)"
	}
	return fmt.Sprintf("\nWhat this host can do: the workload at `rate=max` (`ws=%dM`, %d vCPU), its counters over %v: %s.\n",
		o.CeilingWSMiB, o.SMP, o.CeilingWindow, what)
}

// DrArgs is the guest's command line for rate MiB/s with calc-time s.
func (o *DrOptions) DrArgs(rate, calcTime int, ring bool) []string {
	ws := DrWSMiB(rate, calcTime)
	args := []string{"-machine", "pc", "-m", strconv.Itoa(ws + 512), "-smp", strconv.Itoa(o.SMP), "-nodefaults",
		"-display", "none", "-fw_cfg", fmt.Sprintf("name=opt/tlcvm/workload,string=ws=%dM,,rate=%dM", ws, rate)}
	if ring {
		args = append(args, "-accel", fmt.Sprintf("tcg,x-dirty-ring-size=%d", o.RingSize))
	}
	return args
}

// counters tracks the workload's pages-written counters and when they changed.
type counters struct {
	first, last []point
	prev        []uint64
	changes     []int
}

type point struct {
	t     time.Time
	pages uint64
}

func (c *counters) observe(t time.Time, pages []uint64) {
	if c.prev == nil {
		c.prev, c.first, c.last, c.changes = pages, make([]point, len(pages)), make([]point, len(pages)), make([]int, len(pages))
		return
	}
	for i, p := range pages {
		if p == c.prev[i] {
			continue
		}
		c.prev[i] = p
		if c.changes[i] == 0 {
			c.first[i] = point{t, p}
		}
		c.last[i] = point{t, p}
		c.changes[i]++
	}
}

// enough says whether every vCPU's counter changed at least n times.
func (c *counters) enough(n int) bool {
	if c.prev == nil {
		return false
	}
	for _, k := range c.changes {
		if k < n {
			return false
		}
	}
	return true
}

// rate is the sum over vCPUs of pages between the first and last change over the time
// between them, in MiB/s; NaN when a vCPU changed fewer than twice.
func (c *counters) rate() float64 {
	if c.prev == nil {
		return nan
	}
	var sum float64
	for i := range c.prev {
		if c.changes[i] < 2 {
			return nan
		}
		d := c.last[i].t.Sub(c.first[i].t).Seconds()
		sum += float64(c.last[i].pages-c.first[i].pages) * 4096 / mib / d
	}
	return sum
}

// readCounters reads the smp vCPUs' pages-written counters with one xp.
func (v *vm) readCounters(smp int) ([]uint64, error) {
	raw, err := v.exec("human-monitor-command", map[string]string{"command-line": fmt.Sprintf("xp /%dgx %#x", 2*smp, addrPass)})
	if err != nil {
		return nil, err
	}
	var out string
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("%w: xp: %v", ErrDirtyRate, err)
	}
	words, err := xpWords(out)
	if err != nil {
		return nil, err
	}
	if len(words) < 2*smp {
		return nil, fmt.Errorf("%w: xp: %d words in %q", ErrDirtyRate, len(words), out)
	}
	pages := make([]uint64, smp)
	for i := range pages {
		pages[i] = words[2*i+1]
	}
	return pages, nil
}

// xpWords parses HMP xp /Ngx output ("0000000000000500: 0x0000000000000003 0x…" lines).
func xpWords(out string) ([]uint64, error) {
	var words []uint64
	for _, line := range strings.Split(out, "\n") {
		_, vals, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(vals) {
			n, err := strconv.ParseUint(strings.TrimPrefix(f, "0x"), 16, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: xp: %q", ErrDirtyRate, line)
			}
			words = append(words, n)
		}
	}
	return words, nil
}

// runGuest starts one guest, measures its modes Reps times each, and returns it with the
// rate its counters show.
func (o *DrOptions) runGuest(ctx context.Context, res *DrResult, rate, calcTime int, ring bool) (*DrGuest, error) {
	g := &DrGuest{Kind: "dirtyrate-guest", Rate: rate, Ring: ring, Args: o.DrArgs(rate, calcTime, ring), Achieved: nan}
	modes := []string{ModePageSampling, ModeDirtyBitmap}
	if ring {
		modes = []string{ModeDirtyRing}
	}
	fail := func(err error) (*DrGuest, error) {
		g.Err = err.Error()
		o.progress("%d MiB/s ring=%v: ERROR %v", rate, ring, err)
		return g, err
	}
	life := o.Cap + time.Duration(o.Reps*len(modes))*(time.Duration(calcTime)*time.Second+o.Cap)
	v, err := startVM(ctx, CkTLCVM, o.TLCVM, g.Args, o.BaseDir, o.Cap, life)
	if err != nil {
		return fail(err)
	}
	defer v.stop()
	// Two passes: after the fill, a guest that fell behind its pace (a slow fill on a loaded
	// host) writes the backlog at full speed, and a measurement then reads its catch-up
	// (1,314 MiB/s at 1,000 once); the second pass is paced from start to end.
	if err := v.waitU64(ctx, addrPass, 2, o.Cap); err != nil {
		return fail(err)
	}
	g.FillMS = ms(time.Since(v.t0))
	o.progress("%d MiB/s ring=%v: ws=%d MiB filled and rewritten twice in %.0f ms", rate, ring,
		DrWSMiB(rate, calcTime), g.FillMS)
	var cs counters
	for rep := 0; rep < o.Reps; rep++ {
		for k := range modes {
			mode := modes[(k+rep)%len(modes)]
			m := DrMeasure{Kind: "dirtyrate", Rate: rate, Mode: mode, CalcTime: calcTime, Rep: rep, Measured: -1}
			err := o.measure(ctx, v, &m, &cs)
			if err != nil {
				m.Err = err.Error()
			}
			res.Measures = append(res.Measures, m)
			o.progress("%d MiB/s %s rep %d: %v MiB/s (%.2f×)%s", rate, mode, rep, m.Measured,
				m.Measured/float64(rate), errSuffix(m.Err))
			if rerr := o.record(m); rerr != nil {
				return g, rerr
			}
			if err != nil && ctx.Err() != nil {
				return g, ctx.Err()
			}
		}
	}
	// Three changes per vCPU at least (two whole passes between the first and the last).
	passes := time.Duration(3*DrWSMiB(rate, calcTime)/rate+1) * time.Second
	for end := time.Now().Add(passes); !cs.enough(3) && time.Now().Before(end); {
		pages, err := v.readCounters(o.SMP)
		if err != nil {
			return fail(err)
		}
		cs.observe(time.Now(), pages)
		if err := sleepCtx(ctx, o.Poll, v.p); err != nil {
			return fail(err)
		}
	}
	g.Changes, g.Achieved = cs.changes, cs.rate()
	if finite(g.Achieved) {
		g.AchievedJSON = &g.Achieved
	}
	o.progress("%d MiB/s ring=%v: the workload's counters: %.1f MiB/s (changes seen %v)", rate, ring, g.Achieved, g.Changes)
	return g, nil
}

// measure runs one calc-dirty-rate to its end, reading the counters at every poll.
func (o *DrOptions) measure(ctx context.Context, v *vm, m *DrMeasure, cs *counters) error {
	args := map[string]any{"calc-time": m.CalcTime, "mode": m.Mode}
	if m.Mode == ModePageSampling {
		args["sample-pages"] = o.SamplePages
	}
	t0 := time.Now()
	if _, err := v.exec("calc-dirty-rate", args); err != nil {
		return err
	}
	deadline := t0.Add(time.Duration(m.CalcTime)*time.Second + o.Cap)
	for {
		pages, err := v.readCounters(o.SMP)
		if err != nil {
			return err
		}
		cs.observe(time.Now(), pages)
		raw, err := v.exec("query-dirty-rate", nil)
		if err != nil {
			return err
		}
		var q struct {
			Status    string  `json:"status"`
			DirtyRate float64 `json:"dirty-rate"`
		}
		if err := json.Unmarshal(raw, &q); err != nil {
			return fmt.Errorf("%w: query-dirty-rate: %v", ErrDirtyRate, err)
		}
		if q.Status == "measured" {
			m.WallMS, m.Measured, m.Reply = ms(time.Since(t0)), q.DirtyRate, raw
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %w: still %s", ErrDirtyRate, emu.ErrTimeout, q.Status)
		}
		if err := sleepCtx(ctx, o.Poll, v.p); err != nil {
			return err
		}
	}
}

// DrRow is one line of the dirty-rate table: one configured rate and mode.
type DrRow struct {
	Rate, CalcTime int
	Mode           string
	Measured       []float64 // each rep's dirty-rate (failed reps left out)
	Ratio          stats.Summary
	Achieved       float64 // the workload's counters, MiB/s (NaN: not enough changes)
	VsAchieved     float64 // median measured ÷ achieved
	Met            bool    // every rep within 10 % of the configured rate
	Err            string
}

// DrRows turns the result into one row per rate and mode, in the order measured.
func DrRows(res *DrResult) []DrRow {
	if res == nil {
		return nil
	}
	var rows []DrRow
	index := map[string]int{}
	for _, m := range res.Measures {
		key := fmt.Sprintf("%d/%s", m.Rate, m.Mode)
		i, ok := index[key]
		if !ok {
			i = len(rows)
			index[key] = i
			rows = append(rows, DrRow{Rate: m.Rate, CalcTime: m.CalcTime, Mode: m.Mode, Achieved: nan, VsAchieved: nan})
		}
		if m.Err != "" {
			rows[i].Err = m.Err
			continue
		}
		rows[i].Measured = append(rows[i].Measured, m.Measured)
	}
	for i := range rows {
		r := &rows[i]
		for _, g := range res.Guests {
			if g.Rate == r.Rate && g.Ring == (r.Mode == ModeDirtyRing) {
				r.Achieved = g.Achieved
			}
		}
		ratios := make([]float64, len(r.Measured))
		r.Met = len(r.Measured) > 0 && r.Err == ""
		for k, v := range r.Measured {
			ratios[k] = v / float64(r.Rate)
			r.Met = r.Met && math.Abs(ratios[k]-1) <= 0.1
		}
		if s, err := stats.Summarize(ratios); err == nil {
			r.Ratio = s
			if finite(r.Achieved) && r.Achieved > 0 {
				r.VsAchieved = s.Median * float64(r.Rate) / r.Achieved
			}
		}
	}
	return rows
}

// DrMarkdown is the dirty-rate table.
func DrMarkdown(rows []DrRow) string {
	var b strings.Builder
	b.WriteString("| configured (MiB/s) | mode | calc-time | measured, each rep (MiB/s) | measured ÷ configured: median [min–max] | stddev | " +
		"workload's counters (MiB/s) | median ÷ counters | target: every rep within 10 % | met? |\n" +
		"|---:|---|---:|---|---|---:|---:|---:|---|---|\n")
	for _, r := range rows {
		vals := make([]string, len(r.Measured))
		for i, v := range r.Measured {
			vals[i] = strconv.FormatFloat(v, 'f', -1, 64)
		}
		meas := strings.Join(vals, ", ")
		if r.Err != "" {
			meas += " (failed: " + strings.ReplaceAll(short(errors.New(r.Err)), "|", "\\|") + ")"
		}
		ratio, sd := "—", "—"
		if r.Ratio.N > 0 {
			ratio = fmt.Sprintf("%.3f [%.3f–%.3f]", r.Ratio.Median, r.Ratio.Min, r.Ratio.Max)
			sd = fmt.Sprintf("%.3f", r.Ratio.Stddev)
		}
		ach, vs := "—", "—"
		if finite(r.Achieved) {
			ach = fmt.Sprintf("%.2f", r.Achieved)
		}
		if finite(r.VsAchieved) {
			vs = fmt.Sprintf("%.3f", r.VsAchieved)
		}
		met := map[bool]string{true: "yes", false: "**no**"}[r.Met]
		fmt.Fprintf(&b, "| %d | %s | %d s | %s | %s | %s | %s | %s | ±10 %% | %s |\n", r.Rate, r.Mode, r.CalcTime, meas,
			ratio, sd, ach, vs, met)
	}
	return b.String()
}
