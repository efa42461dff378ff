package tests_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"tlcvm/machine"
	"tlcvm/tests/harness"
)

// The block I/O path end to end: tlcvm's guest writes to a qcow2 disk through the block
// layer; the image stays clean for qemu-img check and holds what the workload's formula
// says, across stop/cont and a checkpoint restored into a new process; throttling limits
// the guest's writes; a write threshold fires once.

const (
	diskBS    = 4096
	diskSize  = 1 << 20 // the written region
	diskCPUs  = 2
	diskQOMID = "/machine/peripheral/vd0/virtio-backend"
)

func diskArgs(img, workload string, extra ...string) []string {
	return append([]string{"-machine", "pc", "-m", "128", "-smp", strconv.Itoa(diskCPUs),
		"-fw_cfg", "name=opt/tlcvm/workload,string=" + workload,
		"-blockdev", "driver=file,filename=" + img + ",node-name=f0",
		"-blockdev", "driver=qcow2,file=f0,node-name=q0",
		"-device", "virtio-blk-pci,drive=q0,id=vd0"}, extra...)
}

func newDiskImage(t *testing.T, dir string) string {
	t.Helper()
	needQemuImg(t)
	img := filepath.Join(dir, "d.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", img, "4M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	return img
}

// cursors reads each vCPU's disk driver counters from guest RAM (0x6000 + 64*i: pass,
// block, disk, bytes written, read, mismatches, errors) as DiskStates of the test's one-disk
// configuration.
func (v *mvm) cursors() []machine.DiskState {
	v.t.Helper()
	out := v.do("human-monitor-command", map[string]any{"command-line": fmt.Sprintf("xp /%dgx 0x6000", 8*diskCPUs)}).Str()
	var words []uint64
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		_, rest, _ := strings.Cut(line, ": ")
		for _, f := range strings.Fields(rest) {
			w, err := strconv.ParseUint(strings.TrimPrefix(f, "0x"), 16, 64)
			if err != nil {
				v.t.Fatalf("xp output %q", out)
			}
			words = append(words, w)
		}
	}
	if len(words) != 8*diskCPUs {
		v.t.Fatalf("xp output %q", out)
	}
	total := uint64(diskSize / diskBS)
	var st []machine.DiskState
	for i := uint64(0); i < diskCPUs; i++ {
		w := words[8*i:]
		st = append(st, machine.DiskState{Names: []string{"vd0"}, BS: diskBS, First: total * i / diskCPUs,
			Blocks: total*(i+1)/diskCPUs - total*i/diskCPUs, Pass: w[0], Block: w[1], Disk: w[2], Written: w[3],
			Read: w[4], Mismatches: w[5], Errors: w[6]})
	}
	return st
}

// waitWritten runs until every vCPU wrote at least n bytes more than in base.
func (v *mvm) waitWritten(base []machine.DiskState, n uint64) []machine.DiskState {
	v.t.Helper()
	deadline := time.Now().Add(harness.DefaultTimeout)
	for {
		cur := v.cursors()
		ok := true
		for i := range cur {
			if cur[i].Written < base[i].Written+n {
				ok = false
			}
		}
		if ok {
			return cur
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("the guest's disk driver is stuck: %+v", cur)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkImage requires qemu-img check to find img clean and its content to be the formula's.
func checkImage(t *testing.T, img string, states []machine.DiskState) {
	t.Helper()
	out, err := exec.Command("qemu-img", "check", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No errors were found on the image.") {
		t.Fatalf("qemu-img check: %v\n%s", err, out)
	}
	checkContent(t, img, states)
}

// checkContent requires the image, read by qemu-img through its backing chain, to hold
// the workload's formula at the cursors.
func checkContent(t *testing.T, img string, states []machine.DiskState) {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "d.raw")
	if out, err := exec.Command("qemu-img", "convert", "-O", "raw", img, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, out)
	}
	got, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, len(got))
	machine.ExpectDisk(want, 0, states)
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("the disk differs from the workload's formula at byte %d (cursors %+v)", i, states)
			}
		}
	}
}

// TestGuestDiskWrites: two vCPUs write a qcow2 disk, reading each block back first
// (disk-verify); stop/cont keeps the formula; a checkpoint (QEMU mode: the source stays in
// postmigrate) restored in a new process over the same image goes on from the same cursors
// and finds every block it reads as it left it; at every stop the image is clean and exact.
func TestGuestDiskWrites(t *testing.T) {
	bin := requireCandidate(t)
	dir := shortDir(t)
	img := newDiskImage(t, dir)
	// disk-verify: the guest reads each block back before rewriting it and checks it holds
	// the previous pass, so the restored guest checks the disk itself too.
	load := "idle,,disk=vd0,,disk-bs=4K,,disk-size=1M,,disk-rate=4M,,disk-verify"
	src := startMigVM(t, bin, dir, "src", diskArgs(img, load)...)
	zero := make([]machine.DiskState, diskCPUs)
	src.waitWritten(zero, diskSize) // past the first pass
	src.do("stop", nil)
	a := src.cursors()
	src.do("cont", nil)
	b := src.waitWritten(a, 64<<10)
	chk := filepath.Join(dir, "a.chk")
	src.do("migrate", map[string]any{"uri": "file:" + chk})
	src.waitMigration("completed")
	saved := src.cursors()
	if saved[0].Written < b[0].Written {
		t.Fatalf("cursors went back: %+v after %+v", saved, b)
	}
	src.quit()
	checkImage(t, img, saved)

	dst := startMigVM(t, bin, dir, "dst", diskArgs(img, load, "-S", "-incoming", "file:"+chk)...)
	dst.waitMigration("completed")
	if got := dst.cursors(); fmt.Sprint(got) != fmt.Sprint(saved) {
		t.Fatalf("restored cursors %+v, want %+v", got, saved)
	}
	dst.do("cont", nil)
	dst.waitWritten(saved, 128<<10)
	dst.do("stop", nil)
	final := dst.cursors()
	stats := dst.do("query-blockstats", nil)
	if num(t, stats.Arr[0], "stats", "wr_operations") == 0 || num(t, stats.Arr[0], "stats", "wr_bytes") == 0 {
		t.Errorf("query-blockstats counts no writes: %s", stats)
	}
	dst.quit()
	checkImage(t, img, final)
	for _, c := range final {
		if c.Read == 0 || c.Mismatches != 0 {
			t.Fatalf("the guest's own verification: %+v", final)
		}
	}
}

func num(t *testing.T, v harness.Value, path ...string) int64 {
	t.Helper()
	for _, k := range path {
		var ok bool
		if v, ok = v.Get(k); !ok {
			t.Fatalf("no %s in %s", k, v)
		}
	}
	n, err := strconv.ParseInt(v.Text, 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", v, err)
	}
	return n
}

// TestGuestDiskThrottled: block_set_io_throttle's bps_wr holds the guest's writes (which
// ask for as much as they can get) to the limit, measured over a window with generous
// slack; query-block shows the limit; lifting it lets the guest write faster.
func TestGuestDiskThrottled(t *testing.T) {
	bin := requireCandidate(t)
	dir := shortDir(t)
	img := newDiskImage(t, dir)
	v := startMigVM(t, bin, dir, "vm", diskArgs(img, "idle,,disk=vd0,,disk-bs=4K,,disk-size=1M", "-S")...)
	const limit = 256 << 10
	v.do("block_set_io_throttle", map[string]any{"id": diskQOMID, "bps": 0, "bps_rd": 0, "bps_wr": limit,
		"iops": 0, "iops_rd": 0, "iops_wr": 0})
	if q := v.do("query-block", nil).String(); !strings.Contains(q, fmt.Sprintf(`"bps_wr": %d`, limit)) {
		t.Fatalf("query-block: %s", q)
	}
	v.do("cont", nil)
	wr := func() (int64, time.Time) {
		s := v.do("query-blockstats", nil)
		return num(t, s.Arr[0], "stats", "wr_bytes"), time.Now()
	}
	time.Sleep(300 * time.Millisecond) // past the first burst
	b0, t0 := wr()
	time.Sleep(2 * time.Second)
	b1, t1 := wr()
	rate := float64(b1-b0) / t1.Sub(t0).Seconds()
	if rate > 1.5*limit || rate < 0.2*limit {
		t.Fatalf("throttled to %d B/s, the guest wrote %.0f B/s", limit, rate)
	}
	v.do("block_set_io_throttle", map[string]any{"id": diskQOMID, "bps": 0, "bps_rd": 0, "bps_wr": 0,
		"iops": 0, "iops_rd": 0, "iops_wr": 0})
	b2, t2 := wr()
	time.Sleep(time.Second)
	b3, t3 := wr()
	if free := float64(b3-b2) / t3.Sub(t2).Seconds(); free < 2*limit {
		t.Fatalf("unthrottled the guest writes only %.0f B/s", free)
	}
	v.quit()
}

// TestWriteThresholdFires: a threshold on the image's file node fires BLOCK_WRITE_THRESHOLD
// once the guest's writes pass it, and is disarmed (write_threshold 0).
func TestWriteThresholdFires(t *testing.T) {
	bin := requireCandidate(t)
	dir := shortDir(t)
	img := newDiskImage(t, dir)
	v := startMigVM(t, bin, dir, "vm", diskArgs(img, "idle,,disk=vd0,,disk-bs=64K,,disk-rate=8M", "-S")...)
	v.do("block-set-write-threshold", map[string]any{"node-name": "f0", "write-threshold": 2 << 20})
	v.do("cont", nil)
	evs, err := v.q.WaitEvent("BLOCK_WRITE_THRESHOLD")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := evs[len(evs)-1].Value.Get("data")
	if node, _ := data.Get("node-name"); node.Str() != "f0" || num(t, data, "write-threshold") != 2<<20 ||
		num(t, data, "amount-exceeded") <= 0 {
		t.Fatalf("event data %s", data)
	}
	nodes := v.do("query-named-block-nodes", map[string]any{"flat": true}).String()
	if strings.Contains(nodes, `"write_threshold": 2097152`) {
		t.Fatalf("the threshold is still armed: %s", nodes)
	}
	v.quit()
}
