package tests_test

import (
	"os/exec"
	"strings"
	"testing"

	"tlcvm/tests/harness"
)

// TestInfoSnapshots: qcow2 images holding internal snapshots (qemu-img snapshot -c), under
// drives, devices and monitor-owned nodes, writable and read-only, beside a raw disk: HMP
// `info snapshots` (global and partial lists, the vmstate image's choice, errors), the
// snapshot tables of `info block -v` and query-named-block-nodes' "snapshots", as QEMU 7.2
// prints them.
func TestInfoSnapshots(t *testing.T) {
	ref := requireReference(t)
	cand := requireCandidate(t)
	needQemuImg(t)
	dir := shortDir(t)
	for _, a := range [][]string{
		{"create", "-q", "-f", "qcow2", "s1.qcow2", "16M"},
		{"create", "-q", "-f", "qcow2", "s2.qcow2", "16M"},
		{"create", "-q", "-f", "qcow2", "plain.qcow2", "16M"},
		{"create", "-q", "-f", "raw", "r.img", "4M"},
		{"snapshot", "-c", "both", "s1.qcow2"},
		{"snapshot", "-c", "both", "s2.qcow2"},
		{"snapshot", "-c", "only-s1", "s1.qcow2"},
		{"snapshot", "-c", "only-s2", "s2.qcow2"},
	} {
		cmd := exec.Command("qemu-img", a...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %v: %v\n%s", a, err, out)
		}
	}
	steps := []qmpStep{
		{"human-monitor-command", map[string]any{"command-line": "info snapshots"}},
		{"human-monitor-command", map[string]any{"command-line": "info block -v"}},
		{"query-named-block-nodes", nil},
	}
	for _, c := range []struct{ name, args string }{
		{"none", "-machine none"},
		{"raw", "-drive if=none,id=r,file=r.img,format=raw"},
		{"no-snapshots", "-drive if=none,id=p,file=plain.qcow2"},
		{"two-drives", "-drive if=none,id=d1,file=s1.qcow2 -drive if=none,id=d2,file=s2.qcow2"},
		{"drive-and-plain", "-drive if=none,id=d1,file=s1.qcow2 -drive if=none,id=p,file=plain.qcow2"},
		{"beside-raw", "-drive if=none,id=d1,file=s1.qcow2 -drive if=none,id=r,file=r.img,format=raw"},
		{"read-only", "-drive if=none,id=d1,file=s1.qcow2,readonly=on"},
		{"read-only-and-writable", "-drive if=none,id=d1,file=s1.qcow2,readonly=on -drive if=none,id=d2,file=s2.qcow2"},
		{"libvirt-device", "-blockdev driver=file,filename=s1.qcow2,node-name=f1 -blockdev driver=qcow2,file=f1,node-name=q1 -device virtio-blk-pci,drive=q1 -blockdev driver=file,filename=s2.qcow2,node-name=f2 -blockdev driver=qcow2,file=f2,node-name=q2 -device virtio-blk-pci,drive=q2"},
		{"monitor-owned", "-blockdev driver=file,filename=s2.qcow2,node-name=f2 -blockdev driver=qcow2,file=f2,node-name=q2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			run := func(bin string) []string {
				args := append([]string{"-machine", "pc", "-accel", "tcg", "-S"}, strings.Fields(c.args)...)
				v := startMigVM(t, bin, dir, "vm", args...)
				keep := func(_ string, val any) any { return val }
				return runSteps(t, v, steps, keep, func(_ qmpStep, reply string) string {
					return blockScrubs[0].ReplaceAllString(strings.ReplaceAll(reply, dir+"/", ""), "#blockN")
				})
			}
			diffSteps(t, steps, run(ref), run(cand))
		})
	}
}

// TestLoadVM: -loadvm's checks beside QEMU 7.2 (load_snapshot): no snapshot-taking disk, a
// missing snapshot, a disk-only snapshot (qemu-img snapshot -c), a writable raw disk, a
// read-only image; exit status and stderr must be QEMU's. (libvirt reverts a running
// domain to an internal snapshot by restarting it with -loadvm.)
func TestLoadVM(t *testing.T) {
	ref := requireReference(t)
	cand := requireCandidate(t)
	needQemuImg(t)
	dir := shortDir(t)
	for _, a := range [][]string{
		{"create", "-q", "-f", "qcow2", "plain.qcow2", "16M"},
		{"create", "-q", "-f", "qcow2", "snap.qcow2", "16M"},
		{"create", "-q", "-f", "raw", "r.img", "4M"},
		{"snapshot", "-c", "s1", "snap.qcow2"},
	} {
		cmd := exec.Command("qemu-img", a...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %v: %v\n%s", a, err, out)
		}
	}
	for _, args := range []string{
		"-loadvm s1",
		"-loadvm s1 -drive file=DIR/plain.qcow2,if=virtio",
		"-loadvm s1 -drive file=DIR/snap.qcow2,if=virtio",
		"-loadvm s1 -drive file=DIR/snap.qcow2,if=virtio -drive file=DIR/r.img,format=raw,if=virtio",
		"-loadvm s1 -drive file=DIR/snap.qcow2,if=virtio -drive file=DIR/plain.qcow2,if=virtio",
		"-loadvm s1 -drive file=DIR/snap.qcow2,if=virtio,readonly=on",
		"-loadvm s1 -blockdev driver=file,filename=DIR/plain.qcow2,node-name=f -blockdev driver=qcow2,file=f,node-name=q -device virtio-blk-pci,drive=q",
	} {
		t.Run(args, func(t *testing.T) {
			c := harness.CmdlineCase{Args: append([]string{"-machine", "pc", "-accel", "tcg", "-nodefaults", "-display", "none", "-S"},
				strings.Fields(strings.ReplaceAll(args, "DIR", dir))...)}
			a, _, err := harness.RunCmdline(t, ref, c)
			if err != nil {
				t.Fatal(err)
			}
			b, _, err := harness.RunCmdline(t, cand, c)
			if err != nil {
				t.Fatal(err)
			}
			if d := harness.Diff(a, b); d != "" {
				t.Errorf("(- QEMU, + tlcvm):\n%s", d)
			}
		})
	}
}
