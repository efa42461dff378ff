package libvirt

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"tlcvm/bench/report"
	"tlcvm/bench/stats"
	lv "tlcvm/internal/libvirttest"
)

// BenchConfig configures Bench.
type BenchConfig struct {
	TLCVM, QEMU string // the two emulators
	MBR         string // boot sector for the disk (QEMU powers off with it)
	N           int    // repetitions per side and metric
	Dir         string // scratch directory
	Progress    io.Writer
}

// Sample is one timed step.
type Sample struct {
	Side, Step string
	Seconds    float64
	Err        string
}

// Bench measures with v, interleaved (tlcvm, QEMU, QEMU, tlcvm, …), libvirt's probe
// of each binary at a new path (`virsh domcapabilities --emulatorbin LINK`,
// a new path each time so libvirt probes again) and virsh start, save,
// restore and destroy of the same pc domain. It returns every sample and
// the table rows (medians, ratios, targets: start ≤ 1/3, probe ≤ 1/5).
func Bench(v *lv.Virsh, cfg BenchConfig) ([]Sample, []report.Row, error) {
	if cfg.N <= 0 {
		cfg.N = 5
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	sides := map[string]string{"tlcvm": cfg.TLCVM, "qemu": cfg.QEMU}
	doms := map[string]lv.Domain{}
	for side, bin := range sides {
		d := lv.Domain{Kind: lv.PC, Name: lv.NewName("tlcvm-bench-" + side), UUID: lv.NewUUID(), Emulator: bin,
			Disk: filepath.Join(cfg.Dir, side+".qcow2"), Workload: "idle"}
		if err := lv.CreateDisk(d.Disk, cfg.MBR); err != nil {
			return nil, nil, err
		}
		if err := v.Define(d, cfg.Dir); err != nil {
			return nil, nil, err
		}
		defer v.Remove(d.Name)
		doms[side] = d
	}
	var samples []Sample
	add := func(side, step string, d time.Duration, err error) bool {
		s := Sample{Side: side, Step: step, Seconds: d.Seconds()}
		if err != nil {
			s.Err = err.Error()
		}
		samples = append(samples, s)
		fmt.Fprintf(cfg.Progress, "libvirt bench: %-5s %-8s %.3f s %s\n", side, step, s.Seconds, s.Err)
		return err == nil
	}
	order := []string{"tlcvm", "qemu", "qemu", "tlcvm"}
	for i := 0; i < 2*cfg.N; i++ {
		side := order[i%4]
		if err := benchProbe(v, cfg, side, sides[side], i, add); err != nil {
			return samples, nil, err
		}
		benchLife(v, cfg, side, doms[side], i, add)
	}
	return samples, Rows(samples), nil
}

func benchProbe(v *lv.Virsh, cfg BenchConfig, side, bin string, i int, add func(string, string, time.Duration, error) bool) error {
	dir := filepath.Join(cfg.Dir, fmt.Sprintf("probe-%s-%d", side, i))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// A symlink, not a copy: Debian's QEMU loads its TCG accelerator as a module
	// found from its real path. libvirt keys its cache by the path given, so a new
	// link path still means a fresh probe.
	cp := filepath.Join(dir, "qemu-system-x86_64")
	if err := os.Symlink(bin, cp); err != nil {
		return err
	}
	_, d, err := v.Timed("domcapabilities", "--emulatorbin", cp, "--virttype", "qemu")
	add(side, "probe", d, err)
	// libvirt keeps a cache file per emulator path; these paths never come back.
	sum := sha256.Sum256([]byte(cp))
	_ = os.Remove(filepath.Join("/var/cache/libvirt/qemu/capabilities", hex.EncodeToString(sum[:])+".xml"))
	return nil
}

func benchLife(v *lv.Virsh, cfg BenchConfig, side string, d lv.Domain, i int, add func(string, string, time.Duration, error) bool) {
	sav := filepath.Join(cfg.Dir, fmt.Sprintf("%s-%d.sav", side, i))
	defer os.Remove(sav)
	_, t, err := v.Timed("start", d.Name)
	if !add(side, "start", t, err) {
		return
	}
	if _, err := v.WaitState(d.Name, "running", 60*time.Second); err != nil {
		add(side, "save", 0, err)
		return
	}
	_, t, err = v.Timed("save", d.Name, sav)
	if !add(side, "save", t, err) {
		_, _ = v.Run("destroy", d.Name)
		return
	}
	_, t, err = v.Timed("restore", sav)
	if !add(side, "restore", t, err) {
		return
	}
	_, t, err = v.Timed("destroy", d.Name)
	add(side, "destroy", t, err)
}

// rowStep is one table row: the step's samples, the metric's text and its target.
type rowStep struct {
	step, metric string
	tg           report.Target
}

// Rows turns samples into table rows: medians per side and step.
func Rows(samples []Sample) []report.Row {
	return rowsFor(samples, []rowStep{
		{"probe", "libvirt probe of a new binary (domcapabilities, s)", report.Target{Kind: report.RatioAtMost, Value: 0.2, Text: "≤ 1/5 of QEMU"}},
		{"start", "virsh start (s)", report.Target{Kind: report.RatioAtMost, Value: 1.0 / 3, Text: "≤ 1/3 of QEMU"}},
		{"save", "virsh save (s)", report.Target{}},
		{"restore", "virsh restore (s)", report.Target{}},
		{"destroy", "virsh destroy (s)", report.Target{}},
	})
}

// rowsFor makes one row per step: the median of each side's successful samples (NaN and
// the last error when it has none).
func rowsFor(samples []Sample, steps []rowStep) []report.Row {
	var rows []report.Row
	for _, s := range steps {
		r := report.Row{Metric: s.metric, Digits: 3, Target: s.tg, TLCVM: math.NaN(), QEMU: math.NaN()}
		for _, side := range []string{"tlcvm", "qemu"} {
			var xs []float64
			var lastErr string
			for _, x := range samples {
				if x.Side != side || x.Step != s.step {
					continue
				}
				if x.Err != "" {
					lastErr = x.Err
					continue
				}
				xs = append(xs, x.Seconds)
			}
			m, err := stats.Median(xs)
			if side == "tlcvm" {
				r.TLCVM = m
				if err != nil {
					r.TLCVM, r.TLCVMErr = math.NaN(), lastErr
				}
			} else {
				r.QEMU = m
				if err != nil {
					r.QEMU, r.QEMUErr = math.NaN(), lastErr
				}
			}
		}
		rows = append(rows, r)
	}
	return rows
}
