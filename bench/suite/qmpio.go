package suite

import (
	"context"
	"fmt"
	"io"
	"math"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"tlcvm/bench/emu"
	"tlcvm/bench/procmem"
	"tlcvm/bench/report"
	"tlcvm/bench/stats"
)

// The QMP benchmarks of issue 10 ("tlcvm-bench qmp"): QMP round trips and start-up to the
// greeting beside a floor (bench/cmd/qmp-floor: a Go program that only listens, greets and
// answers every line with a fixed reply) and QEMU 7.2, interleaved in one run; and memory on
// single huge QMP lines beside QEMU 7.2 (qmpmem.go).

// QOptions configure RunQMP. Zero values take the defaults noted.
type QOptions struct {
	TLCVM, QEMU, Floor string        // binaries; Floor is bench/cmd/qmp-floor
	RTReps             int           // round-trip measurements per side and machine (5)
	RTDuration         time.Duration // length of one (2 s)
	StartN             int           // start-ups per side, idle and loaded (20)
	Hogs               int           // CPU hogs for the loaded start-ups (runtime.NumCPU())
	MemInputs          []string      // memory inputs (qmpmem.go); nil: all
	Only               map[string]bool
	Timeout            time.Duration // per step (60 s)
	BaseDir            string
	Progress           io.Writer
	Record             func(any) error
}

// Parts of RunQMP for QOptions.Only.
const (
	QPartRT      = "rt"
	QPartStartup = "startup"
	QPartMemory  = "memory"
)

func (o *QOptions) defaults() error {
	if o.RTReps == 0 {
		o.RTReps = 5
	}
	if o.RTDuration == 0 {
		o.RTDuration = 2 * time.Second
	}
	if o.StartN == 0 {
		o.StartN = 20
	}
	if o.Hogs == 0 {
		o.Hogs = runtime.NumCPU()
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	if o.TLCVM == "" || o.QEMU == "" || o.Floor == "" {
		return fmt.Errorf("%w: tlcvm, QEMU and the floor are all needed", ErrOptions)
	}
	return nil
}

func (o *QOptions) wants(p string) bool { return len(o.Only) == 0 || o.Only[p] }

func (o *QOptions) progress(format string, a ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", a...)
	}
}

func (o *QOptions) record(r any) error {
	if o.Record == nil {
		return nil
	}
	return o.Record(r)
}

// Sides of the QMP benchmarks, as named in records.
const (
	SideFloor = "floor"
)

type qside struct{ name, bin string }

// rotate returns the sides in the order of rep i: each goes first, middle and last in turn.
func rotate(sides []qside, i int) []qside {
	out := make([]qside, 0, len(sides))
	for k := range sides {
		out = append(out, sides[(i+k)%len(sides)])
	}
	return out
}

// QTargetKind says how a QRow's target is judged.
type QTargetKind int

// Target kinds of QRow.
const (
	QNoTarget     QTargetKind = iota
	QFloorAtLeast             // tlcvm ÷ floor ≥ Value
	QFloorAtMost              // tlcvm ÷ floor ≤ Value
	QQEMUAtMost               // tlcvm ÷ QEMU ≤ Value
	QAtMost                   // tlcvm ≤ Value
)

// QRow is one metric of the QMP tables: tlcvm beside the floor and QEMU 7.2. NaN means not
// measured (Err says why when it failed).
type QRow struct {
	Metric                  string
	TLCVM, Floor, QEMU      float64
	Spread                  [3]string // optional "min–max" under each value
	TLCVMErr, FloorErr, QEr string
	Digits                  int
	Target                  QTargetKind
	Value                   float64
	Text                    string
}

// Met reports whether the row's target is met, and whether it could be judged.
func (r QRow) Met() (met, judged bool) {
	div := func(a, b float64) float64 {
		if b == 0 {
			return math.NaN()
		}
		return a / b
	}
	var x float64
	switch r.Target {
	case QFloorAtLeast, QFloorAtMost:
		x = div(r.TLCVM, r.Floor)
	case QQEMUAtMost:
		x = div(r.TLCVM, r.QEMU)
	case QAtMost:
		x = r.TLCVM
	default:
		return false, false
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return false, false
	}
	if r.Target == QFloorAtLeast {
		return x >= r.Value, true
	}
	return x <= r.Value, true
}

// QMarkdown renders QRows: values, ratios to the floor and to QEMU, target.
func QMarkdown(rows []QRow) string {
	var b strings.Builder
	b.WriteString("| metric | tlcvm | floor | QEMU 7.2 | tlcvm ÷ floor | tlcvm ÷ QEMU | target | met? |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---|---|\n")
	val := func(v float64, spread, errText string, digits int) string {
		switch {
		case errText != "":
			return "failed: " + strings.NewReplacer("|", "\\|", "\n", " ").Replace(errText)
		case math.IsNaN(v):
			return "—"
		}
		s := strconv.FormatFloat(v, 'f', digits, 64)
		if spread != "" {
			s += " (" + spread + ")"
		}
		return s
	}
	ratio := func(a, b float64) string {
		if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
			return "—"
		}
		return report.FormatRatio(a / b)
	}
	for _, r := range rows {
		met := "—"
		if m, judged := r.Met(); judged {
			met = map[bool]string{true: "**yes**", false: "no"}[m]
		} else if r.Target != QNoTarget {
			met = "n/a"
		}
		tgt := r.Text
		if tgt == "" {
			tgt = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Metric,
			val(r.TLCVM, r.Spread[0], r.TLCVMErr, r.Digits), val(r.Floor, r.Spread[1], r.FloorErr, r.Digits),
			val(r.QEMU, r.Spread[2], r.QEr, r.Digits), ratio(r.TLCVM, r.Floor), ratio(r.TLCVM, r.QEMU), tgt, met)
	}
	return b.String()
}

// RunQMP runs the selected parts and returns the table rows.
func RunQMP(ctx context.Context, o QOptions) ([]QRow, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	var rows []QRow
	if o.wants(QPartRT) {
		for _, m := range rtMachines() {
			r, err := runQRT(ctx, &o, m)
			rows = append(rows, r...)
			if err != nil {
				return rows, err
			}
		}
	}
	if o.wants(QPartStartup) {
		for _, hogs := range []int{0, o.Hogs} {
			r, err := runQStartup(ctx, &o, hogs)
			rows = append(rows, r...)
			if err != nil {
				return rows, err
			}
		}
	}
	if o.wants(QPartMemory) {
		r, err := runQMemory(ctx, &o)
		rows = append(rows, r...)
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// rtMachines: an empty machine, and a running pc whose 2 vCPUs run tlcvm's default workload
// (QEMU's run SeaBIOS, which finds nothing to boot and halts).
func rtMachines() []machineArgs {
	return []machineArgs{
		{"none", "-machine none", []string{"-machine", "none", "-nodefaults", "-display", "none"}},
		{"pc", "-machine pc -m 1G -smp 2, running", []string{"-machine", "pc", "-m", "1G", "-smp", "2", "-nodefaults", "-display", "none"}},
	}
}

// QRTRecord is one round-trip measurement.
type QRTRecord struct {
	Kind      string        `json:"kind"` // "qmp-rt"
	Machine   string        `json:"machine"`
	Side      string        `json:"side"`
	Rep       int           `json:"rep"`
	Count     int           `json:"count"`
	Seconds   float64       `json:"seconds"`
	PerSec    float64       `json:"per_s"`
	ServerCPU float64       `json:"server_cpu_us_per_rt"` // the server process's CPU time ÷ count
	LatUS     stats.Summary `json:"latency_us"`
	Err       string        `json:"err,omitempty"`
}

func oneQRT(ctx context.Context, o *QOptions, s qside, m machineArgs, rep int) (QRTRecord, error) {
	rec := QRTRecord{Kind: "qmp-rt", Machine: m.id, Side: s.name, Rep: rep}
	p, conn, err := launchNegotiated(ctx, emu.Config{Bin: s.bin, Args: m.args, BaseDir: o.BaseDir}, o.Timeout)
	defer func() { _ = p.Stop(conn, o.Timeout) }()
	if err != nil {
		return rec, err
	}
	var cpu0 time.Duration
	var cerr error
	lat, err := roundTrips(conn, 0, o.RTDuration, o.Timeout, func() { cpu0, cerr = procmem.ReadCPU(p.Pid()) })
	if err == nil {
		err = cerr
	}
	if err != nil {
		return rec, err
	}
	cpu1, err := procmem.ReadCPU(p.Pid())
	if err != nil {
		return rec, err
	}
	rec.Count, rec.Seconds = len(lat), sum(lat)/1e6
	rec.PerSec = float64(rec.Count) / rec.Seconds
	rec.ServerCPU = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(rec.Count)
	rec.LatUS, _ = stats.Summarize(lat)
	return rec, nil
}

func runQRT(ctx context.Context, o *QOptions, m machineArgs) ([]QRow, error) {
	sides := []qside{{SideFloor, o.Floor}, {TLCVM, o.TLCVM}, {QEMU, o.QEMU}}
	rate := map[string][]float64{}
	cpu := map[string][]float64{}
	errs := map[string]error{}
	for i := 0; i < o.RTReps; i++ {
		for _, s := range rotate(sides, i) {
			if errs[s.name] != nil {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			rec, err := oneQRT(ctx, o, s, m, i)
			if err != nil {
				rec.Err, errs[s.name] = err.Error(), err
				o.progress("qmp-rt %s %s rep %d: %v", m.id, s.name, i, err)
			} else {
				rate[s.name] = append(rate[s.name], rec.PerSec)
				cpu[s.name] = append(cpu[s.name], rec.ServerCPU)
			}
			if err := o.record(rec); err != nil {
				return nil, err
			}
		}
	}
	rs, cs := summarize3(rate), summarize3(cpu)
	o.progress("qmp-rt %s: tlcvm %.0f/s, floor %.0f/s, qemu %.0f/s (medians)", m.id,
		rs[TLCVM].Median, rs[SideFloor].Median, rs[QEMU].Median)
	row := func(metric string, sum map[string]stats.Summary, digits int) QRow {
		r := QRow{Metric: metric, TLCVM: sum[TLCVM].Median, Floor: sum[SideFloor].Median, QEMU: sum[QEMU].Median, Digits: digits}
		for k, side := range []string{TLCVM, SideFloor, QEMU} {
			if s := sum[side]; s.N > 1 {
				r.Spread[k] = strconv.FormatFloat(s.Min, 'f', digits, 64) + "–" + strconv.FormatFloat(s.Max, 'f', digits, 64)
			}
		}
		r.TLCVMErr, r.FloorErr, r.QEr = errText(errs[TLCVM], sum[TLCVM]), errText(errs[SideFloor], sum[SideFloor]), errText(errs[QEMU], sum[QEMU])
		return r
	}
	rates := row(fmt.Sprintf("QMP round trips/s, %s (query-status, sequential; median of %d, min–max)", m.label, o.RTReps), rs, 0)
	rates.Target, rates.Value, rates.Text = QFloorAtLeast, 0.8, "≥ 80 % of the floor"
	cpus := row(fmt.Sprintf("server CPU per round trip, %s (µs; median)", m.label), cs, 1)
	return []QRow{rates, cpus}, nil
}

// summarize3 summarises each side's samples (NaN-filled without samples).
func summarize3(samples map[string][]float64) map[string]stats.Summary {
	out := map[string]stats.Summary{}
	for _, side := range []string{TLCVM, SideFloor, QEMU} {
		s, err := stats.Summarize(samples[side])
		if err != nil {
			nan := math.NaN()
			s = stats.Summary{Min: nan, Median: nan, P90: nan, Max: nan, Mean: nan, Stddev: nan}
		}
		out[side] = s
	}
	return out
}

func errText(err error, s stats.Summary) string {
	if err == nil || s.N > 0 {
		return ""
	}
	return short(err)
}

// QStartupRecord is one start-up to the greeting.
type QStartupRecord struct {
	Kind       string  `json:"kind"` // "qmp-startup"
	Side       string  `json:"side"`
	Hogs       int     `json:"hogs"`
	Rep        int     `json:"rep"`
	Warmup     bool    `json:"warmup"`
	GreetingMS float64 `json:"greeting_ms"`
	ReadyMS    float64 `json:"ready_ms"`
	Err        string  `json:"err,omitempty"`
}

// startArgs is the start-up benchmark's machine: what libvirt starts (-S), 4 GiB, 4 vCPUs.
var startArgs = []string{"-machine", "pc", "-m", "4G", "-smp", "4", "-S", "-nodefaults", "-display", "none"}

func runQStartup(ctx context.Context, o *QOptions, hogs int) ([]QRow, error) {
	if hogs > 0 {
		stop, err := startHogs(hogs)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	sides := []qside{{SideFloor, o.Floor}, {TLCVM, o.TLCVM}, {QEMU, o.QEMU}}
	greet := map[string][]float64{}
	ready := map[string][]float64{}
	errs := map[string]error{}
	const warmup = 1
	for i := 0; i < warmup+o.StartN; i++ {
		for _, s := range rotate(sides, i) {
			if errs[s.name] != nil {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			srec, err := oneStartup(ctx, &Options{Timeout: o.Timeout, BaseDir: o.BaseDir}, &Side{Name: s.name, Bin: s.bin},
				machineArgs{id: "qmp", args: startArgs})
			rec := QStartupRecord{Kind: "qmp-startup", Side: s.name, Hogs: hogs, Rep: i - warmup, Warmup: i < warmup,
				GreetingMS: srec.GreetingMS, ReadyMS: srec.ReadyMS}
			if err != nil {
				rec.Err, errs[s.name] = err.Error(), err
				o.progress("qmp-startup %s hogs %d rep %d: %v", s.name, hogs, rec.Rep, err)
			} else if !rec.Warmup {
				greet[s.name] = append(greet[s.name], rec.GreetingMS)
				ready[s.name] = append(ready[s.name], rec.ReadyMS)
			}
			if err := o.record(rec); err != nil {
				return nil, err
			}
		}
	}
	gs, rs := summarize3(greet), summarize3(ready)
	load := "idle machine"
	if hogs > 0 {
		load = fmt.Sprintf("%d CPU hogs", hogs)
	}
	o.progress("qmp-startup %s: tlcvm %.2f ms, floor %.2f ms, qemu %.2f ms (medians)", load,
		gs[TLCVM].Median, gs[SideFloor].Median, gs[QEMU].Median)
	mk := func(metric string, sum map[string]stats.Summary, pick func(stats.Summary) float64) QRow {
		return QRow{Metric: metric, TLCVM: pick(sum[TLCVM]), Floor: pick(sum[SideFloor]), QEMU: pick(sum[QEMU]), Digits: 1,
			TLCVMErr: errText(errs[TLCVM], sum[TLCVM]), FloorErr: errText(errs[SideFloor], sum[SideFloor]), QEr: errText(errs[QEMU], sum[QEMU])}
	}
	med := func(s stats.Summary) float64 { return s.Median }
	p90 := func(s stats.Summary) float64 { return s.P90 }
	label := "-machine pc -m 4G -smp 4 -S, " + load
	r := mk("start → QMP greeting, "+label+": median (ms)", gs, med)
	r.Target, r.Value, r.Text = QFloorAtMost, 2, "≤ 2× the floor"
	return []QRow{
		r,
		mk("start → QMP greeting, "+label+": p90 (ms)", gs, p90),
		mk("start → qmp_capabilities answered, "+label+": median (ms)", rs, med),
	}, nil
}

// startHogs starts n processes that spin on a CPU each (at the harness's priority) and returns
// the function that kills them. Each is in its own process group and dies with the harness.
func startHogs(n int) (stop func(), err error) {
	var cmds []*exec.Cmd
	stop = func() {
		for _, c := range cmds {
			_ = unix.Kill(-c.Process.Pid, unix.SIGKILL)
			_ = c.Wait()
		}
	}
	for i := 0; i < n; i++ {
		c := exec.Command("/bin/sh", "-c", "while :; do :; done")
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			stop()
			return nil, fmt.Errorf("suite: CPU hog: %w", err)
		}
		cmds = append(cmds, c)
	}
	time.Sleep(200 * time.Millisecond) // let them take the CPUs
	return stop, nil
}
