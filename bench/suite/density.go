package suite

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"tlcvm/bench/emu"
	"tlcvm/bench/procmem"
	"tlcvm/bench/qmpc"
	"tlcvm/bench/stats"
)

// Density ("tlcvm-bench density"): many VMs on one host, as libvirt keeps them, each with its
// QMP connection open after qmp_capabilities.
//
//	prelaunched: N VMs "-machine pc -m 1G -smp 2 -S" (started paused, as libvirt starts
//	  them); after a settling pause, the CPU all of them use over a window long enough to
//	  hold the Go runtime's forced GC (every 2 minutes) and sysmon's longest sleep (utime +
//	  stime from /proc/PID/stat, summed) and the context switches they make, then each
//	  one's VmRSS and Pss (smaps_rollup);
//	running: M VMs "-machine pc -m 1G -smp 2" (tlcvm's default workload, ws=16M rate=4M;
//	  QEMU's vCPUs run SeaBIOS, which finds nothing to boot and halts), the same figures,
//	  and the latency of query-status sent to each VM in turn (several sweeps);
//	running-idle: the same with tlcvm's workload "idle" (its vCPUs halt, as QEMU's do),
//	  which sets the monitors' cost apart from the guest workload's.
//
// Each side starts its VMs one after the other until it has N, or until the host's
// MemAvailable falls under MinAvailMiB, or a launch fails or takes longer than the step
// timeout: the figures are then over the VMs it has, and the record says where it stopped
// and why. Every VM is in its own process group with Pdeathsig set; all are stopped (quit,
// then SIGKILL to the group) before the next phase, whatever happened.

// DOptions configure RunDensity.
type DOptions struct {
	TLCVM, QEMU string
	Prelaunched int           // tlcvm VMs started with -S (500)
	Running     int           // tlcvm VMs running the default workload (200)
	QEMUMax     int           // QEMU VMs at most, per phase (500; MinAvailMiB stops it first)
	MinAvailMiB int           // stop launching below this MemAvailable (6144)
	Settle      time.Duration // pause before measuring (5 s)
	Window      time.Duration // CPU window of the running phase (20 s)
	IdleWindow  time.Duration // CPU window of the prelaunched phase (130 s: a Go runtime forces a GC every 2 minutes)
	Sweeps      int           // query-status sweeps over the running VMs (5)
	Timeout     time.Duration // per launch and per reply (60 s)
	BaseDir     string
	Progress    io.Writer
	Record      func(any) error
	Only        map[string]bool // "prelaunched", "running"
	Sides       map[string]bool // TLCVM, QEMU
}

// Phases of RunDensity.
const (
	DPhasePrelaunched = "prelaunched"
	DPhaseRunning     = "running"
	DPhaseIdleGuests  = "running-idle" // running, tlcvm's workload "idle": vCPUs halted, as QEMU's are

)

func (o *DOptions) defaults() {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&o.Prelaunched, 500)
	def(&o.Running, 200)
	def(&o.QEMUMax, 500)
	def(&o.MinAvailMiB, 6144)
	def(&o.Sweeps, 5)
	if o.Settle == 0 {
		o.Settle = 5 * time.Second
	}
	if o.Window == 0 {
		o.Window = 20 * time.Second
	}
	if o.IdleWindow == 0 {
		o.IdleWindow = 130 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
}

func (o *DOptions) progress(format string, a ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", a...)
	}
}

// DRecord is one side's figures for one phase.
type DRecord struct {
	Kind      string        `json:"kind"` // "density"
	Phase     string        `json:"phase"`
	Side      string        `json:"side"`
	Wanted    int           `json:"wanted"`
	VMs       int           `json:"vms"`
	Stopped   string        `json:"stopped_because,omitempty"` // why fewer than wanted
	LaunchS   float64       `json:"launch_s"`                  // starting all of them
	WindowS   float64       `json:"window_s"`
	CPUPct    float64       `json:"cpu_pct_of_one_core"` // all VMs together, over the window
	Switches  float64       `json:"ctx_switches_per_s"`  // all VMs together
	RSSMedian float64       `json:"rss_mib_median"`
	RSSMax    float64       `json:"rss_mib_max"`
	PSSMedian float64       `json:"pss_mib_median"`
	PSSTotal  float64       `json:"pss_mib_total"`
	LatUS     stats.Summary `json:"query_status_us,omitempty"`
	P99US     float64       `json:"query_status_p99_us,omitempty"`
	AvailMiB  float64       `json:"mem_available_mib_at_peak"`
	Err       string        `json:"err,omitempty"`
}

// DRow is one row of the density table.
type DRow struct {
	Metric      string
	TLCVM, QEMU float64
	Digits      int
	Target      string
	Met         *bool
}

// RunDensity runs the phases and returns their records (tlcvm, then QEMU, per phase).
func RunDensity(ctx context.Context, o DOptions) ([]DRecord, error) {
	o.defaults()
	raiseNoFile()
	var out []DRecord
	for _, ph := range []struct {
		name string
		args []string
		n    int
	}{
		{DPhasePrelaunched, []string{"-machine", "pc", "-m", "1G", "-smp", "2", "-S", "-nodefaults", "-display", "none"}, o.Prelaunched},
		{DPhaseRunning, []string{"-machine", "pc", "-m", "1G", "-smp", "2", "-nodefaults", "-display", "none"}, o.Running},
		{DPhaseIdleGuests, []string{"-machine", "pc", "-m", "1G", "-smp", "2", "-nodefaults", "-display", "none",
			"-fw_cfg", "name=opt/tlcvm/workload,string=idle"}, o.Running},
	} {
		if len(o.Only) > 0 && !o.Only[ph.name] {
			continue
		}
		for _, s := range []qside{{TLCVM, o.TLCVM}, {QEMU, o.QEMU}} {
			if len(o.Sides) > 0 && !o.Sides[s.name] {
				continue
			}
			n := ph.n
			if s.name == QEMU {
				n = min(n, o.QEMUMax)
			}
			rec, err := densityPhase(ctx, &o, s, ph.name, ph.args, n)
			if err != nil {
				rec.Err = err.Error()
				o.progress("density %s %s: %v", ph.name, s.name, err)
			}
			out = append(out, rec)
			if o.Record != nil {
				if err := o.Record(rec); err != nil {
					return out, err
				}
			}
			if err := ctx.Err(); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

type dvm struct {
	p    *emu.Process
	conn *qmpc.Conn
}

func densityPhase(ctx context.Context, o *DOptions, s qside, phase string, args []string, n int) (rec DRecord, err error) {
	rec = DRecord{Kind: "density", Phase: phase, Side: s.name, Wanted: n}
	var vms []dvm
	defer func() { stopAll(vms, o.Timeout) }()
	t0 := time.Now()
	for len(vms) < n {
		if err := ctx.Err(); err != nil {
			return rec, err
		}
		if avail := memAvailableMiB(); avail < float64(o.MinAvailMiB) {
			rec.Stopped = fmt.Sprintf("MemAvailable %.0f MiB < %d MiB", avail, o.MinAvailMiB)
			break
		}
		p, conn, err := launchNegotiated(ctx, emu.Config{Bin: s.bin, Args: args, BaseDir: o.BaseDir, PollSocket: true}, o.Timeout)
		if err != nil {
			_ = p.Stop(conn, time.Second)
			rec.Stopped = err.Error()
			break
		}
		_ = conn.SetDeadline(time.Time{}) // replies have their own deadline below
		vms = append(vms, dvm{p, conn})
		if len(vms)%50 == 0 {
			o.progress("density %s %s: %d VMs (%.1f s)", phase, s.name, len(vms), time.Since(t0).Seconds())
		}
	}
	rec.VMs, rec.LaunchS = len(vms), time.Since(t0).Seconds()
	rec.AvailMiB = memAvailableMiB()
	if len(vms) == 0 {
		return rec, fmt.Errorf("suite: no VM started: %s", rec.Stopped)
	}
	select {
	case <-ctx.Done():
		return rec, ctx.Err()
	case <-time.After(o.Settle):
	}
	window := o.Window
	if phase == DPhasePrelaunched {
		window = o.IdleWindow
	}
	cpu0, sw0 := sumCPU(vms)
	w0 := time.Now()
	select {
	case <-ctx.Done():
		return rec, ctx.Err()
	case <-time.After(window):
	}
	cpu1, sw1 := sumCPU(vms)
	rec.WindowS = time.Since(w0).Seconds()
	rec.CPUPct = 100 * (cpu1 - cpu0).Seconds() / rec.WindowS
	rec.Switches = float64(sw1-sw0) / rec.WindowS
	var rss, pss []float64
	for _, v := range vms {
		st, err := procmem.ReadStatus(v.p.Pid())
		if err != nil {
			return rec, err
		}
		ro, err := procmem.ReadRollup(v.p.Pid())
		if err != nil {
			return rec, err
		}
		rss = append(rss, float64(st.VmRSS)/mib)
		pss = append(pss, float64(ro.Pss)/mib)
		rec.PSSTotal += float64(ro.Pss) / mib
	}
	rs, _ := stats.Summarize(rss)
	ps, _ := stats.Summarize(pss)
	rec.RSSMedian, rec.RSSMax, rec.PSSMedian = rs.Median, rs.Max, ps.Median
	if phase != DPhasePrelaunched {
		var lat []float64
		for sweep := 0; sweep < o.Sweeps; sweep++ {
			for _, v := range vms {
				_ = v.conn.SetDeadline(time.Now().Add(o.Timeout))
				t := time.Now()
				if _, err := v.conn.Execute("query-status", nil); err != nil {
					return rec, err
				}
				lat = append(lat, float64(time.Since(t))/float64(time.Microsecond))
			}
		}
		rec.LatUS, _ = stats.Summarize(lat)
		rec.P99US, _ = stats.Percentile(lat, 99)
	}
	o.progress("density %s %s: %d VMs, CPU %.2f %% of a core, RSS median %.1f MiB, PSS median %.1f MiB, p99 %.0f µs",
		phase, s.name, rec.VMs, rec.CPUPct, rec.RSSMedian, rec.PSSMedian, rec.P99US)
	return rec, nil
}

// sumCPU returns the CPU time and the context switches of all the VMs (exited ones count 0).
func sumCPU(vms []dvm) (cpu time.Duration, switches uint64) {
	for _, v := range vms {
		if c, err := procmem.ReadCPU(v.p.Pid()); err == nil {
			cpu += c
		}
		switches += ctxSwitches(v.p.Pid())
	}
	return cpu, switches
}

// ctxSwitches sums voluntary and involuntary context switches over pid's threads.
func ctxSwitches(pid int) uint64 {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	var n uint64
	for _, t := range tasks {
		f, err := os.Open(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && (k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches") {
				x, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				n += x
			}
		}
		f.Close()
	}
	return n
}

// stopAll quits every VM (a short grace each), then SIGKILLs what is left, in parallel
// batches so that hundreds of VMs stop in seconds.
func stopAll(vms []dvm, timeout time.Duration) {
	done := make(chan struct{}, len(vms))
	sem := make(chan struct{}, 32)
	for _, v := range vms {
		sem <- struct{}{}
		go func(v dvm) {
			defer func() { <-sem; done <- struct{}{} }()
			_ = v.p.Stop(v.conn, min(timeout, 5*time.Second))
		}(v)
	}
	for range vms {
		<-done
	}
}

// memAvailableMiB is /proc/meminfo's MemAvailable (NaN when unreadable).
func memAvailableMiB() float64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return math.NaN()
	}
	defer f.Close()
	m, err := procmem.Fields(f)
	if err != nil {
		return math.NaN()
	}
	v, ok := m["MemAvailable"]
	if !ok {
		return math.NaN()
	}
	return float64(v) / mib
}

// raiseNoFile lifts the soft descriptor limit to the hard one: hundreds of VMs mean hundreds of
// QMP connections and process descriptors.
func raiseNoFile() {
	var l unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &l)
	}
}

// DRows turns the records into the density table (tlcvm beside QEMU, per phase).
func DRows(recs []DRecord) []DRow {
	get := func(phase, side string) *DRecord {
		for i := range recs {
			if recs[i].Phase == phase && recs[i].Side == side {
				return &recs[i]
			}
		}
		return nil
	}
	f := func(r *DRecord, pick func(*DRecord) float64) float64 {
		if r == nil || r.VMs == 0 {
			return math.NaN()
		}
		return pick(r)
	}
	yes := func(b bool) *bool { return &b }
	var rows []DRow
	for _, ph := range []string{DPhasePrelaunched, DPhaseRunning, DPhaseIdleGuests} {
		t, q := get(ph, TLCVM), get(ph, QEMU)
		if t == nil && q == nil {
			continue
		}
		label := map[string]string{DPhasePrelaunched: "-S -smp 2 (prelaunched)", DPhaseRunning: "-smp 2, running",
			DPhaseIdleGuests: "-smp 2, running, guests idle"}[ph]
		row := func(metric string, digits int, pick func(*DRecord) float64) DRow {
			return DRow{Metric: label + ": " + metric, TLCVM: f(t, pick), QEMU: f(q, pick), Digits: digits}
		}
		vms := row("VMs started", 0, func(r *DRecord) float64 { return float64(r.VMs) })
		cpu := row("CPU of all VMs together over the window (% of one core)", 2, func(r *DRecord) float64 { return r.CPUPct })
		sw := row("context switches of all VMs together (/s)", 0, func(r *DRecord) float64 { return r.Switches })
		rss := row("VmRSS per VM, median (MiB)", 1, func(r *DRecord) float64 { return r.RSSMedian })
		pss := row("Pss per VM, median (MiB)", 1, func(r *DRecord) float64 { return r.PSSMedian })
		if ph == DPhasePrelaunched {
			cpu.Target, rss.Target = "< 5 % of one core (500 VMs)", "< 10 MiB"
			if t != nil && t.VMs > 0 {
				cpu.Met = yes(t.CPUPct < 5 && t.VMs >= 500)
				rss.Met = yes(t.RSSMedian < 10)
			}
		}
		rows = append(rows, vms, cpu, sw, rss, pss)
		if ph != DPhasePrelaunched {
			rows = append(rows,
				row("query-status latency, median (µs)", 0, func(r *DRecord) float64 { return r.LatUS.Median }),
				row("query-status latency, p99 (µs)", 0, func(r *DRecord) float64 { return r.P99US }))
		}
	}
	return rows
}

// DMarkdown renders the density table.
func DMarkdown(rows []DRow, recs []DRecord) string {
	var b strings.Builder
	b.WriteString("| metric | tlcvm | QEMU 7.2 | tlcvm ÷ QEMU | target | met? |\n|---|---:|---:|---:|---|---|\n")
	for _, r := range rows {
		v := func(x float64) string {
			if math.IsNaN(x) {
				return "—"
			}
			return strconv.FormatFloat(x, 'f', r.Digits, 64)
		}
		ratio := "—"
		if !math.IsNaN(r.TLCVM) && !math.IsNaN(r.QEMU) && r.QEMU != 0 {
			ratio = strconv.FormatFloat(r.TLCVM/r.QEMU, 'g', 3, 64)
		}
		tgt, met := r.Target, "—"
		if tgt == "" {
			tgt = "—"
		}
		if r.Met != nil {
			met = map[bool]string{true: "**yes**", false: "no"}[*r.Met]
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.Metric, v(r.TLCVM), v(r.QEMU), ratio, tgt, met)
	}
	for _, r := range recs {
		if r.Stopped != "" || r.Err != "" {
			fmt.Fprintf(&b, "\n%s, %s: %d of %d VMs", r.Side, r.Phase, r.VMs, r.Wanted)
			if r.Stopped != "" {
				fmt.Fprintf(&b, "; stopped launching: %s", r.Stopped)
			}
			if r.Err != "" {
				fmt.Fprintf(&b, "; error: %s", r.Err)
			}
			b.WriteString(".\n")
		}
	}
	return b.String()
}
