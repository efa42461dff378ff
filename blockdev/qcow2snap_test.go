package blockdev_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlcvm/blockdev"
)

// Internal snapshots written by tlcvm, with qemu-img as the oracle: after every create,
// goto and delete qemu-img check finds the image clean, qemu-img snapshot -l lists what
// tlcvm made (VM SIZE, DATE, VM CLOCK), qemu-img convert -l reads each snapshot's disk as
// it was, and snapshots qemu-img made are applied and deleted by tlcvm alike.

// snapshotContent is what qemu-img convert -l reads of snapshot name.
func snapshotContent(t *testing.T, path, name string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "snap.raw")
	qemuImg(t, "convert", "-l", "snapshot.name="+name, "-O", "raw", path, out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestQcow2SnapshotCreateGotoDelete(t *testing.T) {
	needQemuImg(t)
	for _, c := range []struct{ name, opts, size string }{
		{"v3", "", "16M"},
		{"v2", "compat=0.10", "16M"},
		{"cluster4k", "cluster_size=4096", "8M"},
		{"cluster512-refcount4", "cluster_size=512,refcount_bits=4", "2M"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := createQcow2(t, c.opts, c.size)
			g, n := openImage(t, path, "qcow2")
			model := make([]byte, n.Size())
			randomWrites(t, n, model, 60, 3, 100000)
			vmstate := bytes.Repeat([]byte("tlcvm vm state "), 20000) // 300 kB
			w := n.VMStateWriter()
			if _, err := w.Write(vmstate[:1000]); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(vmstate[1000:]); err != nil {
				t.Fatal(err)
			}
			date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			sn := blockdev.Snapshot{Name: "s1", DateSec: date.Unix(), VMClockNsec: 3723_456_000_000, ICount: -1}
			if err := g.CreateSnapshot(sn, n, uint64(len(vmstate)), nil); err != nil {
				t.Fatal(err)
			}
			snap1 := append([]byte(nil), model...)
			randomWrites(t, n, model, 60, 4, 100000)
			if err := g.CreateSnapshot(blockdev.Snapshot{Name: "s2", DateSec: date.Unix(), ICount: -1}, nil, 0, nil); err != nil {
				t.Fatal(err)
			}
			snap2 := append([]byte(nil), model...)
			randomWrites(t, n, model, 60, 5, 100000)
			g.Close()
			checkClean(t, path)
			list := qemuImg(t, "snapshot", "-l", path)
			for _, want := range []string{"s1", "293 KiB", "01:02:03.456", "s2"} {
				if !strings.Contains(list, want) {
					t.Fatalf("qemu-img snapshot -l lacks %q:\n%s", want, list)
				}
			}
			if d := firstDiff(snapshotContent(t, path, "s1"), snap1); d != "" {
				t.Fatalf("s1 as qemu-img reads it: %s", d)
			}
			if d := firstDiff(snapshotContent(t, path, "s2"), snap2); d != "" {
				t.Fatalf("s2 as qemu-img reads it: %s", d)
			}
			if d := firstDiff(rawContent(t, path), model); d != "" {
				t.Fatalf("active layer: %s", d)
			}

			// qemu-img's own snapshot, then tlcvm goes to s1, reads its VM state, writes on.
			qemuImg(t, "snapshot", "-c", "img", path)
			atImg := append([]byte(nil), model...)
			g, n = openImage(t, path, "qcow2")
			if err := g.GotoSnapshot("s1", nil); err != nil {
				t.Fatal(err)
			}
			if d := firstDiff(readAll(t, n), snap1); d != "" {
				t.Fatalf("after goto s1: %s", d)
			}
			got, err := io.ReadAll(n.VMStateReader(int64(len(vmstate))))
			if err != nil || !bytes.Equal(got, vmstate) {
				t.Fatalf("VM state read back: %v (%d bytes)", err, len(got))
			}
			model = append([]byte(nil), snap1...)
			randomWrites(t, n, model, 60, 6, 100000)
			if err := g.DeleteSnapshot("s2", nil); err != nil {
				t.Fatal(err)
			}
			g.Close()
			checkClean(t, path)
			if d := firstDiff(rawContent(t, path), model); d != "" {
				t.Fatalf("active layer after goto and writes: %s", d)
			}
			if d := firstDiff(snapshotContent(t, path, "s1"), snap1); d != "" {
				t.Fatalf("s1 after goto and writes: %s", d)
			}
			// qemu-img applies tlcvm's s1 and deletes it; tlcvm goes to qemu-img's.
			qemuImg(t, "snapshot", "-a", "s1", path)
			checkClean(t, path)
			if d := firstDiff(rawContent(t, path), snap1); d != "" {
				t.Fatalf("qemu-img snapshot -a s1: %s", d)
			}
			qemuImg(t, "snapshot", "-d", "s1", path)
			checkClean(t, path)
			g, n = openImage(t, path, "qcow2")
			if err := g.GotoSnapshot("img", nil); err != nil {
				t.Fatal(err)
			}
			if err := g.DeleteSnapshot("img", nil); err != nil {
				t.Fatal(err)
			}
			if d := firstDiff(readAll(t, n), atImg); d != "" {
				t.Fatalf("after goto img: %s", d)
			}
			g.Close()
			checkClean(t, path)
			if out := qemuImg(t, "snapshot", "-l", path); strings.TrimSpace(out) != "" {
				t.Fatalf("snapshots left: %s", out)
			}
		})
	}
}

// TestSnapshotErrors: QEMU's texts for the checks of savevm and loadvm.
func TestSnapshotErrors(t *testing.T) {
	needQemuImg(t)
	dir := t.TempDir()
	qc, raw := filepath.Join(dir, "a.qcow2"), filepath.Join(dir, "b.raw")
	qemuImg(t, "create", "-q", "-f", "qcow2", qc, "1M")
	qemuImg(t, "create", "-q", "-f", "raw", raw, "1M")
	g, n := openImage(t, qc, "qcow2")
	defer g.Close()
	if _, err := g.Add(&blockdev.Options{Driver: "raw", NodeName: "r",
		File: &blockdev.Ref{Options: &blockdev.Options{Driver: blockdev.DriverFile, Filename: raw}}}); err != nil {
		t.Fatal(err)
	}
	errText := func(err error) string {
		if err == nil {
			return ""
		}
		return err.Error()
	}
	if got, want := errText(g.CheckCanSnapshot(nil)), "Device 'r' is writable but does not support snapshots"; got != want {
		t.Errorf("can snapshot: %q, want %q", got, want)
	}
	if got := errText(g.CheckCanSnapshot([]string{"img"})); got != "" {
		t.Errorf("can snapshot img: %q", got)
	}
	if got, want := errText(g.CheckCanSnapshot([]string{"zz"})), "No block device node 'zz'"; got != want {
		t.Errorf("unknown device: %q, want %q", got, want)
	}
	if _, err := g.VMStateNode("zz", []string{"img"}); errText(err) != "vmstate block device 'zz' does not exist" {
		t.Errorf("vmstate zz: %v", err)
	}
	if vm, err := g.VMStateNode("", nil); err != nil || vm != n {
		t.Errorf("vmstate node: %v %v", vm, err)
	}
	if ok, err := g.HasSnapshot("x", []string{"img"}); ok || err != nil {
		t.Errorf("has x: %v %v", ok, err)
	}
}
