package emu

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"tlcvm/internal/pgroup"

	"tlcvm/bench/qmpc"
)

// SocketName is the QMP socket's file name inside the run directory.
const SocketName = "qmp.sock"

// Sentinel errors; functions wrap them with %w.
var (
	// ErrExited means the emulator exited before the step completed.
	ErrExited = errors.New("emu: emulator exited")
	// ErrTimeout means a step did not complete in time.
	ErrTimeout = errors.New("emu: timed out")
	// ErrInotify means the inotify event stream was malformed.
	ErrInotify = errors.New("emu: malformed inotify event")
)

// Config describes one emulator run.
type Config struct {
	Bin  string   // emulator binary
	Args []string // arguments; Launch appends -qmp unix:DIR/qmp.sock,server=on,wait=off
	// BaseDir holds the per-run directory ("" = os.TempDir()). Keep it short:
	// a unix socket path has at most 107 bytes.
	BaseDir string
	// PollSocket waits for the QMP socket by looking for it every 200 µs instead
	// of with inotify: no descriptor held until Stop (a user has 128 inotify
	// instances by default), for runs of hundreds of emulators whose start-up
	// is not timed to the microsecond.
	PollSocket bool
}

// Timing is what Connect measured, relative to the moment before fork/exec.
type Timing struct {
	Exec     time.Duration `json:"exec_ns"`     // exec.Cmd.Start returned (the child has exec'd)
	Socket   time.Duration `json:"socket_ns"`   // the socket file appeared
	Connect  time.Duration `json:"connect_ns"`  // connect() succeeded
	Greeting time.Duration `json:"greeting_ns"` // the whole greeting line was read
}

// Process is one running emulator.
type Process struct {
	Cmd  *exec.Cmd
	Dir  string // private run directory: qmp.sock, output.log
	Sock string // Dir/qmp.sock
	t0   time.Time
	exec time.Duration

	ino    *os.File      // inotify on Dir; closed by Stop
	exited chan struct{} // closed once the child is reaped
	state  *os.ProcessState

	group *pgroup.Leader // signalled only until the child has exited: -pid may then be another's
}

// Launch creates the run directory, watches it, and starts the emulator.
// The caller must call Stop, whatever happens next.
func Launch(cfg Config) (*Process, error) {
	dir, err := os.MkdirTemp(cfg.BaseDir, "tlcvm-bench-")
	if err != nil {
		return nil, fmt.Errorf("emu: %w", err)
	}
	p := &Process{Dir: dir, Sock: filepath.Join(dir, SocketName), exited: make(chan struct{})}
	if cfg.PollSocket {
		if err := p.start(cfg, dir); err != nil {
			return nil, err
		}
		return p, nil
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("emu: inotify_init1: %w", err)
	}
	p.ino = os.NewFile(uintptr(fd), "inotify") // non-blocking: served by the runtime poller
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		p.ino.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("emu: inotify_add_watch: %w", err)
	}
	if err := p.start(cfg, dir); err != nil {
		p.ino.Close()
		return nil, err
	}
	return p, nil
}

// start starts the emulator (Launch's second half); on failure it removes dir.
func (p *Process) start(cfg Config, dir string) error {
	out, err := os.Create(filepath.Join(dir, "output.log"))
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("emu: %w", err)
	}
	defer out.Close() // the child has its own copy
	args := append(append([]string(nil), cfg.Args...), "-qmp", "unix:"+p.Sock+",server=on,wait=off")
	p.Cmd = exec.Command(cfg.Bin, args...)
	p.Cmd.Stdout, p.Cmd.Stderr = out, out
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.t0 = time.Now()
	if err := p.Cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("emu: start %s: %w", cfg.Bin, err)
	}
	p.exec = time.Since(p.t0)
	p.group = pgroup.Of(p.Cmd.Process.Pid)
	go p.watch()
	return nil
}

// watch waits for the child to exit without reaping it, kills whatever is
// left of its process group while its pid cannot be reused, then reaps it.
func (p *Process) watch() {
	p.group.Exited(unix.SIGKILL) // stragglers of our child's own group
	_ = p.Cmd.Wait()
	p.state = p.Cmd.ProcessState
	close(p.exited)
}

// Pid returns the emulator's process id.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Exited is closed once the emulator has exited and been reaped.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Connect waits for the QMP socket, connects, and reads the greeting. The
// returned connection has a deadline of timeout from now.
func (p *Process) Connect(ctx context.Context, timeout time.Duration) (*qmpc.Conn, qmpc.Greeting, Timing, error) {
	tm := Timing{Exec: p.exec}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// The inotify descriptor is closed by Stop, not here: closing one waits
	// for an SRCU grace period in the kernel (fsnotify group teardown),
	// which took 4-15 ms on these machines and would be counted as start-up.
	// A read deadline in the past is what releases the reader goroutine.
	found := make(chan error, 1)
	if p.ino == nil {
		go func() { found <- pollCreate(ctx, p.Sock, p.exited) }()
	} else {
		go func() { found <- waitCreate(p.ino, p.Sock) }()
	}
	select {
	case err := <-found:
		if err != nil {
			return nil, qmpc.Greeting{}, tm, err
		}
	case <-p.exited:
		p.unblockWatch()
		return nil, qmpc.Greeting{}, tm, p.exitError("before creating its QMP socket")
	case <-ctx.Done():
		p.unblockWatch()
		return nil, qmpc.Greeting{}, tm, fmt.Errorf("%w waiting for %s: %v", ErrTimeout, p.Sock, ctx.Err())
	}
	tm.Socket = time.Since(p.t0)

	var c net.Conn
	for {
		var err error
		c, err = net.Dial("unix", p.Sock)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.ECONNREFUSED) && !errors.Is(err, unix.ENOENT) {
			return nil, qmpc.Greeting{}, tm, fmt.Errorf("emu: connect: %w", err)
		}
		select { // bound but not yet listening: a few microseconds
		case <-p.exited:
			return nil, qmpc.Greeting{}, tm, p.exitError("before listening")
		case <-ctx.Done():
			return nil, qmpc.Greeting{}, tm, fmt.Errorf("%w connecting: %v", ErrTimeout, err)
		case <-time.After(20 * time.Microsecond):
		}
	}
	tm.Connect = time.Since(p.t0)
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	conn := qmpc.New(c)
	g, err := conn.ReadGreeting()
	tm.Greeting = time.Since(p.t0)
	if err != nil {
		conn.Close()
		select {
		case <-p.exited:
			return nil, g, tm, p.exitError("before greeting")
		case <-time.After(100 * time.Millisecond):
		}
		return nil, g, tm, err
	}
	// The deadline stays: the caller's next steps are bounded by the same
	// timeout unless it sets its own.
	_ = c.SetDeadline(time.Now().Add(timeout))
	return conn, g, tm, nil
}

// unblockWatch releases waitCreate's goroutine (a read deadline in the past).
func (p *Process) unblockWatch() {
	if p.ino != nil {
		_ = p.ino.SetReadDeadline(time.Unix(1, 0))
	}
}

// pollCreate returns once path exists, looking every 200 µs, or when ctx ends or the
// emulator exits (the caller reports those).
func pollCreate(ctx context.Context, path string, exited <-chan struct{}) error {
	for {
		if _, err := os.Lstat(path); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return ErrExited
		case <-time.After(200 * time.Microsecond):
		}
	}
}

// waitCreate returns once path exists, reading IN_CREATE/IN_MOVED_TO events
// from ino (which watches path's directory).
func waitCreate(ino *os.File, path string) error {
	name := filepath.Base(path)
	if _, err := os.Lstat(path); err == nil {
		return nil
	}
	buf := make([]byte, 4096)
	for {
		n, err := ino.Read(buf)
		if err != nil {
			return fmt.Errorf("emu: inotify read: %w", err)
		}
		names, err := inotifyNames(buf[:n])
		if err != nil {
			return err
		}
		for _, nm := range names {
			if nm == name {
				return nil
			}
		}
	}
}

// inotifyNames returns the file names of the inotify events in buf
// (struct inotify_event, inotify(7): wd, mask, cookie, len, name[len] NUL-padded).
func inotifyNames(buf []byte) ([]string, error) {
	var names []string
	for len(buf) > 0 {
		if len(buf) < unix.SizeofInotifyEvent {
			return names, fmt.Errorf("%w: %d trailing bytes", ErrInotify, len(buf))
		}
		l := binary.NativeEndian.Uint32(buf[12:16])
		if uint64(l) > uint64(len(buf)-unix.SizeofInotifyEvent) {
			return names, fmt.Errorf("%w: name length %d exceeds buffer", ErrInotify, l)
		}
		raw := buf[unix.SizeofInotifyEvent : unix.SizeofInotifyEvent+int(l)]
		if i := bytes.IndexByte(raw, 0); i >= 0 {
			raw = raw[:i]
		}
		names = append(names, string(raw))
		buf = buf[unix.SizeofInotifyEvent+int(l):]
	}
	return names, nil
}

// Output returns the last max bytes the emulator wrote to stdout/stderr.
func (p *Process) Output(max int64) string {
	f, err := os.Open(filepath.Join(p.Dir, "output.log"))
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, max))
	return string(bytes.TrimSpace(b))
}

func (p *Process) exitError(when string) error {
	return fmt.Errorf("%w %s (%v): %s", ErrExited, when, p.state, p.Output(2048))
}

// Stop ends the run: "quit" over conn (if not nil), up to grace for the
// emulator to exit, then SIGKILL to its process group; finally the run
// directory is removed. It returns once the emulator has been reaped. Stop on
// a nil *Process does nothing.
func (p *Process) Stop(conn *qmpc.Conn, grace time.Duration) error {
	if p == nil {
		return nil
	}
	var quitErr error
	if conn != nil {
		select {
		case <-p.exited:
		default:
			quitErr = quit(conn, grace)
		}
		conn.Close()
	}
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.group.Signal(unix.SIGKILL)
		<-p.exited
	}
	if p.ino != nil {
		_ = p.ino.Close() // slow (see Connect), so only once the run is over
	}
	if err := os.RemoveAll(p.Dir); err != nil {
		return fmt.Errorf("emu: %w", err)
	}
	if quitErr != nil && !errors.Is(quitErr, io.EOF) {
		return quitErr
	}
	return nil
}

func quit(conn *qmpc.Conn, grace time.Duration) error {
	_ = conn.SetDeadline(time.Now().Add(grace))
	if !conn.Negotiated() {
		if err := conn.Negotiate(); err != nil {
			return err
		}
	}
	_, err := conn.Execute("quit", nil)
	return err
}
