package suite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"tlcvm/bench/emu"
	"tlcvm/bench/procmem"
	"tlcvm/bench/qmpc"
)

// Migration modes, as used in records.
const (
	MigPrecopy  = "precopy"
	MigPostcopy = "postcopy" // migrate-start-postcopy after the first pass
)

// MigOptions configure the network migration benchmark. Zero values take the defaults noted.
type MigOptions struct {
	TLCVM, QEMU  string        // binaries
	Kernel       string        // QEMU's guest: the kit's dirty.elf
	Scenarios    []CkScenario  // idle (never started) or wsN, at each memory size
	PostcopyWS   int           // also a postcopy try for scenarios with this hot set (0 = none)
	Reps         int           // tries per side, scenario and mode (1)
	Warmup       time.Duration // guest runs this long before migrate (5 s)
	Cap          time.Duration // a migration not completed by then is cancelled: unconverged (60 s)
	MaxBandwidth int64         // migrate-set-parameters max-bandwidth on the source (100 GiB/s)
	Multifd      int           // > 0: the multifd capability on both ends, with this many channels
	LinkFor      time.Duration // length of the link's own throughput measurement (3 s)
	Net          MigNet        // the pair (DefaultMigNet)
	BaseDir      string        // run directories ("" = os.TempDir())
	Sides        []string      // subset of QEMU, TLCVM (both)
	Poll         time.Duration // query-migrate poll interval (20 ms)
	Progress     io.Writer
	Record       func(any) error
}

func (o *MigOptions) defaults() error {
	if o.Reps == 0 {
		o.Reps = 1
	}
	for _, d := range []struct {
		p *time.Duration
		v time.Duration
	}{{&o.Warmup, 5 * time.Second}, {&o.Cap, time.Minute}, {&o.LinkFor, 3 * time.Second}, {&o.Poll, 20 * time.Millisecond}} {
		if *d.p == 0 {
			*d.p = d.v
		}
	}
	if o.MaxBandwidth == 0 {
		o.MaxBandwidth = 100 << 30
	}
	if o.Net.Src == "" {
		o.Net = DefaultMigNet
	}
	if len(o.Sides) == 0 {
		o.Sides = []string{QEMU, TLCVM}
	}
	if o.Reps < 0 || len(o.Scenarios) == 0 || o.TLCVM == "" || o.QEMU == "" {
		return fmt.Errorf("%w: need binaries, scenarios and reps ≥ 0", ErrOptions)
	}
	return nil
}

func (o *MigOptions) progress(format string, a ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", a...)
	}
}

func (o *MigOptions) record(r any) error {
	if o.Record == nil {
		return nil
	}
	return o.Record(r)
}

// MigLink is the record of the link's own throughput.
type MigLink struct {
	Kind   string  `json:"kind"` // "link"
	When   string  `json:"when"` // "before" or "after" the migrations
	MBs    float64 `json:"mb_s"`
	Millis int64   `json:"ms"`
	// PopulateMBs is PopulateThroughput of 1 GiB right after: the rate at which a
	// destination can place pages in fresh memory on this host (0: not measured).
	PopulateMBs float64 `json:"populate_mb_s,omitempty"`
	// FreshMBs is FreshThroughput of 1 GiB right after: the link into fresh memory, the
	// bound of a destination's throughput on this host (0: not measured).
	FreshMBs float64 `json:"fresh_mb_s,omitempty"`
	Err      string  `json:"err,omitempty"`
}

// MigRecord is one migration try.
type MigRecord struct {
	Kind        string   `json:"kind"` // "migrate"
	Side        string   `json:"side"`
	Mode        string   `json:"mode"`
	Scenario    string   `json:"scenario"`
	MemMiB      int      `json:"mem_mib"`
	WSMiB       int      `json:"ws_mib"`
	Stopped     bool     `json:"stopped,omitempty"` // the guest was stopped before migrate ("written")
	Rep         int      `json:"rep"`
	Args        []string `json:"args"`
	URI         string   `json:"uri"`
	Status      string   `json:"status"`
	Converged   bool     `json:"converged"`
	Capped      bool     `json:"capped,omitempty"`
	WallMS      float64  `json:"migrate_wall_ms"`
	TotalMS     *int64   `json:"total_ms,omitempty"`
	DowntimeMS  *int64   `json:"downtime_ms,omitempty"`
	SetupMS     *int64   `json:"setup_ms,omitempty"`
	Transferred int64    `json:"ram_transferred"`
	Passes      int64    `json:"dirty_sync_count"`
	PostcopyB   int64    `json:"postcopy_bytes"`           // query-migrate ram.postcopy-bytes: > 0 once postcopy was entered
	PostcopyAt  float64  `json:"postcopy_at_ms,omitempty"` // migrate-start-postcopy, from migrate
	DstStatus   string   `json:"dst_status,omitempty"`
	// SrcCPUMS and DstCPUMS are the CPU time (utime + stime, all threads) the source spent
	// from migrate to its end, and the destination until it left inmigrate: the
	// migration's own CPU when the guest does not run (a hot guest's vCPU counts in the
	// source's). 0: not read.
	SrcCPUMS float64         `json:"src_cpu_ms,omitempty"`
	DstCPUMS float64         `json:"dst_cpu_ms,omitempty"`
	Info     json.RawMessage `json:"info,omitempty"` // the final query-migrate
	Err      string          `json:"err,omitempty"`
}

// ThroughputMBs is RAM transferred ÷ total time (MB/s), or 0.
func (r MigRecord) ThroughputMBs() float64 {
	if r.TotalMS == nil || *r.TotalMS <= 0 {
		return 0
	}
	return float64(r.Transferred) / 1e6 / (float64(*r.TotalMS) / 1e3)
}

func migArgs(side string, sc CkScenario, kernel string) []string {
	s := CkTLCVM
	if side == QEMU {
		s = CkQEMU
	}
	return CkArgs(s, sc, kernel)
}

func (o *MigOptions) bin(side string) string {
	if side == QEMU {
		return o.QEMU
	}
	return o.TLCVM
}

func launchIn(ctx context.Context, ns, bin string, args []string, base string, timeout time.Duration) (*emu.Process, *qmpc.Conn, error) {
	b, a := Wrap(ns, bin, args)
	return launchNegotiated(ctx, emu.Config{Bin: b, Args: a, BaseDir: base}, timeout)
}

func setCaps(c *qmpc.Conn, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	var caps []map[string]any
	for _, n := range names {
		caps = append(caps, map[string]any{"capability": n, "state": true})
	}
	_, err := c.Execute("migrate-set-capabilities", map[string]any{"capabilities": caps})
	return err
}

// setChannels sets multifd-channels (n > 0: the multifd capability is on).
func setChannels(c *qmpc.Conn, n int) error {
	if n <= 0 {
		return nil
	}
	_, err := c.Execute("migrate-set-parameters", map[string]any{"multifd-channels": n})
	return err
}

// oneMigration runs one try: the destination (-incoming defer, migrate-incoming tcp) in Dst,
// the source in Src (cont unless idle, warm-up), migrate, poll query-migrate until it ends or
// the cap (then migrate_cancel: unconverged); postcopy switches after the first pass.
func oneMigration(ctx context.Context, o *MigOptions, side, mode string, sc CkScenario, rep, port int) (rec MigRecord, err error) {
	rec = MigRecord{Kind: "migrate", Side: side, Mode: mode, Scenario: sc.Name, MemMiB: sc.MemMiB, WSMiB: sc.WSMiB, Stopped: sc.Stopped, Rep: rep,
		Args: migArgs(side, sc, o.Kernel), URI: fmt.Sprintf("tcp:%s:%d", o.Net.DstAddr, port)}
	var caps []string
	if mode == MigPostcopy {
		caps = append(caps, "postcopy-ram")
	}
	if o.Multifd > 0 {
		caps = append(caps, "multifd")
	}
	timeout := time.Minute
	dst, dconn, err := launchIn(ctx, o.Net.Dst, o.bin(side), append(append([]string(nil), rec.Args...), "-incoming", "defer"), o.BaseDir, timeout)
	defer func() {
		if serr := dst.Stop(dconn, 20*time.Second); err == nil && serr != nil {
			err = serr
		}
	}()
	if err != nil {
		return rec, err
	}
	_ = dconn.SetDeadline(time.Now().Add(2*o.Cap + o.Warmup + 2*time.Minute))
	if err := setCaps(dconn, caps...); err != nil {
		return rec, err
	}
	if err := setChannels(dconn, o.Multifd); err != nil {
		return rec, err
	}
	if _, err := dconn.Execute("migrate-incoming", map[string]any{"uri": rec.URI}); err != nil {
		return rec, err
	}
	src, conn, err := launchIn(ctx, o.Net.Src, o.bin(side), append(append([]string(nil), rec.Args...), "-S"), o.BaseDir, timeout)
	defer func() {
		if serr := src.Stop(conn, 20*time.Second); err == nil && serr != nil {
			err = serr
		}
	}()
	if err != nil {
		return rec, err
	}
	_ = conn.SetDeadline(time.Now().Add(2*o.Cap + o.Warmup + 2*time.Minute))
	if !sc.Idle() {
		if _, err := conn.Execute("cont", nil); err != nil {
			return rec, err
		}
	}
	if sc.Stopped {
		if err := writtenThenStop(ctx, o, conn, src); err != nil {
			return rec, err
		}
	} else if err := sleepCtx(ctx, o.Warmup, src); err != nil {
		return rec, err
	}
	if _, err := conn.Execute("migrate-set-parameters", map[string]any{"max-bandwidth": o.MaxBandwidth}); err != nil {
		return rec, err
	}
	if err := setCaps(conn, caps...); err != nil {
		return rec, err
	}
	if err := setChannels(conn, o.Multifd); err != nil {
		return rec, err
	}
	srcCPU0, srcErr := procmem.ReadCPU(src.Pid())
	dstCPU0, dstErr := procmem.ReadCPU(dst.Pid())
	t0 := time.Now()
	if _, err := conn.Execute("migrate", map[string]any{"uri": rec.URI}); err != nil {
		return rec, err
	}
	var info MigrateInfo
	var raw json.RawMessage
	switched := false
	var lastTransferred int64 // QEMU's query-migrate after a cancel has no ram: the last poll's
	for {
		raw, err = conn.Execute("query-migrate", nil)
		if err != nil {
			return rec, err
		}
		info = MigrateInfo{}
		if err := json.Unmarshal(raw, &info); err != nil {
			return rec, fmt.Errorf("suite: query-migrate: %w", err)
		}
		if info.RAM != nil {
			lastTransferred = info.RAM.Transferred
		}
		if info.Status == "completed" || info.Status == "failed" || info.Status == "cancelled" {
			break
		}
		if mode == MigPostcopy && !switched && info.RAM != nil && info.RAM.DirtySyncCount >= 2 {
			switched = true
			rec.PostcopyAt = ms(time.Since(t0))
			if _, err := conn.Execute("migrate-start-postcopy", nil); err != nil {
				return rec, err
			}
		}
		if rec.Capped && time.Since(t0) > 2*o.Cap+time.Second {
			return rec, fmt.Errorf("%w: still %q after migrate_cancel", ErrNoEnd, info.Status)
		}
		if time.Since(t0) > o.Cap && !rec.Capped {
			rec.Capped = true
			if _, err := conn.Execute("migrate_cancel", nil); err != nil {
				return rec, err
			}
			o.progress("  %s %s %s: capped after %v, cancelled", side, mode, sc.Label(), time.Since(t0).Round(time.Millisecond))
		}
		if err := sleepCtx(ctx, o.Poll, src); err != nil {
			return rec, err
		}
	}
	rec.WallMS = ms(time.Since(t0))
	if c, err := procmem.ReadCPU(src.Pid()); err == nil && srcErr == nil {
		rec.SrcCPUMS = ms(c - srcCPU0)
	}
	rec.Info, rec.Status, rec.Converged = raw, info.Status, info.Status == "completed"
	rec.TotalMS, rec.DowntimeMS, rec.SetupMS = info.TotalTime, info.Downtime, info.SetupTime
	rec.Transferred = lastTransferred
	if info.RAM != nil {
		rec.Transferred, rec.Passes = info.RAM.Transferred, info.RAM.DirtySyncCount
	}
	var pc struct {
		RAM struct {
			PostcopyBytes int64 `json:"postcopy-bytes"`
		} `json:"ram"`
	}
	if json.Unmarshal(raw, &pc) == nil {
		rec.PostcopyB = pc.RAM.PostcopyBytes
	}
	if info.Status == "failed" {
		return rec, fmt.Errorf("suite: migration failed: %s", info.ErrorDesc)
	}
	if rec.Converged {
		// The destination leaves inmigrate once it has loaded everything (postcopy: once the
		// last page arrived).
		deadline := time.Now().Add(o.Cap)
		for {
			st, _, err := queryStatus(dconn)
			if err != nil {
				return rec, err
			}
			rec.DstStatus = st
			if st != "inmigrate" && st != "postmigrate" || time.Now().After(deadline) {
				if c, err := procmem.ReadCPU(dst.Pid()); err == nil && dstErr == nil {
					rec.DstCPUMS = ms(c - dstCPU0)
				}
				break
			}
			if err := sleepCtx(ctx, o.Poll, dst); err != nil {
				return rec, err
			}
		}
	}
	return rec, nil
}

// ErrNotWritten means a "written" guest did not finish its first pass over its RAM in time.
var ErrNotWritten = errors.New("suite: the guest did not write its RAM in time")

// writtenThenStop waits until the guest has written its working set and finished a pass
// over it (the u64 pass counter at guest-physical 0x500, the same in tlcvm's workload and
// the kit's dirty.elf, read with HMP xp) and stops it (stop).
func writtenThenStop(ctx context.Context, o *MigOptions, conn *qmpc.Conn, p *emu.Process) error {
	deadline := time.Now().Add(o.Cap)
	for {
		raw, err := conn.Execute("human-monitor-command", map[string]any{"command-line": "xp /1gx 0x500"})
		if err != nil {
			return err
		}
		var out string
		if err := json.Unmarshal(raw, &out); err != nil {
			return fmt.Errorf("suite: xp: %w", err)
		}
		f := strings.Fields(out)
		if len(f) == 2 {
			if n, err := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 64); err == nil && n >= 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: xp 0x500 = %q after %v", ErrNotWritten, out, o.Cap)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond, p); err != nil {
			return err
		}
	}
	_, err := conn.Execute("stop", nil)
	return err
}

// RunMigrate creates the veth pair, measures the link, then every scenario (and the postcopy
// ones): Reps tries per side, the sides' order rotating per try; measures the link again and
// deletes the pair. It returns the records and the links.
func RunMigrate(ctx context.Context, o MigOptions) ([]MigRecord, []MigLink, error) {
	if err := o.defaults(); err != nil {
		return nil, nil, err
	}
	if err := o.Net.Create(ctx); err != nil {
		return nil, nil, err
	}
	defer o.Net.Delete()
	port := 49200
	var links []MigLink
	link := func(when string) error {
		port++
		t0 := time.Now()
		mbs, err := o.Net.LinkThroughput(ctx, port, o.LinkFor)
		l := MigLink{Kind: "link", When: when, MBs: mbs, Millis: time.Since(t0).Milliseconds()}
		if err != nil {
			l.Err = err.Error()
		}
		if pm, perr := PopulateThroughput(1 << 30); perr == nil {
			l.PopulateMBs = pm
		}
		port++
		if fm, ferr := o.Net.FreshThroughput(ctx, port, 1<<30); ferr == nil {
			l.FreshMBs = fm
		}
		o.progress("link %s: %.0f MB/s%s; populating fresh memory: %.0f MB/s; the link into fresh memory: %.0f MB/s",
			when, mbs, errSuffix(l.Err), l.PopulateMBs, l.FreshMBs)
		links = append(links, l)
		if rerr := o.record(l); rerr != nil {
			return rerr
		}
		return err
	}
	if err := link("before"); err != nil {
		return nil, links, err
	}
	var recs []MigRecord
	for _, sc := range o.Scenarios {
		modes := []string{MigPrecopy}
		// QEMU 7.2 refuses postcopy-ram with multifd ("Postcopy is not yet compatible
		// with multifd"): no postcopy tries in a multifd run.
		if o.PostcopyWS > 0 && o.Multifd == 0 && sc.WSMiB == o.PostcopyWS && !sc.Stopped {
			modes = append(modes, MigPostcopy)
		}
		for _, mode := range modes {
			for i := 0; i < o.Reps; i++ {
				n := len(o.Sides)
				for j := 0; j < n; j++ {
					side := o.Sides[(i+j)%n]
					if err := ctx.Err(); err != nil {
						return recs, links, err
					}
					port++
					rec, err := oneMigration(ctx, &o, side, mode, sc, i, port)
					if err != nil {
						rec.Err = err.Error()
					}
					o.progress("%s %s %s try %d: %s total %s ms downtime %s ms %.1f MB %.0f MB/s dst %s%s",
						sc.Label(), mode, side, i+1, rec.Status, i64(rec.TotalMS), i64(rec.DowntimeMS),
						float64(rec.Transferred)/1e6, rec.ThroughputMBs(), rec.DstStatus, errSuffix(rec.Err))
					recs = append(recs, rec)
					if err := o.record(rec); err != nil {
						return recs, links, err
					}
				}
			}
		}
	}
	err := link("after")
	return recs, links, err
}
