// Command libvirt-bench measures libvirt driving tlcvm and QEMU 7.2 in one
// run (probe, virsh start, save, restore, destroy), prints the Markdown
// table and rewrites the libvirt section of BENCHMARKS.md. Needs root and
// a running libvirtd (scripts/libvirt-setup.sh start); bench/run-libvirt.sh
// wraps it.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"tlcvm/bench/libvirt"
	"tlcvm/bench/report"
	lv "tlcvm/internal/libvirttest"
)

func main() {
	n := flag.Int("n", 5, "repetitions per side")
	tl := flag.String("tlcvm", os.Getenv("TLCVM_BIN"), "tlcvm binary")
	qemu := flag.String("qemu", "/usr/bin/qemu-system-x86_64", "QEMU 7.2 binary")
	mbr := flag.String("mbr", "/work/shared/reference/libvirt/tools/mbr.bin", "boot sector for the domain's disk")
	doc := flag.String("doc", "", "BENCHMARKS.md to update (empty: print only)")
	jsonOut := flag.String("json", "", "write every sample as JSON lines here")
	invocation := flag.String("invocation", "bench/run-libvirt.sh", "command shown in BENCHMARKS.md")
	migrate := flag.String("migrate", "", "instead: virsh migrate --live between the two hosts of this scripts/two-hosts.sh, "+
		"-n round trips per side (section libvirt-migrate)")
	flag.Parse()
	run := run
	if *migrate != "" {
		run = func(n int, tl, qemu, _, doc, jsonOut, invocation string) error {
			return runMigrate(*migrate, n, tl, qemu, doc, jsonOut, invocation)
		}
	}
	if err := run(*n, *tl, *qemu, *mbr, *doc, *jsonOut, *invocation); err != nil {
		fmt.Fprintln(os.Stderr, "libvirt-bench:", err)
		os.Exit(1)
	}
}

func run(n int, tl, qemu, mbr, doc, jsonOut, invocation string) error {
	if tl == "" {
		return fmt.Errorf("no tlcvm binary: pass -tlcvm or set TLCVM_BIN")
	}
	dir, err := os.MkdirTemp("", "tlcvm-libvirt-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	unlock, err := lv.Lock() // never beside the end-to-end suite, which restarts libvirtd
	if err != nil {
		return err
	}
	defer unlock()
	start := time.Now().UTC()
	load0, _ := os.ReadFile("/proc/loadavg")
	v := lv.NewVirsh()
	samples, rows, err := libvirt.Bench(v, libvirt.BenchConfig{TLCVM: tl, QEMU: qemu, MBR: mbr, N: n, Dir: dir, Progress: os.Stderr})
	writeSamples(jsonOut, samples)
	if err != nil {
		return err
	}
	load1, _ := os.ReadFile("/proc/loadavg")
	var b strings.Builder
	fmt.Fprintf(&b, "Run %s, `%s` (N = %d per side, interleaved tlcvm, QEMU, QEMU, tlcvm, …; medians of the wall time of each `virsh` command; %d CPUs, load average %s before, %s after; libvirtd under the subreaper).\n\n",
		start.Format("2006-01-02 15:04 UTC"), invocation, n, runtime.NumCPU(), field(load0), field(load1))
	b.WriteString(report.Markdown(rows))
	b.WriteString("\nThe domain is anchor1's (pc, 256 MiB, 1 vCPU, qcow2 virtio disk holding the reference MBR, pty serial) with `<emulator>` set to each binary. " +
		"The probe row gives libvirt each binary under a new path (a symlink) each time, so that libvirt probes it " +
		"(where /dev/kvm is usable, libvirt probes each binary twice, KVM then TCG, as both report KVM enabled under accel=kvm:tcg).\n")
	fmt.Print(b.String())
	return updateDoc(doc, "libvirt", b.String())
}

// runMigrate is -migrate: libvirt.MigrateBench on the two-host bed of script.
func runMigrate(script string, n int, tl, qemu, doc, jsonOut, invocation string) error {
	if tl == "" {
		return fmt.Errorf("no tlcvm binary: pass -tlcvm or set TLCVM_BIN")
	}
	if os.Getenv("TWOHOSTS_DIR") == "" { // a bed of its own needs no other: its daemons are its own
		unlock, err := lv.Lock() // never beside the end-to-end suite
		if err != nil {
			return err
		}
		defer unlock()
	}
	h, err := lv.StartTwoHosts(script)
	if err != nil {
		return err
	}
	defer h.Stop() //nolint:errcheck // best effort: the figures are taken
	start := time.Now().UTC()
	load0, _ := os.ReadFile("/proc/loadavg")
	samples, rows, bds, err := libvirt.MigrateBench(h, libvirt.MigrateConfig{TLCVM: tl, QEMU: qemu, N: n, Warmup: 2 * time.Second, Progress: os.Stderr})
	writeSamples(jsonOut, samples)
	if err != nil {
		return err
	}
	load1, _ := os.ReadFile("/proc/loadavg")
	var b strings.Builder
	fmt.Fprintf(&b, "Run %s, `%s` (N = %d round trips per side and row, each a migration from host a to b and one back, interleaved tlcvm, QEMU, QEMU, tlcvm, …; "+
		"medians of the wall time of `virsh migrate --live --unsafe DOM qemu+tcp://HOST/system`, and with `--copy-storage-all` instead of `--unsafe`; %d CPUs, load average %s before, %s after).\n\n",
		start.Format("2006-01-02 15:04 UTC"), invocation, n, runtime.NumCPU(), field(load0), field(load1))
	b.WriteString(report.Markdown(rows))
	b.WriteString("\nThe hosts are scripts/two-hosts.sh's (two libvirtd 9.0 in network, mount and UTS namespaces of their own, joined by a veth pair). " +
		"The domain is anchor1's (pc, 256 MiB, 1 vCPU, qcow2 virtio disk of 64 MiB, pty serial) with `<emulator>` set " +
		"to each binary, running since 2 s before its first migration: QEMU's guest is SeaBIOS looking for a boot device, tlcvm's its default workload (`ws=16M,rate=4M`). " +
		"Its disk is on storage both hosts see for the first row (empty); in each host's own /var/lib/libvirt/images for the second, 16 MiB written on the source " +
		"and an empty image of the same size on the destination, and libvirt mirrors it over NBD (nbd-server-start and block-export-add on the destination, " +
		"blockdev-mirror into an NBD client node on the source, cancelled once ready after the memory has moved). " +
		"The wall time is libvirt's whole job: both hosts' begin/prepare/perform/finish/confirm phases, the destination's emulator start-up and probe of the " +
		"incoming domain, the migration itself and the source's emulator shut-down.\n")
	for _, step := range libvirt.MigrateSteps() {
		if t := libvirt.PhaseTable(bds, step); t != "" {
			fmt.Fprintf(&b, "\nWhere the time of `%s` goes: spans between marks of both hosts' libvirtd debug logs (millisecond time stamps; each span the median over the side's migrations, so the spans need not add up to the whole):\n\n%s", step, t)
		}
	}
	fmt.Print(b.String())
	return updateDoc(doc, "libvirt-migrate", b.String())
}

// writeSamples writes every sample as a JSON line to path ("": none).
func writeSamples(path string, samples []libvirt.Sample) {
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		return
	}
	enc := json.NewEncoder(f)
	for _, s := range samples {
		_ = enc.Encode(s)
	}
	f.Close()
}

// updateDoc rewrites section name of doc ("": print only) with body.
func updateDoc(doc, name, body string) error {
	if doc == "" {
		return nil
	}
	old, err := os.ReadFile(doc)
	if err != nil {
		return err
	}
	out, err := report.UpdateSection(old, name, body)
	if err != nil {
		return err
	}
	return os.WriteFile(doc, out, 0o644)
}

func field(b []byte) string {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
