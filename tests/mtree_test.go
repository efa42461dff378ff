package tests_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"tlcvm/machine/memtree"
	"tlcvm/tests/harness"
)

// TestInfoMtreeBesideQEMU: info mtree (plain, -D, -f, with and without -o) is QEMU 7.2's for the same command
// line, stopped before its firmware runs (-S), after sorting the address-space groups, the
// memory-region entries and the flat views, which QEMU orders by a hash of pointers that
// changes from run to run (memtree.SortGroups).
func TestInfoMtreeBesideQEMU(t *testing.T) {
	bin := requireCandidate(t)
	ref := harness.Reference(t)
	dimm := []string{"-object", "memory-backend-ram,id=m0,size=512M", "-device", "pc-dimm,memdev=m0,id=dimm0"}
	// Images of their own (QEMU locks them: two cases running at once must not share one).
	img := func(name string) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, make([]byte, 1440<<10), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
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
		{"pc-legacy", []string{"-machine", "pc", "-m", "256", "-smp", "3", "-net", "nic", "-net", "user", "-serial", "null",
			"-device", "isa-serial,chardev=c0,id=com2", "-chardev", "null,id=c0", "-parallel", "null",
			"-drive", "if=floppy,file=" + img("fd.img") + ",format=raw", "-drive", "if=ide,media=cdrom", "-cdrom", img("cd1.iso")}},
		{"q35-cdrom", []string{"-machine", "q35", "-m", "128", "-cdrom", img("cd2.iso"), "-vga", "std", "-net", "nic", "-net", "user"}},
		{"pc-dimm", append([]string{"-machine", "pc", "-m", "1G,slots=2,maxmem=4G"}, dimm...)},
		{"q35-256M", []string{"-machine", "q35", "-m", "256"}},
		{"q35-3G-rootports", []string{"-machine", "q35", "-m", "3G", "-vga", "std",
			"-device", "pcie-root-port,id=rp1,chassis=1", "-device", "pcie-root-port,id=rp2,chassis=2",
			"-device", "virtio-net-pci,bus=rp1,netdev=n0", "-netdev", "user,id=n0", "-device", "qemu-xhci,bus=rp2"}},
		{"none", []string{"-machine", "none", "-m", "64"}},
		{"pc-cirrus-nohpet-novmport-noacpi", []string{"-machine", "pc,vmport=off,acpi=off", "-no-hpet", "-m", "512", "-device", "cirrus-vga",
			"-device", "bochs-display"}},
		{"q35-libvirt", libvirtQ35Args},
		{"pc-usb", []string{"-machine", "pc,usb=on", "-m", "256", "-net", "nic", "-net", "user", "-device", "usb-tablet"}},
		{"q35-acpi-off", []string{"-machine", "q35,acpi=off", "-m", "256"}},
		{"q35-8G-dimm", append([]string{"-machine", "q35", "-m", "8G,slots=4,maxmem=16G", "-smp", "2"}, dimm...)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parallel(t)
			dir := shortDir(t)
			out := map[string][]string{}
			lines := []string{"info mtree", "info mtree -D", "info mtree -f", "info mtree -o -D", "info mtree -f -o"}
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

// libvirtQ35Args is libvirt 9.0's command line for a q35 domain
// (domain/anchor2-q35-start-cmdline.txt), its descriptors and disks left out.
var libvirtQ35Args = []string{"-machine", "pc-q35-7.2,usb=off,dump-guest-core=off,memory-backend=pc.ram",
	"-accel", "tcg", "-cpu", "qemu64", "-m", "256",
	"-object", `{"qom-type":"memory-backend-ram","id":"pc.ram","size":268435456}`,
	"-smp", "2,sockets=2,cores=1,threads=1", "-no-hpet", "-no-shutdown",
	"-global", "ICH9-LPC.disable_s3=1", "-global", "ICH9-LPC.disable_s4=1",
	"-device", `{"driver":"pcie-root-port","port":16,"chassis":1,"id":"pci.1","bus":"pcie.0","multifunction":true,"addr":"0x2"}`,
	"-device", `{"driver":"pcie-root-port","port":17,"chassis":2,"id":"pci.2","bus":"pcie.0","addr":"0x2.0x1"}`,
	"-device", `{"driver":"pcie-root-port","port":18,"chassis":3,"id":"pci.3","bus":"pcie.0","addr":"0x2.0x2"}`,
	"-device", `{"driver":"qemu-xhci","id":"usb","bus":"pci.2","addr":"0x0"}`,
	"-device", `{"driver":"virtio-serial-pci","id":"virtio-serial0","bus":"pci.3","addr":"0x0"}`,
	"-device", `{"driver":"ide-cd","bus":"ide.0","id":"sata0-0-0"}`,
	"-netdev", `{"type":"user","id":"hostnet0"}`,
	"-device", `{"driver":"virtio-net-pci","netdev":"hostnet0","id":"net0","mac":"52:54:00:52:99:c4","bus":"pci.1","addr":"0x0"}`,
	"-chardev", "null,id=charserial0",
	"-device", `{"driver":"isa-serial","chardev":"charserial0","id":"serial0","index":0}`,
	"-device", `{"driver":"usb-tablet","id":"input0","bus":"usb.0","port":"1"}`,
	"-device", `{"driver":"virtio-vga","id":"video0","max_outputs":1,"bus":"pcie.0","addr":"0x1"}`,
}
