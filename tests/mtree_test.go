package tests_test

import (
	"slices"
	"strings"
	"testing"

	"tlcvm/machine/memtree"
	"tlcvm/tests/harness"
)

// TestInfoMtreeBesideQEMU: info mtree (plain, -D, -f) is QEMU 7.2's for the same command
// line, stopped before its firmware runs (-S), after sorting the address-space groups, the
// memory-region entries and the flat views, which QEMU orders by a hash of pointers that
// changes from run to run (memtree.SortGroups).
func TestInfoMtreeBesideQEMU(t *testing.T) {
	bin := requireCandidate(t)
	ref := harness.Reference(t)
	dimm := []string{"-object", "memory-backend-ram,id=m0,size=512M", "-device", "pc-dimm,memdev=m0,id=dimm0"}
	cases := []struct {
		name string
		args []string
	}{
		{"pc-128M", []string{"-machine", "pc", "-m", "128"}},
		{"pc-defaults", []string{"-machine", "pc", "-m", "3584", "-vga", "std", "-serial", "null", "-parallel", "null",
			"-device", "e1000,netdev=n0", "-netdev", "user,id=n0"}},
		{"pc-5G-devices", []string{"-machine", "pc", "-m", "5G", "-smp", "2", "-device", "virtio-net-pci,netdev=n0",
			"-netdev", "user,id=n0", "-device", "piix3-usb-uhci", "-device", "isa-serial,chardev=c0", "-chardev", "null,id=c0",
			"-device", "pci-bridge,chassis_nr=1,id=br0", "-device", "virtio-rng-pci,bus=br0"}},
		{"pc-dimm", append([]string{"-machine", "pc", "-m", "1G,slots=2,maxmem=4G"}, dimm...)},
		{"q35-256M", []string{"-machine", "q35", "-m", "256"}},
		{"q35-3G-rootports", []string{"-machine", "q35", "-m", "3G", "-vga", "std",
			"-device", "pcie-root-port,id=rp1,chassis=1", "-device", "pcie-root-port,id=rp2,chassis=2",
			"-device", "virtio-net-pci,bus=rp1,netdev=n0", "-netdev", "user,id=n0", "-device", "qemu-xhci,bus=rp2"}},
		{"none", []string{"-machine", "none", "-m", "64"}},
		{"q35-8G-dimm", append([]string{"-machine", "q35", "-m", "8G,slots=4,maxmem=16G", "-smp", "2"}, dimm...)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parallel(t)
			dir := shortDir(t)
			out := map[string][]string{}
			lines := []string{"info mtree", "info mtree -D", "info mtree -f"}
			for _, b := range []struct{ name, bin string }{{"qemu", ref}, {"tlcvm", bin}} {
				v := startMigVM(t, b.bin, dir, b.name, append([]string{"-S"}, c.args...)...)
				for _, l := range lines {
					out[b.name] = append(out[b.name], v.do("human-monitor-command", map[string]any{"command-line": l}).Str())
				}
				v.quit()
			}
			for i, l := range lines {
				q, tl := memtree.SortGroups(out["qemu"][i]), memtree.SortGroups(out["tlcvm"][i])
				if !strings.Contains(q, "address-space: memory") && !strings.Contains(q, "AS \"memory\"") {
					t.Fatalf("%s: QEMU printed %q", l, q)
				}
				if q != tl {
					t.Errorf("%s differs from QEMU's:\n%s", l, harness.Diff(strings.Split(q, "\n"), strings.Split(tl, "\n")))
				}
			}
		})
	}
}

// TestInfoRAMBlockBesideQEMU: info ramblock lists tlcvm's RAM blocks (the board's RAM and
// the DIMMs) with QEMU 7.2's offsets, sizes and order; QEMU's other lines are its firmware,
// option ROM and ACPI blobs (and a blank-named block per memory back-end no device uses),
// which tlcvm does not have.
func TestInfoRAMBlockBesideQEMU(t *testing.T) {
	bin := requireCandidate(t)
	ref := harness.Reference(t)
	cases := []struct {
		name string
		keep []string // the block names both have
		args []string
	}{
		{"pc", []string{"pc.ram"}, []string{"-machine", "pc", "-m", "256"}},
		{"q35-dimms", []string{"pc.ram", "m0", "m1"}, []string{"-machine", "q35", "-m", "1G,slots=4,maxmem=8G",
			"-object", "memory-backend-ram,id=m0,size=1G", "-object", "memory-backend-ram,id=unused,size=256M",
			"-object", "memory-backend-ram,id=m1,size=512M",
			"-device", "pc-dimm,memdev=m1,id=d1", "-device", "pc-dimm,memdev=m0,id=d0"}},
		{"pc-5G", []string{"pc.ram"}, []string{"-machine", "pc", "-m", "5G"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parallel(t)
			dir := shortDir(t)
			out := map[string]string{}
			for _, b := range []struct{ name, bin string }{{"qemu", ref}, {"tlcvm", bin}} {
				v := startMigVM(t, b.bin, dir, b.name, append([]string{"-S"}, c.args...)...)
				hmp := v.do("human-monitor-command", map[string]any{"command-line": "info ramblock"}).Str()
				text, _ := v.do("x-query-ramblock", nil).Get("human-readable-text")
				qmp := text.Str()
				if strings.ReplaceAll(hmp, "\r\n", "\n") != qmp {
					t.Errorf("%s: info ramblock %q and x-query-ramblock %q differ", b.name, hmp, qmp)
				}
				v.quit()
				out[b.name] = qmp
			}
			var want []string
			for i, l := range strings.Split(out["qemu"], "\n") {
				if f := strings.Fields(l); i == 0 || (len(f) == 6 && slices.Contains(c.keep, f[0])) {
					want = append(want, l)
				}
			}
			got := strings.Split(strings.TrimSuffix(out["tlcvm"], "\n"), "\n")
			if len(want) != len(c.keep)+1 {
				t.Fatalf("QEMU printed %q", out["qemu"])
			}
			if d := harness.Diff(want, got); d != "" {
				t.Errorf("differs from QEMU's:\n%s", d)
			}
		})
	}
}
