package tests_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"tlcvm/tests/harness"
)

// Behaviour of tlcvm's own machine, where QEMU has no guest to compare with: the workload
// guest answers the power button, prints on its serial port, runs on real vCPU threads,
// keeps idle RAM unresident, and pmemsave writes what the guest wrote.

// startVM starts the binary with a QMP socket and returns the negotiated client.
func startVM(t *testing.T, bin string, args ...string) (*harness.Process, *harness.QMP, string) {
	t.Helper()
	dir := shortDir(t)
	sock := filepath.Join(dir, "qmp.sock")
	args = append(args, "-nodefaults", "-display", "none", "-qmp", "unix:"+sock+",server=on,wait=off")
	p := harness.Start(t, harness.Config{Bin: bin, Args: args, Dir: dir})
	q, err := harness.DialQMP(sock, p, harness.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	if err := q.Connect(); err != nil {
		t.Fatal(err)
	}
	return p, q, dir
}

func execOK(t *testing.T, q *harness.QMP, cmd string, args any) harness.Value {
	t.Helper()
	m, err := q.Execute(cmd, args)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	ret, ok := m.Value.Get("return")
	if !ok {
		t.Fatalf("%s: %s", cmd, m.Raw)
	}
	return ret
}

// waitBooted waits until vCPU 0 has booted into long mode (EFER.LMA): from then on the guest
// has enabled ACPI and answers the power button; before, it ignores it, as a real guest does.
func waitBooted(t *testing.T, q *harness.QMP) {
	t.Helper()
	deadline := time.Now().Add(harness.DefaultTimeout)
	for {
		regs := execOK(t, q, "human-monitor-command", map[string]any{"command-line": "info registers"}).Str()
		if strings.Contains(regs, "EFER=0000000000000501") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest never booted: %q", regs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func status(t *testing.T, q *harness.QMP) string {
	t.Helper()
	s, _ := execOK(t, q, "query-status", nil).Get("status")
	return s.Str()
}

func TestPowerdownShutsTheGuestDown(t *testing.T) {
	bin := requireCandidate(t)
	for _, noShutdown := range []bool{false, true} {
		t.Run(fmt.Sprintf("no-shutdown=%v", noShutdown), func(t *testing.T) {
			parallel(t)
			args := []string{"-machine", "pc", "-m", "64"}
			if noShutdown {
				args = append(args, "-no-shutdown")
			}
			p, q, _ := startVM(t, bin, args...)
			waitBooted(t, q)
			execOK(t, q, "system_powerdown", nil)
			if _, err := q.WaitEvent("POWERDOWN"); err != nil {
				t.Fatal(err)
			}
			evs, err := q.WaitEvent("SHUTDOWN")
			if err != nil {
				t.Fatal(err)
			}
			data, _ := evs[len(evs)-1].Value.Get("data")
			if got := data.String(); got != `{"guest": true, "reason": "guest-shutdown"}` {
				t.Errorf("SHUTDOWN data = %s", got)
			}
			if noShutdown {
				if _, err := q.WaitEvent("STOP"); err != nil {
					t.Fatal(err)
				}
				if s := status(t, q); s != "shutdown" {
					t.Errorf("status = %s, want shutdown", s)
				}
				// QEMU: cont needs a reset first; system_reset brings the guest back.
				m, _ := q.Execute("cont", nil)
				if !strings.Contains(string(m.Raw), "Resetting the Virtual Machine is required") {
					t.Errorf("cont in shutdown: %s", m.Raw)
				}
				execOK(t, q, "quit", nil)
			}
			st, err := p.Wait(harness.DefaultTimeout)
			if err != nil || st.Code != 0 {
				t.Fatalf("exit: %v %v", st, err)
			}
		})
	}
}

func TestSerialConsoleBanner(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	dir := shortDir(t)
	log := filepath.Join(dir, "serial.log")
	_, q, _ := startVM(t, bin, "-machine", "pc", "-m", "64", "-serial", "file:"+log,
		"-fw_cfg", "name=opt/tlcvm/workload,string=ws=1M,,rate=1M")
	// The banner names the workload read from fw_cfg; poll the file (no timing asserted).
	deadline := time.Now().Add(harness.DefaultTimeout)
	for {
		b, _ := os.ReadFile(log)
		if bytes.Contains(b, []byte("workload ws=1M,rate=1M")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no banner on the serial port: %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	execOK(t, q, "quit", nil)
}

func TestVCPUThreadsAreReal(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	p, q, _ := startVM(t, bin, "-machine", "pc", "-m", "64", "-smp", "3", "-name", "guest=vm,debug-threads=on")
	cpus := execOK(t, q, "query-cpus-fast", nil)
	if len(cpus.Arr) != 3 {
		t.Fatalf("query-cpus-fast: %s", cpus)
	}
	for i, c := range cpus.Arr {
		tid, _ := c.Get("thread-id")
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/comm", p.Pid(), tid.Text))
		if err != nil {
			t.Fatalf("vCPU %d thread %s: %v", i, tid.Text, err)
		}
		if got, want := strings.TrimSpace(string(comm)), fmt.Sprintf("CPU %d/TCG", i); got != want {
			t.Errorf("thread %s is named %q, want %q", tid.Text, got, want)
		}
	}
	execOK(t, q, "quit", nil)
}

func TestIdleGuestRAMIsNotResident(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	p, q, _ := startVM(t, bin, "-machine", "pc", "-m", "4G", "-smp", "4",
		"-fw_cfg", "name=opt/tlcvm/workload,string=idle")
	if s := status(t, q); s != "running" {
		t.Fatalf("status %s", s)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			// The budget for an idle -m 4G -smp 4 VM is 16 MiB; a 4 GiB guest whose
			// pages were touched would be far above it.
			if kb > 64<<10 {
				t.Errorf("idle 4 GiB VM has %d KiB resident", kb)
			}
		}
	}
	execOK(t, q, "quit", nil)
}

func TestPmemsaveMatchesGuestMemory(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	_, q, dir := startVM(t, bin, "-machine", "pc", "-m", "64",
		"-fw_cfg", "name=opt/tlcvm/workload,string=ws=1M,,rate=max")
	// Let the guest write its working set (2 MiB on), then freeze it.
	deadline := time.Now().Add(harness.DefaultTimeout)
	for {
		out := execOK(t, q, "human-monitor-command", map[string]any{"command-line": "xp/1xg 0x200000"}).Str()
		if !strings.HasSuffix(strings.TrimSpace(out), "0x0000000000000000") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the guest never wrote its working set")
		}
		time.Sleep(10 * time.Millisecond)
	}
	execOK(t, q, "stop", nil)
	file := filepath.Join(dir, "mem.bin")
	execOK(t, q, "pmemsave", map[string]any{"val": 0x200000, "size": 4096, "filename": file})
	got, err := os.ReadFile(file)
	if err != nil || len(got) != 4096 {
		t.Fatalf("pmemsave file: %d bytes, %v", len(got), err)
	}
	// The same bytes through HMP xp, 8 bytes at a time.
	out := execOK(t, q, "human-monitor-command", map[string]any{"command-line": "xp/2xg 0x200000"}).Str()
	f := strings.Fields(out)
	if len(f) != 3 {
		t.Fatalf("xp output %q", out)
	}
	for i, w := range f[1:] {
		v, err := strconv.ParseUint(strings.TrimPrefix(w, "0x"), 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		var le [8]byte
		for j := range le {
			le[j] = byte(v >> (8 * j))
		}
		if !bytes.Equal(le[:], got[8*i:8*i+8]) {
			t.Errorf("word %d: pmemsave %x, xp %s", i, got[8*i:8*i+8], w)
		}
	}
	regs := execOK(t, q, "human-monitor-command", map[string]any{"command-line": "info registers"}).Str()
	if !strings.Contains(regs, "RIP=") || !strings.Contains(regs, "CPU#0") {
		t.Errorf("info registers of a 64-bit guest: %q", regs)
	}
	execOK(t, q, "quit", nil)
}

func TestDaemonizeExitsAfterMonitorsListen(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	dir := shortDir(t)
	sock, pid := filepath.Join(dir, "qmp.sock"), filepath.Join(dir, "vm.pid")
	p := harness.Start(t, harness.Config{Bin: bin, Dir: dir, Args: []string{"-machine", "none", "-nodefaults",
		"-display", "none", "-daemonize", "-pidfile", pid, "-qmp", "unix:" + sock + ",server=on,wait=off"}})
	st, err := p.Wait(harness.DefaultTimeout)
	if err != nil || st.Code != 0 {
		t.Fatalf("launcher exit: %v %v", st, err)
	}
	// By the time the launcher has exited, the pidfile names the daemon and the socket
	// accepts: no waiting.
	b, err := os.ReadFile(pid)
	if err != nil {
		t.Fatal(err)
	}
	dpid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	p.Track(dpid)
	if dpid == p.Pid() || !harness.Alive(dpid) {
		t.Fatalf("pidfile names %d (launcher %d)", dpid, p.Pid())
	}
	q, err := harness.DialQMP(sock, nil, time.Millisecond)
	if err != nil {
		t.Fatalf("socket not listening when the launcher exited: %v", err)
	}
	defer q.Close()
	if err := q.Connect(); err != nil {
		t.Fatal(err)
	}
	execOK(t, q, "quit", nil)
	deadline := time.Now().Add(harness.DefaultTimeout)
	for harness.Alive(dpid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(pid); !os.IsNotExist(err) {
		t.Errorf("pidfile left behind: %v", err)
	}
}
