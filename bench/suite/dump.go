package suite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"tlcvm/bench/procmem"
	"tlcvm/bench/stats"
)

// RunDump ("tlcvm-bench dump", issue 11) measures dump-guest-memory of a guest that has
// written a given amount of its RAM, tlcvm beside QEMU 7.2 in one run:
//
//	tlcvm -m 4G -fw_cfg …ws=64M,,rate=64M     QEMU -m 4G -kernel dirty.elf -append "ws=64 delay=0"
//	  xp 0x500 ≥ 1 (filled, one pass) ─ stop    xp 0x500 ≥ 1 ─ stop
//	per rep, per format (elf, kdump-zlib), the two sides in turns (tlcvm first on even reps):
//	  syncfs ─ dump-guest-memory paging=false protocol=file:F [format] ─ its return (the time)
//	  ─ stat F: st_size, st_blocks*512 ─ (first ELF of a side: count F's non-zero 4 KiB blocks) ─ rm F
//	quit both
//
// The dump is synchronous (detach=false): both emulators return once the file is written,
// after DUMP_COMPLETED. Nothing is fsynced; the page cache's writeback of the previous dump
// is flushed (syncfs) before each one, outside the timed interval.

// ErrDump means a step of the dump benchmark went wrong.
var ErrDump = errors.New("suite: dump")

// Dump formats measured by default.
const (
	DumpELF       = "elf"
	DumpKdumpZlib = "kdump-zlib"
)

// DumpOptions configure RunDump. Zero values take the defaults noted.
type DumpOptions struct {
	TLCVM, QEMU string   // binaries; QEMU "" skips it
	Kernel      string   // QEMU's guest, the kit's dirty.elf; "" or missing: QEMU is skipped
	Dir         string   // where the dumps go ("/tmp/tlcvm-bench/dump"); each deleted after use
	BaseDir     string   // run directories ("" = os.TempDir())
	MemMiB      int      // guest RAM (4096)
	WSMiB       int      // RAM the guest writes (64)
	Formats     []string // dump-guest-memory formats (elf, kdump-zlib)
	Reps        int      // dumps per side and format (3)
	Cap         time.Duration
	Output
}

func (o *DumpOptions) defaults() error {
	if o.MemMiB == 0 {
		o.MemMiB = 4096
	}
	if o.WSMiB == 0 {
		o.WSMiB = 64
	}
	if len(o.Formats) == 0 {
		o.Formats = []string{DumpELF, DumpKdumpZlib}
	}
	if o.Reps == 0 {
		o.Reps = 3
	}
	if o.Cap == 0 {
		o.Cap = 300 * time.Second
	}
	if o.Dir == "" {
		o.Dir = "/tmp/tlcvm-bench/dump"
	}
	if o.TLCVM == "" {
		return fmt.Errorf("%w: need the tlcvm binary", ErrOptions)
	}
	if o.WSMiB+2 > o.MemMiB || o.Reps < 1 {
		return fmt.Errorf("%w: ws + 2 MiB must fit in RAM, reps ≥ 1", ErrOptions)
	}
	return os.MkdirAll(o.Dir, 0o755)
}

func (o *DumpOptions) progress(format string, a ...any) { o.say("dump", format, a...) }

// Output is where a benchmark's progress lines and raw measurements go.
type Output struct {
	Progress io.Writer       // progress lines (nil: none)
	Record   func(any) error // every raw measurement as it is taken (nil: dropped)
}

func (o Output) say(name, format string, a ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, name+": "+format+"\n", a...)
	}
}

func (o Output) record(r any) error {
	if o.Record == nil {
		return nil
	}
	return o.Record(r)
}

// DumpGuest is one side's guest, ready to be dumped.
type DumpGuest struct {
	Kind   string   `json:"kind"` // "dump-guest"
	Side   string   `json:"side"`
	Args   []string `json:"args"`
	FillMS float64  `json:"fill_ms"` // start → pass counter ≥ 1
	// NonZeroBytes is the size of the non-zero 4 KiB blocks of the side's first ELF dump
	// (what the guest wrote, less pages it wrote zeros to): set once that dump is read.
	NonZeroBytes int64  `json:"nonzero_bytes,omitempty"`
	Err          string `json:"err,omitempty"`
}

// DumpRecord is one dump.
type DumpRecord struct {
	Kind      string  `json:"kind"` // "dump"
	Side      string  `json:"side"`
	Format    string  `json:"format"`
	Rep       int     `json:"rep"`
	MS        float64 `json:"ms"`         // command sent → its return (0 when it failed)
	CPUMS     float64 `json:"cpu_ms"`     // the emulator's utime + stime meanwhile (all threads)
	Size      int64   `json:"size"`       // st_size
	DiskBytes int64   `json:"disk_bytes"` // st_blocks * 512
	Err       string  `json:"err,omitempty"`
}

// DumpResult is what RunDump measured.
type DumpResult struct {
	Opts   DumpOptions
	Guests map[string]*DumpGuest
	Dumps  []DumpRecord
}

// RunDump measures the dumps (see the top of dump.go). A side that fails to start is noted
// in its DumpGuest and the other carries on; a dump that fails is recorded with its error.
func RunDump(ctx context.Context, o DumpOptions) (*DumpResult, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	res := &DumpResult{Opts: o, Guests: map[string]*DumpGuest{}}
	sides := []string{CkTLCVM}
	if o.QEMU != "" && o.Kernel != "" {
		if _, err := os.Stat(o.Kernel); err == nil {
			sides = append(sides, CkQEMU)
		} else {
			o.progress("QEMU skipped: %v", err)
		}
	} else {
		o.progress("QEMU skipped: no binary or no kernel (dirty.elf)")
	}
	vms := map[string]*vm{}
	defer func() {
		for _, v := range vms {
			_ = v.stop()
		}
	}()
	for _, side := range sides {
		g, v, err := o.prepare(ctx, side)
		res.Guests[side] = g
		if rerr := o.record(g); rerr != nil {
			return res, rerr
		}
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			continue
		}
		vms[side] = v
	}
	for rep := 0; rep < o.Reps; rep++ {
		order := slices.Clone(sides)
		if rep%2 == 1 {
			slices.Reverse(order)
		}
		for _, f := range o.Formats {
			for _, side := range order {
				v := vms[side]
				if v == nil {
					continue
				}
				if err := ctx.Err(); err != nil {
					return res, err
				}
				rec := o.dumpOnce(ctx, v, f, rep, res.Guests[side])
				res.Dumps = append(res.Dumps, rec)
				if err := o.record(rec); err != nil {
					return res, err
				}
			}
		}
	}
	for _, g := range res.Guests {
		if g.NonZeroBytes > 0 {
			if err := o.record(g); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// prepare starts one side's guest, waits until it has written its working set and stops it.
func (o *DumpOptions) prepare(ctx context.Context, side string) (*DumpGuest, *vm, error) {
	sc := CkScenario{Name: "dump", WSMiB: o.WSMiB, MemMiB: o.MemMiB}
	g := &DumpGuest{Kind: "dump-guest", Side: side, Args: CkArgs(side, sc, o.Kernel)}
	if side == CkTLCVM {
		// One pass a second instead of rate=max: the guest is stopped a pass or two after its
		// fill, so the memory dumped (and the work of compressing it) is the same run to run.
		w := fmt.Sprintf("ws=%dM,,rate=%dM", o.WSMiB, o.WSMiB)
		g.Args = append(g.Args[:len(g.Args)-2], "-fw_cfg", "name=opt/tlcvm/workload,string="+w)
	}
	bin := o.TLCVM
	if side == CkQEMU {
		bin = o.QEMU
	}
	fail := func(err error) (*DumpGuest, *vm, error) {
		g.Err = err.Error()
		o.progress("%s: ERROR %v", side, err)
		return g, nil, err
	}
	v, err := startVM(ctx, side, bin, g.Args, o.BaseDir, o.Cap, time.Duration(o.Reps*len(o.Formats)+2)*o.Cap)
	if err != nil {
		return fail(err)
	}
	if err := v.waitU64(ctx, addrPass, 1, o.Cap); err != nil {
		v.stop()
		return fail(err)
	}
	g.FillMS = ms(time.Since(v.t0))
	if _, err := v.exec("stop", nil); err != nil {
		v.stop()
		return fail(err)
	}
	o.progress("%s: guest wrote its %d MiB in %.0f ms (exec → pass 1), stopped", side, o.WSMiB, g.FillMS)
	return g, v, nil
}

// dumpOnce dumps v once in format f and measures the file; for the first ELF dump of a
// side it also counts the file's non-zero blocks into g.
func (o *DumpOptions) dumpOnce(ctx context.Context, v *vm, f string, rep int, g *DumpGuest) DumpRecord {
	rec := DumpRecord{Kind: "dump", Side: v.side, Format: f, Rep: rep}
	path := filepath.Join(o.Dir, fmt.Sprintf("dump-%s-%s", v.side, f))
	_ = os.Remove(path)
	defer os.Remove(path)
	syncDir(o.Dir)
	args := map[string]any{"paging": false, "protocol": "file:" + path}
	if f != DumpELF {
		args["format"] = f
	}
	cpu0, cerr := procmem.ReadCPU(v.p.Pid())
	t0 := time.Now()
	_, err := v.exec("dump-guest-memory", args)
	d := time.Since(t0)
	if cpu1, cerr1 := procmem.ReadCPU(v.p.Pid()); cerr == nil && cerr1 == nil {
		rec.CPUMS = ms(cpu1 - cpu0)
	}
	if err != nil {
		rec.Err = err.Error()
		o.progress("%s %s: ERROR %v", v.side, f, err)
		return rec
	}
	rec.MS = ms(d)
	rec.Size, rec.DiskBytes = fileSizes(path)
	if f == DumpELF && g.NonZeroBytes == 0 {
		n, err := nonZeroBytes(ctx, path)
		if err != nil {
			o.progress("%s: counting the non-zero blocks of %s: %v", v.side, path, err)
		}
		g.NonZeroBytes = n
	}
	o.progress("%s %s rep %d: %.0f ms (CPU %.0f ms), %.1f MiB apparent, %.1f MiB on disk", v.side, f, rep, rec.MS,
		rec.CPUMS, inMiB(rec.Size), inMiB(rec.DiskBytes))
	return rec
}

func inMiB(b int64) float64 { return float64(b) / mib }

// syncDir writes back the dirty pages of dir's file system (outside timed intervals).
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = unix.Syncfs(int(f.Fd()))
		f.Close()
	}
}

// nonZeroBytes is the size of the 4 KiB blocks of path (at file offsets multiple of 4 KiB)
// that hold a non-zero byte, reading only the file's data extents (SEEK_DATA/SEEK_HOLE).
func nonZeroBytes(ctx context.Context, path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fd := int(f.Fd())
	var n, off int64
	buf := make([]byte, 1<<20)
	zero := make([]byte, 4096)
	for {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err != nil {
			return n, nil // ENXIO: no data past off
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			return n, err
		}
		for p := start &^ 4095; p < end; {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			k, err := f.ReadAt(buf[:min(int64(len(buf)), end-p)], p)
			for i := 0; i < k; i += 4096 {
				j := min(i+4096, k)
				if !bytes.Equal(buf[i:j], zero[:j-i]) {
					n += 4096
				}
			}
			p += int64(k)
			if err == io.EOF || k == 0 {
				break
			}
			if err != nil {
				return n, err
			}
		}
		off = end
	}
}

// DumpRow is one line of the dump table.
type DumpRow struct {
	Metric       string
	TLCVM, QEMU  float64 // NaN: not measured
	Ratio        float64 // tlcvm ÷ QEMU, or tlcvm ÷ the written RAM (NaN: none)
	RatioOf      string  // what Ratio divides by
	Target       string
	Met, Judged  bool
	TLCVMErr, QE string
}

// DumpRows turns the result into the table's rows: per format, the median time, the apparent
// size and the blocks on disk of each side; tlcvm's blocks against the RAM its guest writes
// (the working set; the non-zero blocks of each side's ELF dump are rows of their own).
func DumpRows(res *DumpResult) []DumpRow {
	if res == nil {
		return nil
	}
	o := res.Opts
	written := float64(int64(o.WSMiB) << 20) // what the workload writes, the target's measure
	var rows []DumpRow
	for _, f := range o.Formats {
		pick := func(side string, val func(DumpRecord) float64) (float64, string) {
			var xs []float64
			errText := ""
			for _, d := range res.Dumps {
				if d.Side != side || d.Format != f {
					continue
				}
				if d.Err != "" {
					errText = d.Err
					continue
				}
				xs = append(xs, val(d))
			}
			if g := res.Guests[side]; g != nil && g.Err != "" {
				errText = g.Err
			}
			if len(xs) == 0 {
				return nan, errText
			}
			m, _ := stats.Median(xs)
			return m, ""
		}
		t, te := pick(CkTLCVM, func(d DumpRecord) float64 { return d.MS })
		q, qe := pick(CkQEMU, func(d DumpRecord) float64 { return d.MS })
		r := DumpRow{Metric: f + ": dump-guest-memory → return, median (ms)", TLCVM: t, QEMU: q, Ratio: t / q,
			RatioOf: "QEMU", Target: "≥ 10× faster (ratio ≤ 0.1)", TLCVMErr: te, QE: qe}
		r.Judged = finite(r.Ratio)
		r.Met = r.Judged && r.Ratio <= 0.1
		rows = append(rows, r)
		tc, _ := pick(CkTLCVM, func(d DumpRecord) float64 { return d.CPUMS })
		qc, _ := pick(CkQEMU, func(d DumpRecord) float64 { return d.CPUMS })
		rows = append(rows, DumpRow{Metric: f + ": the emulator's CPU time meanwhile, median (ms)", TLCVM: tc, QEMU: qc,
			Ratio: tc / qc, RatioOf: "QEMU", Target: "informational (what the load does not change)"})
		ts, _ := pick(CkTLCVM, func(d DumpRecord) float64 { return inMiB(d.Size) })
		qs, _ := pick(CkQEMU, func(d DumpRecord) float64 { return inMiB(d.Size) })
		rows = append(rows, DumpRow{Metric: f + ": apparent size, st_size (MiB)", TLCVM: ts, QEMU: qs, Ratio: ts / qs,
			RatioOf: "QEMU"})
		tb, _ := pick(CkTLCVM, func(d DumpRecord) float64 { return inMiB(d.DiskBytes) })
		qb, _ := pick(CkQEMU, func(d DumpRecord) float64 { return inMiB(d.DiskBytes) })
		b := DumpRow{Metric: f + ": blocks on disk, st_blocks×512 (MiB)", TLCVM: tb, QEMU: qb,
			Ratio: tb / inMiB(int64(written)), RatioOf: fmt.Sprintf("ws=%d MiB", o.WSMiB)}
		if f == DumpELF {
			b.Target = "≈ the written RAM (0.9–1.1×)"
			b.Judged = finite(b.Ratio)
			b.Met = b.Judged && b.Ratio >= 0.9 && b.Ratio <= 1.1
		} else {
			b.Target = "informational (flattened stream: a 24 B descriptor per 4 KiB page, then the compressed pages)"
		}
		rows = append(rows, b)
	}
	for _, side := range []string{CkTLCVM, CkQEMU} {
		if g := res.Guests[side]; g != nil && g.NonZeroBytes > 0 {
			rows = append(rows, DumpRow{Metric: side + "'s guest: non-zero 4 KiB blocks in its ELF dump (MiB)",
				TLCVM: ifSide(side == CkTLCVM, inMiB(g.NonZeroBytes)), QEMU: ifSide(side == CkQEMU, inMiB(g.NonZeroBytes)),
				Ratio: inMiB(g.NonZeroBytes) / float64(o.WSMiB), RatioOf: fmt.Sprintf("ws=%d MiB", o.WSMiB)})
		}
	}
	return rows
}

func ifSide(ok bool, v float64) float64 {
	if ok {
		return v
	}
	return nan
}

// DumpMarkdown is the dump table.
func DumpMarkdown(rows []DumpRow) string {
	var b strings.Builder
	b.WriteString("| metric | tlcvm | QEMU 7.2 | ratio | of | target | met? |\n|---|---:|---:|---:|---|---|---|\n")
	num := func(v float64, errText string) string {
		switch {
		case errText != "":
			return "failed: " + strings.ReplaceAll(short(errors.New(errText)), "|", "\\|")
		case math.IsNaN(v) || math.IsInf(v, 0):
			return "—"
		case v >= 100:
			return fmt.Sprintf("%.0f", v)
		default:
			return fmt.Sprintf("%.2f", v)
		}
	}
	for _, r := range rows {
		ratio := "—"
		if finite(r.Ratio) {
			ratio = fmt.Sprintf("%.3f", r.Ratio)
		}
		met := ""
		if r.Judged {
			met = map[bool]string{true: "yes", false: "**no**"}[r.Met]
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r.Metric, num(r.TLCVM, r.TLCVMErr), num(r.QEMU, r.QE),
			ratio, r.RatioOf, r.Target, met)
	}
	return b.String()
}
