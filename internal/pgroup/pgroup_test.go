package pgroup_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tlcvm/internal/pgroup"
)

func start(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	c := exec.Command("/bin/sh", "-c", script)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitDone fails the test unless f returns within a deadline.
func waitDone(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

// TestSignalBeforeExit: Signal reaches the group while its leader runs.
func TestSignalBeforeExit(t *testing.T) {
	c := start(t, "sleep 60")
	l := pgroup.Of(c.Process.Pid)
	l.Signal(unix.SIGKILL)
	waitDone(t, "Exited", func() { l.Exited(0) })
	err := c.Wait()
	if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != unix.SIGKILL {
		t.Fatalf("leader ended with %v, want SIGKILL", err)
	}
}

// TestExitedEndsStragglers: Exited's last signal reaches a group member the leader left
// behind; Signal after Exited sends nothing and returns.
func TestExitedEndsStragglers(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	c := start(t, "sleep 60 & echo $! >"+pidFile+"; exit 0")
	l := pgroup.Of(c.Process.Pid)
	waitDone(t, "Exited", func() { l.Exited(unix.SIGKILL) })
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	l.Signal(unix.SIGKILL)
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	stat := "/proc/" + strings.TrimSpace(string(b)) + "/stat"
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := os.ReadFile(stat)
		if err != nil { // gone
			return
		}
		if i := strings.LastIndexByte(string(st), ')'); i >= 0 && i+2 < len(st) && (st[i+2] == 'Z' || st[i+2] == 'X') {
			return // killed, not yet reaped by its new parent
		}
		if time.Now().After(deadline) {
			t.Fatal("the straggler outlived Exited(SIGKILL)")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
