package tests_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"tlcvm/tests/harness"
)

// autoNode is an automatic node name ("#block123").
var autoNode = regexp.MustCompile(`#block[0-9]+`)

// TestInfoQOMTreeBesideQEMU: info qom-tree (from /machine, and from other paths, whole
// or partial, resolvable or not) prints QEMU 7.2's tree for the same command line,
// stopped before its firmware runs (-S): the board's objects, IRQ pins, buses and
// containers, the memory regions under their owners, the -device and -object objects.
func TestInfoQOMTreeBesideQEMU(t *testing.T) {
	bin := requireCandidate(t)
	ref := harness.Reference(t)
	// Images of their own (QEMU locks them: two cases running at once must not share one).
	img := func(name string, size int64) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name     string
		defaults bool // without -nodefaults
		args     []string
		lines    []string // beside "info qom-tree"
	}{
		{name: "pc", args: []string{"-machine", "pc"}},
		{name: "q35", args: []string{"-machine", "q35"}},
		{name: "pc-smp3", args: []string{"-machine", "pc", "-smp", "3"},
			lines: []string{"info qom-tree lapic", "info qom-tree device[8]", "info qom-tree /machine/unattached/device[0]/",
				"info qom-tree /", "info qom-tree /nope", "info qom-tree ioapic", "info qom-tree /machine/i440fx/pci.0"}},
		{name: "q35-backend", args: []string{"-machine", "q35,memory-backend=m0", "-m", "128",
			"-object", "memory-backend-ram,id=m0,size=128M", "-object", "memory-backend-ram,id=m1,size=64M"},
			lines: []string{"info qom-tree /objects", "info qom-tree m1", "info qom-tree mch"}},
		{name: "pc-hotplug", args: []string{"-machine", "pc", "-m", "128M,slots=2,maxmem=1G"},
			lines: []string{"device_add virtio-net-pci,id=hn", "device_add e1000", "object_add memory-backend-ram,id=hm,size=64M",
				"device_add pc-dimm,memdev=hm,id=hd", "info qom-tree", "info qom-tree /objects"}},
		{name: "pc-defaults", defaults: true, args: []string{"-machine", "pc"}},
		{name: "q35-defaults", defaults: true, args: []string{"-machine", "q35"}, lines: []string{"info qom-tree /objects"}},
		{name: "none", args: []string{"-machine", "none", "-m", "64"}, lines: []string{"info qom-tree /objects"}},
		{name: "pc-legacy", args: []string{"-machine", "pc", "-m", "256", "-smp", "3", "-net", "nic", "-net", "user",
			"-serial", "null", "-device", "isa-serial,chardev=c0,id=com2", "-chardev", "null,id=c0", "-parallel", "null",
			"-drive", "if=floppy,format=raw,file=" + img("fd.img", 1440<<10), "-drive", "if=ide,media=cdrom",
			"-cdrom", img("cd.iso", 1<<20)}},
		// The board's drive devices are numbered among its other devices (the default
		// ones, the HPET, -net nic's NIC): the default cdrom, floppy and SD card drives
		// yield to the command line's drives at their index.
		{name: "pc-default-drives", defaults: true, args: []string{"-machine", "pc",
			"-drive", "if=floppy,format=raw,file=" + img("fd1.img", 1440<<10), "-cdrom", img("cd1.iso", 1<<20)},
			lines: []string{"info block", "info qom-tree /machine/unattached/device[16]"}},
		{name: "q35-default-drives", defaults: true, args: []string{"-machine", "q35", "-vga", "none", "-serial", "null",
			"-parallel", "none", "-drive", "if=floppy,index=1,format=raw,file=" + img("fd2.img", 1440<<10),
			"-cdrom", img("cd2.iso", 1<<20), "-drive", "if=ide,index=0,format=raw,file=" + img("hd2.img", 1<<20)},
			lines: []string{"info block"}},
		{name: "pc-board-drives", args: []string{"-machine", "pc", "-no-hpet", "-net", "nic", "-net", "user",
			"-hdb", img("hd3.img", 1<<20), "-fdb", img("fd3.img", 1440<<10), "-drive", "if=ide,index=3,media=cdrom"},
			lines: []string{"info block"}},
		// acpi=off: pc has no PIIX4_PM (no SMBus EEPROMs, no SCI and SMI lines, no ACPI
		// hotplug on pci.0); neither board has ACPI blobs on fw_cfg.
		{name: "pc-acpi-off", args: []string{"-machine", "pc,acpi=off"},
			lines: []string{"device_add e1000", "info qtree", "info pci"}},
		{name: "pc-acpi-off-nohpet", args: []string{"-machine", "pc,acpi=off", "-no-hpet"}, lines: []string{"info qtree"}},
		{name: "pc-nohpet", args: []string{"-machine", "pc", "-no-hpet"}, lines: []string{"info qtree"}},
		{name: "q35-acpi-off-nohpet", args: []string{"-machine", "q35,acpi=off,hpet=off"}, lines: []string{"info qtree", "info pci"}},
		// -usb: pc_init1's piix3-usb-uhci at 01.2, numbered after the IDE drives.
		{name: "pc-usb", defaults: true, args: []string{"-machine", "pc", "-usb", "-device", "usb-tablet",
			"-device", "piix3-usb-uhci,id=u2", "-cdrom", img("cd4.iso", 1<<20)},
			lines: []string{"info qtree", "info pci", "info usb", "info block"}},
		// An AHCI -device has its own buses (ahci.0…, or ide.6… without an id), not the
		// board's ide.0…ide.5.
		{name: "q35-ahci", args: []string{"-machine", "q35", "-device", "ahci,id=ahci", "-device", "ahci"}},
		{name: "pc-dimm", args: []string{"-machine", "pc", "-m", "1G,slots=2,maxmem=4G",
			"-object", "memory-backend-ram,id=m0,size=512M", "-device", "pc-dimm,memdev=m0,id=dimm0"},
			lines: []string{"info qom-tree /objects", "info qom-tree dimm0"}},
		{name: "pc-devices", args: []string{"-machine", "pc,vmport=off", "-no-hpet",
			"-device", "e1000,id=n1", "-device", "virtio-net-pci", "-device", "piix3-usb-uhci,id=usb",
			"-device", "usb-tablet,bus=usb.0", "-device", "isa-serial,id=s0",
			"-drive", "if=none,id=d0,format=raw,file=" + img("vd.img", 1<<20), "-device", "virtio-blk-pci,drive=d0,id=vd",
			"-device", "pci-bridge,chassis_nr=1,id=br0", "-device", "virtio-rng-pci,bus=br0", "-device", "VGA",
			"-device", "qemu-xhci", "-device", "cirrus-vga", "-device", "bochs-display", "-device", "virtio-balloon-pci",
			"-device", "virtio-scsi-pci", "-device", "virtio-serial-pci", "-device", "virtio-vga",
			"-device", "virtio-keyboard-pci", "-device", "ich9-usb-ehci1", "-device", "nec-usb-xhci", "-device", "rtl8139"},
			lines: []string{"info qom-tree br0", "info qom-tree /machine/peripheral-anon"}},
		{name: "q35-rootports", args: []string{"-machine", "q35", "-m", "3G", "-vga", "std",
			"-device", "pcie-root-port,id=rp1,chassis=1", "-device", "pcie-root-port,id=rp2,chassis=2",
			"-device", "virtio-net-pci,bus=rp1,netdev=n0", "-netdev", "user,id=n0", "-device", "qemu-xhci,bus=rp2",
			"-device", "virtio-serial-pci,bus=rp2", "-device", "virtio-mouse-pci",
			"-drive", "if=none,id=d1,format=raw,file=" + img("hd.img", 1<<20), "-device", "ide-hd,drive=d1,bus=ide.2"}},
		{name: "q35-more-devices", args: []string{"-machine", "q35",
			"-device", "virtio-scsi-pci,id=scsi0", "-drive", "if=none,id=s1,format=raw,file=" + img("s1.img", 1<<20),
			"-device", "scsi-hd,drive=s1,bus=scsi0.0", "-device", "scsi-cd,bus=scsi0.0",
			"-device", "virtio-serial-pci,id=vs", "-chardev", "null,id=c1",
			"-device", "virtserialport,chardev=c1,name=org.qemu.guest_agent.0,bus=vs.0",
			"-device", "i6300esb", "-device", "pvpanic", "-device", "usb-ehci,id=ehci", "-device", "usb-kbd,bus=ehci.0",
			"-drive", "if=none,id=s2,format=raw,file=" + img("s2.img", 1<<20), "-device", "usb-storage,drive=s2,bus=ehci.0",
			"-device", "qxl-vga", "-device", "virtio-gpu-pci", "-device", "ich9-intel-hda",
			"-object", "memory-backend-file,id=mf,size=1M,share=on,mem-path=" + img("ivshmem", 1<<20),
			"-device", "ivshmem-plain,memdev=mf"},
			lines: []string{"info qom-tree /objects", "info qom-tree ehci"}},
		{name: "q35-libvirt", args: libvirtQ35Args,
			lines: []string{"info qom-tree /objects", "info qom-tree net0", "info qom-tree /machine/peripheral"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parallel(t)
			dir := shortDir(t)
			lines := append([]string{"info qom-tree"}, c.lines...)
			out := map[string][]string{}
			for _, b := range []struct{ name, bin string }{{"qemu", ref}, {"tlcvm", bin}} {
				args := append([]string{"-S"}, c.args...)
				if !c.defaults {
					args = append([]string{"-nodefaults"}, args...)
				}
				v := startNamedVM(t, b.bin, dir, b.name, args...)
				for _, l := range lines {
					out[b.name] = append(out[b.name], v.do("human-monitor-command", map[string]any{"command-line": l}).Str())
				}
				v.quit()
			}
			for i, l := range lines {
				q, tl := out["qemu"][i], out["tlcvm"][i]
				if l == "info block" { // node names count every node QEMU ever made
					q, tl = autoNode.ReplaceAllString(q, "#block"), autoNode.ReplaceAllString(tl, "#block")
				}
				if l == "info qom-tree" && !strings.Contains(q, "/machine (") {
					t.Fatalf("%s: QEMU printed %q", l, q)
				}
				if q != tl {
					t.Errorf("%s differs from QEMU's:\n%s", l, harness.Diff(strings.Split(q, "\n"), strings.Split(tl, "\n")))
				}
			}
		})
	}
}
