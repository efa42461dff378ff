package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// errDied reports that QEMU exited or stopped answering while a command was
// outstanding. Some types abort QEMU when instantiated for introspection
// (microvm-machine asserts on a missing fw_cfg); the generator records those
// types as unavailable and starts a fresh process.
var errDied = errors.New("qemu died or timed out")

// qmpError is an {"error": {...}} reply.
type qmpError struct {
	Class, Desc string
}

func (e *qmpError) Error() string { return e.Class + ": " + e.Desc }

// qemu is one `qemu-system-x86_64 -machine none -qmp stdio` process.
type qemu struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

// qmpArgv is the command line the catalogue is captured from. -accel tcg
// pins the accelerator: tlcvm never offers KVM, and unavailable-features and
// the host model differ under KVM.
var qmpArgv = []string{"-machine", "none", "-accel", "tcg", "-nodefaults", "-display", "none", "-qmp", "stdio"}

func startQEMU(bin string) (*qemu, error) { return startQEMUArgs(bin, qmpArgv) }

// startQEMUArgs starts QEMU with argv (which must hold -qmp stdio) and negotiates.
func startQEMUArgs(bin string, argv []string) (*qemu, error) {
	cmd := exec.Command(bin, argv...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	q := &qemu{cmd: cmd, in: in, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			line := sc.Text()
			if gjson.Get(line, "event").Exists() {
				continue
			}
			q.lines <- line
		}
		close(q.lines)
	}()
	greeting, ok := q.next(30 * time.Second)
	if !ok || !gjson.Get(greeting, "QMP").Exists() {
		q.kill()
		return nil, fmt.Errorf("no QMP greeting from %s: %w", bin, errDied)
	}
	if _, err := q.call(30*time.Second, "qmp_capabilities", nil); err != nil {
		q.kill()
		return nil, err
	}
	return q, nil
}

func (q *qemu) next(timeout time.Duration) (string, bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l, ok := <-q.lines:
		return l, ok
	case <-t.C:
		return "", false
	}
}

// call runs one command. A QMP error comes back as *qmpError; a dead or
// silent process as errDied (the caller restarts it).
func (q *qemu) call(timeout time.Duration, execute string, args any) (gjson.Result, error) {
	msg := map[string]any{"execute": execute}
	if args != nil {
		msg["arguments"] = args
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return gjson.Result{}, err
	}
	if _, err := q.in.Write(append(b, '\n')); err != nil {
		return gjson.Result{}, fmt.Errorf("%s: %w", execute, errDied)
	}
	line, ok := q.next(timeout)
	if !ok {
		return gjson.Result{}, fmt.Errorf("%s: %w", execute, errDied)
	}
	r := gjson.Parse(line)
	if e := r.Get("error"); e.Exists() {
		return gjson.Result{}, &qmpError{Class: e.Get("class").String(), Desc: e.Get("desc").String()}
	}
	ret := r.Get("return")
	if !ret.Exists() {
		return gjson.Result{}, fmt.Errorf("%s: unexpected reply %.200s", execute, line)
	}
	return ret, nil
}

func (q *qemu) kill() {
	_ = q.in.Close()
	if q.cmd.Process != nil {
		_ = q.cmd.Process.Kill()
	}
	_ = q.cmd.Wait()
}

// session keeps one QEMU alive across calls and replaces it when it dies.
type session struct {
	bin     string
	q       *qemu
	timeout time.Duration
	deaths  []string
}

func (s *session) call(execute string, args any) (gjson.Result, error) {
	if s.q == nil {
		q, err := startQEMU(s.bin)
		if err != nil {
			return gjson.Result{}, err
		}
		s.q = q
		// qom-list-types loads every module (module_load_qom_all); without
		// it a fresh process answers "Class 'qxl' not found". libvirt asks
		// it first too, so this is the state the catalogue describes.
		if _, err := q.call(s.timeout, "qom-list-types", nil); err != nil {
			return gjson.Result{}, err
		}
	}
	r, err := s.q.call(s.timeout, execute, args)
	if errors.Is(err, errDied) {
		a, _ := json.Marshal(args)
		s.deaths = append(s.deaths, execute+" "+string(a))
		s.q.kill()
		s.q = nil
	}
	return r, err
}

func (s *session) close() {
	if s.q != nil {
		_, _ = s.q.call(5*time.Second, "quit", nil)
		s.q.kill()
		s.q = nil
	}
}

// helpText runs `qemu-system-x86_64 <args>` and returns what it printed on
// stdout, which is what `-machine help` and friends print.
func helpText(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = io.Discard
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w", bin, strings.Join(args, " "), err)
	}
	return out.String(), nil
}
