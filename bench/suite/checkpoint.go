package suite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"tlcvm/bench/emu"
	"tlcvm/bench/procmem"
	"tlcvm/bench/qmpc"
)

// Checkpoint sides, as used in records: QEMU 7.2, tlcvm in QEMU mode, tlcvm
// with the x-tlc capability (the guest resumes before the stream is written).
const (
	CkQEMU  = "qemu"
	CkTLCVM = "tlcvm"
	CkXTLC  = "tlcvm-xtlc"
)

// ErrNoEnd means a checkpoint did not end (completed, failed or cancelled)
// even after migrate_cancel.
var ErrNoEnd = errors.New("suite: checkpoint did not end")

// ErrScenario means a checkpoint scenario or memory size could not be parsed.
var ErrScenario = errors.New("suite: bad checkpoint scenario")

// CkScenario is one cell of the checkpoint matrix.
type CkScenario struct {
	Name   string // "idle" (never started), "wsN" (N MiB rewritten continuously) or "written" (migrate only)
	WSMiB  int    // 0 for idle
	MemMiB int
	// Stopped (the migration benchmark's "written"): the guest writes all its RAM from
	// 2 MiB (ws = RAM − 2 MiB; QEMU's dirty.elf stops at the RAM below 4 GiB), finishes a
	// pass over it and is stopped before migrate, so its vCPUs take no CPU from the
	// migration.
	Stopped bool
}

// Idle reports whether the guest is never started (-S, no cont).
func (s CkScenario) Idle() bool { return s.WSMiB == 0 }

// Label is how the scenario is named in tables: "4 GiB, 64 MiB hot".
func (s CkScenario) Label() string {
	m := fmt.Sprintf("%d MiB", s.MemMiB)
	if s.MemMiB%1024 == 0 {
		m = fmt.Sprintf("%d GiB", s.MemMiB/1024)
	}
	if s.Idle() {
		return m + ", idle never started"
	}
	if s.Stopped {
		return m + ", all written, stopped"
	}
	return fmt.Sprintf("%s, %d MiB hot", m, s.WSMiB)
}

// ParseMiB parses a size such as "1G", "4096", "512M" into MiB.
func ParseMiB(s string) (int, error) {
	t := strings.TrimSpace(s)
	mul := 1
	switch {
	case strings.HasSuffix(t, "G"):
		mul, t = 1024, strings.TrimSuffix(t, "G")
	case strings.HasSuffix(t, "M"):
		t = strings.TrimSuffix(t, "M")
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 || n > 1<<20 {
		return 0, fmt.Errorf("%w: size %q", ErrScenario, s)
	}
	return n * mul, nil
}

// ParseScenarios builds the matrix from comma-separated memory sizes
// ("1G,4G") and scenario names ("idle,ws64,ws512"), memory-major.
func ParseScenarios(mems, names string) ([]CkScenario, error) {
	return parseScenarios(mems, names, false)
}

// ParseMigScenarios is ParseScenarios for the migration benchmark, which also knows
// "written" (all RAM written, then the guest stopped: CkScenario.Stopped).
func ParseMigScenarios(mems, names string) ([]CkScenario, error) {
	return parseScenarios(mems, names, true)
}

func parseScenarios(mems, names string, written bool) ([]CkScenario, error) {
	var out []CkScenario
	for _, m := range strings.Split(mems, ",") {
		mm, err := ParseMiB(m)
		if err != nil {
			return nil, err
		}
		for _, n := range strings.Split(names, ",") {
			n = strings.TrimSpace(n)
			sc := CkScenario{Name: n, MemMiB: mm}
			switch {
			case n == "idle":
			case n == "written" && written:
				sc.WSMiB, sc.Stopped = mm-2, true
			case strings.HasPrefix(n, "ws"):
				ws, err := strconv.Atoi(n[2:])
				if err != nil || ws <= 0 || ws+2 > mm {
					return nil, fmt.Errorf("%w: %q at %d MiB (wsN, N MiB from 2 MiB must fit in RAM)", ErrScenario, n, mm)
				}
				sc.WSMiB = ws
			default:
				return nil, fmt.Errorf("%w: %q (idle or wsN)", ErrScenario, n)
			}
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty matrix", ErrScenario)
	}
	return out, nil
}

// CkOptions configure the checkpoint benchmark. Zero values take the
// defaults noted.
type CkOptions struct {
	TLCVM, QEMU   string        // binaries
	Kernel        string        // QEMU's guest: the kit's dirty.elf (required for wsN)
	Scenarios     []CkScenario  // the matrix
	Reps          int           // tries per side and scenario (3)
	Warmup        time.Duration // guest runs this long before migrate (5 s)
	QEMUCap       time.Duration // cap of one QEMU checkpoint or restore (60 s)
	TLCVMCap      time.Duration // cap of one tlcvm checkpoint or restore (60 s)
	MaxBandwidth  int64         // migrate-set-parameters max-bandwidth (100 GiB/s)
	MaxStream     int64         // a try writing more than this (bytes) is cancelled as capped (16 GiB)
	DowntimeLimit int64         // migrate-set-parameters downtime-limit, ms (0 = leave the default, 300)
	ImageDir      string        // where streams go ("/tmp/tlcvm-bench/ckpt")
	BaseDir       string        // run directories ("" = os.TempDir())
	Sides         []string      // subset of CkQEMU, CkTLCVM, CkXTLC (all)
	Poll          time.Duration // query-migrate poll interval (20 ms)
	Verify        time.Duration // destination runs this long to show the counter moves (300 ms)
	Progress      io.Writer
	Record        func(any) error
}

func (o *CkOptions) defaults() error {
	if o.Reps == 0 {
		o.Reps = 3
	}
	dur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	dur(&o.Warmup, 5*time.Second)
	dur(&o.QEMUCap, 60*time.Second)
	dur(&o.TLCVMCap, 60*time.Second)
	dur(&o.Poll, 20*time.Millisecond)
	dur(&o.Verify, 300*time.Millisecond)
	if o.MaxBandwidth == 0 {
		o.MaxBandwidth = 100 << 30
	}
	if o.MaxStream == 0 {
		o.MaxStream = 16 << 30
	}
	if o.ImageDir == "" {
		o.ImageDir = "/tmp/tlcvm-bench/ckpt"
	}
	if len(o.Sides) == 0 {
		o.Sides = []string{CkQEMU, CkTLCVM, CkXTLC}
	}
	if o.Reps < 0 || len(o.Scenarios) == 0 || o.TLCVM == "" || o.QEMU == "" {
		return fmt.Errorf("%w: need binaries, scenarios and reps ≥ 0", ErrOptions)
	}
	for _, s := range o.Scenarios {
		if !s.Idle() && o.Kernel == "" && o.hasSide(CkQEMU) {
			return fmt.Errorf("%w: QEMU needs -kernel dirty.elf for %s", ErrOptions, s.Name)
		}
	}
	return os.MkdirAll(o.ImageDir, 0o755)
}

func (o *CkOptions) hasSide(s string) bool {
	for _, x := range o.Sides {
		if x == s {
			return true
		}
	}
	return false
}

func (o *CkOptions) progress(format string, a ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", a...)
	}
}

func (o *CkOptions) record(r any) error {
	if o.Record == nil {
		return nil
	}
	return o.Record(r)
}

// CkArgs is the guest command line of one side for one scenario (without
// -qmp, -S and -incoming). QEMU runs the kit's dirty.elf; tlcvm the fw_cfg
// workload with the same working set placed at the same 2 MiB.
func CkArgs(side string, sc CkScenario, kernel string) []string {
	args := []string{"-machine", "pc", "-m", strconv.Itoa(sc.MemMiB), "-nodefaults", "-display", "none"}
	if side == CkQEMU {
		if sc.Idle() {
			return args
		}
		return append(args, "-kernel", kernel, "-append", fmt.Sprintf("ws=%d delay=0", sc.WSMiB))
	}
	w := "idle"
	if !sc.Idle() {
		w = fmt.Sprintf("ws=%dM,,rate=max", sc.WSMiB)
	}
	return append(args, "-fw_cfg", "name=opt/tlcvm/workload,string="+w)
}

// CkStage is one element of tlcvm's query-migrate x-tlc-stages.
type CkStage struct {
	Stage     string `json:"stage"`
	ElapsedMS int64  `json:"elapsed-ms"`
	Bytes     int64  `json:"bytes"`
}

// MigrateInfo is the part of query-migrate the benchmark reads.
type MigrateInfo struct {
	Status    string    `json:"status"`
	TotalTime *int64    `json:"total-time"`
	Downtime  *int64    `json:"downtime"`
	SetupTime *int64    `json:"setup-time"`
	ErrorDesc string    `json:"error-desc"`
	Stages    []CkStage `json:"x-tlc-stages"`
	RAM       *struct {
		Transferred    int64   `json:"transferred"`
		Total          int64   `json:"total"`
		DirtySyncCount int64   `json:"dirty-sync-count"`
		Mbps           float64 `json:"mbps"`
	} `json:"ram"`
}

// CkRecord is one checkpoint try and, when it completed, its restore.
type CkRecord struct {
	Kind        string          `json:"kind"` // "checkpoint"
	Side        string          `json:"side"`
	Scenario    string          `json:"scenario"`
	MemMiB      int             `json:"mem_mib"`
	Rep         int             `json:"rep"`
	Args        []string        `json:"args"`
	Status      string          `json:"status"`
	Converged   bool            `json:"converged"`
	Capped      bool            `json:"capped,omitempty"` // cancelled by the harness at the cap
	WallMS      float64         `json:"migrate_wall_ms"`
	TotalMS     *int64          `json:"total_ms,omitempty"`
	DowntimeMS  *int64          `json:"downtime_ms,omitempty"`
	SetupMS     *int64          `json:"setup_ms,omitempty"`
	StreamBytes int64           `json:"stream_bytes"` // file size once the writer exited
	PeakRSSMiB  float64         `json:"peak_rss_mib"` // source VmRSS, sampled at each poll
	Stage1Bytes int64           `json:"stage1_bytes,omitempty"`
	Stage1MS    int64           `json:"stage1_ms,omitempty"`
	Info        json.RawMessage `json:"info,omitempty"` // the final query-migrate
	SrcCounter  *uint64         `json:"src_counter,omitempty"`
	RestoreMS   float64         `json:"restore_ms,omitempty"` // exec → query-status left inmigrate
	RestoreQMP  float64         `json:"restore_qmp_ready_ms,omitempty"`
	RestoreSt   string          `json:"restore_status,omitempty"`
	DstCounter  *uint64         `json:"dst_counter,omitempty"`
	Resumed     *bool           `json:"resumed,omitempty"` // counter equal, then moved on after cont
	Err         string          `json:"err,omitempty"`
}

func (o *CkOptions) capOf(side string) time.Duration {
	if side == CkQEMU {
		return o.QEMUCap
	}
	return o.TLCVMCap
}

func (o *CkOptions) bin(side string) string {
	if side == CkQEMU {
		return o.QEMU
	}
	return o.TLCVM
}

// oneCheckpoint runs one try: start -S, cont (unless idle), warm up,
// max-bandwidth (and x-tlc), migrate to exec:cat > FILE, poll until done or
// capped, wait for the writer, quit; then restore from the file and verify
// the pass counter. The stream file is deleted before it returns.
func oneCheckpoint(ctx context.Context, o *CkOptions, side string, sc CkScenario, rep int) (rec CkRecord, err error) {
	rec = CkRecord{Kind: "checkpoint", Side: side, Scenario: sc.Name, MemMiB: sc.MemMiB, Rep: rep,
		Args: CkArgs(side, sc, o.Kernel)}
	image := filepath.Join(o.ImageDir, fmt.Sprintf("%s-m%d-%s-%d.mig", side, sc.MemMiB, sc.Name, rep))
	_ = os.Remove(image)
	defer os.Remove(image)
	limit := o.capOf(side)
	p, err := emu.Launch(emu.Config{Bin: o.bin(side), Args: append(append([]string(nil), rec.Args...), "-S"), BaseDir: o.BaseDir})
	if err != nil {
		return rec, err
	}
	conn, _, _, err := p.Connect(ctx, max(limit, time.Minute))
	defer func() {
		if serr := p.Stop(conn, 20*time.Second); err == nil && serr != nil {
			err = serr
		}
	}()
	if err != nil {
		return rec, err
	}
	_ = conn.SetDeadline(time.Now().Add(2*limit + o.Warmup + time.Minute))
	if err := conn.Negotiate(); err != nil {
		return rec, err
	}
	if !sc.Idle() {
		if _, err := conn.Execute("cont", nil); err != nil {
			return rec, err
		}
	}
	if err := sleepCtx(ctx, o.Warmup, p); err != nil {
		return rec, err
	}
	params := map[string]any{"max-bandwidth": o.MaxBandwidth}
	if o.DowntimeLimit > 0 {
		params["downtime-limit"] = o.DowntimeLimit
	}
	if _, err := conn.Execute("migrate-set-parameters", params); err != nil {
		return rec, err
	}
	if side == CkXTLC {
		caps := map[string]any{"capabilities": []map[string]any{{"capability": "x-tlc", "state": true}}}
		if _, err := conn.Execute("migrate-set-capabilities", caps); err != nil {
			return rec, err
		}
	}
	t0 := time.Now()
	if _, err := conn.Execute("migrate", map[string]any{"uri": "exec:cat > " + image}); err != nil {
		return rec, err
	}
	var writers []int
	var info MigrateInfo
	var raw json.RawMessage
	for {
		if len(writers) == 0 {
			writers = childPids(p.Pid())
		}
		if st, err := procmem.ReadStatus(p.Pid()); err == nil {
			rec.PeakRSSMiB = max(rec.PeakRSSMiB, float64(st.VmRSS)/mib)
		}
		raw, err = conn.Execute("query-migrate", nil)
		if err != nil {
			return rec, err
		}
		info = MigrateInfo{}
		if err := json.Unmarshal(raw, &info); err != nil {
			return rec, fmt.Errorf("suite: query-migrate: %w", err)
		}
		if info.Status == "completed" || info.Status == "failed" || info.Status == "cancelled" {
			break
		}
		var size int64
		if st, err := os.Stat(image); err == nil {
			size = st.Size()
		}
		if rec.Capped && time.Since(t0) > 2*limit+time.Second {
			return rec, fmt.Errorf("%w: still %q after migrate_cancel", ErrNoEnd, info.Status)
		}
		if (time.Since(t0) > limit || size > o.MaxStream) && !rec.Capped {
			rec.Capped = true
			if _, err := conn.Execute("migrate_cancel", nil); err != nil {
				return rec, err
			}
			o.progress("  %s %s: capped after %v and %.1f GB, cancelled", side, sc.Label(),
				time.Since(t0).Round(time.Millisecond), float64(size)/1e9)
		}
		if err := sleepCtx(ctx, o.Poll, p); err != nil {
			return rec, err
		}
	}
	rec.WallMS = ms(time.Since(t0))
	rec.Info, rec.Status, rec.Converged = raw, info.Status, info.Status == "completed"
	rec.TotalMS, rec.DowntimeMS, rec.SetupMS = info.TotalTime, info.Downtime, info.SetupTime
	for _, s := range info.Stages {
		if s.Stage == "stage 1" {
			rec.Stage1Bytes, rec.Stage1MS = s.Bytes, s.ElapsedMS
		}
	}
	if rec.Converged {
		rec.SrcCounter = readCounter(conn)
	}
	// The writer (sh/cat) is in the emulator's process group, which Stop
	// kills once the emulator exits: let it drain before quitting.
	waitGone(ctx, writers, limit)
	if st, err := os.Stat(image); err == nil {
		rec.StreamBytes = st.Size()
	}
	if serr := p.Stop(conn, 20*time.Second); serr != nil {
		return rec, serr
	}
	conn = nil
	if !rec.Converged {
		if info.Status == "failed" {
			return rec, fmt.Errorf("suite: checkpoint failed: %s", info.ErrorDesc)
		}
		return rec, nil
	}
	return rec, restore(ctx, o, side, sc, image, &rec)
}

func restore(ctx context.Context, o *CkOptions, side string, sc CkScenario, image string, rec *CkRecord) (err error) {
	limit := o.capOf(side)
	args := append(append([]string(nil), rec.Args...), "-S", "-incoming", "exec:cat "+image)
	t0 := time.Now()
	p, err := emu.Launch(emu.Config{Bin: o.bin(side), Args: args, BaseDir: o.BaseDir})
	if err != nil {
		return err
	}
	conn, _, _, err := p.Connect(ctx, max(limit, time.Minute))
	defer func() {
		if serr := p.Stop(conn, 20*time.Second); err == nil && serr != nil {
			err = serr
		}
	}()
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(limit + time.Minute))
	if err := conn.Negotiate(); err != nil {
		return err
	}
	rec.RestoreQMP = ms(time.Since(t0))
	for {
		st, _, err := queryStatus(conn)
		if err != nil {
			return err
		}
		if st != "inmigrate" {
			rec.RestoreMS, rec.RestoreSt = ms(time.Since(t0)), st
			break
		}
		if time.Since(t0) > limit {
			return fmt.Errorf("%w: restore still inmigrate after %v", emu.ErrTimeout, limit)
		}
		if err := sleepCtx(ctx, 2*time.Millisecond, p); err != nil {
			return err
		}
	}
	if sc.Idle() || rec.RestoreSt != "paused" {
		return nil
	}
	rec.DstCounter = readCounter(conn)
	if _, err := conn.Execute("cont", nil); err != nil {
		return err
	}
	if err := sleepCtx(ctx, o.Verify, p); err != nil {
		return err
	}
	if _, err := conn.Execute("stop", nil); err != nil {
		return err
	}
	after := readCounter(conn)
	// QEMU mode: the source stays stopped, so the counters are equal. x-tlc:
	// the source resumed before the stream was written and kept counting.
	ok := rec.SrcCounter != nil && rec.DstCounter != nil && after != nil && *after > *rec.DstCounter &&
		(*rec.SrcCounter == *rec.DstCounter || side == CkXTLC && *rec.DstCounter <= *rec.SrcCounter)
	rec.Resumed = &ok
	return nil
}

// readCounter reads the guest's pass counter (u64 at guest-physical 0x500)
// with HMP xp, as the kit does; nil when it cannot.
func readCounter(c *qmpc.Conn) *uint64 {
	raw, err := c.Execute("human-monitor-command", map[string]string{"command-line": "xp /1gx 0x500"})
	if err != nil {
		return nil
	}
	var out string
	if json.Unmarshal(raw, &out) != nil {
		return nil
	}
	f := strings.Fields(out)
	if len(f) == 0 {
		return nil
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(f[len(f)-1], "0x"), 16, 64)
	if err != nil {
		return nil
	}
	return &v
}

func sleepCtx(ctx context.Context, d time.Duration, p *emu.Process) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-p.Exited():
		return fmt.Errorf("%w: %s", emu.ErrExited, p.Output(1024))
	case <-time.After(d):
		return nil
	}
}

// childPids lists the direct children of pid (/proc/PID/task/*/children).
func childPids(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// waitGone waits until every pid has exited (gone or a zombie).
func waitGone(ctx context.Context, pids []int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for _, pid := range pids {
		for time.Now().Before(deadline) && ctx.Err() == nil {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				break
			}
			s := string(b)
			if i := strings.LastIndexByte(s, ')'); i >= 0 && strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z") {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
