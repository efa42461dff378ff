// Package pgroup signals a child's process group only while the group's number is still the
// child's. A child that leads its own group (Setpgid) keeps the number reserved until it is
// reaped; after that the host may give it to another process (pid_max is 32768 on many hosts,
// and a test run starts thousands), and a late kill(-pgid) would end a stranger. So the child
// is waited for without being reaped (waitid WNOWAIT), marked, and only then reaped:
//
//	go func() { l.Exited(0); cmd.Wait() }()   // the reaper
//	l.Signal(unix.SIGKILL)                    // anyone, any time: a no-op once marked
package pgroup

import (
	"sync"

	"golang.org/x/sys/unix"
)

// Leader is a child process that leads its own process group.
type Leader struct {
	pid    int
	mu     sync.Mutex
	reaped bool // +checklocks:mu; set once the leader has exited, before it is reaped
}

// Of returns the leader whose pid (= its group's id) is pid.
func Of(pid int) *Leader { return &Leader{pid: pid} }

// Exited blocks until the leader has exited, leaving it unreaped; then it sends last (when
// not 0) to what is left of the group, and marks the leader so that no later Signal is sent.
// The caller reaps the leader afterwards (exec.Cmd.Wait).
func (l *Leader) Exited(last unix.Signal) {
	for {
		var info unix.Siginfo
		if err := unix.Waitid(unix.P_PID, l.pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != unix.EINTR {
			break
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if last != 0 {
		unix.Kill(-l.pid, last) //nolint:errcheck // ESRCH when the group is empty
	}
	l.reaped = true
}

// Signal sends sig to the leader's group unless the leader has exited (see Exited).
func (l *Leader) Signal(sig unix.Signal) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.reaped {
		unix.Kill(-l.pid, sig) //nolint:errcheck // ESRCH when the group is empty
	}
}
