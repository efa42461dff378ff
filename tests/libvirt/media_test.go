package libvirt_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lv "tlcvm/internal/libvirttest"
)

// The change-media story (issue 13): virsh change-media in every form against a pc
// domain's IDE CD-ROM and floppy and a q35 domain's SATA CD-ROM. libvirt 9.0 drives the
// trays as qemuDomainChangeMediaBlockdev does: blockdev-open-tray (force as --force says)
// and, unless forced, a wait of up to 5 s for DEVICE_TRAY_MOVED; blockdev-remove-medium,
// blockdev-del of the old nodes, blockdev-add of the new ones, blockdev-insert-medium,
// blockdev-close-tray. A missing event or a wrong reply fails the virsh command.

// trayInfo is what query-block says of one removable drive.
type trayInfo struct {
	Qdev      string `json:"qdev"`
	Removable bool   `json:"removable"`
	Locked    bool   `json:"locked"`
	TrayOpen  *bool  `json:"tray_open"`
	Inserted  *struct {
		File     string `json:"file"`
		RO       bool   `json:"ro"`
		NodeName string `json:"node-name"`
	} `json:"inserted"`
}

// queryBlock returns query-block's answer by qdev id.
func queryBlock(t *testing.T, dom string) map[string]trayInfo {
	t.Helper()
	var r struct {
		Return []trayInfo `json:"return"`
	}
	out := mustRun(t, "qemu-monitor-command", dom, `{"execute":"query-block"}`)
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("query-block: %v: %s", err, out)
	}
	m := map[string]trayInfo{}
	for _, b := range r.Return {
		m[b.Qdev] = b
	}
	return m
}

// wantMedium checks a drive's medium as virsh domblklist and QEMU's query-block see it:
// file "" for none. A drive with a tray must report it closed.
func wantMedium(t *testing.T, dom, target, qdev, file string, ro, tray bool) {
	t.Helper()
	bl, err := lv.ParseBlkList(mustRun(t, "domblklist", dom))
	if err != nil {
		t.Fatal(err)
	}
	want := file
	if want == "" {
		want = "-"
	}
	if bl[target] != want {
		t.Errorf("domblklist %s = %q, want %q", target, bl[target], want)
	}
	b, ok := queryBlock(t, dom)[qdev]
	switch {
	case !ok:
		t.Fatalf("query-block has no %s", qdev)
	case !b.Removable || b.Locked:
		t.Errorf("%s: removable %t locked %t", qdev, b.Removable, b.Locked)
	case tray != (b.TrayOpen != nil) || (b.TrayOpen != nil && *b.TrayOpen):
		t.Errorf("%s: tray_open %v, want a closed tray: %t", qdev, b.TrayOpen, tray)
	case file == "" && b.Inserted != nil:
		t.Errorf("%s: medium %s inserted, want none", qdev, b.Inserted.File)
	case file != "" && (b.Inserted == nil || b.Inserted.File != file || b.Inserted.RO != ro):
		t.Errorf("%s: inserted %+v, want %s (read-only %t)", qdev, b.Inserted, file, ro)
	}
}

// images makes raw images in dir.
func images(t *testing.T, dir string, names ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i, n := range names {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, int64(i+1)<<20); err != nil {
			t.Fatal(err)
		}
		out[n] = p
	}
	return out
}

func wantOut(t *testing.T, out, want string) {
	t.Helper()
	if strings.TrimSpace(out) != want {
		t.Errorf("virsh said %q, want %q", strings.TrimSpace(out), want)
	}
}

// TestChangeMediaPC: an empty IDE CD-ROM (hdc, qdev ide0-1-0) and a floppy holding an
// image (fda, qdev fdc0-0-0) on anchor1's pc model, through --insert, --update, --eject,
// --force, --live, --config, --current, --block, managedsave and restore, HMP info block.
func TestChangeMediaPC(t *testing.T) {
	need(t)
	d, dir := newDomain(t, lv.PC, "idle")
	img := images(t, dir, "a.iso", "b.iso", "f1.img", "f2.img")
	d.Media = []lv.Medium{
		{Device: "cdrom", Bus: "ide", Target: "hdc"},
		{Device: "floppy", Bus: "fdc", Target: "fda", Source: img["f1.img"]},
	}
	name := d.Name
	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"start", func(t *testing.T) {
			if err := virsh.Define(d, dir); err != nil {
				t.Fatal(err)
			}
			mustRun(t, "start", name)
			wantState(t, name, "running", "booted")
			wantMedium(t, name, "hdc", "ide0-1-0", "", false, true)
			wantMedium(t, name, "fda", "fdc0-0-0", img["f1.img"], false, false)
		}},
		{"cdrom insert", func(t *testing.T) {
			wantOut(t, mustRun(t, "change-media", name, "hdc", img["a.iso"], "--insert"), "Successfully inserted media.")
			wantMedium(t, name, "hdc", "ide0-1-0", img["a.iso"], true, true)
		}},
		{"cdrom insert with a medium in", func(t *testing.T) {
			_, err := virsh.Run("change-media", name, "hdc", img["b.iso"], "--insert")
			if err == nil || !strings.Contains(err.Error(), "The disk device 'hdc' already has media") {
				t.Fatalf("second --insert: %v", err)
			}
		}},
		{"cdrom update", func(t *testing.T) {
			wantOut(t, mustRun(t, "change-media", name, "hdc", img["b.iso"], "--update"), "Successfully updated media.")
			wantMedium(t, name, "hdc", "ide0-1-0", img["b.iso"], true, true)
		}},
		{"cdrom eject", func(t *testing.T) {
			wantOut(t, mustRun(t, "change-media", name, "hdc", "--eject"), "Successfully ejected media.")
			wantMedium(t, name, "hdc", "ide0-1-0", "", false, true)
			// libvirt does nothing for an empty drive.
			wantOut(t, mustRun(t, "change-media", name, "hdc", "--eject"), "Successfully ejected media.")
		}},
		{"cdrom forced", func(t *testing.T) {
			mustRun(t, "change-media", name, "hdc", img["a.iso"], "--insert", "--force")
			wantMedium(t, name, "hdc", "ide0-1-0", img["a.iso"], true, true)
			mustRun(t, "change-media", name, "hdc", img["b.iso"], "--update", "--force")
			wantMedium(t, name, "hdc", "ide0-1-0", img["b.iso"], true, true)
		}},
		{"config and live", func(t *testing.T) {
			// --config changes the persistent definition only.
			mustRun(t, "change-media", name, "hdc", img["a.iso"], "--update", "--config")
			wantMedium(t, name, "hdc", "ide0-1-0", img["b.iso"], true, true)
			if x := mustRun(t, "dumpxml", "--inactive", name); !strings.Contains(x, "<source file='"+img["a.iso"]+"'") {
				t.Errorf("inactive XML lacks the --config medium:\n%s", x)
			}
			mustRun(t, "change-media", name, "hdc", img["a.iso"], "--update", "--live", "--config")
			wantMedium(t, name, "hdc", "ide0-1-0", img["a.iso"], true, true)
			mustRun(t, "change-media", name, "hdc", img["b.iso"], "--update", "--current")
			wantMedium(t, name, "hdc", "ide0-1-0", img["b.iso"], true, true)
		}},
		{"floppy", func(t *testing.T) {
			wantOut(t, mustRun(t, "change-media", name, "fda", img["f2.img"], "--update"), "Successfully updated media.")
			wantMedium(t, name, "fda", "fdc0-0-0", img["f2.img"], false, false)
			wantOut(t, mustRun(t, "change-media", name, "fda", "--eject"), "Successfully ejected media.")
			wantMedium(t, name, "fda", "fdc0-0-0", "", false, false)
			wantOut(t, mustRun(t, "change-media", name, "fda", img["f1.img"], "--insert", "--force"), "Successfully inserted media.")
			wantMedium(t, name, "fda", "fdc0-0-0", img["f1.img"], false, false)
		}},
		{"block device", func(t *testing.T) {
			out, err := exec.Command("losetup", "-f", "--show", img["a.iso"]).CombinedOutput()
			if err != nil {
				t.Skipf("no loop device: losetup: %v: %s", err, out)
			}
			loop := strings.TrimSpace(string(out))
			defer func() {
				if out, err := exec.Command("losetup", "-d", loop).CombinedOutput(); err != nil {
					t.Errorf("losetup -d %s: %v: %s", loop, err, out)
				}
			}()
			// libvirt opens it as a host_device node under a raw one.
			mustRun(t, "change-media", name, "hdc", loop, "--update", "--block")
			wantMedium(t, name, "hdc", "ide0-1-0", loop, true, true)
			mustRun(t, "change-media", name, "hdc", "--eject")
			wantMedium(t, name, "hdc", "ide0-1-0", "", false, true)
			mustRun(t, "change-media", name, "hdc", img["b.iso"], "--insert")
		}},
		{"hmp info block", func(t *testing.T) {
			out := strings.ReplaceAll(mustRun(t, "qemu-monitor-command", "--hmp", name, "info block"), "\r\n", "\n")
			for _, want := range []string{
				": " + img["b.iso"] + " (raw, read-only)\n    Attached to:      ide0-1-0\n    Removable device: not locked, tray closed\n",
				": " + img["f1.img"] + " (raw)\n    Attached to:      fdc0-0-0\n    Removable device: not locked, tray closed\n",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("info block lacks %q:\n%s", want, out)
				}
			}
		}},
		{"managedsave and restore keep the media", func(t *testing.T) {
			mustRun(t, "managedsave", name)
			wantState(t, name, "shut off", "saved")
			mustRun(t, "start", name)
			wantState(t, name, "running", "restored")
			wantMedium(t, name, "hdc", "ide0-1-0", img["b.iso"], true, true)
			wantMedium(t, name, "fda", "fdc0-0-0", img["f1.img"], false, false)
			mustRun(t, "change-media", name, "hdc", "--eject")
			wantMedium(t, name, "hdc", "ide0-1-0", "", false, true)
		}},
		{"destroy", func(t *testing.T) {
			mustRun(t, "destroy", name)
			wantState(t, name, "shut off", "destroyed")
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.f) {
			return
		}
	}
}

// TestChangeMediaQ35: anchor2's empty SATA CD-ROM (sda, qdev sata0-0-0) on q35.
func TestChangeMediaQ35(t *testing.T) {
	need(t)
	d, dir := newDomain(t, lv.Q35, "idle")
	d.NoBalloon, d.NoVNC = true, true
	img := images(t, dir, "a.iso", "b.iso")
	name := d.Name
	if err := virsh.Define(d, dir); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "start", name)
	wantState(t, name, "running", "booted")
	wantMedium(t, name, "sda", "sata0-0-0", "", false, true)
	wantOut(t, mustRun(t, "change-media", name, "sda", img["a.iso"], "--insert", "--live"), "Successfully inserted media.")
	wantMedium(t, name, "sda", "sata0-0-0", img["a.iso"], true, true)
	wantOut(t, mustRun(t, "change-media", name, "sda", img["b.iso"]), "Successfully updated media.")
	wantMedium(t, name, "sda", "sata0-0-0", img["b.iso"], true, true)
	wantOut(t, mustRun(t, "change-media", name, "sda", "--eject", "--force"), "Successfully ejected media.")
	wantMedium(t, name, "sda", "sata0-0-0", "", false, true)
	_, err := virsh.Run("change-media", name, "sda", filepath.Join(dir, "missing.iso"), "--insert")
	if err == nil || !strings.Contains(err.Error(), "Cannot access storage file") {
		t.Errorf("insert of a missing file: %v", err)
	}
	wantMedium(t, name, "sda", "sata0-0-0", "", false, true)
	mustRun(t, "destroy", name)
}

// TestChangeMediaLockedTray: the guest has locked the CD-ROM's tray (QEMU boots
// tests/testdata/lockcd.bin from the disk; tlcvm's guest locks it for the workload item
// cdlock). Without --force libvirt's blockdev-open-tray only asks the guest, no
// DEVICE_TRAY_MOVED comes, and libvirt gives up after its 5 s wait; --force opens it.
func TestChangeMediaLockedTray(t *testing.T) {
	need(t)
	d, dir := newDomain(t, lv.PC, "idle,,cdlock")
	mbr, err := filepath.Abs("../testdata/lockcd.bin")
	if err != nil {
		t.Fatal(err)
	}
	if err := lv.CreateDisk(d.Disk, mbr); err != nil {
		t.Fatal(err)
	}
	img := images(t, dir, "a.iso", "b.iso")
	d.Media = []lv.Medium{{Device: "cdrom", Bus: "ide", Target: "hdc", Source: img["a.iso"]}}
	name := d.Name
	if err := virsh.Define(d, dir); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "start", name)
	wantState(t, name, "running", "booted")
	if err := lv.Poll(stateDeadline, 50*time.Millisecond, "the guest locks the tray", func() (bool, error) {
		return queryBlock(t, name)["ide0-1-0"].Locked, nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--eject"}, {img["b.iso"], "--update"}} {
		_, err := virsh.Run(append([]string{"change-media", name, "hdc"}, args...)...)
		if err == nil || !strings.Contains(err.Error(), "timed out waiting to open tray of 'hdc'") {
			t.Errorf("change-media %v on a locked tray: %v", args, err)
		}
	}
	b := queryBlock(t, name)["ide0-1-0"]
	if !b.Locked || b.TrayOpen == nil || *b.TrayOpen || b.Inserted == nil || b.Inserted.File != img["a.iso"] {
		t.Errorf("after the refused changes: %+v", b)
	}
	wantOut(t, mustRun(t, "change-media", name, "hdc", "--eject", "--force"), "Successfully ejected media.")
	b = queryBlock(t, name)["ide0-1-0"]
	if b.Locked || b.Inserted != nil {
		t.Errorf("after --eject --force: %+v", b)
	}
	wantMedium(t, name, "hdc", "ide0-1-0", "", false, true)
	mustRun(t, "destroy", name)
}
