package libvirt_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	lv "tlcvm/internal/libvirttest"
)

// TestPinnedVCPUs is issue 10's libvirt story: a domain confined to one host CPU with 4
// vCPUs (<vcpu placement='static' cpuset='0'>) starts; virsh vcpuinfo, vcpupin --live,
// emulatorpin --live and domstats --vcpu work on it (libvirt finds each vCPU's own thread
// through query-cpus-fast and pins it with sched_setaffinity); it saves and restores.
func TestPinnedVCPUs(t *testing.T) {
	need(t)
	d, dir := newDomain(t, lv.PC, "ws=8M,,rate=16M")
	d.VCPUs, d.CPUSet = 4, "0"
	name := d.Name

	// threads returns the domain's pid and its vCPU thread ids, from libvirt's pidfile and
	// query-cpus-fast.
	threads := func(t *testing.T) (int, []int) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("/run/libvirt/qemu", name+".pid"))
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Return []struct {
				ThreadID int `json:"thread-id"`
			} `json:"return"`
		}
		out := mustRun(t, "qemu-monitor-command", name, `{"execute":"query-cpus-fast"}`)
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("query-cpus-fast: %v: %s", err, out)
		}
		var tids []int
		for _, c := range r.Return {
			tids = append(tids, c.ThreadID)
		}
		return pid, tids
	}
	// allowed is a thread's Cpus_allowed_list.
	allowed := func(t *testing.T, pid, tid int) string {
		t.Helper()
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
				return strings.TrimSpace(v)
			}
		}
		t.Fatalf("no Cpus_allowed_list for %d/%d", pid, tid)
		return ""
	}
	// vcpuinfo parses `virsh vcpuinfo`: one map per vCPU.
	vcpuinfo := func(t *testing.T) []map[string]string {
		t.Helper()
		var out []map[string]string
		for _, block := range strings.Split(strings.TrimSpace(mustRun(t, "vcpuinfo", name)), "\n\n") {
			out = append(out, kv(t, block))
		}
		return out
	}
	checkInfo := func(t *testing.T) {
		t.Helper()
		info := vcpuinfo(t)
		if len(info) != 4 {
			t.Fatalf("vcpuinfo lists %d vCPUs: %v", len(info), info)
		}
		for i, m := range info {
			wantKV(t, m, "VCPU", strconv.Itoa(i))
			wantKV(t, m, "State", "running")
			// "CPU time" is printed only once the thread has used a clock tick (10 ms).
			if m["CPU"] == "" || m["CPU Affinity"] == "" {
				t.Errorf("vcpuinfo vCPU %d: %v", i, m)
			}
		}
	}

	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"define", func(t *testing.T) {
			if err := virsh.Define(d, dir); err != nil {
				t.Fatal(err)
			}
		}},
		{"start pinned to one host CPU", func(t *testing.T) {
			mustRun(t, "start", name)
			wantState(t, name, "running", "")
			pid, tids := threads(t)
			if len(tids) != 4 {
				t.Fatalf("%d vCPU threads", len(tids))
			}
			for i, tid := range tids {
				if tid == pid {
					t.Errorf("vCPU %d on the main thread", i)
				}
				if a := allowed(t, pid, tid); a != "0" {
					t.Errorf("vCPU %d thread %d may run on %q, want 0", i, tid, a)
				}
			}
		}},
		{"vcpuinfo", checkInfo},
		{"vcpupin --live", func(t *testing.T) {
			mustRun(t, "vcpupin", "--live", name, "1", "1")
			pid, tids := threads(t)
			if a := allowed(t, pid, tids[1]); a != "1" {
				t.Errorf("vCPU 1 thread %d may run on %q after vcpupin 1 1, want 1", tids[1], a)
			}
			if a := allowed(t, pid, tids[0]); a != "0" {
				t.Errorf("vCPU 0 thread moved to %q", a)
			}
			out := mustRun(t, "vcpupin", "--live", name)
			if !regexpMatch(`(?m)^\s*1\s+1\s*$`, out) {
				t.Errorf("vcpupin --live lists:\n%s", out)
			}
		}},
		{"emulatorpin --live", func(t *testing.T) {
			mustRun(t, "emulatorpin", "--live", name, "1")
			pid, _ := threads(t)
			if a := allowed(t, pid, pid); a != "1" {
				t.Errorf("emulator thread may run on %q after emulatorpin 1, want 1", a)
			}
			// virsh -q prints the affinity alone ("1"), without the table around it.
			if out := mustRun(t, "emulatorpin", "--live", name); !regexpMatch(`(?m)^(\s*\*:)?\s*1\s*$`, out) {
				t.Errorf("emulatorpin --live lists:\n%s", out)
			}
		}},
		{"domstats --vcpu", func(t *testing.T) {
			m, err := lv.ParseStats(mustRun(t, "domstats", "--vcpu", name))
			if err != nil {
				t.Fatal(err)
			}
			wantKV(t, m, "vcpu.current", "4")
			wantKV(t, m, "vcpu.maximum", "4")
			for i := 0; i < 4; i++ {
				wantKV(t, m, fmt.Sprintf("vcpu.%d.state", i), "1")
				if _, err := strconv.ParseUint(m[fmt.Sprintf("vcpu.%d.time", i)], 10, 64); err != nil {
					t.Errorf("vcpu.%d.time: %v (all: %v)", i, err, m)
				}
			}
		}},
		{"save", func(t *testing.T) {
			mustRun(t, "save", name, filepath.Join(dir, "pinned.sav"))
			wantState(t, name, "shut off", "saved")
		}},
		{"restore", func(t *testing.T) {
			mustRun(t, "restore", filepath.Join(dir, "pinned.sav"))
			wantState(t, name, "running", "restored")
			checkInfo(t)
		}},
		{"destroy", func(t *testing.T) {
			mustRun(t, "destroy", name)
			wantState(t, name, "shut off", "destroyed")
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.f) {
			t.FailNow()
		}
	}
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
