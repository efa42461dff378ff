package suite

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"

	"tlcvm/bench/emu"
)

// Guest-physical addresses the benchmark reads with xp: vCPU 0's pass counter (also the
// kit guest's) and tlcvm's vCPU 0 pages-written counter.
const (
	addrPass  = 0x500
	addrPages = 0x508
)

// RunFileCP runs every file-checkpoint measurement once (see the top of filecp.go) and
// returns what it measured. A step that fails is noted in FcResult.Errs and the run goes
// on with the next; only a cancelled ctx or a failing Record stops it.
func RunFileCP(ctx context.Context, o FcOptions) (*FcResult, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	res := &FcResult{Opts: o, Checkpoints: map[string]*FcCheckpoint{}, Restores: map[string]*FcRestore{},
		Rates: map[string]*FcRate{}}
	steps := []struct {
		name string
		run  func(context.Context, *FcOptions, *FcResult) error
	}{
		{"dd", runDD},
		{"checkpoints of the " + gib(o.MemMiB) + " guest and their restores", runFourG},
		{gib(o.BigMemMiB) + " restore", runBig},
		{"QEMU 7.2", runQEMU},
		{"page-write rate", runRates},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		o.progress("%s", s.name)
		if err := s.run(ctx, &o, res); err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			res.Errs = append(res.Errs, s.name+": "+err.Error())
			o.progress("%s: ERROR %v", s.name, err)
		}
	}
	return res, nil
}

// runDD times dd writing DDMiB of zeros into a file (page cache, no fsync), then removes it.
func runDD(ctx context.Context, o *FcOptions, res *FcResult) error {
	f := o.image("dd")
	defer os.Remove(f)
	res.DD = FcDD{Kind: "filecp-dd", Bytes: int64(o.DDMiB) << 20, MBs: nan}
	o.settle("dd")
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "dd", "if=/dev/zero", "of="+f, "bs=1M", "count="+strconv.Itoa(o.DDMiB))
	cmd.Stderr = &stderr
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		res.DD.Err = fmt.Sprintf("%v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	} else {
		res.DD.MS, res.DD.MBs = ms(d), float64(res.DD.Bytes)/1e6/d.Seconds()
	}
	o.progress("dd: %d MiB in %.0f ms: %.0f MB/s", o.DDMiB, res.DD.MS, res.DD.MBs)
	if rerr := o.record(res.DD); rerr != nil {
		return rerr
	}
	if err != nil {
		return fmt.Errorf("%w: dd: %s", ErrFileCP, res.DD.Err)
	}
	return nil
}

func (o *FcOptions) fillWorkload(fillMiB int) string {
	return fmt.Sprintf("ws=%dM,,rate=max,,fill=%dM", o.WSMiB, fillMiB)
}

// setBandwidth lifts QEMU's 128 MiB/s default max-bandwidth (and, when downtime > 0, the
// downtime limit).
func (v *vm) setBandwidth(downtimeMS int64) error {
	p := map[string]any{"max-bandwidth": int64(100) << 30}
	if downtimeMS > 0 {
		p["downtime-limit"] = downtimeMS
	}
	_, err := v.exec("migrate-set-parameters", p)
	return err
}

// ckStep runs one named checkpoint of v to path and records it.
func (o *FcOptions) ckStep(ctx context.Context, res *FcResult, v *vm, args []string, name, uri, path string,
	caps []string, running bool) error {
	rec := &FcCheckpoint{Kind: "filecp-checkpoint", Name: name, Args: args, URI: uri, Caps: caps, Running: running}
	res.Checkpoints[name] = rec
	err := o.checkpoint(ctx, v, rec, path)
	if err != nil {
		rec.Err = err.Error()
	}
	inc := "—"
	if rec.File != nil {
		inc = strconv.FormatBool(rec.File.Incremental)
	}
	o.progress("checkpoint %s: %s total %s ms, written %.1f MB (%.0f MB/s), incremental %s, file %.1f MB, guest then %s%s",
		name, rec.Status, i64(rec.TotalMS), float64(rec.Written)/1e6, rec.MBs(), inc, float64(rec.FileBytes)/1e6,
		rec.After, errSuffix(rec.Err))
	if rerr := o.record(rec); rerr != nil {
		return rerr
	}
	return err
}

// runFourG: the 4 GiB guest's first (full), second (incremental), live and streamed
// checkpoints, then the restores of the live one.
func runFourG(ctx context.Context, o *FcOptions, res *FcResult) error {
	args := fcArgs(o.MemMiB, o.fillWorkload(o.FillMiB))
	a, b := o.image("4g-mapped"), o.image("4g-streamed")
	defer os.Remove(a)
	defer os.Remove(b)
	if err := func() error {
		v, err := o.start(ctx, CkTLCVM, args)
		if err != nil {
			return err
		}
		defer v.stop()
		t := time.Now()
		if err := o.waitCounter(ctx, v, addrPass, 2); err != nil {
			return err
		}
		o.progress("%s guest filled (%d MiB) in %v", gib(o.MemMiB), o.FillMiB+o.WSMiB, time.Since(t).Round(time.Millisecond))
		if err := v.setBandwidth(0); err != nil {
			return err
		}
		caps := []string{"x-tlc", "mapped-ram"}
		if err := v.setCaps(map[string]bool{"x-tlc": true, "mapped-ram": true}); err != nil {
			return err
		}
		if _, err := v.exec("stop", nil); err != nil {
			return err
		}
		o.settle("the first checkpoint")
		if err := o.ckStep(ctx, res, v, args, "first", "file:"+a, a, caps, false); err != nil {
			return err
		}
		o.settle("the second checkpoint")
		if _, err := v.exec("cont", nil); err != nil {
			return err
		}
		if err := sleepCtx(ctx, o.Dirty, v.p); err != nil {
			return err
		}
		if _, err := v.exec("stop", nil); err != nil {
			return err
		}
		if err := o.ckStep(ctx, res, v, args, "second", "file:"+a, a, caps, false); err != nil {
			return err
		}
		// A checkpoint of the running guest, so that its restore runs the guest.
		if _, err := v.exec("cont", nil); err != nil {
			return err
		}
		if err := o.ckStep(ctx, res, v, args, "live", "file:"+a, a, caps, true); err != nil {
			return err
		}
		if _, err := v.exec("stop", nil); err != nil {
			return err
		}
		if err := v.setCaps(map[string]bool{"mapped-ram": false}); err != nil {
			return err
		}
		o.settle("the streamed checkpoint")
		err = o.ckStep(ctx, res, v, args, "streamed", "file:"+b, b, []string{"x-tlc"}, false)
		_ = os.Remove(b)
		return err
	}(); err != nil {
		return err
	}
	if c := res.Checkpoints["live"]; c == nil || c.Status != "completed" {
		return nil
	}
	o.settle("the restores")
	var errs []error
	for _, r := range []struct{ name, populate string }{{"4G", ""}, {"4G-before-run", "before-run"}} {
		if err := o.restoreMedian(ctx, res, r.name, args, a, r.populate); err != nil {
			errs = append(errs, err)
		}
	}
	return joinErrs(errs)
}

// restoreMedian restores path RestoreReps times (each try recorded) and keeps the try
// with the median exec → running time in res.
func (o *FcOptions) restoreMedian(ctx context.Context, res *FcResult, name string, args []string, path, populate string) error {
	var tries []*FcRestore
	for i := 0; i < o.RestoreReps; i++ {
		v, err := o.restoreTLCVM(ctx, res, name, args, path, populate)
		v.stop()
		if err != nil {
			return err
		}
		tries = append(tries, res.Restores[name])
	}
	slices.SortFunc(tries, func(a, b *FcRestore) int { return cmp.Compare(a.ReadyMS, b.ReadyMS) })
	res.Restores[name] = tries[len(tries)/2]
	return nil
}

// restoreTLCVM starts tlcvm restoring path: with populate "" through -incoming file:path
// (default populate), else through -incoming defer, x-restore-populate and migrate-incoming.
// It polls query-status until running (no sleep: a round trip is tens of µs) and returns
// the running VM (the caller stops it, also on error).
func (o *FcOptions) restoreTLCVM(ctx context.Context, res *FcResult, name string, args []string, path, populate string) (*vm, error) {
	rec := &FcRestore{Kind: "filecp-restore", Name: name, Side: CkTLCVM, Populate: populate}
	rec.FileBytes, _ = fileSizes(path)
	res.Restores[name] = rec
	v, err := o.restoreRun(ctx, rec, args, path)
	if err != nil {
		rec.Err = err.Error()
	}
	var file string
	if rec.File != nil {
		file = fmt.Sprintf(" (populate %s, eager %d, lazy %d, left %d)", rec.File.Populate, rec.File.PagesEager,
			rec.File.PagesLazy, rec.File.PagesLeft)
	}
	o.progress("restore %s: exec → %s %.1f ms%s%s", name, rec.Status, rec.ReadyMS, file, errSuffix(rec.Err))
	if rerr := o.record(rec); rerr != nil {
		return v, rerr
	}
	return v, err
}

func (o *FcOptions) restoreRun(ctx context.Context, rec *FcRestore, args []string, path string) (*vm, error) {
	var t1 time.Time
	if rec.Populate == "" {
		rec.Args = append(append([]string(nil), args...), "-incoming", "file:"+path)
	} else {
		rec.Args = append(append([]string(nil), args...), "-incoming", "defer")
	}
	v, err := o.start(ctx, CkTLCVM, rec.Args)
	if err != nil {
		return nil, err
	}
	rec.QMPMS = ms(v.qmp)
	if rec.Populate != "" {
		if _, err := v.exec("migrate-set-parameters", map[string]any{"x-restore-populate": rec.Populate}); err != nil {
			return v, err
		}
		t1 = time.Now()
		if _, err := v.exec("migrate-incoming", map[string]any{"uri": "file:" + path}); err != nil {
			return v, err
		}
	}
	for {
		st, err := v.status()
		if err != nil {
			return v, err
		}
		if st != "inmigrate" && st != "prelaunch" {
			rec.ReadyMS, rec.Status = ms(time.Since(v.t0)), st
			if !t1.IsZero() {
				rec.IncomMS = ms(time.Since(t1))
			}
			break
		}
		if time.Since(v.t0) > o.Cap {
			return v, fmt.Errorf("%w: %w: restore still %s after %v", ErrFileCP, emu.ErrTimeout, st, o.Cap)
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-v.p.Exited():
			return v, fmt.Errorf("%w: %s", emu.ErrExited, v.p.Output(1024))
		default:
		}
	}
	info, file, raw, err := v.queryMigrate()
	if err != nil {
		return v, err
	}
	rec.File, rec.Info = file, raw
	if rec.Status != "running" {
		return v, fmt.Errorf("%w: restore ended %s (query-migrate %s: %s), not running", ErrFileCP, rec.Status,
			info.Status, info.ErrorDesc)
	}
	return v, nil
}

// runBig: a big guest with part of its RAM written, checkpointed live (x-tlc, mapped-ram),
// restored through -incoming file:.
func runBig(ctx context.Context, o *FcOptions, res *FcResult) error {
	args := fcArgs(o.BigMemMiB, o.fillWorkload(o.BigFillMiB))
	c := o.image("big")
	defer os.Remove(c)
	if err := func() error {
		v, err := o.start(ctx, CkTLCVM, args)
		if err != nil {
			return err
		}
		defer v.stop()
		if err := o.waitCounter(ctx, v, addrPass, 2); err != nil {
			return err
		}
		if err := v.setBandwidth(0); err != nil {
			return err
		}
		if err := v.setCaps(map[string]bool{"x-tlc": true, "mapped-ram": true}); err != nil {
			return err
		}
		o.settle("the big checkpoint")
		return o.ckStep(ctx, res, v, args, "big", "file:"+c, c, []string{"x-tlc", "mapped-ram"}, true)
	}(); err != nil {
		return err
	}
	o.settle("the big restore")
	return o.restoreMedian(ctx, res, "big", args, c, "")
}

func joinErrs(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %v", ErrFileCP, errs)
}
