package tests_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSavevmLoadvmExact: a busy guest with a qcow2 disk; savevm (paused, then running),
// more guest writes to RAM and disk, loadvm: guest RAM equals what pmemsave gave at savevm
// time and the disk equals what it held then, byte for byte; the image passes qemu-img
// check and qemu-img lists the snapshots with their VM state; -loadvm of the same image
// starts another process at the snapshot.
func TestSavevmLoadvmExact(t *testing.T) {
	bin := requireCandidate(t)
	needQemuImg(t)
	dir := shortDir(t)
	img := filepath.Join(dir, "d.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", img, "32M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v\n%s", err, out)
	}
	disk := []string{"-drive", "file=" + img + ",if=none,id=d0", "-device", "virtio-blk-pci,drive=d0"}
	v := startMigVM(t, bin, dir, "vm", migArgs("ws=16M,,rate=max", disk...)...)
	hmp := func(line string) string {
		t.Helper()
		return v.do("human-monitor-command", map[string]any{"command-line": line}).Str()
	}
	quiet := func(line string) {
		t.Helper()
		if out := hmp(line); out != "" {
			t.Fatalf("%s: %q", line, out)
		}
	}
	time.Sleep(200 * time.Millisecond) // the guest fills its working set meanwhile
	quiet(`qemu-io d0 "write -q -P 0x11 0 1M"`)
	v.do("stop", nil)
	want := v.pmemsave(migRAM, filepath.Join(dir, "at-save.mem"))
	quiet("savevm s1")
	if st := v.status(); st != "paused" {
		t.Fatalf("after savevm of a paused guest: %s", st)
	}

	v.do("cont", nil)
	time.Sleep(200 * time.Millisecond)
	quiet(`qemu-io d0 "write -q -P 0x22 512k 2M"`)
	quiet("savevm s2") // a running guest: stopped for it, running again
	if st := v.status(); st != "running" {
		t.Fatalf("after savevm of a running guest: %s", st)
	}
	time.Sleep(100 * time.Millisecond)
	quiet(`qemu-io d0 "write -q -P 0x33 0 4M"`)
	v.do("stop", nil)
	if got := v.pmemsave(migRAM, filepath.Join(dir, "before-load.mem")); bytes.Equal(got, want) {
		t.Fatal("the guest did not change its RAM after savevm: the test proves nothing")
	}
	quiet("loadvm s1")
	if st := v.status(); st != "paused" {
		t.Fatalf("after loadvm in a paused guest: %s", st)
	}
	if got := v.pmemsave(migRAM, filepath.Join(dir, "after-load.mem")); !bytes.Equal(got, want) {
		t.Fatal("guest RAM after loadvm s1 differs from RAM at savevm s1")
	}
	if out := hmp(`qemu-io d0 "read -q -P 0x11 0 1M"`); out != "" {
		t.Fatalf("disk after loadvm s1: %s", out)
	}
	if out := hmp(`qemu-io d0 "read -q -P 0 1M 3M"`); out != "" {
		t.Fatalf("disk after loadvm s1 past the first MiB: %s", out)
	}
	v.do("cont", nil)
	quiet("loadvm s2") // running: stopped for it, running again
	if st := v.status(); st != "running" {
		t.Fatalf("after loadvm in a running guest: %s", st)
	}
	if out := hmp(`qemu-io d0 "read -q -P 0x22 512k 2M"`); out != "" {
		t.Fatalf("disk after loadvm s2: %s", out)
	}
	// qemu-io prints a pattern mismatch on the process's stdout: one deliberate mismatch
	// shows the reads above would have been seen failing.
	quiet(`qemu-io d0 "read -q -P 0x99 0 512"`)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(string(v.p.Stdout.Bytes()), "Pattern verification failed") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := strings.Count(string(v.p.Stdout.Bytes()), "Pattern verification failed"); n != 1 {
		t.Fatalf("pattern mismatches: %d, want only the deliberate one; stdout:\n%s", n, string(v.p.Stdout.Bytes()))
	}
	list := hmp("info snapshots")
	v.do("stop", nil)
	want2 := v.pmemsave(migRAM, filepath.Join(dir, "at-s2.mem"))
	quiet("delvm s2")
	v.quit()
	for _, name := range []string{"s1", "s2"} {
		if !strings.Contains(list, "--        "+name+" ") {
			t.Errorf("info snapshots lacks %s:\n%s", name, list)
		}
	}

	out, err := exec.Command("qemu-img", "check", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No errors were found on the image.") {
		t.Fatalf("qemu-img check: %v\n%s", err, out)
	}
	// The disks as qemu-img reads them: the active layer is s2's, s1 is as it was saved.
	s1 := make([]byte, 32<<20)
	copy(s1, bytes.Repeat([]byte{0x11}, 1<<20))
	s2 := append([]byte(nil), s1...)
	copy(s2[512<<10:], bytes.Repeat([]byte{0x22}, 2<<20))
	for _, c := range []struct {
		snap string
		want []byte
	}{{"", s2}, {"s1", s1}} {
		raw := filepath.Join(dir, "conv.raw")
		args := []string{"convert", "-O", "raw", img, raw}
		if c.snap != "" {
			args = []string{"convert", "-l", "snapshot.name=" + c.snap, "-O", "raw", img, raw}
		}
		if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
		}
		got, err := os.ReadFile(raw)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Fatalf("disk of %q as qemu-img reads it differs (%v)", c.snap, err)
		}
	}
	out, err = exec.Command("qemu-img", "snapshot", "-l", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), " s1 ") || strings.Contains(string(out), " s2 ") ||
		strings.Contains(string(out), "      0 B ") {
		t.Fatalf("qemu-img snapshot -l: %v\n%s", err, out)
	}

	// -loadvm: a new process starts at s1 (libvirt's revert); s2's RAM is not s1's.
	if bytes.Equal(want, want2) {
		t.Fatal("s1 and s2 hold the same RAM: the -loadvm check proves nothing")
	}
	w := startMigVM(t, bin, dir, "vm2", migArgs("ws=16M,,rate=max", append([]string{"-S", "-loadvm", "s1"}, disk...)...)...)
	if st := w.status(); st != "prelaunch" {
		t.Fatalf("-loadvm -S: %s", st)
	}
	if got := w.pmemsave(migRAM, filepath.Join(dir, "loadvm.mem")); !bytes.Equal(got, want) {
		t.Fatal("guest RAM after -loadvm s1 differs from RAM at savevm s1")
	}
	w.do("cont", nil)
	w.quit()
	_ = os.Remove(filepath.Join(dir, "loadvm.mem"))
}
