package tests_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"tlcvm/tests/harness"
)

// tlcvm's qcow2 L2 tables and refcount blocks are cached and written back (at a flush, a
// close, a job's end), as QEMU 7.2's are. The same HMP qemu-io writes (allocating,
// zeroing with and without unmap, discarding, reallocating freed clusters) leave the same
// image as QEMU's once the process quits, and a process killed with SIGKILL before any
// flush leaves an image qemu-img check accepts (leaked clusters at worst).

// cacheWrites allocate over several L2 tables (4 KiB clusters: 2 MiB per table), free
// clusters (write -z -u, discard), reuse them and zero unallocated ones.
var cacheWrites = []string{
	"write -q -P 0x11 0 8M",
	"write -q -z -u 1M 2M",
	"write -q -P 0x22 1536k 1M",
	"discard -q 4M 1M",
	"write -q -z 6M 4M",
	"write -q -P 0x33 20M 3M",
	"write -q -z 30M 30M",
	"write -q -P 0x44 4M 512k",
}

// cacheImage creates the image the writes go to.
func cacheImage(t *testing.T, dir string) string {
	img := filepath.Join(dir, "c.qcow2")
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", img, "64M")
	return img
}

// runCacheWrites starts bin on img (discard=unmap, so the freed clusters are discarded in
// the file too) and runs the writes through HMP qemu-io.
func runCacheWrites(t *testing.T, bin, img string) (*harness.Process, *harness.QMP) {
	t.Helper()
	p, q, _ := startVM(t, bin, "-machine", "pc", "-S",
		"-drive", "file="+img+",if=none,id=d0,format=qcow2,discard=unmap")
	for _, w := range cacheWrites {
		out := execOK(t, q, "human-monitor-command", map[string]any{"command-line": fmt.Sprintf("qemu-io d0 %q", w)}).Str()
		if out != "" {
			t.Fatalf("qemu-io %s: %s", w, out)
		}
	}
	return p, q
}

// TestQcow2CacheWritesDifferential: after the writes and quit, tlcvm's image maps (with
// host offsets), checks and reads as QEMU's.
func TestQcow2CacheWritesDifferential(t *testing.T) {
	bin, ref := imageDifferential(t)
	run := func(b string) (string, string) {
		img := cacheImage(t, shortDir(t))
		p, q := runCacheWrites(t, b, img)
		execOK(t, q, "quit", nil)
		if _, err := p.Wait(harness.DefaultTimeout); err != nil {
			t.Fatal(err)
		}
		check, _ := exec.Command("qemu-img", "check", img).CombinedOutput()
		return img, tool(t, "qemu-img", "map", "--output=json", img) + string(check)
	}
	wantImg, want := run(ref)
	gotImg, got := run(bin)
	if d := harness.Diff(strings.Split(want, "\n"), strings.Split(got, "\n")); d != "" {
		t.Errorf("qemu-img map and check differ from QEMU 7.2's image (- QEMU, + tlcvm):\n%s", d)
	}
	if out, err := exec.Command("qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", wantImg, gotImg).CombinedOutput(); err != nil {
		t.Errorf("qemu-img compare: %v: %s", err, out)
	}
}

// TestQcow2CacheKilled: tlcvm killed with SIGKILL after the writes leaves an image that
// qemu-img check accepts (what the cache held is lost: leaks allowed, nothing corrupt);
// after a flush (HMP qemu-io flush) the image is clean, without leaks, and reads as written.
func TestQcow2CacheKilled(t *testing.T) {
	bin := requireCandidate(t)
	needQemuImg(t)
	for _, flush := range []bool{false, true} {
		t.Run(fmt.Sprintf("flush=%v", flush), func(t *testing.T) {
			img := cacheImage(t, shortDir(t))
			p, q := runCacheWrites(t, bin, img)
			if flush {
				execOK(t, q, "human-monitor-command", map[string]any{"command-line": `qemu-io d0 "flush"`})
			}
			if err := p.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Wait(harness.DefaultTimeout); err != nil {
				t.Fatal(err)
			}
			out, _ := exec.Command("qemu-img", "check", img).CombinedOutput()
			s := string(out)
			clean := strings.Contains(s, "No errors were found")
			if strings.Contains(s, "ERROR") || strings.Contains(s, "corruptions") || !clean && !strings.Contains(s, "leaked clusters") {
				t.Fatalf("qemu-img check after SIGKILL: %s", s)
			}
			if !flush {
				t.Logf("qemu-img check after SIGKILL: %s", s)
				return
			}
			if !clean {
				t.Errorf("qemu-img check after a flush and SIGKILL: %s", s)
			}
			for _, r := range []string{"read -P 0x11 0 1M", "read -P 0 1M 512k", "read -P 0x22 1536k 1M",
				"read -P 0 2560k 512k", "read -P 0x11 3M 1M", "read -P 0x44 4M 512k", "read -P 0 4608k 512k",
				"read -P 0x11 5M 1M", "read -P 0 6M 4M", "read -P 0x33 20M 3M", "read -P 0 30M 30M"} {
				if out, err := exec.Command("qemu-io", "-f", "qcow2", "-c", r, img).CombinedOutput(); err != nil ||
					strings.Contains(string(out), "Pattern verification failed") {
					t.Errorf("qemu-io %s: %v: %s", r, err, out)
				}
			}
		})
	}
}
