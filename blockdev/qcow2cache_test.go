package blockdev_test

import (
	"os/exec"
	"strings"
	"testing"

	"tlcvm/blockdev"
)

// TestQcow2CacheOrderOnDisk: after every step of allocating, zeroing, unmapping and
// reallocating writes, before any flush, the image file as it stands (what a process
// killed at that moment leaves) is one qemu-img check accepts: leaked clusters at worst,
// never a cluster referenced without its refcount. After a flush it is clean.
func TestQcow2CacheOrderOnDisk(t *testing.T) {
	needQemuImg(t)
	path := createQcow2(t, "cluster_size=4096", "32M")
	g, n := openImage(t, path, blockdev.DriverQcow2, func(o *blockdev.Options) { o.Discard = "unmap" })
	defer g.Close()
	data := make([]byte, 3<<20)
	pattern(data, 0, 3)
	steps := []struct {
		name string
		do   func() error
	}{
		{"allocate 3 MiB", func() error { _, err := n.WriteAt(data, 1<<20); return err }},
		{"zero and unmap 1 MiB", func() error { return n.WriteZeroes(2<<20, 1<<20, blockdev.ZeroMayUnmap) }},
		{"reallocate 512 KiB of it", func() error { _, err := n.WriteAt(data[:512<<10], 2<<20); return err }},
		{"discard 1 MiB", func() error { return n.Unmap(1<<20, 1<<20) }},
		{"zero 8 MiB unallocated", func() error { return n.WriteZeroes(16<<20, 8<<20, 0) }},
		{"allocate over freed clusters", func() error { _, err := n.WriteAt(data[:2<<20], 10<<20); return err }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		out, _ := exec.Command("qemu-img", "check", "-U", path).CombinedOutput()
		if o := string(out); strings.Contains(o, "ERROR") || strings.Contains(o, "corruptions") ||
			!strings.Contains(o, "No errors were found") && !strings.Contains(o, "leaked clusters") {
			t.Fatalf("after %s, before a flush: %s", s.name, o)
		}
	}
	if err := n.Flush(); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("qemu-img", "check", "-U", path).CombinedOutput()
	if !strings.Contains(string(out), "No errors were found") {
		t.Errorf("after the flush: %s", out)
	}
}
