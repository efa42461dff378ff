package suite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"tlcvm/bench/report"
	"tlcvm/bench/stats"
)

// Side names, as used in records.
const (
	TLCVM = "tlcvm"
	QEMU  = "qemu"
)

// ErrOptions means Options were invalid.
var ErrOptions = errors.New("suite: invalid options")

// Side is one emulator under test.
type Side struct {
	Name string // TLCVM or QEMU
	Bin  string
	// MemExtra is appended to the memory benchmark's command line, e.g.
	// -fw_cfg name=opt/tlcvm/workload,string=idle for tlcvm.
	MemExtra []string
}

// Options configure a run. Zero values take the defaults noted.
type Options struct {
	TLCVM, QEMU Side
	N           int           // start-up runs per side and machine (20)
	Warmup      int           // discarded start-up runs per side first (1)
	RTDuration  time.Duration // length of one round-trip measurement (2 s), unless RTCount > 0
	RTCount     int           // round trips per measurement instead of a duration
	RTReps      int           // round-trip measurements per side (3)
	MemReps     int           // memory measurements per side (3)
	MemSize     string        // -m for start-up pc and memory ("4G")
	SMP         int           // -smp for memory (4)
	Idle        time.Duration // idle time before reading memory (1 s)
	Timeout     time.Duration // per step: greeting, running, quit (60 s)
	BaseDir     string        // run directories ("" = os.TempDir())
	Only        map[string]bool
	Progress    io.Writer       // one line per step; nil = silent
	Record      func(any) error // raw records; nil = dropped
}

func (o *Options) defaults() error {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&o.N, 20)
	def(&o.RTReps, 3)
	def(&o.MemReps, 3)
	def(&o.SMP, 4)
	if o.Warmup < 0 || o.N < 0 || o.RTReps < 0 || o.MemReps < 0 || o.RTCount < 0 {
		return fmt.Errorf("%w: negative count", ErrOptions)
	}
	if o.RTDuration == 0 {
		o.RTDuration = 2 * time.Second
	}
	if o.Idle == 0 {
		o.Idle = time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	if o.MemSize == "" {
		o.MemSize = "4G"
	}
	if o.TLCVM.Bin == "" || o.QEMU.Bin == "" {
		return fmt.Errorf("%w: both binaries are needed", ErrOptions)
	}
	o.TLCVM.Name, o.QEMU.Name = TLCVM, QEMU
	return nil
}

// Benchmark names for Options.Only.
const (
	BenchStartup = "startup"
	BenchRT      = "rt"
	BenchMemory  = "memory"
)

func (o *Options) wants(b string) bool { return len(o.Only) == 0 || o.Only[b] }

func (o *Options) progress(format string, a ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", a...)
	}
}

func (o *Options) record(r any) error {
	if o.Record == nil {
		return nil
	}
	return o.Record(r)
}

// SummaryRecord is the record written for each metric and side.
type SummaryRecord struct {
	Kind   string        `json:"kind"` // "summary"
	Metric string        `json:"metric"`
	Side   string        `json:"side"`
	Unit   string        `json:"unit"`
	Stats  stats.Summary `json:"stats"`
	Err    string        `json:"err,omitempty"`
}

// Run runs the selected benchmarks and returns the table rows.
func Run(ctx context.Context, o Options) ([]report.Row, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	var rows []report.Row
	if o.wants(BenchStartup) {
		for _, m := range startupMachines(o.MemSize) {
			r, err := runStartup(ctx, &o, m)
			rows = append(rows, r...)
			if err != nil {
				return rows, err
			}
		}
	}
	if o.wants(BenchRT) {
		r, err := runRT(ctx, &o)
		rows = append(rows, r...)
		if err != nil {
			return rows, err
		}
	}
	if o.wants(BenchMemory) {
		r, err := runMemory(ctx, &o)
		rows = append(rows, r...)
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// sides returns the two sides in the order of rep i: alternating, so that
// neither always runs first (after the other has warmed the page cache, or
// into a load spike).
func (o *Options) sides(i int) [2]*Side {
	if i%2 == 0 {
		return [2]*Side{&o.TLCVM, &o.QEMU}
	}
	return [2]*Side{&o.QEMU, &o.TLCVM}
}

// series collects one metric's samples per side, and the first error.
type series struct {
	metric, unit string
	samples      map[string][]float64
	errs         map[string]error
}

func newSeries(metric, unit string) *series {
	return &series{metric: metric, unit: unit, samples: map[string][]float64{}, errs: map[string]error{}}
}

func (s *series) failed(side string) bool { return s.errs[side] != nil }

// summaries records and returns the summary of each side (NaN-filled when
// a side has no samples).
func (s *series) summaries(o *Options) (map[string]stats.Summary, error) {
	out := map[string]stats.Summary{}
	for _, side := range []string{TLCVM, QEMU} {
		rec := SummaryRecord{Kind: "summary", Metric: s.metric, Side: side, Unit: s.unit}
		sum, err := stats.Summarize(s.samples[side])
		if err != nil {
			nan := math.NaN()
			sum = stats.Summary{Min: nan, Median: nan, P90: nan, Max: nan, Mean: nan, Stddev: nan}
			if s.errs[side] == nil {
				s.errs[side] = err
			}
		} else {
			rec.Stats = sum
		}
		if e := s.errs[side]; e != nil {
			rec.Err = e.Error()
		}
		out[side] = sum
		if err := o.record(rec); err != nil {
			return out, err
		}
	}
	return out, nil
}

// row builds a table row from one statistic of each side.
func (s *series) row(metric string, sum map[string]stats.Summary, pick func(stats.Summary) float64,
	digits int, tg report.Target) report.Row {
	r := report.Row{Metric: metric, TLCVM: pick(sum[TLCVM]), QEMU: pick(sum[QEMU]), Digits: digits, Target: tg}
	if e := s.errs[TLCVM]; e != nil && len(s.samples[TLCVM]) == 0 {
		r.TLCVMErr = short(e)
	}
	if e := s.errs[QEMU]; e != nil && len(s.samples[QEMU]) == 0 {
		r.QEMUErr = short(e)
	}
	return r
}

func short(err error) string {
	s := err.Error()
	if r := []rune(s); len(r) > 80 {
		s = string(r[:77]) + "…"
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
