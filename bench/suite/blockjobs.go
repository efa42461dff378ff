package suite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"tlcvm/bench/emu"
	"tlcvm/bench/qmpc"
	"tlcvm/bench/stats"

	"golang.org/x/sys/unix"
)

// The block-job benchmarks (issue 13), tlcvm beside QEMU 7.2 on the same images in the
// same run:
//
//   - mirror (drive-mirror sync=full to a new qcow2, completed once ready), an intermediate
//     commit (block-commit of the middle of base <- mid <- top into base) and a stream
//     (block-stream of base into an empty top) of a 4 GiB qcow2 holding 1 GiB of data: the
//     job's time (command to the job's end) and its throughput in data bytes, against dd
//     copying the same bytes (the image file, 4 MiB blocks) right before each repetition
//     of the job (the row's dd is the median of those: both sides' times drift within a
//     run with the host's memory and storage, and a dd measured once at the start
//     compared a later minute's job with an earlier minute's copy);
//   - a full backup (drive-backup sync=full) then, after 64 MiB of writes (HMP qemu-io on
//     both sides, the same offsets), an incremental one (sync=incremental over a bitmap
//     added before the full one): the incremental's time as a share of the full one's;
//   - NBD reads: qemu-img convert of a 1 GiB export (nbd-server-start and block-export-add
//     on a unix socket) to a raw file, beside qemu-nbd serving the same image.
//
// The page cache is warm for every side alike (each side reads images the run has just
// written); syncfs writes the scratch file system's dirty pages back before every timed
// interval (each dd, job, backup and NBD read), so that no measurement pays the write-back
// of what the step before it wrote (the incremental backup used to start while the
// gigabyte of the full one was being written back). The jobs themselves do not flush.

// scratchNote: each measurement removes its images as soon as it is over (after its
// emulator stops), so that the next one writes where they were. Kept until the end of the
// run, the mirror's and commit's images (~10 GB) made every later job slower: the stream
// after them took 1.9-2.9 s (QEMU 3.1-4.2 s), the same stream after a mirror whose images
// were gone 0.8-0.9 s (QEMU 2.1-2.2 s), with dd at 0.8-1.0 s in both (dd rewrites one
// file). The likely mechanism: later jobs wrote to parts of this VM's virtual disk (ext4
// mounted with discard) not written for long, which are slow to write.

// BJOptions configure RunBlockJobs.
type BJOptions struct {
	TLCVM, QEMU string          // emulator binaries
	Dir         string          // scratch directory for the images (several GiB free)
	Reps        int             // measurements per side and row (the median is shown)
	Only        map[string]bool // rows to run: mirror, commit, stream, backup, nbd (nil: all)
	Timeout     time.Duration
	Record      func(any) error
	Progress    io.Writer
}

// BJRow is one table row: the median of each side (seconds, or MB/s for throughput rows;
// NaN when the side did not run).
type BJRow struct {
	Metric, Unit      string
	TLCVM, QEMU, Base float64 // Base: dd or qemu-nbd
	BaseName, Target  string
}

const (
	bjVirtual = 4 << 30
	bjData    = 1 << 30
	bjNBD     = 1 << 30
	bjIncr    = 64 << 20
)

func (o *BJOptions) progress(format string, a ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "bench blockjobs: "+format+"\n", a...)
	}
}

func (o *BJOptions) record(r map[string]any) {
	if o.Record != nil {
		r["kind"] = "blockjobs"
		_ = o.Record(r)
	}
}

// tool runs a host tool and returns how long it took.
func tool(ctx context.Context, name string, args ...string) (time.Duration, error) {
	start := time.Now()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return time.Since(start), nil
}

// dataImage makes a 4 GiB qcow2 (64 KiB clusters) whose 1 GiB of data is 16 runs of 64 MiB,
// one every 256 MiB (qemu-io, pattern 0x5a), over backing when it is not "".
func dataImage(ctx context.Context, path, backing string, data bool) error {
	args := []string{"create", "-q", "-f", "qcow2"}
	if backing != "" {
		args = append(args, "-F", "qcow2", "-b", backing)
	}
	if _, err := tool(ctx, "qemu-img", append(args, path, fmt.Sprint(bjVirtual))...); err != nil {
		return err
	}
	if !data {
		return nil
	}
	io := []string{"-f", "qcow2"}
	for off := int64(0); off < bjVirtual; off += 256 << 20 {
		io = append(io, "-c", fmt.Sprintf("write -q -P 0x5a %d 64M", off))
	}
	_, err := tool(ctx, "qemu-io", append(io, path)...)
	return err
}

// bjVM is one emulator with a QMP connection.
type bjVM struct {
	p    *emu.Process
	conn *qmpc.Conn
}

func startBJ(ctx context.Context, bin, dir string, timeout time.Duration, args ...string) (*bjVM, error) {
	p, err := emu.Launch(emu.Config{Bin: bin, BaseDir: dir, Args: append([]string{"-nodefaults", "-display", "none",
		"-machine", "pc", "-m", "128", "-S"}, args...)})
	if err != nil {
		return nil, err
	}
	conn, _, _, err := p.Connect(ctx, timeout)
	if err == nil {
		err = conn.Negotiate()
	}
	if err != nil {
		_ = p.Stop(nil, time.Second)
		return nil, err
	}
	return &bjVM{p: p, conn: conn}, nil
}

func (v *bjVM) stop() { _ = v.p.Stop(v.conn, 5*time.Second) }

// waitJob polls query-block-jobs every 2 ms until the job is gone; with complete, it
// sends block-job-complete once the job is ready.
func (v *bjVM) waitJob(ctx context.Context, id string, complete bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	sent := false
	for {
		raw, err := v.conn.Execute("query-block-jobs", nil)
		if err != nil {
			return err
		}
		var jobs []struct {
			Device string `json:"device"`
			Ready  bool   `json:"ready"`
		}
		if err := json.Unmarshal(raw, &jobs); err != nil {
			return err
		}
		found := false
		for _, j := range jobs {
			if j.Device == id {
				found = true
				if complete && j.Ready && !sent {
					if _, err := v.conn.Execute("block-job-complete", map[string]any{"device": id}); err != nil {
						return err
					}
					sent = true
				}
			}
		}
		if !found {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("job %s still running after %v", id, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func blockdevArgs(path string) []string {
	return []string{"-blockdev", "driver=file,filename=" + path + ",node-name=f0",
		"-blockdev", "driver=qcow2,file=f0,node-name=q0"}
}

// jobRun prepares the images (untimed), starts an emulator over top, runs cmd and times it
// until the job has gone.
func (o *BJOptions) jobRun(ctx context.Context, bin, dir, job string) (time.Duration, error) {
	if err := os.RemoveAll(dir); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir) //nolint:errcheck // after the emulator stops: see scratchNote
	base, mid, top := filepath.Join(dir, "base.qcow2"), filepath.Join(dir, "mid.qcow2"), filepath.Join(dir, "top.qcow2")
	var err error
	var cmd string
	var args map[string]any
	complete := false
	switch job {
	case "mirror":
		err = dataImage(ctx, top, "", true)
		cmd, args, complete = "drive-mirror", map[string]any{"job-id": "j", "device": "q0", "target": filepath.Join(dir, "copy.qcow2"),
			"format": "qcow2", "sync": "full"}, true
	case "commit":
		if err = dataImage(ctx, base, "", false); err == nil {
			if err = dataImage(ctx, mid, base, true); err == nil {
				err = dataImage(ctx, top, mid, false)
			}
		}
		cmd, args = "block-commit", map[string]any{"job-id": "j", "device": "q0", "top-node": "q0-mid", "base-node": "q0-base"}
	case "stream":
		if err = dataImage(ctx, base, "", true); err == nil {
			err = dataImage(ctx, top, base, false)
		}
		cmd, args = "block-stream", map[string]any{"job-id": "j", "device": "q0"}
	}
	if err != nil {
		return 0, err
	}
	vmArgs := blockdevArgs(top)
	if job == "commit" { // named nodes for the whole chain
		vmArgs = []string{"-blockdev", "driver=file,filename=" + base + ",node-name=fb",
			"-blockdev", "driver=qcow2,file=fb,node-name=q0-base",
			"-blockdev", "driver=file,filename=" + mid + ",node-name=fm",
			"-blockdev", "driver=qcow2,file=fm,backing=q0-base,node-name=q0-mid",
			"-blockdev", "driver=file,filename=" + top + ",node-name=f0",
			"-blockdev", "driver=qcow2,file=f0,backing=q0-mid,node-name=q0"}
	}
	v, err := startBJ(ctx, bin, dir, o.Timeout, vmArgs...)
	if err != nil {
		return 0, err
	}
	defer v.stop()
	syncDir(dir) // the images just written go to disk before, not during, the job
	start := time.Now()
	if _, err := v.conn.Execute(cmd, args); err != nil {
		return 0, err
	}
	if err := v.waitJob(ctx, "j", complete, o.Timeout); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// backupRun times a full backup and, after 64 MiB of writes, an incremental one.
func (o *BJOptions) backupRun(ctx context.Context, bin, dir string) (full, incr time.Duration, err error) {
	if err := os.RemoveAll(dir); err != nil {
		return 0, 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir) //nolint:errcheck // after the emulator stops: see scratchNote
	img := filepath.Join(dir, "disk.qcow2")
	if err := dataImage(ctx, img, "", true); err != nil {
		return 0, 0, err
	}
	v, err := startBJ(ctx, bin, dir, o.Timeout, blockdevArgs(img)...)
	if err != nil {
		return 0, 0, err
	}
	defer v.stop()
	if _, err := v.conn.Execute("block-dirty-bitmap-add", map[string]any{"node": "q0", "name": "b0"}); err != nil {
		return 0, 0, err
	}
	timed := func(args map[string]any) (time.Duration, error) {
		// The image (and, before the incremental, the full backup just written) go to
		// disk before the job, not during it.
		syncDir(dir)
		start := time.Now()
		if _, err := v.conn.Execute("drive-backup", args); err != nil {
			return 0, err
		}
		if err := v.waitJob(ctx, "j", false, o.Timeout); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	if full, err = timed(map[string]any{"job-id": "j", "device": "q0", "target": filepath.Join(dir, "full.qcow2"),
		"format": "qcow2", "sync": "full"}); err != nil {
		return 0, 0, err
	}
	// 64 MiB of writes: 1 MiB every 64 MiB of the disk.
	for off := int64(0); off < bjVirtual; off += bjVirtual / (bjIncr >> 20) {
		if _, err := v.conn.Execute("human-monitor-command", map[string]any{"command-line": fmt.Sprintf("qemu-io q0 \"write -P 0x77 %d 1M\"", off)}); err != nil {
			return 0, 0, err
		}
	}
	if incr, err = timed(map[string]any{"job-id": "j", "device": "q0", "target": filepath.Join(dir, "inc.qcow2"),
		"format": "qcow2", "sync": "incremental", "bitmap": "b0"}); err != nil {
		return 0, 0, err
	}
	return full, incr, nil
}

// nbdRun times qemu-img reading a 1 GiB export: from an emulator (bin) or qemu-nbd (bin "").
func (o *BJOptions) nbdRun(ctx context.Context, bin, dir, img string) (time.Duration, error) {
	sock := filepath.Join(dir, "nbd.sock")
	_ = os.Remove(sock)
	uri := "nbd+unix:///exp?socket=" + sock
	if bin == "" {
		cmd := exec.CommandContext(ctx, "qemu-nbd", "-r", "-f", "qcow2", "-x", "exp", "-k", sock, "-t", img)
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		deadline := time.Now().Add(o.Timeout)
		for {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return 0, errors.New("qemu-nbd: no socket")
			}
			time.Sleep(5 * time.Millisecond)
		}
	} else {
		v, err := startBJ(ctx, bin, dir, o.Timeout, blockdevArgs(img)...)
		if err != nil {
			return 0, err
		}
		defer v.stop()
		if _, err := v.conn.Execute("nbd-server-start", map[string]any{"addr": map[string]any{"type": "unix", "data": map[string]any{"path": sock}}}); err != nil {
			return 0, err
		}
		if _, err := v.conn.Execute("block-export-add", map[string]any{"type": "nbd", "id": "exp", "node-name": "q0", "name": "exp"}); err != nil {
			return 0, err
		}
	}
	// The copy goes to memory (/dev/shm) where there is one: qemu-img convert flushes its
	// target, which put a gigabyte's write-back to the scratch disk in the timed interval
	// (one server's reads measured 353-2739 MB/s in one run, every side alike); the row
	// is the export's read throughput.
	outDir := dir
	if unix.Access("/dev/shm", unix.W_OK) == nil {
		outDir = "/dev/shm"
	}
	out := filepath.Join(outDir, fmt.Sprintf("tlcvm-bench-nbd-%d.raw", os.Getpid()))
	defer os.Remove(out)
	syncDir(dir)
	return tool(ctx, "qemu-img", "convert", "-f", "raw", "-O", "raw", uri, out)
}

// RunBlockJobs measures every row, Reps times per side, and returns the table's rows.
func RunBlockJobs(ctx context.Context, o BJOptions) ([]BJRow, error) {
	if o.Reps <= 0 {
		o.Reps = 3
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	sides := []struct{ name, bin string }{{"tlcvm", o.TLCVM}, {"qemu", o.QEMU}}
	var rows []BJRow
	var errs []error
	med := func(ds []float64) float64 {
		if len(ds) == 0 {
			return math.NaN()
		}
		m, _ := stats.Median(ds)
		return m
	}
	// dd of the same bytes: the data image's file (1 GiB of data and its metadata).
	dir := filepath.Join(o.Dir, "dd")
	_ = os.MkdirAll(dir, 0o755)
	src := filepath.Join(dir, "src.qcow2")
	if err := dataImage(ctx, src, "", true); err != nil {
		return nil, err
	}
	ddOnce := func(job string) (float64, error) {
		syncDir(dir)
		d, err := tool(ctx, "dd", "if="+src, "of="+filepath.Join(dir, "copy"), "bs=4M", "status=none")
		if err != nil {
			return 0, err
		}
		o.record(map[string]any{"metric": "dd", "before": job, "s": d.Seconds()})
		return d.Seconds(), nil
	}
	var dd []float64
	for i := 0; i < o.Reps; i++ {
		d, err := ddOnce("")
		if err != nil {
			return nil, err
		}
		dd = append(dd, d)
	}
	o.progress("dd of the 1 GiB image: %.2f s", med(dd))
	want := func(part string) bool { return o.Only == nil || o.Only[part] }
	for _, job := range []string{"mirror", "commit", "stream"} {
		if !want(job) {
			continue
		}
		got := map[string][]float64{}
		var jobDD []float64 // dd once more before each repetition: the base in the same minutes
		for i := 0; i < o.Reps; i++ {
			d, err := ddOnce(job)
			if err != nil {
				return nil, err
			}
			jobDD = append(jobDD, d)
			o.progress("dd before %s: %.2f s", job, d)
			for _, s := range sides {
				d, err := o.jobRun(ctx, s.bin, filepath.Join(o.Dir, s.name+"-"+job), job)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s %s: %w", s.name, job, err))
					continue
				}
				got[s.name] = append(got[s.name], d.Seconds())
				o.record(map[string]any{"metric": job, "side": s.name, "s": d.Seconds()})
				o.progress("%s %s: %.2f s", s.name, job, d.Seconds())
			}
		}
		t, q, ddS := med(got["tlcvm"]), med(got["qemu"]), med(jobDD)
		rows = append(rows, BJRow{Metric: job + " of 1 GiB in a 4 GiB qcow2", Unit: "s", TLCVM: t, QEMU: q, Base: ddS, BaseName: "dd",
			Target: "≤ dd / 0.8, < QEMU"})
		mb := func(s float64) float64 { return float64(bjData) / 1e6 / s }
		rows = append(rows, BJRow{Metric: job + " throughput", Unit: "MB/s", TLCVM: mb(t), QEMU: mb(q), Base: mb(ddS), BaseName: "dd",
			Target: "≥ 80 % of dd"})
	}
	full, incr := map[string][]float64{}, map[string][]float64{}
	for i := 0; i < o.Reps && want("backup"); i++ {
		for _, s := range sides {
			f, in, err := o.backupRun(ctx, s.bin, filepath.Join(o.Dir, s.name+"-backup"))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s backup: %w", s.name, err))
				continue
			}
			full[s.name], incr[s.name] = append(full[s.name], f.Seconds()), append(incr[s.name], in.Seconds())
			o.record(map[string]any{"metric": "backup", "side": s.name, "full_s": f.Seconds(), "incremental_s": in.Seconds()})
			o.progress("%s backup: full %.2f s, incremental %.3f s", s.name, f.Seconds(), in.Seconds())
		}
	}
	if want("backup") {
		rows = append(rows, BJRow{Metric: "full backup of 1 GiB", Unit: "s", TLCVM: med(full["tlcvm"]), QEMU: med(full["qemu"]), Base: math.NaN()},
			BJRow{Metric: "incremental backup after 64 MiB of writes", Unit: "s", TLCVM: med(incr["tlcvm"]), QEMU: med(incr["qemu"]), Base: math.NaN()},
			BJRow{Metric: "incremental / full", Unit: "%", TLCVM: 100 * med(incr["tlcvm"]) / med(full["tlcvm"]),
				QEMU: 100 * med(incr["qemu"]) / med(full["qemu"]), Base: math.NaN(), Target: "≤ 5 %"})
	}
	if !want("nbd") {
		return rows, errors.Join(errs...)
	}
	// NBD: a fully allocated 1 GiB image.
	dir = filepath.Join(o.Dir, "nbd")
	_ = os.MkdirAll(dir, 0o755)
	img := filepath.Join(dir, "exp.qcow2")
	if _, err := tool(ctx, "qemu-img", "create", "-q", "-f", "qcow2", img, fmt.Sprint(bjNBD)); err != nil {
		return rows, err
	}
	if _, err := tool(ctx, "qemu-io", "-f", "qcow2", "-c", fmt.Sprintf("write -q -P 0x33 0 %d", bjNBD), img); err != nil {
		return rows, err
	}
	nbd := map[string][]float64{}
	for i := 0; i < o.Reps; i++ {
		for _, s := range append(sides, struct{ name, bin string }{"qemu-nbd", ""}) {
			d, err := o.nbdRun(ctx, s.bin, dir, img)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s nbd: %w", s.name, err))
				continue
			}
			mbs := float64(bjNBD) / 1e6 / d.Seconds()
			nbd[s.name] = append(nbd[s.name], mbs)
			o.record(map[string]any{"metric": "nbd", "side": s.name, "mb_s": mbs})
			o.progress("%s nbd read: %.0f MB/s", s.name, mbs)
		}
	}
	rows = append(rows, BJRow{Metric: "NBD read of a 1 GiB export (qemu-img convert to raw)", Unit: "MB/s", TLCVM: med(nbd["tlcvm"]),
		QEMU: med(nbd["qemu"]), Base: med(nbd["qemu-nbd"]), BaseName: "qemu-nbd"})
	return rows, errors.Join(errs...)
}

// BJMarkdown renders the rows.
func BJMarkdown(rows []BJRow) string {
	var b strings.Builder
	b.WriteString("| metric | tlcvm | QEMU 7.2 | dd / qemu-nbd | target |\n|---|---:|---:|---:|---|\n")
	f := func(v float64, unit string) string {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "—"
		}
		switch unit {
		case "s":
			return fmt.Sprintf("%.2f s", v)
		case "%":
			return fmt.Sprintf("%.1f %%", v)
		}
		return fmt.Sprintf("%.0f %s", v, unit)
	}
	for _, r := range rows {
		base := f(r.Base, r.Unit)
		if base != "—" {
			base += " (" + r.BaseName + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.Metric, f(r.TLCVM, r.Unit), f(r.QEMU, r.Unit), base, r.Target)
	}
	return b.String()
}
