package blockdev_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"tlcvm/blockdev"
)

// syncBuffer is an output shared by qemu-io lines running on several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// take returns what was written so far, without qemu-io's rate lines, and empties it.
func (s *syncBuffer) take() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := regexp.MustCompile(`(?m)^\d+ bytes, \d+ ops;.*\n`).ReplaceAllString(s.b.String(), "")
	s.b.Reset()
	return out
}

func i64(v int64) *int64 { return &v }

// openBlkdebug opens raw node "d0" over blkdebug node "dbg" over a 1 MiB raw file.
func openBlkdebug(t *testing.T, format string, o blockdev.BlkdebugOptions) *blockdev.Graph {
	t.Helper()
	path := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if format == "qcow2" {
		needQemuImg(t)
		qemuImg(t, "create", "-q", "-f", "qcow2", path, "1M")
	} else if err := os.Truncate(path, 1<<20); err != nil {
		t.Fatal(err)
	}
	g := newGraph(nil)
	t.Cleanup(g.Close)
	o.Image = &blockdev.Ref{Options: &blockdev.Options{Driver: blockdev.DriverFile, Filename: path}}
	_, err := g.Add(&blockdev.Options{Driver: format, NodeName: "d0",
		File: &blockdev.Ref{Options: &blockdev.Options{Driver: blockdev.DriverBlkdebug, NodeName: "dbg", Blkdebug: &o}}})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

type qemuIOCase struct{ cmd, want string }

// runQemuIOCases runs qemu-io lines on node d0 and checks what each prints.
func runQemuIOCases(t *testing.T, g *blockdev.Graph, cases []qemuIOCase) {
	t.Helper()
	out := &syncBuffer{}
	for _, c := range cases {
		if _, err := g.QemuIO("d0", false, c.cmd, out); err != nil {
			t.Fatal(err)
		}
		if got := out.take(); got != c.want {
			t.Errorf("%s: %q, want %q", c.cmd, got, c.want)
		}
	}
}

func TestBlkdebugInjectError(t *testing.T) {
	g := openBlkdebug(t, "raw", blockdev.BlkdebugOptions{
		InjectError: []blockdev.BlkdebugInjectError{
			{Event: "read_aio", Errno: i64(5), Once: true},
			{Event: "write_aio", Errno: i64(28), Sector: i64(8)},
			{Event: "flush_to_disk", IOType: "discard", Errno: i64(1)},
		},
		SetState: []blockdev.BlkdebugSetState{{Event: "write_aio", NewState: 2}},
	})
	runQemuIOCases(t, g, []qemuIOCase{
		{"read 0 512", "read failed: Input/output error\n"}, // once: the rule is gone after
		{"read -q 0 512", ""},
		{"write -q 0 512", ""},                                            // sector 8 not covered
		{"write -q 3584 1024", "write failed: No space left on device\n"}, // covers sector 8
		{"write -q 4096 512", "write failed: No space left on device\n"},
		{"discard -q 0 512", ""}, // discard=ignore: nothing reaches the node
		{"flush", ""},
		{"break nosuch A", "Could not set breakpoint: No such file or directory\n"},
		{"resume A", "Could not resume request: No such file or directory\n"},
		{"remove_break A", "Could not remove breakpoint A: No such file or directory\n"},
	})
}

func TestBlkdebugState(t *testing.T) {
	// The error rule only holds in state 2, which the first write moves to.
	g := openBlkdebug(t, "raw", blockdev.BlkdebugOptions{
		InjectError: []blockdev.BlkdebugInjectError{{Event: "read_aio", State: 2}},
		SetState:    []blockdev.BlkdebugSetState{{Event: "write_aio", State: 1, NewState: 2}},
	})
	runQemuIOCases(t, g, []qemuIOCase{
		{"read -q 0 512", ""},
		{"write -q 0 512", ""},
		{"read -q 0 512", "read failed: Input/output error\n"},
		{"read -q 0 512", "read failed: Input/output error\n"},
	})
}

func TestBlkdebugQcow2Events(t *testing.T) {
	g := openBlkdebug(t, "qcow2", blockdev.BlkdebugOptions{
		InjectError: []blockdev.BlkdebugInjectError{{Event: "l2_update", Once: true}},
	})
	runQemuIOCases(t, g, []qemuIOCase{
		{"write -q 0 512", "write failed: Input/output error\n"},
		{"write -q -P 0x11 0 512", ""},
		{"read -q -P 0x11 0 512", ""},
	})
}

// TestBlkdebugBreakpoint: a write stops at write_aio until resumed; wait_break sees it.
func TestBlkdebugBreakpoint(t *testing.T) {
	g := openBlkdebug(t, "raw", blockdev.BlkdebugOptions{})
	out := &syncBuffer{}
	run := func(cmd string) {
		if _, err := g.QemuIO("d0", false, cmd, out); err != nil {
			t.Error(err)
		}
	}
	run("break write_aio A")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := g.QemuIO("d0", false, "write -q -P 0x22 0 512", out); err != nil {
			t.Error(err)
		}
	}()
	waited := make(chan struct{})
	go func() {
		defer close(waited)
		run("wait_break A")
	}()
	select {
	case <-waited:
	case <-time.After(time.Minute):
		t.Fatal("wait_break never returned")
	}
	select {
	case <-done:
		t.Fatal("the write went on past its breakpoint")
	default:
	}
	run("resume A")
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the write was not resumed")
	}
	run("read -q -P 0x22 0 512")
	got := out.take()
	if want := "blkdebug: Suspended request 'A'\nblkdebug: Resuming request 'A'\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
	run("remove_break A")
	if got := out.take(); !strings.Contains(got, "Could not remove breakpoint A: No such file or directory") {
		t.Errorf("remove_break of a used breakpoint: %q", got)
	}
}

func TestBlkdebugBadRules(t *testing.T) {
	g := newGraph(nil)
	defer g.Close()
	for _, o := range []blockdev.BlkdebugOptions{
		{InjectError: []blockdev.BlkdebugInjectError{{Event: "nosuch"}}},
		{InjectError: []blockdev.BlkdebugInjectError{{Event: "read_aio", IOType: "nosuch"}}},
		{Align: 3},
		{},
	} {
		o := o
		if _, err := g.Add(&blockdev.Options{Driver: blockdev.DriverBlkdebug, NodeName: "x", Blkdebug: &o}); err == nil {
			t.Errorf("%+v: opened", o)
		}
	}
}
