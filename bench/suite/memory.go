package suite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"tlcvm/bench/emu"
	"tlcvm/bench/procmem"
	"tlcvm/bench/report"
	"tlcvm/bench/stats"
)

// ErrNotRunning means the VM did not reach, or did not stay in, "running".
var ErrNotRunning = errors.New("suite: VM not running")

const mib = 1 << 20

// MemoryRecord is one idle-memory measurement.
type MemoryRecord struct {
	Kind   string          `json:"kind"` // "memory"
	Side   string          `json:"side"`
	Rep    int             `json:"rep"`
	Args   []string        `json:"args"`
	RunMS  float64         `json:"running_after_ms"` // exec → query-status said running
	Status procmem.Status  `json:"status"`
	Rollup procmem.Rollup  `json:"smaps_rollup"`
	RSSMiB float64         `json:"rss_mib"`
	PSSMiB float64         `json:"pss_mib"`
	Err    string          `json:"err,omitempty"`
	Query  json.RawMessage `json:"query_status,omitempty"` // after the idle period
}

func memoryArgs(o *Options, s *Side) []string {
	args := []string{"-machine", "pc", "-m", o.MemSize, "-smp", strconv.Itoa(o.SMP), "-nodefaults", "-display", "none"}
	return append(args, s.MemExtra...)
}

func queryStatus(c interface {
	Execute(string, any) (json.RawMessage, error)
}) (string, json.RawMessage, error) {
	raw, err := c.Execute("query-status", nil)
	if err != nil {
		return "", nil, err
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return "", raw, fmt.Errorf("suite: query-status: %w", err)
	}
	return st.Status, raw, nil
}

func oneMemory(ctx context.Context, o *Options, s *Side, rep int) (MemoryRecord, error) {
	rec := MemoryRecord{Kind: "memory", Side: s.Name, Rep: rep, Args: memoryArgs(o, s)}
	t0 := time.Now()
	p, conn, err := launchNegotiated(ctx, emu.Config{Bin: s.Bin, Args: rec.Args, BaseDir: o.BaseDir}, o.Timeout)
	defer func() { _ = p.Stop(conn, o.Timeout) }()
	if err != nil {
		return rec, err
	}
	_ = conn.SetDeadline(time.Now().Add(o.Timeout + o.Idle))
	deadline := time.Now().Add(o.Timeout)
	for {
		st, _, err := queryStatus(conn)
		if err != nil {
			return rec, err
		}
		if st == "running" {
			break
		}
		if time.Now().After(deadline) {
			return rec, fmt.Errorf("%w: still %q after %v", ErrNotRunning, st, o.Timeout)
		}
		select {
		case <-ctx.Done():
			return rec, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	rec.RunMS = ms(time.Since(t0))
	select {
	case <-ctx.Done():
		return rec, ctx.Err()
	case <-p.Exited():
		return rec, fmt.Errorf("%w: exited while idle: %s", emu.ErrExited, p.Output(1024))
	case <-time.After(o.Idle):
	}
	if rec.Status, err = procmem.ReadStatus(p.Pid()); err != nil {
		return rec, err
	}
	if rec.Rollup, err = procmem.ReadRollup(p.Pid()); err != nil {
		return rec, err
	}
	rec.RSSMiB, rec.PSSMiB = float64(rec.Status.VmRSS)/mib, float64(rec.Rollup.Pss)/mib
	st, raw, err := queryStatus(conn)
	rec.Query = raw
	if err != nil {
		return rec, err
	}
	if st != "running" {
		return rec, fmt.Errorf("%w: %q after the idle period", ErrNotRunning, st)
	}
	return rec, nil
}

func runMemory(ctx context.Context, o *Options) ([]report.Row, error) {
	rss := newSeries("idle-rss", "MiB")
	pss := newSeries("idle-pss", "MiB")
	for i := 0; i < o.MemReps; i++ {
		for _, s := range o.sides(i) {
			if rss.failed(s.Name) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			rec, err := oneMemory(ctx, o, s, i)
			if err != nil {
				rec.Err = err.Error()
				rss.errs[s.Name], pss.errs[s.Name] = err, err
				o.progress("memory %s rep %d: %v", s.Name, i, err)
			} else {
				rss.samples[s.Name] = append(rss.samples[s.Name], rec.RSSMiB)
				pss.samples[s.Name] = append(pss.samples[s.Name], rec.PSSMiB)
			}
			if err := o.record(rec); err != nil {
				return nil, err
			}
		}
	}
	rsum, err := rss.summaries(o)
	if err != nil {
		return nil, err
	}
	psum, err := pss.summaries(o)
	if err != nil {
		return nil, err
	}
	o.progress("memory: tlcvm RSS %.1f MiB PSS %.1f MiB, qemu RSS %.1f MiB PSS %.1f MiB",
		rsum[TLCVM].Median, psum[TLCVM].Median, rsum[QEMU].Median, psum[QEMU].Median)
	label := fmt.Sprintf("-machine pc -m %s -smp %d, idle %v", o.MemSize, o.SMP, o.Idle)
	tg := report.Target{Kind: report.AtMost, Value: 16, Text: "≤ 16 MiB"}
	med := func(s stats.Summary) float64 { return s.Median }
	return []report.Row{
		rss.row("resident memory (VmRSS), "+label+": median (MiB)", rsum, med, 1, tg),
		pss.row("proportional memory (Pss), "+label+": median (MiB)", psum, med, 1, tg),
	}, nil
}
