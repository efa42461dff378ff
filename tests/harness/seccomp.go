package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ptraceSeccompGetFilter is PTRACE_SECCOMP_GET_FILTER (include/uapi/linux/ptrace.h).
const ptraceSeccompGetFilter = 0x420c

// dumpEnv names the process whose filters a re-executed test binary prints (see init).
const dumpEnv = "TLCVM_HARNESS_SECCOMP_DUMP"

// init: a test binary started by SeccompFilters prints the filters and exits before any
// test runs.
func init() {
	s := os.Getenv(dumpEnv)
	if s == "" {
		return
	}
	pid, err := strconv.Atoi(s)
	if err == nil {
		var filters [][]unix.SockFilter
		if filters, err = readSeccompFilters(pid); err == nil {
			for _, prog := range filters {
				for _, f := range prog {
					fmt.Printf("%04x %d %d %08x\n", f.Code, f.Jt, f.Jf, f.K)
				}
				fmt.Println()
			}
			os.Exit(0)
		}
	}
	fmt.Fprintln(os.Stderr, err)
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		os.Exit(3)
	}
	os.Exit(1)
}

// ErrNoPrivilege is returned by SeccompFilters when this process may not read filters
// (it needs CAP_SYS_ADMIN): a test skips.
var ErrNoPrivilege = errors.New("harness: reading seccomp filters needs CAP_SYS_ADMIN")

// SeccompFilters reads the seccomp filters installed on pid's main thread, newest first,
// with PTRACE_SECCOMP_GET_FILTER. The tracer is a copy of the running test binary (see
// init), not this process: a tracer that is also the parent would see the ptrace stops in
// its own wait for the child's exit. A process without filters gives none.
func SeccompFilters(pid int) ([][]unix.SockFilter, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), dumpEnv+"="+strconv.Itoa(pid))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 3 {
			return nil, fmt.Errorf("%w: %s", ErrNoPrivilege, bytes.TrimSpace(stderr.Bytes()))
		}
		return nil, fmt.Errorf("reading the filters of pid %d: %v: %s", pid, err, bytes.TrimSpace(stderr.Bytes()))
	}
	var out [][]unix.SockFilter
	var prog []unix.SockFilter
	for _, line := range bytes.Split(stdout.Bytes(), []byte("\n")) {
		if len(line) == 0 {
			if prog != nil {
				out = append(out, prog)
			}
			prog = nil
			continue
		}
		var f unix.SockFilter
		if _, err := fmt.Sscanf(string(line), "%x %d %d %x", &f.Code, &f.Jt, &f.Jf, &f.K); err != nil {
			return nil, fmt.Errorf("filter dump %q: %v", line, err)
		}
		prog = append(prog, f)
	}
	return out, nil
}

// readSeccompFilters is SeccompFilters in the tracer: the tracee is seized, interrupted,
// read and detached (stopped only for that moment).
func readSeccompFilters(pid int) ([][]unix.SockFilter, error) {
	// Every ptrace request must come from the thread that seized the tracee.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.PtraceSeize(pid); err != nil {
		return nil, fmt.Errorf("ptrace seize %d: %w", pid, err)
	}
	defer unix.PtraceDetach(pid) //nolint:errcheck // the tracee may be gone
	if err := unix.PtraceInterrupt(pid); err != nil {
		return nil, fmt.Errorf("ptrace interrupt %d: %w", pid, err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil {
		return nil, fmt.Errorf("wait for %d to stop: %w", pid, err)
	}
	if !ws.Stopped() {
		return nil, fmt.Errorf("pid %d did not stop: %v", pid, ws)
	}
	var out [][]unix.SockFilter
	for i := 0; ; i++ {
		n, _, e := unix.Syscall6(unix.SYS_PTRACE, ptraceSeccompGetFilter, uintptr(pid), uintptr(i), 0, 0, 0)
		if e == unix.ENOENT || (e == unix.EINVAL && i > 0) {
			return out, nil
		}
		if e == unix.EINVAL && i == 0 {
			return nil, nil // not in filter mode
		}
		if e != 0 {
			return nil, fmt.Errorf("PTRACE_SECCOMP_GET_FILTER %d of pid %d: %w", i, pid, e)
		}
		if n == 0 {
			return nil, errors.New("PTRACE_SECCOMP_GET_FILTER: empty filter")
		}
		prog := make([]unix.SockFilter, n)
		_, _, e = unix.Syscall6(unix.SYS_PTRACE, ptraceSeccompGetFilter, uintptr(pid), uintptr(i),
			uintptr(unsafe.Pointer(&prog[0])), 0, 0)
		if e != 0 {
			return nil, fmt.Errorf("PTRACE_SECCOMP_GET_FILTER %d of pid %d: %w", i, pid, e)
		}
		out = append(out, prog)
	}
}
