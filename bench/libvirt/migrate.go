package libvirt

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"tlcvm/bench/report"
	lv "tlcvm/internal/libvirttest"
)

// MigrateConfig configures MigrateBench.
type MigrateConfig struct {
	TLCVM, QEMU string // the two emulators
	N           int    // round trips per side and case (each one migration there and one back)
	Warmup      time.Duration
	Progress    io.Writer
}

// A migrateCase is one row of MigrateBench: virsh's flags and where the domain's disk is.
type migrateCase struct {
	step, metric string
	flags        []string
	// private: the disk is in each host's own images (/var/lib/libvirt/images), created
	// on both (libvirt creates no destination file outside a storage pool) and copied by
	// the migration; otherwise it is on the storage both hosts share.
	private bool
}

var migrateCases = []migrateCase{
	{"migrate", "virsh migrate --live between two hosts, 256 MiB pc domain (s)", []string{"--live", "--unsafe"}, false},
	{"migrate-copy-storage", "virsh migrate --live --copy-storage-all, same domain, its 64 MiB disk (16 MiB written) not shared (s)",
		[]string{"--live", "--copy-storage-all"}, true},
}

// MigrateSteps names MigrateBench's steps (the Sample.Step of each case), in its order.
func MigrateSteps() []string {
	var s []string
	for _, c := range migrateCases {
		s = append(s, c.step)
	}
	return s
}

// MigrateBench measures `virsh migrate` between the two hosts of h (scripts/two-hosts.sh),
// the wall time of the virsh command, for each case in turn: `--live --unsafe` with the
// disk on the shared storage, then `--live --copy-storage-all` with the disk in each host's
// own images. The same pc domain (anchor1's, 256 MiB) with each binary as <emulator> runs
// on host a, is migrated to b and back, N round trips per side, interleaved (tlcvm, QEMU,
// QEMU, tlcvm, …). Every migration is a sample of its case's step and a Breakdown read from
// both hosts' libvirtd debug logs (emptied before each migration); the rows' target is
// issue 12's: at most half of QEMU's wall time.
func MigrateBench(h *lv.TwoHosts, cfg MigrateConfig) ([]Sample, []report.Row, []Breakdown, error) {
	if cfg.N <= 0 {
		cfg.N = 3
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	var samples []Sample
	var bds []Breakdown
	for _, c := range migrateCases {
		s, b, err := migrateCaseBench(h, cfg, c)
		samples, bds = append(samples, s...), append(bds, b...)
		if err != nil {
			return samples, MigrateRows(samples), bds, err
		}
	}
	return samples, MigrateRows(samples), bds, nil
}

// migrateCaseBench runs one case's domains and migrations.
func migrateCaseBench(h *lv.TwoHosts, cfg MigrateConfig, c migrateCase) ([]Sample, []Breakdown, error) {
	sides := map[string]string{"tlcvm": cfg.TLCVM, "qemu": cfg.QEMU}
	doms := map[string]lv.Domain{}
	for _, side := range []string{"tlcvm", "qemu"} {
		d := lv.Domain{Kind: lv.PC, Name: lv.NewName("tlcvm-bench-mig-" + side), UUID: lv.NewUUID(), Emulator: sides[side]}
		if c.private {
			d.Disk = filepath.Join(lv.Images, d.Name+".qcow2")
			if err := privateDisks(h, d.Disk); err != nil {
				return nil, nil, err
			}
		} else {
			d.Disk = filepath.Join(h.Shared, lv.NewName("bench-disk")+".qcow2")
			if err := lv.CreateDisk(d.Disk, ""); err != nil {
				return nil, nil, err
			}
		}
		if err := h.A.Define(d, h.Shared); err != nil {
			return nil, nil, err
		}
		defer func() {
			for _, host := range []string{"a", "b"} {
				v := h.Host(host)
				_, _ = v.Run("destroy", d.Name)
				_, _ = v.Run("undefine", "--managed-save", "--snapshots-metadata", d.Name)
				if c.private {
					os.Remove(h.HostPath(host, d.Disk))
				}
			}
			if !c.private {
				os.Remove(d.Disk)
			}
		}()
		if _, err := h.A.Run("start", d.Name); err != nil {
			return nil, nil, fmt.Errorf("start %s: %w", side, err)
		}
		if _, err := h.A.WaitState(d.Name, "running", 60*time.Second); err != nil {
			return nil, nil, err
		}
		doms[side] = d
	}
	time.Sleep(cfg.Warmup)
	var samples []Sample
	var bds []Breakdown
	at := map[string]string{"tlcvm": "a", "qemu": "a"} // the host each domain runs on
	order := []string{"tlcvm", "qemu", "qemu", "tlcvm"}
	for i := 0; i < 2*2*cfg.N; i++ {
		side := order[i%4]
		src, dst := at[side], other(at[side])
		toURI := h.BURI
		if dst == "a" {
			toURI = h.AURI
		}
		for _, host := range []string{src, dst} {
			_ = os.Truncate(h.DebugLog(host), 0) // libvirtd appends (O_APPEND): it goes on at 0
		}
		start := time.Now()
		args := append(append([]string{"migrate"}, c.flags...), doms[side].Name, toURI)
		_, d, err := h.Host(src).Timed(args...)
		s := Sample{Side: side, Step: c.step, Seconds: d.Seconds()}
		if err != nil {
			s.Err = err.Error()
		}
		samples = append(samples, s)
		srcLog, _ := os.ReadFile(h.DebugLog(src))
		dstLog, _ := os.ReadFile(h.DebugLog(dst))
		bds = append(bds, Breakdown{Side: side, Step: c.step, Marks: ParseBreakdown(srcLog, dstLog, start, start.Add(d))})
		fmt.Fprintf(cfg.Progress, "libvirt migrate bench: %-20s %-5s %s→%s %.3f s %s\n", c.step, side, src, dst, s.Seconds, s.Err)
		if err != nil {
			return samples, bds, fmt.Errorf("%s %s: %w", c.step, side, err)
		}
		if _, err := h.Host(dst).WaitState(doms[side].Name, "running", 60*time.Second); err != nil {
			return samples, bds, err
		}
		at[side] = dst
	}
	return samples, bds, nil
}

// privateDisks creates the 64 MiB qcow2 at path in both hosts' own images, the source's
// (a's) with 16 MiB of data at its start.
func privateDisks(h *lv.TwoHosts, path string) error {
	for _, host := range []string{"a", "b"} {
		if err := lv.CreateDisk(h.HostPath(host, path), ""); err != nil {
			return err
		}
	}
	if out, err := h.Exec("a", "qemu-io", "-f", "qcow2", "-c", "write -P 0xa5 0 16M", path); err != nil {
		return fmt.Errorf("qemu-io on a: %v\n%s", err, out)
	}
	return nil
}

func other(host string) string {
	if host == "a" {
		return "b"
	}
	return "a"
}

// MigrateRows is the table rows of MigrateBench's samples (medians, ratio, target), one per
// case.
func MigrateRows(samples []Sample) []report.Row {
	var steps []rowStep
	for _, c := range migrateCases {
		steps = append(steps, rowStep{c.step, c.metric, report.Target{Kind: report.RatioAtMost, Value: 0.5, Text: "≤ 1/2 of QEMU"}})
	}
	return rowsFor(samples, steps)
}
