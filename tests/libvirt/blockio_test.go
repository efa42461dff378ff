package libvirt_test

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	lv "tlcvm/internal/libvirttest"
)

// TestBlockIOStory: a domain whose guest writes to its virtio disk (the workload's disk=
// names the disk device libvirt creates, virtio-disk0). virsh blkdeviotune sets and reads
// back a write limit, domblkstat counts the guest's writes, domblkthreshold arms a write
// threshold on the disk's storage node and libvirt reports the block-threshold event when
// the image grows past it; after destroy the image is clean for qemu-img check.
func TestBlockIOStory(t *testing.T) {
	need(t)
	d, _ := startDomain(t, lv.PC, "idle,,disk=virtio-disk0,,disk-rate=2M,,disk-size=32M")
	name := d.Name

	t.Run("blkdeviotune", func(t *testing.T) {
		mustRun(t, "blkdeviotune", name, "vda", "--write-bytes-sec", "1048576", "--live")
		m := kv(t, mustRun(t, "blkdeviotune", name, "vda"))
		wantKV(t, m, "write_bytes_sec", "1048576")
		wantKV(t, m, "total_bytes_sec", "0")
		out := mustRun(t, "qemu-monitor-command", name, `{"execute":"query-block"}`)
		if !strings.Contains(out, `"bps_wr":1048576`) {
			t.Fatalf("query-block after blkdeviotune: %s", out)
		}
	})

	t.Run("domblkstat", func(t *testing.T) {
		err := lv.Poll(stateDeadline, 200*time.Millisecond, "guest writes in domblkstat", func() (bool, error) {
			out := mustRun(t, "domblkstat", name, "vda")
			for _, l := range strings.Split(out, "\n") {
				f := strings.Fields(l)
				if len(f) == 3 && f[1] == "wr_bytes" {
					n, _ := strconv.ParseInt(f[2], 10, 64)
					return n > 0, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("domblkthreshold event", func(t *testing.T) {
		info := kv(t, mustRun(t, "domblkinfo", name, "vda"))
		phys, err := strconv.ParseInt(info["Physical"], 10, 64)
		if err != nil {
			t.Fatalf("domblkinfo: %v", info)
		}
		threshold := phys + 512<<10
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		ev := exec.CommandContext(ctx, "virsh", "-c", lv.URI, "event", "--event", "block-threshold", "--timeout", "80", name)
		var out bytes.Buffer
		ev.Stdout, ev.Stderr = &out, &out
		if err := ev.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // virsh event registers before the threshold is armed
		mustRun(t, "domblkthreshold", name, "vda", strconv.FormatInt(threshold, 10))
		if err := ev.Wait(); err != nil {
			t.Fatalf("virsh event: %v: %s", err, out.String())
		}
		got := out.String()
		if !strings.Contains(got, "block-threshold") || !strings.Contains(got, "vda") ||
			!strings.Contains(got, strconv.FormatInt(threshold, 10)) {
			t.Fatalf("virsh event output: %q", got)
		}
	})

	mustRun(t, "destroy", name)
	wantState(t, name, "shut off", "")
	out, err := exec.Command("qemu-img", "check", d.Disk).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No errors were found on the image.") {
		t.Fatalf("qemu-img check after the domain: %v\n%s", err, out)
	}
}
