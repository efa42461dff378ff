package suite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"tlcvm/bench/emu"
	"tlcvm/bench/qmpc"
)

// RunFileCP (filecp*.go, "tlcvm-bench filecp", issue 6) measures checkpoints to file: with
// mapped-ram and their restores by mapping, in one run, in this order (every file is
// deleted once its last reader is done):
//
//	dd if=/dev/zero of=F bs=1M count=4096                   the file-write bandwidth (page cache)
//	tlcvm -m 4G ws=64M fill=4000M: fill ─ stop ─ x-tlc+mapped-ram → A   (first: full)
//	  ─ cont 1 s stop ─ → A (second: incremental) ─ cont ─ → A (live: running in the file)
//	  ─ stop ─ mapped-ram off → B (streamed) ─ quit ─ rm B
//	tlcvm -incoming file:A   (populate background; before-run through -incoming defer)
//	  exec → query-status running ─ quit ─ rm A
//	tlcvm -m 16G ws=64M fill=N: fill ─ x-tlc+mapped-ram, live → C ─ quit ─ restore C ─ rm C
//	QEMU 7.2 -m 4G dirty.elf: one pass ─ stop ─ exec:cat > Q ─ quit ─ -incoming exec:cat Q
//	tlcvm -smp 1 ws=1G: 1 s of xp 0x508 (baseline) ─ mapped-ram (QEMU mode, running) → R
//	  ─ restore R with populate background, then none: 1 s of xp 0x508 once running

var nan = math.NaN()

// ErrFileCP means a step of the file-checkpoint benchmark went wrong (a checkpoint that
// did not complete, a restore that did not run, a counter that could not be read).
var ErrFileCP = errors.New("suite: filecp")

// FcOptions configure RunFileCP. Zero values take the defaults noted.
type FcOptions struct {
	TLCVM, QEMU string // binaries
	Kernel      string // QEMU's guest (the kit's dirty.elf); "" or missing: QEMU is skipped
	Dir         string // where the big files go ("/tmp/tlcvm-bench/ckpt")
	BaseDir     string // run directories ("" = os.TempDir())
	DDMiB       int    // dd's file size (4096)
	MemMiB      int    // the checkpointed guest's RAM (4096)
	FillMiB     int    // its fill= (4000)
	WSMiB       int    // its working set, dirtied between the first and second (64)
	BigMemMiB   int    // the big restore's RAM (16384)
	BigFillMiB  int    // its fill= (6144)
	RateWSMiB   int    // the page-write-rate guest's working set (1024)
	RateMemMiB  int    // its RAM (2048)
	QEMUWSMiB   int    // QEMU guest's ws= (4000: dirty.elf clamps it to RAM below 4 GiB)
	RestoreReps int    // tries of the background and before-run restores; the median is kept (3)
	// Dirty is how long the guest runs between the first and second checkpoint (1 s);
	// Window the page-write-rate measurement (1 s).
	Dirty, Window time.Duration
	Cap           time.Duration // limit of one step: fill, checkpoint, restore (120 s)
	Poll          time.Duration // query-migrate / xp poll interval while waiting (10 ms)
	Progress      io.Writer
	Record        func(any) error
}

func (o *FcOptions) defaults() error {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&o.DDMiB, 4096)
	def(&o.MemMiB, 4096)
	def(&o.FillMiB, 4000)
	def(&o.WSMiB, 64)
	def(&o.BigMemMiB, 16384)
	def(&o.BigFillMiB, 6144)
	def(&o.RateWSMiB, 1024)
	def(&o.RateMemMiB, 2048)
	def(&o.QEMUWSMiB, 4000)
	def(&o.RestoreReps, 3)
	dur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	dur(&o.Dirty, time.Second)
	dur(&o.Window, time.Second)
	dur(&o.Cap, 120*time.Second)
	dur(&o.Poll, 10*time.Millisecond)
	if o.Dir == "" {
		o.Dir = "/tmp/tlcvm-bench/ckpt"
	}
	if o.TLCVM == "" {
		return fmt.Errorf("%w: need the tlcvm binary", ErrOptions)
	}
	if o.FillMiB+o.WSMiB+2 > o.MemMiB || o.BigFillMiB+o.WSMiB+2 > o.BigMemMiB || o.RateWSMiB+2 > o.RateMemMiB {
		return fmt.Errorf("%w: fill + ws + 2 MiB must fit in RAM", ErrOptions)
	}
	return os.MkdirAll(o.Dir, 0o755)
}

func (o *FcOptions) progress(format string, a ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "filecp: "+format+"\n", a...)
	}
}

func (o *FcOptions) record(r any) error {
	if o.Record == nil {
		return nil
	}
	return o.Record(r)
}

// FileInfo is query-migrate's x-tlc-file (tlcvm only).
type FileInfo struct {
	Mode         string `json:"mode"`
	Incremental  bool   `json:"incremental"`
	Reason       string `json:"reason,omitempty"`
	WrittenBytes int64  `json:"written-bytes"`
	Populate     string `json:"populate,omitempty"`
	PagesEager   int64  `json:"pages-eager"`
	PagesLazy    int64  `json:"pages-lazy"`
	PagesLeft    int64  `json:"pages-left"`
}

// FcDD is the dd measurement.
type FcDD struct {
	Kind  string  `json:"kind"` // "filecp-dd"
	Bytes int64   `json:"bytes"`
	MS    float64 `json:"ms"` // exec → dd exited
	MBs   float64 `json:"mb_s"`
	Err   string  `json:"err,omitempty"`
}

// FcCheckpoint is one checkpoint to a file.
type FcCheckpoint struct {
	Kind       string          `json:"kind"` // "filecp-checkpoint"
	Name       string          `json:"name"` // first, second, live, streamed, big, rate, qemu
	Side       string          `json:"side"` // CkTLCVM or CkQEMU
	Args       []string        `json:"args"`
	URI        string          `json:"uri"`
	Caps       []string        `json:"caps,omitempty"` // capabilities set on
	Running    bool            `json:"guest_running"`  // the guest ran during the checkpoint
	Status     string          `json:"status"`
	TotalMS    *int64          `json:"total_ms,omitempty"`
	DowntimeMS *int64          `json:"downtime_ms,omitempty"`
	WallMS     float64         `json:"wall_ms"`                 // migrate → query-migrate completed (polled)
	Written    int64           `json:"written_bytes,omitempty"` // x-tlc-file written-bytes (QEMU: the file's size)
	FileBytes  int64           `json:"file_bytes"`              // st_size afterwards
	DiskBytes  int64           `json:"disk_bytes"`              // st_blocks*512 afterwards
	File       *FileInfo       `json:"file,omitempty"`
	Info       json.RawMessage `json:"info,omitempty"` // the final query-migrate
	After      string          `json:"status_after,omitempty"`
	Err        string          `json:"err,omitempty"`
}

// MBs is the checkpoint's bandwidth: bytes written ÷ total-time (MB/s), or NaN.
func (c FcCheckpoint) MBs() float64 {
	if c.TotalMS == nil || *c.TotalMS <= 0 || c.Written <= 0 || c.Status != "completed" {
		return nan
	}
	return float64(c.Written) / 1e6 / (float64(*c.TotalMS) / 1e3)
}

// FcRestore is one restore.
type FcRestore struct {
	Kind      string          `json:"kind"` // "filecp-restore"
	Name      string          `json:"name"` // 4G, 4G-before-run, big, qemu, rate-background, rate-none
	Side      string          `json:"side"`
	Args      []string        `json:"args"`
	Populate  string          `json:"populate,omitempty"`
	FileBytes int64           `json:"file_bytes"`
	QMPMS     float64         `json:"qmp_ready_ms"`          // exec → qmp_capabilities answered
	ReadyMS   float64         `json:"ready_ms"`              // exec → query-status running (QEMU: out of inmigrate)
	IncomMS   float64         `json:"incoming_ms,omitempty"` // migrate-incoming sent → running (-incoming defer)
	Status    string          `json:"status"`                // query-status then
	File      *FileInfo       `json:"file,omitempty"`        // x-tlc-file once running
	Info      json.RawMessage `json:"info,omitempty"`        // query-migrate once running
	Err       string          `json:"err,omitempty"`
}

// FcRate is a page-write-rate measurement: vCPU 0's pages-written counter (u64 at
// guest-physical 0x508) read with xp at the start and the end of a window.
type FcRate struct {
	Kind     string    `json:"kind"` // "filecp-rate"
	Name     string    `json:"name"` // baseline, background, none
	Pages    uint64    `json:"pages"`
	Seconds  float64   `json:"seconds"` // between the two reads' replies
	Rate     float64   `json:"pages_per_s"`
	FileEnd  *FileInfo `json:"file_end,omitempty"` // x-tlc-file at the end of the window
	Err      string    `json:"err,omitempty"`
	StartRef string    `json:"start,omitempty"` // what the window started from
}

// FcResult is everything one run measured; FcRows turns it into the table.
type FcResult struct {
	Opts        FcOptions                `json:"-"`
	DD          FcDD                     `json:"dd"`
	Checkpoints map[string]*FcCheckpoint `json:"checkpoints"`
	Restores    map[string]*FcRestore    `json:"restores"`
	Rates       map[string]*FcRate       `json:"rates"`
	Errs        []string                 `json:"errs,omitempty"`
}

func (r *FcResult) ck(name string) *FcCheckpoint {
	if c := r.Checkpoints[name]; c != nil {
		return c
	}
	return &FcCheckpoint{Name: name}
}

func (r *FcResult) rs(name string) *FcRestore {
	if c := r.Restores[name]; c != nil {
		return c
	}
	return &FcRestore{Name: name}
}

func (r *FcResult) rate(name string) *FcRate {
	if c := r.Rates[name]; c != nil {
		return c
	}
	return &FcRate{Name: name, Rate: nan}
}

// fcArgs is tlcvm's command line for a guest of memMiB with the workload w, one vCPU.
func fcArgs(memMiB int, w string) []string {
	return []string{"-machine", "pc", "-m", strconv.Itoa(memMiB), "-smp", "1", "-nodefaults", "-display", "none",
		"-fw_cfg", "name=opt/tlcvm/workload,string=" + w}
}

// vm is one emulator with a negotiated QMP connection.
type vm struct {
	p    *emu.Process
	c    *qmpc.Conn
	t0   time.Time // before exec
	qmp  time.Duration
	side string
}

func (o *FcOptions) start(ctx context.Context, side string, args []string) (*vm, error) {
	bin := o.TLCVM
	if side == CkQEMU {
		bin = o.QEMU
	}
	return startVM(ctx, side, bin, args, o.BaseDir, o.Cap, 4*o.Cap+4*o.Window)
}

// startVM launches bin with args (in its own run directory under baseDir), connects within
// connect and negotiates QMP; every later reply must come within life of the start.
func startVM(ctx context.Context, side, bin string, args []string, baseDir string, connect, life time.Duration) (*vm, error) {
	t0 := time.Now()
	p, err := emu.Launch(emu.Config{Bin: bin, Args: args, BaseDir: baseDir})
	if err != nil {
		return nil, err
	}
	v := &vm{p: p, t0: t0, side: side}
	c, _, _, err := p.Connect(ctx, connect)
	v.c = c
	if err != nil {
		v.stop()
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(life))
	if err := c.Negotiate(); err != nil {
		v.stop()
		return nil, err
	}
	v.qmp = time.Since(t0)
	return v, nil
}

func (v *vm) stop() error {
	if v == nil || v.p == nil {
		return nil
	}
	err := v.p.Stop(v.c, 20*time.Second)
	v.p = nil
	return err
}

func (v *vm) exec(name string, args any) (json.RawMessage, error) { return v.c.Execute(name, args) }

// readU64 reads the u64 at guest-physical addr with HMP xp.
func (v *vm) readU64(addr uint64) (uint64, error) {
	raw, err := v.exec("human-monitor-command", map[string]string{"command-line": fmt.Sprintf("xp /1gx %#x", addr)})
	if err != nil {
		return 0, err
	}
	var out string
	if err := json.Unmarshal(raw, &out); err != nil {
		return 0, fmt.Errorf("%w: xp: %v", ErrFileCP, err)
	}
	f := strings.Fields(out)
	if len(f) < 2 {
		return 0, fmt.Errorf("%w: xp %#x: %q", ErrFileCP, addr, out)
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(f[len(f)-1], "0x"), 16, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: xp %#x: %q", ErrFileCP, addr, out)
	}
	return n, nil
}

// waitCounter polls the u64 at addr until it reaches min (the workload's initial fill is done).
func (o *FcOptions) waitCounter(ctx context.Context, v *vm, addr, min uint64) error {
	return v.waitU64(ctx, addr, min, o.Cap)
}

// waitU64 polls the u64 at guest-physical addr every 50 ms until it reaches min, for at
// most limit.
func (v *vm) waitU64(ctx context.Context, addr, min uint64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		n, err := v.readU64(addr)
		if err != nil {
			return err
		}
		if n >= min {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %w: u64 at %#x still %d after %v", ErrFileCP, emu.ErrTimeout, addr, n, limit)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond, v.p); err != nil {
			return err
		}
	}
}

func (v *vm) status() (string, error) {
	st, _, err := queryStatus(v.c)
	return st, err
}

func (v *vm) setCaps(caps map[string]bool) error {
	var list []map[string]any
	for k, on := range caps {
		list = append(list, map[string]any{"capability": k, "state": on})
	}
	_, err := v.exec("migrate-set-capabilities", map[string]any{"capabilities": list})
	return err
}

// queryMigrate returns query-migrate, decoded and raw, with x-tlc-file.
func (v *vm) queryMigrate() (MigrateInfo, *FileInfo, json.RawMessage, error) {
	raw, err := v.exec("query-migrate", nil)
	if err != nil {
		return MigrateInfo{}, nil, nil, err
	}
	var info MigrateInfo
	var f struct {
		File *FileInfo `json:"x-tlc-file"`
	}
	if err := json.Unmarshal(raw, &info); err != nil {
		return info, nil, raw, fmt.Errorf("%w: query-migrate: %v", ErrFileCP, err)
	}
	_ = json.Unmarshal(raw, &f)
	return info, f.File, raw, nil
}

// checkpoint runs migrate to uri and polls query-migrate until it ends; the record is
// filled in (file sizes from path).
func (o *FcOptions) checkpoint(ctx context.Context, v *vm, rec *FcCheckpoint, path string) error {
	rec.Kind, rec.Side = "filecp-checkpoint", v.side
	t0 := time.Now()
	if _, err := v.exec("migrate", map[string]any{"uri": rec.URI}); err != nil {
		return err
	}
	for {
		info, file, raw, err := v.queryMigrate()
		if err != nil {
			return err
		}
		if info.Status == "completed" || info.Status == "failed" || info.Status == "cancelled" {
			rec.WallMS = ms(time.Since(t0))
			rec.Status, rec.TotalMS, rec.DowntimeMS, rec.File, rec.Info = info.Status, info.TotalTime, info.Downtime, file, raw
			if file != nil {
				rec.Written = file.WrittenBytes
			}
			if info.Status != "completed" {
				return fmt.Errorf("%w: checkpoint %s %s: %s", ErrFileCP, rec.Name, info.Status, info.ErrorDesc)
			}
			break
		}
		if time.Since(t0) > o.Cap {
			_, _ = v.exec("migrate_cancel", nil)
			return fmt.Errorf("%w: %w: checkpoint %s still %s after %v", ErrFileCP, emu.ErrTimeout, rec.Name, info.Status, o.Cap)
		}
		if err := sleepCtx(ctx, o.Poll, v.p); err != nil {
			return err
		}
	}
	rec.After, _ = v.status()
	rec.FileBytes, rec.DiskBytes = fileSizes(path)
	return nil
}

// fileSizes returns a file's size and its allocated bytes.
func fileSizes(path string) (size, disk int64) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0
	}
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		disk = s.Blocks * 512
	}
	return st.Size(), disk
}

// settle writes back the dirty pages of Dir's file system (syncfs) and records how long
// it took, so that every big write starts with the same empty dirty-page budget instead of
// inheriting the writeback of the previous one. It is never inside a timed interval.
func (o *FcOptions) settle(why string) {
	f, err := os.Open(o.Dir)
	if err != nil {
		return
	}
	defer f.Close()
	t := time.Now()
	msg := ""
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		msg = " ERROR " + err.Error()
	}
	o.progress("syncfs before %s: %v%s", why, time.Since(t).Round(time.Millisecond), msg)
}

// image returns a file path under Dir, removed first.
func (o *FcOptions) image(name string) string {
	p := filepath.Join(o.Dir, "filecp-"+name+".ckpt")
	_ = os.Remove(p)
	return p
}
