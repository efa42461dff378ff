package libvirt_test

import (
	"sort"
	"testing"

	lv "tlcvm/internal/libvirttest"
	"tlcvm/tests/harness"
)

// TestDomcapabilities runs `virsh domcapabilities --emulatorbin` for tlcvm
// and for QEMU 7.2, logs every difference (docs/libvirt.md lists them) and
// asserts what tlcvm implements: the same canonical machines, the domain
// flows' devices and features, nothing QEMU does not report, and the
// differences known to docs/libvirt.md and no others.
func TestDomcapabilities(t *testing.T) {
	need(t)
	ref := harness.Reference(t)
	// Known, documented differences (docs/libvirt.md): QEMU has them, tlcvm does not.
	known := map[string]bool{
		"graphics.type=sdl": true, "graphics.type=egl-headless": true,
		"graphics.type=dbus": true, "tpm": true, "tpm.model=tpm-tis": true, "tpm.model=tpm-crb": true,
		"tpm.backendModel=passthrough": true, "tpm.backendModel=emulator": true,
		"tpm.backendModel=external": true, "tpm.model": true, "tpm.backendModel": true, "tpm.backendVersion": true, "tpm.backendVersion=1.2": true, "tpm.backendVersion=2.0": true,
	}
	for _, machine := range []string{"pc", "q35"} {
		t.Run(machine, func(t *testing.T) {
			get := func(bin string) lv.Caps {
				out, err := virsh.Run("domcapabilities", "--emulatorbin", bin, "--virttype", "qemu", "--machine", machine)
				if err != nil {
					t.Fatal(err)
				}
				c, err := lv.ParseCaps([]byte(out))
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			q, tl := get(ref), get(bin)
			if tl.Path != bin {
				t.Errorf("path = %q, want %q", tl.Path, bin)
			}
			if tl.Machine != q.Machine {
				t.Errorf("machine = %q, QEMU says %q", tl.Machine, q.Machine)
			}
			if m := lv.Missing(q.CPUModels, tl.CPUModels); len(m) > 0 {
				t.Errorf("CPU models QEMU has and tlcvm lacks: %v", m)
			}
			if m := lv.Missing(tl.CPUModels, q.CPUModels); len(m) > 0 {
				t.Errorf("CPU models tlcvm invents: %v", m)
			}
			flat := func(c lv.Caps) []string {
				var s []string
				for k, vs := range c.Devices {
					s = append(s, k)
					for _, v := range vs {
						s = append(s, k+"="+v)
					}
				}
				for _, f := range c.Features {
					s = append(s, "feature="+f)
				}
				return s
			}
			fq, ft := flat(q), flat(tl)
			sort.Strings(fq)
			for _, m := range lv.Missing(fq, ft) {
				t.Logf("QEMU has, tlcvm lacks: %s", m)
				if !known[m] {
					t.Errorf("undocumented difference: QEMU has %s, tlcvm lacks it", m)
				}
			}
			if m := lv.Missing(ft, fq); len(m) > 0 {
				t.Errorf("tlcvm reports what QEMU does not: %v", m)
			}
			for _, want := range []string{"graphics.type=vnc", "disk.bus=virtio", "disk.bus=sata", "disk.diskDevice=cdrom",
				"disk.diskDevice=disk", "video.modelType=virtio", "rng.model=virtio", "rng.backendModel=random",
				"hostdev.mode=subsystem"} {
				if !contains(ft, want) {
					t.Errorf("tlcvm lacks %s, which the domain flows use", want)
				}
			}
		})
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}
