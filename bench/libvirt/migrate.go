package libvirt

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"tlcvm/bench/report"
	lv "tlcvm/internal/libvirttest"
)

// MigrateConfig configures MigrateBench.
type MigrateConfig struct {
	TLCVM, QEMU string // the two emulators
	N           int    // round trips per side (each one migration there and one back)
	Warmup      time.Duration
	Progress    io.Writer
}

// MigrateBench measures `virsh migrate --live --unsafe DOM URI` between the two hosts of h
// (scripts/two-hosts.sh), the wall time of the virsh command: the same pc domain
// (anchor1's, 256 MiB, its disk on the shared storage) with each binary as <emulator>,
// running on host a, migrated to b and back, N round trips per side, interleaved
// (tlcvm, QEMU, QEMU, tlcvm, …). Every migration is a sample of step "migrate"; the row's
// target is issue 12's: at most half of QEMU's wall time.
func MigrateBench(h *lv.TwoHosts, cfg MigrateConfig) ([]Sample, []report.Row, error) {
	if cfg.N <= 0 {
		cfg.N = 3
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	sides := map[string]string{"tlcvm": cfg.TLCVM, "qemu": cfg.QEMU}
	doms := map[string]lv.Domain{}
	for _, side := range []string{"tlcvm", "qemu"} {
		d := lv.Domain{Kind: lv.PC, Name: lv.NewName("tlcvm-bench-mig-" + side), UUID: lv.NewUUID(), Emulator: sides[side],
			Disk: filepath.Join(h.Shared, lv.NewName("bench-disk")+".qcow2")}
		if err := lv.CreateDisk(d.Disk, ""); err != nil {
			return nil, nil, err
		}
		if err := h.A.Define(d, h.Shared); err != nil {
			return nil, nil, err
		}
		defer func() {
			for _, v := range []*lv.Virsh{h.A, h.B} {
				_, _ = v.Run("destroy", d.Name)
				_, _ = v.Run("undefine", "--managed-save", "--snapshots-metadata", d.Name)
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
	at := map[string]string{"tlcvm": "a", "qemu": "a"} // the host each domain runs on
	order := []string{"tlcvm", "qemu", "qemu", "tlcvm"}
	for i := 0; i < 2*2*cfg.N; i++ {
		side := order[i%4]
		from, to, toURI := h.A, h.B, h.BURI
		if at[side] == "b" {
			from, to, toURI = h.B, h.A, h.AURI
		}
		_, d, err := from.Timed("migrate", "--live", "--unsafe", doms[side].Name, toURI)
		s := Sample{Side: side, Step: "migrate", Seconds: d.Seconds()}
		if err != nil {
			s.Err = err.Error()
		}
		samples = append(samples, s)
		fmt.Fprintf(cfg.Progress, "libvirt migrate bench: %-5s %s→%s %.3f s %s\n", side, at[side], other(at[side]), s.Seconds, s.Err)
		if err != nil {
			return samples, MigrateRows(samples), fmt.Errorf("migrate %s: %w", side, err)
		}
		if _, err := to.WaitState(doms[side].Name, "running", 60*time.Second); err != nil {
			return samples, MigrateRows(samples), err
		}
		at[side] = other(at[side])
	}
	return samples, MigrateRows(samples), nil
}

func other(host string) string {
	if host == "a" {
		return "b"
	}
	return "a"
}

// MigrateRows is the table row of MigrateBench's samples (medians, ratio, target).
func MigrateRows(samples []Sample) []report.Row {
	return rowsFor(samples, []rowStep{{"migrate", "virsh migrate --live between two hosts, 256 MiB pc domain (s)",
		report.Target{Kind: report.RatioAtMost, Value: 0.5, Text: "≤ 1/2 of QEMU"}}})
}
