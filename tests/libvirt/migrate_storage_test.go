package libvirt_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lv "tlcvm/internal/libvirttest"
)

// Issue 12's storage copy: virsh migrate --copy-storage-all and --copy-storage-inc between
// the two hosts with non-shared storage (each host's own /var/lib/libvirt/images). libvirt
// starts an NBD server on the destination exporting the disk it opened under -incoming, the
// source mirrors its disk into that export through an NBD client node, then migrates the
// memory and cancels the ready mirror (a completion without pivot). The destination image
// must then hold what the source's held: qemu-img compare, with the destination kept paused
// (--suspend) so that its guest writes nothing before the comparison. Both emulators run
// each mode; their outcomes are compared as in TestMigrateModes.

// storageWorkload also writes the disk (libvirt's virtio-disk0) during the migration, and
// reads each block back before rewriting it: the guest on the destination notices a disk
// that is not what it wrote on the source.
const storageWorkload = "ws=1M,,rate=1M,,disk=virtio-disk0,,disk-rate=1M,,disk-size=8M,,disk-verify"

// storageDomain defines and starts on host a a domain of emulator e whose disk is
// host-private: DISK.qcow2 in a's images, over base.qcow2 when inc (the base present on both
// hosts with the same content). The destination's image is created empty as the test's
// preparation (libvirt pre-creates only volumes of storage pools), an overlay over the same
// base when inc. It returns the domain and the disk path.
func storageDomain(t *testing.T, h *lv.TwoHosts, e emulator, inc bool) lv.Domain {
	t.Helper()
	name := lv.NewName("tlcvm-mig-copy-" + e.name)
	disk := filepath.Join(lv.Images, name+".qcow2")
	base := filepath.Join(lv.Images, name+"-base.qcow2")
	qimg := func(host string, args ...string) {
		t.Helper()
		if out, err := h.Exec(host, args...); err != nil {
			t.Fatalf("%s on %s: %v\n%s", args, host, err, out)
		}
	}
	t.Cleanup(func() {
		for _, host := range []string{"a", "b"} {
			for _, p := range []string{disk, base} {
				os.Remove(h.HostPath(host, p))
			}
		}
	})
	if inc {
		qimg("a", "qemu-img", "create", "-q", "-f", "qcow2", base, "64M")
		qimg("a", "qemu-io", "-c", "write -P 0x5b 0 4M", "-c", "write -P 0x5c 32M 1M", base)
		b, err := os.ReadFile(h.HostPath("a", base))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(h.HostPath("b", base), b, 0o644); err != nil {
			t.Fatal(err)
		}
		// A backing name relative to the image, so that the images can be compared from
		// outside the hosts.
		qimg("a", "qemu-img", "create", "-q", "-f", "qcow2", "-b", filepath.Base(base), "-F", "qcow2", disk)
		qimg("b", "qemu-img", "create", "-q", "-f", "qcow2", "-b", filepath.Base(base), "-F", "qcow2", disk)
	} else {
		qimg("a", "qemu-img", "create", "-q", "-f", "qcow2", disk, "64M")
		qimg("b", "qemu-img", "create", "-q", "-f", "qcow2", disk, "64M")
	}
	// Data on the source beyond what the guest writes: a pattern, a run of zeroes written
	// as data, and (inc) a block over the base's.
	qimg("a", "qemu-io", "-c", "write -P 0xa5 16M 2M", "-c", "write -z 20M 1M", "-c", "write -P 0x3c 33M 64k", disk)
	d := lv.Domain{Kind: lv.PC, Name: name, UUID: lv.NewUUID(), Emulator: e.bin, Disk: disk, Workload: storageWorkload}
	if err := h.A.Define(d, h.Shared); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, v := range []*lv.Virsh{h.A, h.B} {
			_, _ = v.Run("destroy", d.Name)
			_, _ = v.Run("undefine", "--managed-save", "--snapshots-metadata", d.Name)
		}
	})
	if _, err := h.A.Run("start", d.Name); err != nil {
		t.Fatal(err)
	}
	return d
}

// compareImages runs qemu-img compare on the source's and the destination's images (-U: the
// paused destination holds its locks).
func compareImages(h *lv.TwoHosts, disk string) (string, error) {
	out, err := exec.Command("qemu-img", "compare", "-U", "-f", "qcow2", "-F", "qcow2",
		h.HostPath("a", disk), h.HostPath("b", disk)).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// baseStaysBelow checks that --copy-storage-inc copied only the overlay: on the
// destination, the base's block at 32M (which neither the guest nor the overlay wrote) is
// still read from the base (depth 1 in qemu-img map), not copied into the overlay.
func baseStaysBelow(h *lv.TwoHosts, disk string) error {
	out, err := exec.Command("qemu-img", "map", "-U", "--output=json", h.HostPath("b", disk)).Output()
	if err != nil {
		return fmt.Errorf("qemu-img map: %v", err)
	}
	var m []struct {
		Start, Length, Depth int64
		Data                 bool
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return err
	}
	for _, e := range m {
		if e.Start <= 32<<20 && 32<<20 < e.Start+e.Length {
			if e.Depth != 1 || !e.Data {
				return fmt.Errorf("the destination's overlay holds the base's block at 32M: %+v", e)
			}
			return nil
		}
	}
	return fmt.Errorf("qemu-img map has no extent at 32M: %s", out)
}

// TestMigrateCopyStorage runs --copy-storage-all and --copy-storage-inc with both emulators.
func TestMigrateCopyStorage(t *testing.T) {
	need(t)
	h := twoHosts(t)
	for _, m := range []struct {
		name string
		flag string
		inc  bool
	}{
		{"all", "--copy-storage-all", false},
		{"inc", "--copy-storage-inc", true},
	} {
		t.Run(m.name, func(t *testing.T) {
			res := map[string]outcome{}
			for _, e := range emulators(t) {
				d := storageDomain(t, h, e, m.inc)
				time.Sleep(time.Second) // the guest writes its disk a while
				o := migrate(t, h, d.Name, "--live", "--verbose", m.flag, "--suspend")
				res[e.name] = o
				t.Logf("%s: %s", e.name, o)
				if o.err != "" {
					continue
				}
				if out, err := compareImages(h, d.Disk); err != nil {
					t.Errorf("%s: the destination's image differs from the source's: %v\n%s", e.name, err, out)
				}
				if m.inc {
					if err := baseStaysBelow(h, d.Disk); err != nil {
						t.Errorf("%s: %v", e.name, err)
					}
				}
				if _, err := h.B.Run("resume", d.Name); err != nil {
					t.Errorf("%s: resume on the destination: %v", e.name, err)
				} else if st := stateOf(h.B, d.Name); !strings.HasPrefix(st, "running") {
					t.Errorf("%s: destination state %q after resume", e.name, st)
				}
			}
			if res["tlcvm"].err != "" {
				t.Fatalf("tlcvm: virsh migrate failed: %s", res["tlcvm"].err)
			}
			sameOutcome(t, res["tlcvm"], res["qemu"])
		})
	}
}
