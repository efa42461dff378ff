package blockdev_test

import (
	"path/filepath"
	"strings"
	"testing"

	"tlcvm/blockdev"
	"tlcvm/internal/locktest"
)

// heldBytes lists the lock bytes some open file description holds on path.
func heldBytes(t *testing.T, path string) string {
	t.Helper()
	held, err := locktest.Held(path)
	if err != nil {
		t.Fatal(err)
	}
	return held
}

// diskGraph opens path as a qcow2 (or raw) disk of a virtio-blk device, as libvirt's
// -blockdev pair does, with the graph in incoming mode when incoming.
func diskGraph(t *testing.T, path, format string, incoming bool) *blockdev.Graph {
	t.Helper()
	g := newGraph(nil)
	t.Cleanup(g.Close)
	g.SetIncoming(incoming)
	if _, err := g.Add(&blockdev.Options{Driver: blockdev.DriverFile, NodeName: "f0", Filename: path}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Add(&blockdev.Options{Driver: format, NodeName: "d0", File: &blockdev.Ref{Node: "f0"}}); err != nil {
		t.Fatal(err)
	}
	if err := g.AttachDevice(&blockdev.Device{ID: "vd0", Driver: "virtio-blk-pci"}, "d0"); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestActivation walks a shared-storage migration's lock bytes: the source holds the
// image, a destination started with -incoming opens it without a lock, activating it
// while the source holds it fails with QEMU's text, the source inactivates (keeping only
// consistent read of a qcow2 and nothing of a raw image, as QEMU 7.2 measured does), the
// destination activates and takes the write lock, and a source that activates again
// (cont after a failed migration) conflicts.
func TestActivation(t *testing.T) {
	needQemuImg(t)
	for _, c := range []struct{ format, active, inactive string }{
		{blockdev.DriverQcow2, "100,101,103,201,203", "100"},
		{blockdev.DriverRaw, "100,101,201", ""},
	} {
		t.Run(c.format, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "d.img")
			qemuImg(t, "create", "-q", "-f", c.format, img, "64M")
			src := diskGraph(t, img, c.format, false)
			if got := heldBytes(t, img); got != c.active {
				t.Fatalf("source: locks %q, want %q", got, c.active)
			}
			dst := diskGraph(t, img, c.format, true)
			if got := heldBytes(t, img); got != c.active {
				t.Fatalf("inactive destination added locks: %q", got)
			}
			if !dst.Inactive() || src.Inactive() {
				t.Fatal("Inactive: destination should be, source should not")
			}
			err := dst.ActivateAll()
			if err == nil || !strings.Contains(err.Error(), `Failed to get "write" lock`) {
				t.Fatalf("activation beside an active source: %v", err)
			}
			if !dst.Inactive() {
				t.Fatal("a failed activation left the destination active")
			}
			if err := src.InactivateAll(); err != nil {
				t.Fatal(err)
			}
			if got := heldBytes(t, img); got != c.inactive {
				t.Fatalf("inactive source: locks %q, want %q", got, c.inactive)
			}
			if err := dst.ActivateAll(); err != nil {
				t.Fatal(err)
			}
			if err := src.ActivateAll(); err == nil {
				t.Fatal("source activated beside an active destination")
			}
			dst.Close()
			if err := src.ActivateAll(); err != nil {
				t.Fatal(err)
			}
			if got := heldBytes(t, img); got != c.active {
				t.Fatalf("source active again: locks %q, want %q", got, c.active)
			}
		})
	}
}
