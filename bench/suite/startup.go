package suite

import (
	"context"
	"time"

	"tlcvm/bench/emu"
	"tlcvm/bench/report"
	"tlcvm/bench/stats"
)

// machineArgs is one start-up configuration.
type machineArgs struct {
	id, label string
	args      []string
}

func startupMachines(mem string) []machineArgs {
	return []machineArgs{
		{"none", "-machine none", []string{"-machine", "none", "-nodefaults", "-display", "none"}},
		{"pc", "-machine pc -m " + mem, []string{"-machine", "pc", "-m", mem, "-nodefaults", "-display", "none"}},
	}
}

// StartupRecord is one start-up run.
type StartupRecord struct {
	Kind       string  `json:"kind"` // "startup"
	Machine    string  `json:"machine"`
	Side       string  `json:"side"`
	Rep        int     `json:"rep"`
	Warmup     bool    `json:"warmup"`
	ExecMS     float64 `json:"exec_ms"`
	SocketMS   float64 `json:"socket_ms"`
	ConnectMS  float64 `json:"connect_ms"`
	GreetingMS float64 `json:"greeting_ms"`
	ReadyMS    float64 `json:"ready_ms"` // qmp_capabilities answered
	Err        string  `json:"err,omitempty"`
}

// oneStartup launches, times the greeting and qmp_capabilities, and quits.
func oneStartup(ctx context.Context, o *Options, s *Side, m machineArgs) (StartupRecord, error) {
	rec := StartupRecord{Kind: "startup", Machine: m.id, Side: s.Name}
	p, err := emu.Launch(emu.Config{Bin: s.Bin, Args: m.args, BaseDir: o.BaseDir})
	if err != nil {
		return rec, err
	}
	conn, _, tm, err := p.Connect(ctx, o.Timeout)
	rec.ExecMS, rec.SocketMS, rec.ConnectMS, rec.GreetingMS = ms(tm.Exec), ms(tm.Socket), ms(tm.Connect), ms(tm.Greeting)
	if err == nil {
		t0 := time.Now()
		err = conn.Negotiate()
		rec.ReadyMS = rec.GreetingMS + ms(time.Since(t0))
	}
	if serr := p.Stop(conn, o.Timeout); err == nil {
		err = serr
	}
	return rec, err
}

func runStartup(ctx context.Context, o *Options, m machineArgs) ([]report.Row, error) {
	ser := newSeries("startup-"+m.id+"-greeting", "ms")
	ready := newSeries("startup-"+m.id+"-ready", "ms")
	for i := 0; i < o.Warmup+o.N; i++ {
		for _, s := range o.sides(i) {
			if ser.failed(s.Name) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			rec, err := oneStartup(ctx, o, s, m)
			rec.Rep, rec.Warmup = i-o.Warmup, i < o.Warmup
			if err != nil {
				rec.Err = err.Error()
				ser.errs[s.Name], ready.errs[s.Name] = err, err
				o.progress("startup %s %s rep %d: %v", m.id, s.Name, rec.Rep, err)
			} else if !rec.Warmup {
				ser.samples[s.Name] = append(ser.samples[s.Name], rec.GreetingMS)
				ready.samples[s.Name] = append(ready.samples[s.Name], rec.ReadyMS)
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
	rsum, err := ready.summaries(o)
	if err != nil {
		return nil, err
	}
	o.progress("startup %s: tlcvm median %.2f ms, qemu median %.2f ms", m.id, sum[TLCVM].Median, sum[QEMU].Median)
	tg := report.Target{Kind: report.RatioAtMost, Value: 1.0 / 15, Text: "≤ 1/15 of QEMU"}
	return []report.Row{
		ser.row("start → QMP greeting, "+m.label+": median (ms)", sum, func(s stats.Summary) float64 { return s.Median }, 1, tg),
		ser.row("start → QMP greeting, "+m.label+": p90 (ms)", sum, func(s stats.Summary) float64 { return s.P90 }, 1, report.Target{}),
		// QEMU sends the greeting from its monitor I/O thread, possibly
		// before the machine is built; qmp_capabilities is answered by the
		// main loop, so "ready" is when QMP is usable (what libvirt waits for).
		ready.row("start → qmp_capabilities answered, "+m.label+": median (ms)", rsum,
			func(s stats.Summary) float64 { return s.Median }, 1, report.Target{}),
	}, nil
}
