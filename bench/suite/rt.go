package suite

import (
	"context"
	"time"

	"tlcvm/bench/emu"
	"tlcvm/bench/report"
	"tlcvm/bench/stats"
)

// rtRequest is sent as is: what a QMP client writes for query-status.
var rtRequest = []byte(`{"execute": "query-status"}` + "\r\n")

// rtWarmup round trips precede every measurement.
const rtWarmup = 200

// RTRecord is one round-trip measurement.
type RTRecord struct {
	Kind    string        `json:"kind"` // "qmp-rt"
	Side    string        `json:"side"`
	Rep     int           `json:"rep"`
	Count   int           `json:"count"`
	Seconds float64       `json:"seconds"`
	PerSec  float64       `json:"per_s"`
	LatUS   stats.Summary `json:"latency_us"`
	Events  int           `json:"events_skipped"`
	Err     string        `json:"err,omitempty"`
}

func oneRT(ctx context.Context, o *Options, s *Side, rep int) (RTRecord, error) {
	rec := RTRecord{Kind: "qmp-rt", Side: s.Name, Rep: rep}
	p, err := emu.Launch(emu.Config{Bin: s.Bin, Args: startupMachines(o.MemSize)[0].args, BaseDir: o.BaseDir})
	if err != nil {
		return rec, err
	}
	conn, _, _, err := p.Connect(ctx, o.Timeout)
	defer func() { _ = p.Stop(conn, o.Timeout) }()
	if err != nil {
		return rec, err
	}
	if err := conn.Negotiate(); err != nil {
		return rec, err
	}
	// A dead or stuck server must not hang the harness.
	_ = conn.SetDeadline(time.Now().Add(o.Timeout + o.RTDuration))
	for i := 0; i < rtWarmup; i++ {
		if err := conn.RoundTrip(rtRequest); err != nil {
			return rec, err
		}
	}
	capHint := o.RTCount
	if capHint == 0 {
		capHint = 1 << 16
	}
	lat := make([]float64, 0, capHint)
	start := time.Now()
	last := start
	for {
		if err := conn.RoundTrip(rtRequest); err != nil {
			return rec, err
		}
		now := time.Now()
		lat = append(lat, float64(now.Sub(last))/float64(time.Microsecond))
		last = now
		if o.RTCount > 0 && len(lat) >= o.RTCount || o.RTCount == 0 && now.Sub(start) >= o.RTDuration {
			break
		}
	}
	elapsed := last.Sub(start).Seconds()
	rec.Count, rec.Seconds, rec.PerSec = len(lat), elapsed, float64(len(lat))/elapsed
	rec.LatUS, _ = stats.Summarize(lat)
	rec.Events = conn.Events()
	return rec, nil
}

func runRT(ctx context.Context, o *Options) ([]report.Row, error) {
	ser := newSeries("qmp-rt-query-status", "1/s")
	for i := 0; i < o.RTReps; i++ {
		for _, s := range o.sides(i) {
			if ser.failed(s.Name) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			rec, err := oneRT(ctx, o, s, i)
			if err != nil {
				rec.Err = err.Error()
				ser.errs[s.Name] = err
				o.progress("qmp-rt %s rep %d: %v", s.Name, i, err)
			} else {
				ser.samples[s.Name] = append(ser.samples[s.Name], rec.PerSec)
			}
			if err := o.record(rec); err != nil {
				return nil, err
			}
		}
	}
	sum, err := ser.summaries(o)
	if err != nil {
		return nil, err
	}
	o.progress("qmp-rt: tlcvm median %.0f/s, qemu median %.0f/s", sum[TLCVM].Median, sum[QEMU].Median)
	return []report.Row{
		ser.row("QMP round trips/s (query-status, 1 connection, sequential): median", sum,
			func(s stats.Summary) float64 { return s.Median }, 0,
			report.Target{Kind: report.RatioAtLeast, Value: 10, Text: "≥ 10× QEMU"}),
	}, nil
}
