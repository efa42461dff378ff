package transport

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"tlcvm/internal/pgroup"
)

// pipeSize is what the pipes to and from an exec'd command are grown to (F_SETPIPE_SZ;
// the default 64 KiB costs a context switch every 16 pages). Linux caps it at
// /proc/sys/fs/pipe-max-size (1 MiB by default); failure is harmless.
const pipeSize = 1 << 20

// stderrTail is how much of a command's stderr is kept to explain its failure.
const stderrTail = 512

// Grace periods when a command must be ended (QEMU's qio_channel_command_abort sends
// SIGTERM, then SIGKILL): how long a command reading from or writing to a closed pipe
// gets to exit by itself, then to exit after SIGTERM.
const (
	exitGrace = 100 * time.Millisecond
	termGrace = time.Second
)

// command is a running "/bin/sh -c CMD" in its own process group (so that the shell's
// children are ended with it). It is reaped by its own goroutine as soon as it exits.
type command struct {
	line string // as written after "exec:", for messages (blanks trimmed)
	cmd  *exec.Cmd
	pgid int

	done  chan struct{} // closed when reaped; state valid after
	state *os.ProcessState
	wErr  error // from Wait, when state is nil

	tail       tailBuffer    // last bytes of stderr
	stderrDone chan struct{} // closed when stderr reached EOF
	killed     sync.Once
	group      *pgroup.Leader // signalled only until the shell has exited
}

// startCommand runs line with /bin/sh -c, as QEMU's exec: does. outgoing: its stdin is the
// read end of a pipe whose write end is returned, stdout is /dev/null; incoming: its stdout
// is the write end of a pipe whose read end is returned, stdin is /dev/null. stderr is
// copied to env.Stderr (os.Stderr when nil, as QEMU's children inherit it).
func startCommand(line string, outgoing bool, env Env) (*command, *os.File, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, withErrno("Unable to create pipe", ErrCommand, err)
	}
	er, ew, err := os.Pipe()
	if err != nil {
		pr.Close()
		pw.Close()
		return nil, nil, withErrno("Unable to create pipe", ErrCommand, err)
	}
	c := &command{
		line:       strings.TrimSpace(line),
		done:       make(chan struct{}),
		stderrDone: make(chan struct{}),
	}
	c.cmd = exec.Command("/bin/sh", "-c", line)
	c.cmd.Stderr = ew
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var mine, theirs *os.File
	if outgoing {
		c.cmd.Stdin, mine, theirs = pr, pw, pr
	} else {
		c.cmd.Stdout, mine, theirs = pw, pr, pw
	}
	growPipe(mine)
	err = c.cmd.Start()
	theirs.Close()
	ew.Close()
	if err != nil {
		mine.Close()
		er.Close()
		return nil, nil, withErrno(fmt.Sprintf("Unable to start command '%s'", c.line), ErrCommand, err)
	}
	c.pgid = c.cmd.Process.Pid
	c.group = pgroup.Of(c.pgid)
	stderr := env.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	go func() {
		defer close(c.stderrDone)
		defer er.Close()
		io.Copy(io.MultiWriter(&c.tail, ignoreErrors{stderr}), er) //nolint:errcheck // best effort
	}()
	go func() {
		c.group.Exited(0)
		err := c.cmd.Wait()
		c.state = c.cmd.ProcessState
		if c.state == nil {
			c.wErr = err
		}
		close(c.done)
	}()
	env.log().Debug().Str("command", c.line).Int("pid", c.pgid).Bool("outgoing", outgoing).Msg("exec: started")
	return c, mine, nil
}

// wait blocks until the command is reaped and returns nil for exit status 0, else an
// ErrCommand naming the command, its status and the last line of its stderr.
func (c *command) wait() error {
	<-c.done
	return c.exitError()
}

func (c *command) exitError() error {
	if c.state == nil {
		return withErrno(fmt.Sprintf("Cannot wait on command '%s'", c.line), ErrCommand, c.wErr)
	}
	if c.state.Success() {
		return nil
	}
	var msg string
	ws, _ := c.state.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		msg = fmt.Sprintf("Command '%s' was terminated by signal %d (%s)", c.line, int(ws.Signal()), strsignal(ws.Signal()))
	} else {
		msg = fmt.Sprintf("Command '%s' exited with status %d", c.line, c.state.ExitCode())
	}
	// The command's own words, if it said any before exiting (dd: No space left …).
	select {
	case <-c.stderrDone:
	case <-time.After(exitGrace):
	}
	if last := c.tail.lastLine(); last != "" {
		msg += ": " + last
	}
	return newError(msg, ErrCommand, nil)
}

// kill ends the whole process group with SIGKILL (cancel) and waits until it is reaped.
func (c *command) kill() {
	c.killed.Do(func() { c.group.Signal(unix.SIGKILL) })
	<-c.done
}

// end lets a command whose pipe was just closed exit by itself, then asks it (SIGTERM)
// and at last forces it (SIGKILL), as qio_channel_command_abort does; it returns once the
// command is reaped. It reports whether the command exited by itself.
func (c *command) end() (byItself bool) {
	t := time.NewTimer(exitGrace)
	defer t.Stop()
	select {
	case <-c.done:
		return true
	case <-t.C:
	}
	c.group.Signal(unix.SIGTERM)
	t.Reset(termGrace)
	select {
	case <-c.done:
		return false
	case <-t.C:
	}
	c.kill()
	return false
}

// growPipe raises a pipe's capacity to pipeSize when it can.
func growPipe(f *os.File) {
	if sc, err := f.SyscallConn(); err == nil {
		sc.Control(func(fd uintptr) { //nolint:errcheck // best effort
			unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) //nolint:errcheck // best effort
		})
	}
}

// tailBuffer keeps the last stderrTail bytes written to it. Safe for one writer and
// concurrent readers.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > stderrTail {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-stderrTail:]...)
	}
	return len(p), nil
}

// lastLine is the line that best explains a failure: the last one in the "prog: message"
// form of error messages (dd ends with its statistics, after its error), else the last
// non-blank one.
func (t *tailBuffer) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimRight(string(t.buf), " \t\r\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], ": ") {
			return strings.TrimSpace(lines[i])
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}

// ignoreErrors keeps io.MultiWriter going when the user's stderr fails.
type ignoreErrors struct{ w io.Writer }

func (i ignoreErrors) Write(p []byte) (int, error) {
	i.w.Write(p) //nolint:errcheck // best effort
	return len(p), nil
}

// strsignal is strsignal(3)'s text ("Killed", "Terminated"): Go's signal names are glibc's
// with a lower-case first letter.
func strsignal(s syscall.Signal) string {
	t := s.String()
	return strings.ToUpper(t[:1]) + t[1:]
}
