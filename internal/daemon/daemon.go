// Package daemon implements QEMU's -daemonize and -pidfile for a Go process.
//
// A Go process cannot fork safely, so -daemonize re-executes the binary in a new session
// (setsid) with the same arguments, the same inherited descriptors at the same numbers, and a
// status pipe named by an environment variable. The launching process waits on that pipe:
//
//	launcher                         daemon (re-executed, setsid)
//	   │  exec self + TLCVM_DAEMON_FD=n ──▶ │ parse, open chardevs, listen monitors,
//	   │                                     │ write and lock the pidfile
//	   │ ◀────────────── byte 0 ──────────── │ Ready(): stdio → /dev/null, chdir /
//	exit 0                                   │ runs on
//
// If the daemon dies or reports failure before Ready, the launcher exits 1; the daemon's
// error text has already gone to the shared stderr, as QEMU's does. Without -daemonize the
// process never forks: libvirt tracks the exact pid it started.
package daemon

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"tlcvm/compat/qerror"
)

const envFD = "TLCVM_DAEMON_FD"

// ErrNoStatus means the daemon exited before reporting readiness.
var ErrNoStatus = errors.New("daemon exited before it was ready")

// Child reports whether this process is the re-executed daemon, and if so returns the
// status pipe. The variable is removed from the environment so that children of the daemon
// (exec: migration commands) do not see it.
func Child() (*Status, bool) {
	v, ok := os.LookupEnv(envFD)
	if !ok {
		return nil, false
	}
	os.Unsetenv(envFD)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, false
	}
	unix.CloseOnExec(fd)
	return &Status{f: os.NewFile(uintptr(fd), "daemon-status")}, true
}

// Status is the daemon's end of the status pipe.
type Status struct{ f *os.File }

// Ready tells the launcher that every monitor listens and the pidfile is written, then
// detaches stdio to /dev/null and changes to /, as QEMU's os_setup_post does. stderr is
// kept when keepStderr (QEMU keeps it when -D logging is on).
func (s *Status) Ready(keepStderr bool) error {
	if _, err := s.f.Write([]byte{0}); err != nil {
		return fmt.Errorf("daemon: report ready: %w", err)
	}
	s.f.Close()
	null, err := unix.Open("/dev/null", unix.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("daemon: open /dev/null: %w", err)
	}
	unix.Dup2(null, 0)
	unix.Dup2(null, 1)
	if !keepStderr {
		unix.Dup2(null, 2)
	}
	if null > 2 {
		unix.Close(null)
	}
	return os.Chdir("/")
}

// Fail tells the launcher to exit with status 1.
func (s *Status) Fail() {
	s.f.Write([]byte{1})
	s.f.Close()
}

// Launch re-executes the running binary as a daemon with args (argv[0] included) and waits
// for its status. It returns the exit status the launcher should exit with.
func Launch(args []string) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 1, fmt.Errorf("daemon: %w", err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return 1, fmt.Errorf("daemon: pipe: %w", err)
	}
	files := inheritedFiles()
	statusFD := len(files)
	if statusFD < 3 {
		statusFD = 3
	}
	for len(files) < statusFD {
		files = append(files, ^uintptr(0))
	}
	files = append(files, uintptr(p[1]))
	env := append(os.Environ(), fmt.Sprintf("%s=%d", envFD, statusFD))
	pid, err := syscall.ForkExec(exe, args, &syscall.ProcAttr{
		Env:   env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	unix.Close(p[1])
	if err != nil {
		unix.Close(p[0])
		return 1, fmt.Errorf("daemon: exec: %w", err)
	}
	var b [1]byte
	n, _ := unix.Read(p[0], b[:])
	unix.Close(p[0])
	if n == 1 && b[0] == 0 {
		return 0, nil
	}
	// Reap the failed daemon so that it does not linger as a zombie of ours.
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, 0, nil)
	if n != 1 {
		return 1, ErrNoStatus
	}
	return 1, nil
}

// inheritedFiles lists this process's descriptors that are not close-on-exec (those it
// inherited, such as libvirt's -chardev socket,fd=N) so that the daemon gets each at the
// same number. Gaps are closed in the child (^uintptr(0) = -1).
func inheritedFiles() []uintptr {
	ents, _ := os.ReadDir("/proc/self/fd")
	max := 2
	keep := map[int]bool{0: true, 1: true, 2: true}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue
		}
		keep[fd] = true
		if fd > max {
			max = fd
		}
	}
	files := make([]uintptr, max+1)
	for i := range files {
		if keep[i] {
			files[i] = uintptr(i)
		} else {
			files[i] = ^uintptr(0)
		}
	}
	return files
}

// Pidfile is a written, locked pid file; the lock is held for the life of the process.
type Pidfile struct {
	f    *os.File
	path string
}

// WritePidfile creates, locks and writes path as QEMU's qemu_write_pidfile does. Errors carry
// QEMU's texts ("Could not create '%s': …", "Cannot lock pid file: …"); the caller prefixes
// "cannot create PID file: ".
func WritePidfile(path string) (*Pidfile, error) {
	for {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("Could not create '%s': %s", path, qerror.Strerror(err))
		}
		var b unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &b); err != nil {
			f.Close()
			return nil, fmt.Errorf("Cannot stat file: %s", qerror.Strerror(err))
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
		if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
			f.Close()
			return nil, fmt.Errorf("Cannot lock pid file: %s", qerror.Strerror(err))
		}
		var a unix.Stat_t
		if err := unix.Stat(path, &a); err != nil {
			f.Close()
			continue
		}
		if a.Ino != b.Ino {
			f.Close()
			continue
		}
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, fmt.Errorf("Failed to truncate pid file")
		}
		if _, err := fmt.Fprintf(f, "%d\n", os.Getpid()); err != nil {
			f.Close()
			return nil, fmt.Errorf("Failed to write pid file")
		}
		abs := path
		if rp, err := realpath(path); err == nil {
			abs = rp
		}
		return &Pidfile{f: f, path: abs}, nil
	}
}

// Remove unlinks the pid file at exit, as QEMU's qemu_unlink_pidfile does.
func (p *Pidfile) Remove() {
	if p == nil {
		return
	}
	// Only the file written: after -chroot the same path names another file (QEMU 7.2
	// unlinks whatever is there), and after -runas it may not be ours to remove.
	held, err1 := p.f.Stat()
	there, err2 := os.Stat(p.path)
	if err1 == nil && err2 == nil && os.SameFile(held, there) {
		os.Remove(p.path)
	}
	p.f.Close()
}

func realpath(p string) (string, error) {
	if strings.HasPrefix(p, "/") {
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return wd + "/" + p, nil
}
