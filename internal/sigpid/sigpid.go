// Package sigpid delivers SIGTERM, SIGINT and SIGHUP together with the pid of the process that
// sent them, which QEMU prints when it terminates ("terminating on signal 15 from pid 9393
// (bash)"). Go's os/signal does not expose siginfo, so a tiny async-signal-safe C handler
// (installed with SA_SIGINFO|SA_ONSTACK over the Go runtime's handler, for these three signals
// only) records si_signo and si_pid and writes them to a pipe that a goroutine reads.
package sigpid

/*
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <stdint.h>

static int sigpid_wfd = -1;

static void sigpid_handler(int sig, siginfo_t *info, void *ctx) {
	int32_t rec[2];
	rec[0] = sig;
	rec[1] = info ? (int32_t)info->si_pid : 0;
	if (sigpid_wfd >= 0) {
		ssize_t r = write(sigpid_wfd, rec, sizeof rec);
		(void)r;
	}
}

static int sigpid_install(int wfd) {
	struct sigaction sa;
	int sigs[3] = {SIGTERM, SIGINT, SIGHUP};
	sigpid_wfd = wfd;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = sigpid_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < 3; i++) {
		if (sigaction(sigs[i], &sa, NULL) != 0) return -1;
	}
	return 0;
}
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Signal is one termination request.
type Signal struct {
	Num syscall.Signal
	PID int // sender; 0 when unknown (e.g. sent by the kernel)
}

// Notify installs the handler and returns a channel that receives each signal. It may be
// called once per process.
func Notify() (<-chan Signal, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("sigpid: %w", err)
	}
	if C.sigpid_install(C.int(p[1])) != 0 {
		return nil, errors.New("sigpid: sigaction failed")
	}
	ch := make(chan Signal, 4)
	r := os.NewFile(uintptr(p[0]), "sigpid")
	go func() {
		var rec [8]byte
		for {
			if _, err := readFull(r, rec[:]); err != nil {
				return
			}
			ch <- Signal{
				Num: syscall.Signal(int32(binary.NativeEndian.Uint32(rec[0:]))),
				PID: int(int32(binary.NativeEndian.Uint32(rec[4:]))),
			}
		}
	}()
	return ch, nil
}

func readFull(f *os.File, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := f.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Report formats QEMU's qemu_kill_report text, without the program-name prefix:
// "terminating on signal 15 from pid 9393 (bash)" or "terminating on signal 15".
func Report(s Signal) string {
	if s.PID == 0 {
		return fmt.Sprintf("terminating on signal %d", int(s.Num))
	}
	return fmt.Sprintf("terminating on signal %d from pid %d (%s)", int(s.Num), s.PID, procName(s.PID))
}

// procName mirrors QEMU's qemu_get_pid_name: the first word of /proc/PID/cmdline, or
// "<unknown process>".
func procName(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return "<unknown process>"
	}
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
