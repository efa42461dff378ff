package libvirttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// URI is the libvirt connection every command uses.
const URI = "qemu:///system"

// Sentinel errors.
var (
	// ErrVirsh wraps a virsh invocation that exited non-zero.
	ErrVirsh = errors.New("libvirt: virsh failed")
	// ErrParse wraps malformed virsh output.
	ErrParse = errors.New("libvirt: cannot parse virsh output")
	// ErrTimeout wraps a condition that did not come true before its deadline.
	ErrTimeout = errors.New("libvirt: timed out")
)

// Virsh runs virsh commands.
type Virsh struct {
	Bin     string        // default "virsh"
	Timeout time.Duration // per command; default 120 s (libvirt has no monitor timeouts)
	Log     zerolog.Logger
}

// NewVirsh returns a Virsh with defaults and a silent logger.
func NewVirsh() *Virsh { return &Virsh{Bin: "virsh", Timeout: 120 * time.Second, Log: zerolog.Nop()} }

// Run runs `virsh -c URI args…` and returns its stdout. A non-zero exit
// returns an error wrapping ErrVirsh that carries stderr.
func (v *Virsh) Run(args ...string) (string, error) {
	out, _, err := v.Timed(args...)
	return out, err
}

// Timed is Run that also returns the wall time of the command.
func (v *Virsh) Timed(args ...string) (string, time.Duration, error) {
	r, err := v.Exec(args...)
	if err == nil && r.Code != 0 {
		err = fmt.Errorf("exit status %d", r.Code)
	}
	if err != nil {
		return r.Stdout, r.Took, fmt.Errorf("%w: virsh %s: %v: %s", ErrVirsh, strings.Join(args, " "), err,
			strings.TrimSpace(r.Stderr))
	}
	return r.Stdout, r.Took, nil
}

// Result is one virsh invocation's outcome.
type Result struct {
	Stdout, Stderr string
	Code           int // exit status
	Took           time.Duration
}

// Exec runs `virsh -c URI args…` and returns what it printed and its exit status; the
// error is for a virsh that could not run or outlived Timeout, not for a non-zero exit.
func (v *Virsh) Exec(args ...string) (Result, error) {
	bin, to := v.Bin, v.Timeout
	if bin == "" {
		bin = "virsh"
	}
	if to <= 0 {
		to = 120 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), to)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-q", "-c", URI}, args...)...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	t0 := time.Now()
	err := cmd.Run()
	r := Result{Stdout: so.String(), Stderr: se.String(), Took: time.Since(t0)}
	v.Log.Debug().Strs("args", args).Dur("took", r.Took).Err(err).Msg("virsh")
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return r, fmt.Errorf("%w: virsh %s: %v", ErrTimeout, strings.Join(args, " "), ctx.Err())
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
		return r, nil
	}
	return r, err
}

// Poll calls f until it returns true or the deadline passes; the last
// error or a wrapped ErrTimeout is returned on failure. It sleeps interval
// between calls; nothing asserts how long the wait took.
func Poll(deadline, interval time.Duration, what string, f func() (bool, error)) error {
	end := time.Now().Add(deadline)
	var last error
	for {
		ok, err := f()
		if ok {
			return nil
		}
		last = err
		if time.Now().After(end) {
			if last != nil {
				return fmt.Errorf("%w: %s: %v", ErrTimeout, what, last)
			}
			return fmt.Errorf("%w: %s", ErrTimeout, what)
		}
		time.Sleep(interval)
	}
}

// WaitState polls domstate until it is want (e.g. "running", "shut off").
func (v *Virsh) WaitState(dom, want string, deadline time.Duration) (State, error) {
	var st State
	err := Poll(deadline, 100*time.Millisecond, dom+" to be "+want, func() (bool, error) {
		out, err := v.Run("domstate", "--reason", dom)
		if err != nil {
			return false, err
		}
		st, err = ParseState(out)
		if err != nil {
			return false, err
		}
		return st.State == want, fmt.Errorf("state is %s", st)
	})
	return st, err
}

// LockPath is the file every user of the shared libvirtd in this repository
// (the suite, the benchmark) holds an exclusive flock on while it runs: the
// suite restarts libvirtd, which would break a concurrent run's virsh calls.
const LockPath = "/run/lock/tlcvm-libvirt.lock"

// Lock blocks until it holds LockPath, and returns the function that
// releases it.
func Lock() (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(LockPath), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(LockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("flock %s: %w", LockPath, err)
	}
	return func() { f.Close() }, nil
}
