package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"tlcvm/internal/pgroup"
)

// ErrStart is wrapped when a binary cannot be started.
var ErrStart = errors.New("harness: cannot start process")

// DefaultTimeout bounds every wait of the harness. It only stops a hung
// test (and is generous: the machine is shared); nothing asserts on time.
// TLCVM_TEST_TIMEOUT (a Go duration) overrides it.
var DefaultTimeout = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("TLCVM_TEST_TIMEOUT")); err == nil && d > 0 {
		return d
	}
	return 60 * time.Second
}()

// ProgName is the argv[0] base name every binary is started under (through
// a symlink), so that "qemu-system-x86_64: …" prefixes of error messages
// agree whatever the file is called.
const ProgName = "qemu-system-x86_64"

// Config says how to start a process.
type Config struct {
	Bin  string   // the executable
	Args []string // arguments, without argv[0]
	Dir  string   // working directory; "" means a fresh temporary directory
	Env  []string // extra environment (added to the test's environment)
	// ExtraFiles are inherited as descriptors 3, 4, … (exec.Cmd.ExtraFiles), as libvirt
	// hands QEMU its sockets and files.
	ExtraFiles []*os.File
	Log        zerolog.Logger
}

// Process is a started binary. Its stdout and stderr are collected; its
// stdin is a pipe. It is killed (with its process group and any daemon it
// spawned that the test Tracks) when the test ends.
type Process struct {
	Cmd    *exec.Cmd
	Stdin  *os.File // write end of the child's stdin
	Stdout *Stream
	Stderr *Stream
	Dir    string // working directory

	log    zerolog.Logger
	exited chan struct{}
	status ExitStatus // valid once exited is closed
	extra  []int      // pidfds of daemons to kill at cleanup; test goroutine only

	group *pgroup.Leader // signalled only until the child has exited
}

// ExitStatus is how a process ended.
type ExitStatus struct {
	Code   int    // exit code, -1 when killed by a signal
	Signal string // signal name ("KILL", "TERM") when killed by one
}

func (s ExitStatus) String() string {
	if s.Signal != "" {
		return "signal " + s.Signal
	}
	return "exit " + strconv.Itoa(s.Code)
}

// Start starts cfg.Bin or fails the test.
func Start(t testing.TB, cfg Config) *Process {
	t.Helper()
	p, err := StartProcess(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// StartProcess starts cfg.Bin; the process is killed at test cleanup.
func StartProcess(t testing.TB, cfg Config) (*Process, error) {
	dir := cfg.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	abs, err := filepath.Abs(cfg.Bin)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStart, err)
	}
	linkDir, err := os.MkdirTemp("", "tlcvm-bin-")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStart, err)
	}
	t.Cleanup(func() { os.RemoveAll(linkDir) })
	argv0 := filepath.Join(linkDir, ProgName)
	if err := os.Symlink(abs, argv0); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStart, err)
	}
	cmd := exec.Command(argv0, cfg.Args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), cfg.Env...)
	cmd.ExtraFiles = cfg.ExtraFiles
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStart, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStart, err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStart, err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	startErr := cmd.Start()
	inR.Close()
	outW.Close()
	errW.Close()
	if startErr != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("%w: %s: %v", ErrStart, cfg.Bin, startErr)
	}
	p := &Process{
		Cmd: cmd, Stdin: inW, Dir: dir, log: cfg.Log,
		Stdout: NewStream(outR), Stderr: NewStream(errR),
		exited: make(chan struct{}),
	}
	p.log.Debug().Str("bin", cfg.Bin).Strs("args", cfg.Args).Int("pid", cmd.Process.Pid).Msg("started")
	p.group = pgroup.Of(p.Pid())
	go p.reap()
	t.Cleanup(func() {
		p.Kill()
		inW.Close()
		<-p.Stdout.Done()
		<-p.Stderr.Done()
		outR.Close()
		errR.Close()
	})
	return p, nil
}

func (p *Process) reap() {
	p.group.Exited(0)
	err := p.Cmd.Wait()
	st := ExitStatus{Code: p.Cmd.ProcessState.ExitCode()}
	if ws, ok := p.Cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		st = ExitStatus{Code: -1, Signal: signalName(ws.Signal())}
	}
	p.status = st
	p.log.Debug().Err(err).Stringer("status", st).Msg("exited")
	close(p.exited)
}

// Pid is the process id.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Exited is closed once the process has ended.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Wait waits for the process to end and returns its status.
func (p *Process) Wait(timeout time.Duration) (ExitStatus, error) {
	select {
	case <-p.exited:
		// Let the readers drain what the process wrote before it ended, so that Bytes()
		// holds its last words; a daemonized child may keep the pipes open, so not for long.
		drain := time.After(2 * time.Second)
		for _, s := range []*Stream{p.Stdout, p.Stderr} {
			if s == nil {
				continue
			}
			select {
			case <-s.Done():
			case <-drain:
			}
		}
		return p.status, nil
	case <-time.After(timeout):
		return ExitStatus{}, fmt.Errorf("%w waiting for pid %d to exit", ErrTimeout, p.Pid())
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error {
	return p.Cmd.Process.Signal(sig)
}

// Track registers a daemon pid (from a -pidfile) to be killed with p. The process is held by
// a pidfd from here on: a daemon that has exited by the time of the cleanup is not signalled,
// and its number, which the host may since have given to another process (pid_max is 32768
// here and a test run starts thousands), is never killed. A pid already gone is ignored.
func (p *Process) Track(pid int) {
	if pid <= 1 {
		return
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	p.extra = append(p.extra, fd)
}

// Kill kills the process group and tracked daemons and waits for them.
func (p *Process) Kill() {
	p.group.Signal(unix.SIGKILL)
	<-p.exited
	for _, fd := range p.extra {
		killAndAwait(fd)
	}
	p.extra = nil
}

// killAndAwait kills the process a pidfd holds (not our child) and waits until it has exited
// (its parent, not us, reaps it), then closes the pidfd.
func killAndAwait(pidfd int) {
	defer unix.Close(pidfd)
	if err := unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0); err != nil {
		return // ESRCH: exited already
	}
	deadline := time.Now().Add(DefaultTimeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(left/time.Millisecond)+1)
		if n > 0 || (err != nil && err != unix.EINTR) {
			return // readable: the process has exited
		}
	}
}

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

// ReadPidfile waits until path holds a pid (QEMU writes it once ready).
func ReadPidfile(path string, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				return pid, nil
			}
		}
		if !time.Now().Before(deadline) {
			return 0, fmt.Errorf("%w waiting for pidfile %s", ErrTimeout, path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func signalName(s syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGKILL: "KILL", syscall.SIGTERM: "TERM", syscall.SIGINT: "INT",
		syscall.SIGHUP: "HUP", syscall.SIGABRT: "ABRT", syscall.SIGSEGV: "SEGV",
		syscall.SIGQUIT: "QUIT", syscall.SIGPIPE: "PIPE", syscall.SIGSYS: "SYS",
	}
	if n, ok := names[s]; ok {
		return n
	}
	return strconv.Itoa(int(s))
}

// ParseSignal maps "TERM", "SIGTERM" or "15" to the signal.
func ParseSignal(s string) (syscall.Signal, error) {
	s = strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "SIG")
	for sig, n := range map[string]syscall.Signal{
		"KILL": syscall.SIGKILL, "TERM": syscall.SIGTERM, "INT": syscall.SIGINT,
		"HUP": syscall.SIGHUP, "QUIT": syscall.SIGQUIT, "USR1": syscall.SIGUSR1,
		"USR2": syscall.SIGUSR2, "CONT": syscall.SIGCONT, "STOP": syscall.SIGSTOP,
	} {
		if s == sig {
			return n, nil
		}
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	return 0, fmt.Errorf("%w: unknown signal %q", ErrScript, s)
}

func sleep5ms() { time.Sleep(5 * time.Millisecond) }

func sleep10ms() { time.Sleep(10 * time.Millisecond) }
