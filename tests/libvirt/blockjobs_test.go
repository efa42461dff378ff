package libvirt_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lv "tlcvm/internal/libvirttest"
	"tlcvm/machine"
)

// Block jobs driven by virsh on a tlcvm domain whose guest writes its disk: the external
// disk-only snapshot merged back with blockcommit (pivot, or the overlay kept),
// blockpull with and without a base, blockcopy in each of its modes. Each result is
// read with qemu-img and compared with what the guest wrote (the workload's formula at
// the disk cursors, read while the domain is paused), and every image is checked by
// qemu-img check once the domain is gone.

// writerWorkload makes the guest write 4 MiB of its disk in 4 KiB blocks at 1 MiB/s.
const writerWorkload = "idle,,disk=virtio-disk0,,disk-rate=1M,,disk-size=4M,,disk-bs=4K"

// domDisk is the source of the domain's vda (domblklist).
func domDisk(t *testing.T, dom string) string {
	t.Helper()
	for _, l := range strings.Split(mustRun(t, "domblklist", dom), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "vda" {
			return f[1]
		}
	}
	t.Fatalf("no vda in domblklist of %s", dom)
	return ""
}

// guestWrites waits until the guest has written more of vda than it had when called.
func guestWrites(t *testing.T, dom string) {
	t.Helper()
	wr := func() string {
		for _, l := range strings.Split(mustRun(t, "domblkstat", dom, "vda"), "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[1] == "wr_bytes" {
				return f[2]
			}
		}
		return ""
	}
	before := wr()
	if err := lv.Poll(stateDeadline, 100*time.Millisecond, "guest writes to vda", func() (bool, error) {
		return wr() != before, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// wantGuestView pauses the domain and requires the image at path, read through its
// backing chain by qemu-img (-U: the domain holds it), to hold what the guest wrote; the
// domain runs again afterwards.
func wantGuestView(t *testing.T, dom, path string) {
	t.Helper()
	mustRun(t, "suspend", dom)
	defer mustRun(t, "resume", dom)
	const size, bs = 4 << 20, 4 << 10
	wantImage(t, path, diskCursors(t, dom, size, bs), "-U")
}

// wantImage requires the image at path, read by qemu-img through its backing chain, to
// hold the workload's formula at the cursors st.
func wantImage(t *testing.T, path string, st []machine.DiskState, flags ...string) {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "view.raw")
	runTool(t, "qemu-img", append(append([]string{"convert"}, flags...), "-O", "raw", path, raw)...)
	got, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 64<<20)
	machine.ExpectDisk(want, 0, st)
	if d := firstDiff(got, want); d != "" {
		t.Fatalf("%s is not the guest's disk (cursor %+v): %s", path, st, d)
	}
}

func firstDiff(got, want []byte) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d bytes, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at byte %#x: %#x, want %#x", i, got[i], want[i])
		}
	}
	return ""
}

// wantClean requires qemu-img check to find each image clean (the domain is gone).
func wantClean(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if out := runTool(t, "qemu-img", "check", p); !strings.Contains(out, "No errors were found") {
			t.Errorf("qemu-img check %s: %s", p, out)
		}
	}
}

// snapshot makes an external disk-only snapshot of vda into file (no libvirt metadata).
func snapshot(t *testing.T, dom, name, file string) {
	t.Helper()
	mustRun(t, "snapshot-create-as", dom, name, "--disk-only", "--no-metadata", "--diskspec", "vda,file="+file)
	if got := domDisk(t, dom); got != file {
		t.Fatalf("vda after the snapshot: %s, want %s", got, file)
	}
}

// TestBlockCommitStory: the routine of libvirt backup scripts — an external disk-only
// snapshot while the guest writes, then blockcommit --active --pivot brings the domain
// back to its base image holding everything the guest wrote; with --keep-overlay the
// domain stays on the overlay and the base holds the data up to the commit.
func TestBlockCommitStory(t *testing.T) {
	need(t)
	d, dir := startDomain(t, lv.PC, writerWorkload)
	name, base := d.Name, d.Disk

	s1 := filepath.Join(dir, "s1.qcow2")
	snapshot(t, name, "s1", s1)
	guestWrites(t, name)
	mustRun(t, "blockcommit", name, "vda", "--active", "--pivot", "--wait")
	if got := domDisk(t, name); got != base {
		t.Fatalf("vda after blockcommit --pivot: %s, want the base %s", got, base)
	}
	if out := mustRun(t, "blockjob", name, "vda", "--info"); strings.TrimSpace(out) != "" && !strings.Contains(out, "No current block job") {
		t.Errorf("blockjob --info after the pivot: %s", out)
	}
	guestWrites(t, name)
	wantGuestView(t, name, base)

	s2 := filepath.Join(dir, "s2.qcow2")
	snapshot(t, name, "s2", s2)
	guestWrites(t, name)
	mustRun(t, "blockcommit", name, "vda", "--active", "--keep-overlay", "--wait")
	if got := domDisk(t, name); got != s2 {
		t.Fatalf("vda after blockcommit --keep-overlay: %s, want the overlay %s", got, s2)
	}
	guestWrites(t, name)
	wantGuestView(t, name, s2)

	mustRun(t, "destroy", name)
	wantClean(t, base, s2)
}

// TestBlockPullStory: over a chain base <- s1 <- s2 <- s3, blockpull --base s1 pulls s2
// into s3, which then names s1 as its backing file; blockpull without a base makes s3
// standalone; the guest's data is whole throughout.
func TestBlockPullStory(t *testing.T) {
	need(t)
	d, dir := startDomain(t, lv.PC, writerWorkload)
	name, base := d.Name, d.Disk
	s1, s2, s3 := filepath.Join(dir, "s1.qcow2"), filepath.Join(dir, "s2.qcow2"), filepath.Join(dir, "s3.qcow2")
	snapshot(t, name, "s1", s1)
	guestWrites(t, name)
	snapshot(t, name, "s2", s2)
	guestWrites(t, name)
	snapshot(t, name, "s3", s3)
	guestWrites(t, name)

	// With a base: s2 is pulled into s3, which then names s1 as its backing file.
	mustRun(t, "blockpull", name, "vda", "--base", s1, "--wait")
	chain := runTool(t, "qemu-img", "info", "-U", "--backing-chain", s3)
	if strings.Contains(chain, "image: "+s2) || !strings.Contains(chain, "backing file: "+s1) {
		t.Fatalf("the chain after blockpull --base: %s", chain)
	}
	wantGuestView(t, name, s3)

	// Without: everything comes up into s3.
	mustRun(t, "blockpull", name, "vda", "--wait")
	if info := runTool(t, "qemu-img", "info", "-U", s3); strings.Contains(info, "backing file:") {
		t.Fatalf("s3 after blockpull: %s", info)
	}
	guestWrites(t, name)
	wantGuestView(t, name, s3)
	mustRun(t, "destroy", name)
	wantClean(t, base, s1, s2, s3)
}

// TestBlockCopyStory: blockcopy (a transient job, as libvirt requires for a persistent
// domain) to a new image with --pivot (the domain moves to the copy), --finish (the copy
// is left behind, equal to the disk when it finished), --shallow over a snapshot (the
// copy holds the top only, over the same backing), --reuse-external onto an image made
// beforehand.
func TestBlockCopyStory(t *testing.T) {
	need(t)
	d, dir := startDomain(t, lv.PC, writerWorkload)
	name := d.Name
	guestWrites(t, name)

	fin := filepath.Join(dir, "finish.qcow2")
	mustRun(t, "blockcopy", name, "vda", fin, "--transient-job", "--finish", "--wait")
	if got := domDisk(t, name); got != d.Disk {
		t.Fatalf("vda after blockcopy --finish: %s", got)
	}
	if out := runTool(t, "qemu-img", "check", fin); !strings.Contains(out, "No errors were found") {
		t.Errorf("qemu-img check of the finished copy: %s", out)
	}

	piv := filepath.Join(dir, "pivot.qcow2")
	mustRun(t, "blockcopy", name, "vda", piv, "--transient-job", "--pivot", "--wait")
	if got := domDisk(t, name); got != piv {
		t.Fatalf("vda after blockcopy --pivot: %s, want %s", got, piv)
	}
	guestWrites(t, name)
	wantGuestView(t, name, piv)

	s1 := filepath.Join(dir, "s1.qcow2")
	snapshot(t, name, "s1", s1)
	guestWrites(t, name)
	shallow := filepath.Join(dir, "shallow.qcow2")
	mustRun(t, "blockcopy", name, "vda", shallow, "--transient-job", "--shallow", "--pivot", "--wait")
	if info := runTool(t, "qemu-img", "info", "-U", shallow); !strings.Contains(info, "backing file: "+piv) {
		t.Fatalf("the shallow copy's backing: %s", info)
	}
	guestWrites(t, name)
	wantGuestView(t, name, shallow)

	reuse := filepath.Join(dir, "reuse.qcow2")
	runTool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", piv, reuse)
	mustRun(t, "blockcopy", name, "vda", reuse, "--transient-job", "--shallow", "--reuse-external", "--pivot", "--wait")
	if got := domDisk(t, name); got != reuse {
		t.Fatalf("vda after blockcopy --reuse-external: %s", got)
	}
	guestWrites(t, name)
	wantGuestView(t, name, reuse)

	mustRun(t, "destroy", name)
	wantClean(t, d.Disk, fin, piv, s1, shallow, reuse)
}

// TestBackupPushStory: virsh backup-begin in push mode writes a full backup (with a
// checkpoint made at the same instant) and then an incremental one since that checkpoint
// (blockdev-backup sync=bitmap); the full backup is the disk at its backup-begin, and the
// incremental one, put over the full one, is the disk at its own.
func TestBackupPushStory(t *testing.T) {
	need(t)
	d, dir := startDomain(t, lv.PC, writerWorkload)
	name := d.Name
	const size, bs = 4 << 20, 4 << 10
	write := func(file, text string) string {
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	backup := func(label, inc, cp string) (string, []machine.DiskState) {
		target := filepath.Join(dir, label+".qcow2")
		incXML := ""
		if inc != "" {
			incXML = "<incremental>" + inc + "</incremental>"
		}
		x := write(label+".xml", fmt.Sprintf(`<domainbackup mode='push'>%s<disks><disk name='vda' backup='yes' type='file'>`+
			`<target file='%s'/><driver type='qcow2'/></disk></disks></domainbackup>`, incXML, target))
		c := write(label+"-cp.xml", "<domaincheckpoint><name>"+cp+"</name></domaincheckpoint>")
		guestWrites(t, name)
		mustRun(t, "suspend", name)
		st := diskCursors(t, name, size, bs)
		mustRun(t, "backup-begin", name, x, c)
		mustRun(t, "resume", name)
		if err := lv.Poll(stateDeadline, 200*time.Millisecond, "the backup job's end", func() (bool, error) {
			out, err := virsh.Run("domjobinfo", name)
			return err == nil && strings.Contains(out, "None"), nil
		}); err != nil {
			t.Fatal(err)
		}
		if out := mustRun(t, "domjobinfo", name, "--completed"); !strings.Contains(out, "Completed") {
			t.Fatalf("domjobinfo --completed: %s", out)
		}
		return target, st
	}
	full, st := backup("full", "", "cp1")
	wantClean(t, full)
	wantImage(t, full, st)
	inc, st2 := backup("inc", "cp1", "cp2")
	// libvirt makes the incremental target over the disk; put it over the full backup.
	runTool(t, "qemu-img", "rebase", "-u", "-F", "qcow2", "-b", full, inc)
	wantClean(t, inc)
	wantImage(t, inc, st2)
	for _, cp := range strings.Fields(mustRun(t, "checkpoint-list", name, "--name", "--topological")) {
		mustRun(t, "checkpoint-delete", name, cp)
	}
}
