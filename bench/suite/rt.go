package suite

import (
	"context"
	"time"

	"tlcvm/bench/emu"
	"tlcvm/bench/qmpc"
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
	p, conn, err := launchNegotiated(ctx, emu.Config{Bin: s.Bin, Args: startupMachines(o.MemSize)[0].args, BaseDir: o.BaseDir}, o.Timeout)
	defer func() { _ = p.Stop(conn, o.Timeout) }()
	if err != nil {
		return rec, err
	}
	lat, err := roundTrips(conn, o.RTCount, o.RTDuration, o.Timeout, nil)
	if err != nil {
		return rec, err
	}
	rec.Count, rec.Seconds, rec.PerSec = len(lat), sum(lat)/1e6, float64(len(lat))/(sum(lat)/1e6)
	rec.LatUS, _ = stats.Summarize(lat)
	rec.Events = conn.Events()
	return rec, nil
}

// launchNegotiated starts an emulator, connects to its QMP socket and negotiates. The caller
// must Stop the process (a nil *emu.Process when the launch itself failed is fine: Stop on it
// is a no-op).
func launchNegotiated(ctx context.Context, cfg emu.Config, timeout time.Duration) (*emu.Process, *qmpc.Conn, error) {
	p, err := emu.Launch(cfg)
	if err != nil {
		return nil, nil, err
	}
	conn, _, _, err := p.Connect(ctx, timeout)
	if err == nil {
		err = conn.Negotiate()
	}
	return p, conn, err
}

// roundTrips sends query-status one at a time, after rtWarmup unmeasured ones, count times
// (or for d when count is 0), and returns the latencies in µs. started, when set, is called
// once the warm-up is over.
func roundTrips(conn *qmpc.Conn, count int, d, timeout time.Duration, started func()) ([]float64, error) {
	// A dead or stuck server must not hang the harness.
	_ = conn.SetDeadline(time.Now().Add(timeout + d))
	for i := 0; i < rtWarmup; i++ {
		if err := conn.RoundTrip(rtRequest); err != nil {
			return nil, err
		}
	}
	if started != nil {
		started()
	}
	lat := make([]float64, 0, max(count, 1<<16))
	start := time.Now()
	last := start
	for {
		if err := conn.RoundTrip(rtRequest); err != nil {
			return nil, err
		}
		now := time.Now()
		lat = append(lat, float64(now.Sub(last))/float64(time.Microsecond))
		last = now
		if count > 0 && len(lat) >= count || count == 0 && now.Sub(start) >= d {
			return lat, nil
		}
	}
}

func sum(xs []float64) float64 {
	var t float64
	for _, x := range xs {
		t += x
	}
	return t
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
