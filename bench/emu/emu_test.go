package emu_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tlcvm/bench/emu"
)

func event(name string, pad int) []byte {
	b := make([]byte, unix.SizeofInotifyEvent+len(name)+pad)
	binary.NativeEndian.PutUint32(b[4:8], unix.IN_CREATE)
	binary.NativeEndian.PutUint32(b[12:16], uint32(len(name)+pad))
	copy(b[unix.SizeofInotifyEvent:], name)
	return b
}

func TestInotifyNames(t *testing.T) {
	two := append(event("output.log", 6), event("qmp.sock", 8)...)
	tests := []struct {
		name string
		in   []byte
		want []string
		err  error
	}{
		{"two events", two, []string{"output.log", "qmp.sock"}, nil},
		{"empty", nil, nil, nil},
		{"short header", two[:10], nil, emu.ErrInotify},
		{"name past end", event("qmp.sock", 8)[:unix.SizeofInotifyEvent+4], nil, emu.ErrInotify},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := emu.InotifyNames(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for i := range tc.want {
				if err == nil && got[i] != tc.want[i] {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
			}
		})
	}
}

func FuzzInotifyNames(f *testing.F) {
	f.Add(append(event("a", 3), event("qmp.sock", 8)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		names, _ := emu.InotifyNames(in)
		total := 0
		for _, n := range names {
			total += unix.SizeofInotifyEvent + len(n)
		}
		if total > len(in) {
			t.Fatalf("names %q longer than input %d", names, len(in))
		}
	})
}

// A process that exits without creating the socket is reported as exited,
// with its output, and nothing is left behind; watching with inotify or
// polling for the socket alike.
func TestLaunchExitsEarly(t *testing.T) {
	for _, poll := range []bool{false, true} {
		t.Run(map[bool]string{false: "inotify", true: "poll"}[poll], func(t *testing.T) { launchExitsEarly(t, poll) })
	}
}

func launchExitsEarly(t *testing.T, poll bool) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	script := filepath.Join(t.TempDir(), "fake-emu")
	if err := os.WriteFile(script, []byte("#!"+sh+"\necho 'fake: bad option' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := emu.Launch(emu.Config{Bin: script, BaseDir: t.TempDir(), PollSocket: poll})
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = p.Connect(context.Background(), time.Minute)
	if !errors.Is(err, emu.ErrExited) {
		t.Fatalf("Connect err = %v, want ErrExited", err)
	}
	if got := p.Output(100); got != "fake: bad option" {
		t.Fatalf("output %q", got)
	}
	if err := p.Stop(nil, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.Dir); !os.IsNotExist(err) {
		t.Fatalf("run dir left behind: %v", err)
	}
}

// The whole path against real QEMU 7.2, when it is installed: launch,
// greeting, quit, reaped. It checks order, never durations.
func TestQEMUGreeting(t *testing.T) {
	const bin = "/usr/bin/qemu-system-x86_64"
	if testing.Short() {
		t.Skip("-short")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skip("QEMU not installed")
	}
	for _, poll := range []bool{false, true} {
		t.Run(map[bool]string{false: "inotify", true: "poll"}[poll], func(t *testing.T) { qemuGreeting(t, bin, poll) })
	}
}

func qemuGreeting(t *testing.T, bin string, poll bool) {
	p, err := emu.Launch(emu.Config{Bin: bin, Args: []string{"-machine", "none", "-nodefaults", "-display", "none"}, PollSocket: poll})
	if err != nil {
		t.Fatal(err)
	}
	conn, g, tm, err := p.Connect(context.Background(), time.Minute)
	if err != nil {
		p.Stop(nil, time.Second)
		t.Fatal(err)
	}
	if g.Major != 7 || g.Minor != 2 {
		t.Errorf("greeting version %d.%d", g.Major, g.Minor)
	}
	if !(tm.Exec <= tm.Socket && tm.Socket <= tm.Connect && tm.Connect <= tm.Greeting) {
		t.Errorf("timing out of order: %+v", tm)
	}
	if err := conn.Negotiate(); err != nil {
		t.Error(err)
	}
	pid := p.Pid()
	if err := p.Stop(conn, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if p.Cmd.ProcessState == nil || !p.Cmd.ProcessState.Success() {
		t.Errorf("quit: %v", p.Cmd.ProcessState)
	}
	if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("pid %d still there: %v", pid, err)
	}
}
