package suite

import (
	"context"
	"fmt"
	"os"
	"time"

	"tlcvm/bench/emu"
)

// runQEMU: QEMU 7.2's own checkpoint of the kit guest (one pass over ws= MiB, dirty.elf
// clamps it to the RAM below 4 GiB), paused, through exec:cat > FILE, and its restore
// through -incoming exec:cat FILE (exec → out of inmigrate: paused, like its source).
func runQEMU(ctx context.Context, o *FcOptions, res *FcResult) error {
	if o.QEMU == "" || o.Kernel == "" {
		o.progress("QEMU skipped: no binary or no kernel (dirty.elf)")
		return nil
	}
	if _, err := os.Stat(o.Kernel); err != nil {
		o.progress("QEMU skipped: %v", err)
		return nil
	}
	args := CkArgs(CkQEMU, CkScenario{Name: "fill", WSMiB: o.QEMUWSMiB, MemMiB: o.MemMiB}, o.Kernel)
	q := o.image("qemu")
	defer os.Remove(q)
	if err := func() error {
		v, err := o.start(ctx, CkQEMU, args)
		if err != nil {
			return err
		}
		defer v.stop()
		t := time.Now()
		if err := o.waitCounter(ctx, v, addrPass, 1); err != nil {
			return err
		}
		o.progress("QEMU guest filled in %v", time.Since(t).Round(time.Millisecond))
		if err := v.setBandwidth(0); err != nil {
			return err
		}
		if _, err := v.exec("stop", nil); err != nil {
			return err
		}
		o.settle("QEMU's checkpoint")
		rec := &FcCheckpoint{Kind: "filecp-checkpoint", Name: "qemu", Args: args, URI: "exec:cat > " + q}
		res.Checkpoints["qemu"] = rec
		err = o.checkpoint(ctx, v, rec, q)
		// The writer (sh, cat) is in QEMU's process group: let it drain before quit.
		waitGone(ctx, childPids(v.p.Pid()), o.Cap)
		rec.FileBytes, rec.DiskBytes = fileSizes(q)
		rec.Written = rec.FileBytes
		if err != nil {
			rec.Err = err.Error()
		}
		o.progress("checkpoint qemu: %s total %s ms, %.1f MB (%.0f MB/s)%s", rec.Status, i64(rec.TotalMS),
			float64(rec.Written)/1e6, rec.MBs(), errSuffix(rec.Err))
		if rerr := o.record(rec); rerr != nil {
			return rerr
		}
		return err
	}(); err != nil {
		return err
	}
	o.settle("QEMU's restore")
	rec := &FcRestore{Kind: "filecp-restore", Name: "qemu", Side: CkQEMU,
		Args: append(append([]string(nil), args...), "-incoming", "exec:cat "+q)}
	rec.FileBytes, _ = fileSizes(q)
	res.Restores["qemu"] = rec
	err := func() error {
		v, err := o.start(ctx, CkQEMU, rec.Args)
		if err != nil {
			return err
		}
		defer v.stop()
		rec.QMPMS = ms(v.qmp)
		for {
			st, err := v.status()
			if err != nil {
				return err
			}
			if st != "inmigrate" {
				rec.ReadyMS, rec.Status = ms(time.Since(v.t0)), st
				return nil
			}
			if time.Since(v.t0) > o.Cap {
				return fmt.Errorf("%w: %w: QEMU restore still inmigrate after %v", ErrFileCP, emu.ErrTimeout, o.Cap)
			}
			if err := sleepCtx(ctx, time.Millisecond, v.p); err != nil {
				return err
			}
		}
	}()
	if err != nil {
		rec.Err = err.Error()
	}
	o.progress("restore qemu: exec → %s %.0f ms%s", rec.Status, rec.ReadyMS, errSuffix(rec.Err))
	if rerr := o.record(rec); rerr != nil {
		return rerr
	}
	return err
}

// runRates: the page-write rate of a one-vCPU guest rewriting RateWSMiB, never
// checkpointed (baseline), then in its first Window after restores by mapping with
// x-restore-populate background and none.
func runRates(ctx context.Context, o *FcOptions, res *FcResult) error {
	args := fcArgs(o.RateMemMiB, fmt.Sprintf("ws=%dM,,rate=max", o.RateWSMiB))
	r := o.image("rate")
	defer os.Remove(r)
	if err := func() error {
		v, err := o.start(ctx, CkTLCVM, args)
		if err != nil {
			return err
		}
		defer v.stop()
		if err := o.waitCounter(ctx, v, addrPass, 2); err != nil {
			return err
		}
		if err := o.measureRate(ctx, res, v, "baseline", "after the initial fill, never checkpointed"); err != nil {
			return err
		}
		// QEMU mode with a downtime limit the whole hot set fits in: one pass, then the
		// stop; the file says "running", so the restores run at once.
		if err := v.setBandwidth(60_000); err != nil {
			return err
		}
		if err := v.setCaps(map[string]bool{"mapped-ram": true}); err != nil {
			return err
		}
		o.settle("the checkpoint")
		return o.ckStep(ctx, res, v, args, "rate", "file:"+r, r, []string{"mapped-ram"}, true)
	}(); err != nil {
		return err
	}
	o.settle("the restores")
	var errs []error
	for _, pop := range []string{"background", "none"} {
		v, err := o.restoreTLCVM(ctx, res, "rate-"+pop, args, r, pop)
		if err == nil {
			err = o.measureRate(ctx, res, v, pop, "restore running and query-migrate completed")
		}
		v.stop()
		if err != nil {
			errs = append(errs, err)
		}
	}
	return joinErrs(errs)
}

// measureRate reads vCPU 0's pages-written counter, waits Window, reads it again, and
// records the rate (with x-tlc-file at the end of the window).
func (o *FcOptions) measureRate(ctx context.Context, res *FcResult, v *vm, name, from string) error {
	rec := &FcRate{Kind: "filecp-rate", Name: name, Rate: nan, StartRef: from}
	res.Rates[name] = rec
	err := func() error {
		a, err := v.readU64(addrPages)
		if err != nil {
			return err
		}
		ta := time.Now()
		if err := sleepCtx(ctx, o.Window, v.p); err != nil {
			return err
		}
		b, err := v.readU64(addrPages)
		if err != nil {
			return err
		}
		d := time.Since(ta)
		_, file, _, err := v.queryMigrate()
		if err != nil {
			return err
		}
		rec.FileEnd = file
		if b < a {
			return fmt.Errorf("%w: pages-written went back from %d to %d", ErrFileCP, a, b)
		}
		rec.Pages, rec.Seconds = b-a, d.Seconds()
		rec.Rate = float64(rec.Pages) / rec.Seconds
		return nil
	}()
	if err != nil {
		rec.Err = err.Error()
	}
	var file string
	if rec.FileEnd != nil && rec.FileEnd.Populate != "" {
		file = fmt.Sprintf(", then eager %d lazy %d left %d", rec.FileEnd.PagesEager, rec.FileEnd.PagesLazy, rec.FileEnd.PagesLeft)
	}
	o.progress("page-write rate %s: %.3g pages/s%s%s", name, rec.Rate, file, errSuffix(rec.Err))
	if rerr := o.record(rec); rerr != nil {
		return rerr
	}
	return err
}
