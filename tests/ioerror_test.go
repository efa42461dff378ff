package tests_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// The guest's disk errors follow the device's werror (QEMU 7.2's blk_error_action): blkdebug
// fails one write of the workload's disk driver; stop pauses the VM in io-error after
// BLOCK_IO_ERROR and cont makes the request again, report hands the error to the guest
// (its driver counts it), ignore completes the request; enospc stops only on ENOSPC.

// ioErrorVM starts a running VM whose guest writes vd0 (werror=policy), blkdebug failing
// the image's first data write with errno.
func ioErrorVM(t *testing.T, policy string, errno int) *mvm {
	bin := requireCandidate(t)
	dir := shortDir(t)
	img := newDiskImage(t, dir)
	node := fmt.Sprintf(`{"driver":"qcow2","node-name":"q0","file":{"driver":"blkdebug","node-name":"dbg",`+
		`"image":{"driver":"file","filename":%q},"inject-error":[{"event":"write_aio","errno":%d,"once":true}]}}`, img, errno)
	// -S, then cont once QMP is up: an event emitted before qmp_capabilities is not
	// delivered, and a guest that wrote first (a loaded host, a slow client) lost it.
	v := startMigVM(t, bin, dir, "vm", "-S", "-machine", "pc", "-m", "128", "-smp", strconv.Itoa(diskCPUs),
		"-fw_cfg", "name=opt/tlcvm/workload,string=idle,,disk=vd0,,disk-bs=4K,,disk-size=1M,,disk-rate=4M",
		"-blockdev", node, "-device", "virtio-blk-pci,drive=q0,id=vd0,werror="+policy)
	v.do("cont", nil)
	return v
}

// ioErrorEvent waits for BLOCK_IO_ERROR and returns its data.
func (v *mvm) ioErrorEvent() string {
	v.t.Helper()
	evs, err := v.q.WaitEvent("BLOCK_IO_ERROR")
	if err != nil {
		v.t.Fatal(err)
	}
	d, _ := evs[len(evs)-1].Value.Get("data")
	return d.String()
}

// ioStatus is query-block's io-status of vd0.
func (v *mvm) ioStatus() string {
	for _, b := range v.do("query-block", nil).Arr {
		if q, _ := b.Get("qdev"); strings.Contains(q.Str(), "vd0") {
			s, _ := b.Get("io-status") // "" when absent
			return s.Str()
		}
	}
	v.t.Fatal("vd0 not in query-block")
	return ""
}

func TestDiskWerror(t *testing.T) {
	for _, c := range []struct {
		policy string
		errno  int
		event  string // in QEMU's key order (its QDict's)
		status string // io-status and run state once the event came
	}{
		{"stop", 5, `{"device": "", "nospace": false, "node-name": "q0", "reason": "Input/output error", "operation": "write", "action": "stop"}`, "failed"},
		{"enospc", 28, `{"device": "", "nospace": true, "node-name": "q0", "reason": "No space left on device", "operation": "write", "action": "stop"}`, "nospace"},
		{"enospc", 5, `{"device": "", "nospace": false, "node-name": "q0", "reason": "Input/output error", "operation": "write", "action": "report"}`, "ok"},
		// report and ignore (rerror report): no io-status, so no nospace (blk_iostatus_is_enabled)
		{"report", 5, `{"device": "", "node-name": "q0", "reason": "Input/output error", "operation": "write", "action": "report"}`, ""},
		{"ignore", 28, `{"device": "", "node-name": "q0", "reason": "No space left on device", "operation": "write", "action": "ignore"}`, ""},
	} {
		t.Run(fmt.Sprintf("%s-%d", c.policy, c.errno), func(t *testing.T) {
			parallel(t)
			v := ioErrorVM(t, c.policy, c.errno)
			if got := v.ioErrorEvent(); got != c.event {
				t.Fatalf("BLOCK_IO_ERROR %s, want %s", got, c.event)
			}
			stops := strings.Contains(c.event, `"action": "stop"`)
			if stops {
				if _, err := v.q.WaitEvent("STOP"); err != nil {
					t.Fatal(err)
				}
				if s := v.status(); s != "io-error" {
					t.Fatalf("run state %s after the error, want io-error", s)
				}
			}
			if s := v.ioStatus(); s != c.status {
				t.Fatalf("io-status %s, want %s", s, c.status)
			}
			if stops {
				// vd0's backend is anonymous (drive= names a node): QEMU 7.2's cont resets
				// the io-status of the monitor's (named) backends only
				v.do("cont", nil)
				if s := v.ioStatus(); s != c.status {
					t.Fatalf("io-status %s after cont, want %s (kept)", s, c.status)
				}
			}
			// the guest goes on writing; only report shows it the error
			cur := v.waitWritten(v.cursors(), 64<<10)
			var errs uint64
			for _, d := range cur {
				errs += d.Errors
			}
			if want := map[bool]uint64{true: 1, false: 0}[strings.Contains(c.event, `"action": "report"`)]; errs != want {
				t.Fatalf("the guest counted %d failed requests, want %d", errs, want)
			}
			if s := v.status(); s != "running" {
				t.Fatalf("run state %s, want running", s)
			}
		})
	}
}
