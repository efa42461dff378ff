package libvirt_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lv "tlcvm/internal/libvirttest"
)

// Generous deadlines: the machine is small and shared; nothing asserts a duration.
const (
	stateDeadline  = 90 * time.Second
	serialDeadline = 60 * time.Second
)

// In domain XML a comma in the value is written ",,": libvirt 9.0 copies the
// entry into -fw_cfg name=…,string=… without escaping it (QemuOpts syntax).
const workload = "ws=1M,,rate=1M"

// banner is what tlcvm's guest prints on the serial port at boot.
var banner = "workload ws=1M,rate=1M"

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := virsh.Run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func wantState(t *testing.T, dom, state, reason string) {
	t.Helper()
	st, err := virsh.WaitState(dom, state, stateDeadline)
	if err != nil {
		t.Fatal(err)
	}
	if reason != "" && st.Reason != reason {
		t.Fatalf("domstate --reason = %s, want %s (%s)", st, state, reason)
	}
}

func kv(t *testing.T, out string) map[string]string {
	t.Helper()
	m, err := lv.ParseKV(out)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func wantKV(t *testing.T, m map[string]string, key, want string) {
	t.Helper()
	if m[key] != want {
		t.Errorf("%s = %q, want %q (all: %v)", key, m[key], want, m)
	}
}

// TestPCLifecycle runs every domain flow on anchor1's model (pc, qcow2 virtio
// disk, pty serial console) with the workload set by <sysinfo type='fwcfg'>.
// The subtests are one story: each starts from the state the previous left.
func TestPCLifecycle(t *testing.T) {
	need(t)
	d, dir := newDomain(t, lv.PC, workload)
	name := d.Name
	top := t
	var con *console

	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"define", func(t *testing.T) {
			if err := virsh.Define(d, dir); err != nil {
				t.Fatal(err)
			}
			wantState(t, name, "shut off", "unknown")
		}},
		{"start", func(t *testing.T) {
			// --paused so the console is open before the guest prints its banner.
			mustRun(t, "start", "--paused", name)
			wantState(t, name, "paused", "")
		}},
		{"console", func(t *testing.T) {
			con = openConsole(t, top, name)
			mustRun(t, "resume", name)
			con.waitFor(t, banner, serialDeadline)
		}},
		{"dominfo", func(t *testing.T) {
			m := kv(t, mustRun(t, "dominfo", name))
			wantKV(t, m, "State", "running")
			wantKV(t, m, "CPU(s)", "1")
			wantKV(t, m, "Max memory", "262144 KiB")
			wantKV(t, m, "Name", name)
		}},
		{"domstate", func(t *testing.T) { wantState(t, name, "running", "unpaused") }},
		{"sandboxed", func(t *testing.T) { wantSandboxed(t, name) }},
		{"domstats", func(t *testing.T) {
			m, err := lv.ParseStats(mustRun(t, "domstats", name))
			if err != nil {
				t.Fatal(err)
			}
			wantKV(t, m, "state.state", "1")
			wantKV(t, m, "vcpu.current", "1")
			wantKV(t, m, "block.count", "1")
			wantKV(t, m, "block.0.name", "vda")
			wantKV(t, m, "block.0.path", d.Disk)
		}},
		{"domblklist", func(t *testing.T) {
			m, err := lv.ParseBlkList(mustRun(t, "domblklist", name))
			if err != nil {
				t.Fatal(err)
			}
			if len(m) != 1 || m["vda"] != d.Disk {
				t.Fatalf("domblklist = %v, want vda → %s", m, d.Disk)
			}
		}},
		{"domblkinfo", func(t *testing.T) {
			m := kv(t, mustRun(t, "domblkinfo", name, "vda"))
			wantKV(t, m, "Capacity", "67108864")
			if m["Allocation"] == "" || m["Physical"] == "" {
				t.Errorf("domblkinfo lacks Allocation/Physical: %v", m)
			}
		}},
		{"qemu-monitor-command QMP", func(t *testing.T) {
			out := mustRun(t, "qemu-monitor-command", name, `{"execute":"query-status"}`)
			if !strings.Contains(out, `"status":"running"`) || !strings.Contains(out, `"running":true`) {
				t.Fatalf("query-status = %s", out)
			}
		}},
		{"qemu-monitor-command HMP", func(t *testing.T) {
			if out := mustRun(t, "qemu-monitor-command", "--hmp", name, "info status"); strings.TrimSpace(out) != "VM status: running" {
				t.Fatalf("info status = %q", out)
			}
		}},
		{"suspend", func(t *testing.T) {
			mustRun(t, "suspend", name)
			wantState(t, name, "paused", "user")
			if out := mustRun(t, "qemu-monitor-command", "--hmp", name, "info status"); strings.TrimSpace(out) != "VM status: paused" {
				t.Fatalf("info status = %q", out)
			}
		}},
		{"resume", func(t *testing.T) {
			mustRun(t, "resume", name)
			wantState(t, name, "running", "unpaused")
		}},
		{"save", func(t *testing.T) {
			p := filepath.Join(dir, "dom.sav")
			mustRun(t, "save", name, p)
			wantState(t, name, "shut off", "saved")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(b), "LibvirtQemudSave") {
				t.Fatalf("save file does not start with libvirt's header")
			}
		}},
		{"restore", func(t *testing.T) {
			mustRun(t, "restore", filepath.Join(dir, "dom.sav"))
			wantState(t, name, "running", "restored")
		}},
		{"managedsave", func(t *testing.T) {
			mustRun(t, "managedsave", name)
			wantState(t, name, "shut off", "saved")
			wantKV(t, kv(t, mustRun(t, "dominfo", name)), "Managed save", "yes")
		}},
		{"start from managedsave", func(t *testing.T) {
			mustRun(t, "start", name)
			wantState(t, name, "running", "restored")
			wantKV(t, kv(t, mustRun(t, "dominfo", name)), "Managed save", "no")
		}},
		{"snapshot-create-as external live", func(t *testing.T) {
			mem, ov := filepath.Join(dir, "snap1.mem"), filepath.Join(dir, "snap1.qcow2")
			mustRun(t, "snapshot-create-as", name, "snap1", "--live",
				"--memspec", "file="+mem+",snapshot=external",
				"--diskspec", "vda,snapshot=external,file="+ov)
			wantState(t, name, "running", "")
			if fi, err := os.Stat(mem); err != nil || fi.Size() == 0 {
				t.Fatalf("memory file: %v", err)
			}
			m, err := lv.ParseBlkList(mustRun(t, "domblklist", name))
			if err != nil {
				t.Fatal(err)
			}
			if m["vda"] != ov {
				t.Fatalf("vda = %q after snapshot, want the overlay %s", m["vda"], ov)
			}
			info, err := exec.Command("qemu-img", "info", "-U", ov).CombinedOutput()
			if err != nil || !strings.Contains(string(info), "backing file: "+d.Disk) {
				t.Fatalf("overlay: %v\n%s", err, info)
			}
			if out := mustRun(t, "snapshot-list", "--name", name); strings.TrimSpace(out) != "snap1" {
				t.Errorf("snapshot-list = %q", out)
			}
		}},
		{"reset", func(t *testing.T) {
			con = openConsole(t, top, name) // a new process since restore: a new pty
			mustRun(t, "reset", name)
			con.waitFor(t, banner, serialDeadline)
			wantState(t, name, "running", "")
		}},
		{"reboot", func(t *testing.T) {
			con.reset()
			mustRun(t, "reboot", name)
			con.waitFor(t, banner, serialDeadline)
			wantState(t, name, "running", "")
		}},
		{"shutdown", func(t *testing.T) {
			mustRun(t, "shutdown", name)
			wantState(t, name, "shut off", "shutdown")
		}},
		{"start again and destroy", func(t *testing.T) {
			mustRun(t, "start", name)
			wantState(t, name, "running", "booted")
			mustRun(t, "destroy", name)
			wantState(t, name, "shut off", "destroyed")
		}},
		{"undefine", func(t *testing.T) {
			mustRun(t, "undefine", "--snapshots-metadata", name)
			out := mustRun(t, "list", "--all", "--name")
			if strings.Contains(out, name) {
				t.Fatalf("%s still listed after undefine", name)
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.f) {
			return // the story cannot go on from a broken state
		}
	}
}

// wantSandboxed checks that the domain's emulator runs under the seccomp filter libvirt asks
// for with -sandbox (qemu.conf seccomp_sandbox, on by default): every thread in filter
// mode, as QEMU's.
func wantSandboxed(t *testing.T, name string) {
	t.Helper()
	raw, err := os.ReadFile("/run/libvirt/qemu/" + name + ".pid")
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(raw))
	cmdline, err := os.ReadFile("/proc/" + pid + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cmdline), "\x00-sandbox\x00on,") {
		t.Skip("libvirt passed no -sandbox on (qemu.conf seccomp_sandbox = 0)")
	}
	tasks, err := filepath.Glob("/proc/" + pid + "/task/*/status")
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads of %s: %v", pid, err)
	}
	for _, st := range tasks {
		b, err := os.ReadFile(st)
		if err != nil {
			continue // a thread that ended
		}
		if !strings.Contains(string(b), "\nSeccomp:\t2\n") {
			t.Errorf("%s: not in seccomp filter mode", st)
		}
	}
}
