package tests_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"tlcvm/tests/harness"
)

// TestBlockJobKilled: tlcvm killed with SIGKILL in the middle of an active commit or of a
// mirror, while its guest writes the disk, leaves images that qemu-img check accepts (no
// corruption; leaked clusters are allowed, as after QEMU's own crash) and a chain whose
// top, opened again, holds exactly what the guest had written.
func TestBlockJobKilled(t *testing.T) {
	bin := requireCandidate(t)
	for _, job := range []string{"commit", "mirror"} {
		t.Run(job, func(t *testing.T) {
			dir := shortDir(t)
			base := newDiskImage(t, dir)
			top := filepath.Join(dir, "top.qcow2")
			if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096",
				"-F", "qcow2", "-b", base, top).CombinedOutput(); err != nil {
				t.Fatalf("qemu-img create: %v: %s", err, out)
			}
			load := "idle,,disk=vd0,,disk-bs=4K,,disk-size=1M,,disk-rate=4M"
			v := startMigVM(t, bin, dir, "k", diskArgs(top, load)...)
			zero := v.cursors()
			v.waitWritten(zero, diskSize) // the top holds a whole pass
			target := filepath.Join(dir, "mirror.qcow2")
			switch job {
			case "commit":
				v.do("block-commit", map[string]any{"job-id": "j", "device": "q0", "speed": 256 << 10})
			case "mirror":
				v.do("drive-mirror", map[string]any{"job-id": "j", "device": "q0", "target": target,
					"format": "qcow2", "sync": "full", "speed": 256 << 10})
			}
			deadline := time.Now().Add(harness.DefaultTimeout)
			for {
				jobs := v.do("query-block-jobs", nil)
				if len(jobs.Arr) != 1 {
					t.Fatalf("query-block-jobs: %s", jobs)
				}
				off, _ := jobs.Arr[0].Get("offset")
				ln, _ := jobs.Arr[0].Get("len")
				if off.Text != "0" && off.Text != ln.Text {
					break // mid-way
				}
				if time.Now().After(deadline) {
					t.Fatalf("the job does not progress: %s", jobs)
				}
				time.Sleep(20 * time.Millisecond)
			}
			v.do("stop", nil)
			states := v.cursors()
			if err := v.p.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if _, err := v.p.Wait(harness.DefaultTimeout); err != nil {
				t.Fatal(err)
			}
			images := []string{base, top}
			if job == "mirror" {
				images = append(images, target)
			}
			for _, img := range images {
				out, _ := exec.Command("qemu-img", "check", img).CombinedOutput()
				if s := string(out); strings.Contains(s, "ERROR") || strings.Contains(s, "corruptions") ||
					!strings.Contains(s, "No errors were found") && !strings.Contains(s, "leaked clusters") {
					t.Errorf("qemu-img check %s after SIGKILL: %s", filepath.Base(img), s)
				}
			}
			checkContent(t, top, states)
		})
	}
}

// TestIntermediateCommitKilled: tlcvm killed with SIGKILL in the middle of an intermediate
// commit without a speed (its copies into base in flight together, each allocating
// clusters) leaves images that qemu-img check accepts, and a chain that reads as before:
// top still names mid, whose data base only partly holds yet.
func TestIntermediateCommitKilled(t *testing.T) {
	bin := requireCandidate(t)
	dir := shortDir(t)
	base, mid, top := filepath.Join(dir, "base.qcow2"), filepath.Join(dir, "mid.qcow2"), filepath.Join(dir, "top.qcow2")
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "1G")
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", mid)
	tool(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x22 0 192M", "-c", "write -P 0x23 512M 64M", mid)
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", mid, "-F", "qcow2", top)
	p, q, _ := startVM(t, bin, "-machine", "pc", "-S",
		"-blockdev", "driver=file,filename="+base+",node-name=fb", "-blockdev", "driver=qcow2,file=fb,node-name=base",
		"-blockdev", "driver=file,filename="+mid+",node-name=fm", "-blockdev", "driver=qcow2,file=fm,backing=base,node-name=mid",
		"-blockdev", "driver=file,filename="+top+",node-name=ft", "-blockdev", "driver=qcow2,file=ft,backing=mid,node-name=top")
	execOK(t, q, "block-commit", map[string]any{"job-id": "c", "device": "top", "top-node": "mid", "base-node": "base"})
	deadline := time.Now().Add(harness.DefaultTimeout)
	for {
		jobs := execOK(t, q, "query-block-jobs", nil)
		if len(jobs.Arr) == 0 {
			t.Log("the commit ended before the kill")
			break
		}
		if off, _ := jobs.Arr[0].Get("offset"); off.Text != "0" {
			break // mid-way
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job does not progress: %s", jobs)
		}
		time.Sleep(time.Millisecond)
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(harness.DefaultTimeout); err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{base, mid, top} {
		out, _ := exec.Command("qemu-img", "check", img).CombinedOutput()
		if s := string(out); strings.Contains(s, "ERROR") || strings.Contains(s, "corruptions") ||
			!strings.Contains(s, "No errors were found") && !strings.Contains(s, "leaked clusters") {
			t.Errorf("qemu-img check %s after SIGKILL: %s", filepath.Base(img), s)
		}
	}
	tool(t, "qemu-io", "-f", "qcow2", "-r", "-c", "read -q -P 0x22 0 192M", "-c", "read -q -P 0 192M 320M",
		"-c", "read -q -P 0x23 512M 64M", "-c", "read -q -P 0 576M 448M", top)
}
