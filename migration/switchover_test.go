package migration_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tlcvm/migration"
)

// fakeDisks records the engine's hand-overs of the images.
type fakeDisks struct {
	mu       sync.Mutex
	calls    []string
	active   bool
	failNext error // the next Activate fails with it
}

func (d *fakeDisks) Inactivate() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "inactivate")
	d.active = false
	return nil
}

func (d *fakeDisks) Activate() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "activate")
	if err := d.failNext; err != nil {
		d.failNext = nil
		return err
	}
	d.active = true
	return nil
}

func (d *fakeDisks) EndIncoming() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "end-incoming")
}

func (d *fakeDisks) list() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.calls, " ")
}

// pair is a source and a destination engine with their machines and disks, the
// destination listening on a unix socket (migrate-incoming) with caps.
type pair struct {
	src, dst       *migration.Engine
	sm, dm         *fakeMachine
	sdisks, ddisks *fakeDisks
	sev, dev       *eventLog
	sErr, dErr     *syncBuffer
	uri            string
	exited         chan int
}

func newPair(t *testing.T, size int, srcCaps, dstCaps []migration.Capability) *pair {
	t.Helper()
	return newPairWith(t, size, srcCaps, dstCaps, func(m *fakeMachine) migration.Machine { return m })
}

// newPairWith is newPair with the source's machine as wrap makes it.
func newPairWith(t *testing.T, size int, srcCaps, dstCaps []migration.Capability, wrap func(*fakeMachine) migration.Machine) *pair {
	t.Helper()
	p := &pair{sm: newFakeMachine(size, "running"), dm: newFakeMachine(size, "inmigrate"),
		sdisks: &fakeDisks{active: true}, ddisks: &fakeDisks{}, sev: &eventLog{}, dev: &eventLog{},
		sErr: &syncBuffer{}, dErr: &syncBuffer{}, exited: make(chan int, 1),
		uri: "unix:" + filepath.Join(t.TempDir(), "m.sock")}
	p.src = migration.New(migration.Options{Machine: wrap(p.sm), Events: p.sev, Stderr: p.sErr, Disks: p.sdisks})
	p.dst = migration.New(migration.Options{Machine: p.dm, Events: p.dev, Stderr: p.dErr, Disks: p.ddisks,
		Exit: func(status int) { p.exited <- status }})
	t.Cleanup(p.src.Close)
	t.Cleanup(p.dst.Close)
	set := func(e *migration.Engine, caps []migration.Capability) {
		list := []migration.CapabilityStatus{{Capability: migration.CapEvents, State: true}}
		for _, c := range caps {
			list = append(list, migration.CapabilityStatus{Capability: c, State: true})
		}
		if err := e.SetCapabilities(list); err != nil {
			t.Fatal(err)
		}
	}
	set(p.src, srcCaps)
	set(p.dst, dstCaps)
	p.dst.SetDefer()
	p.dst.Ready()
	if err := p.dst.Incoming(p.uri, migration.IncomingOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := p.src.SetParams(migration.Params{MaxBandwidth: ptr[uint64](0)}); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFor polls f until it is true, failing the test after a deadline.
func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSwitchover is libvirt's native migration of a running guest on shared storage:
// return-path and pause-before-switchover on the source, return-path and
// late-block-activate on a destination started with -S. The source stops, waits in
// pre-switchover for migrate-continue (a continue for another state is refused with
// QEMU's text), inactivates its disks, and completes only after the destination's SHUT;
// the destination takes the source's RAM and state, stays paused with its disks inactive
// (late-block-activate, no autostart) and reports completed.
func TestSwitchover(t *testing.T) {
	const size = 4 << 20
	p := newPair(t, size, []migration.Capability{migration.CapReturnPath, migration.CapPauseBeforeSwitchover},
		[]migration.Capability{migration.CapReturnPath, migration.CapLateBlockActivate})
	p.dm.paused = true // -S
	p.sm.run(size / pageSize / 2)
	defer p.sm.stop()
	if err := p.src.Migrate(p.uri, migration.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pre-switchover", func() bool { return p.src.Info().Status == migration.StatusPreSwitchover })
	if got := p.sm.RunState(); got != "finish-migrate" {
		t.Fatalf("source in pre-switchover is %s", got)
	}
	if err := p.src.Continue(migration.StatusActive); errString(err) != "Migration not in expected state: pre-switchover" {
		t.Fatalf("continue from active: %v", err)
	}
	if got := p.sdisks.list(); got != "" {
		t.Fatalf("disks handed over before the continue: %s", got)
	}
	if err := p.src.Continue(migration.StatusPreSwitchover); err != nil {
		t.Fatal(err)
	}
	info := p.src.Wait()
	if info.Status != migration.StatusCompleted {
		t.Fatalf("source %s (%v); stderr %s", info.Status, info.ErrorDesc, p.sErr.String())
	}
	waitFor(t, "destination completed", func() bool { return p.dst.Info().Status == migration.StatusCompleted })
	if got, want := strings.Join(p.sev.list(), " "), "MIGRATION:pre-switchover MIGRATION:device"; !strings.Contains(got, want) ||
		!strings.HasSuffix(got, "MIGRATION:completed") {
		t.Errorf("source events %s", got)
	}
	if got := p.sdisks.list(); got != "inactivate" {
		t.Errorf("source disks: %s", got)
	}
	if got := p.ddisks.list(); got != "end-incoming" {
		t.Errorf("destination disks (late-block-activate, -S): %s", got)
	}
	if got := p.dm.RunState(); got != "paused" {
		t.Errorf("destination %s", got)
	}
	if got := p.sm.RunState(); got != "postmigrate" {
		t.Errorf("source %s", got)
	}
	if !bytes.Equal(p.dm.ram.mem, p.sm.ram.mem) {
		t.Fatalf("destination RAM differs: %s", firstDiff(p.dm.ram.mem, p.sm.ram.mem))
	}
	if err := p.src.Continue(migration.StatusPreSwitchover); errString(err) != "Migration not in expected state: completed" {
		t.Errorf("continue after completion: %v", err)
	}
}

// TestSwitchoverCancel: a cancel in pre-switchover ends the migration cancelled, with the
// source's guest running again and its disks never handed over.
func TestSwitchoverCancel(t *testing.T) {
	p := newPair(t, 1<<20, []migration.Capability{migration.CapReturnPath, migration.CapPauseBeforeSwitchover},
		[]migration.Capability{migration.CapReturnPath})
	if err := p.src.Migrate(p.uri, migration.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pre-switchover", func() bool { return p.src.Info().Status == migration.StatusPreSwitchover })
	p.src.Cancel()
	if info := p.src.Wait(); info.Status != migration.StatusCancelled {
		t.Fatalf("status %s", info.Status)
	}
	if got := p.sm.RunState(); got != "running" {
		t.Errorf("source %s", got)
	}
	if got := p.sdisks.list(); got != "" {
		t.Errorf("source disks: %s", got)
	}
	select {
	case <-p.exited: // the destination saw its stream end and gave up, as QEMU's does
	case <-time.After(20 * time.Second):
		t.Error("the destination did not exit")
	}
}

// TestSwitchoverDestinationFails: a destination that fails to apply the device state
// exits without SHUT; the source, waiting for it, fails (QEMU: no error-desc), takes its
// disks back and runs its guest again.
func TestSwitchoverDestinationFails(t *testing.T) {
	p := newPair(t, 1<<20, []migration.Capability{migration.CapReturnPath}, []migration.Capability{migration.CapReturnPath})
	p.dm.secs[2].failLoad = fmt.Errorf("bad state")
	if err := p.src.Migrate(p.uri, migration.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	info := p.src.Wait()
	if info.Status != migration.StatusFailed || info.ErrorDesc != nil {
		t.Fatalf("status %s, error-desc %v", info.Status, info.ErrorDesc)
	}
	if got := p.sdisks.list(); got != "inactivate activate" {
		t.Errorf("source disks: %s", got)
	}
	if got := p.sm.RunState(); got != "running" {
		t.Errorf("source %s", got)
	}
	if status := <-p.exited; status != 1 {
		t.Errorf("destination exit status %d", status)
	}
	if got := p.dErr.String(); !strings.Contains(got, "bad state") {
		t.Errorf("destination stderr %q", got)
	}
}

// TestIncomingActivation: without late-block-activate the destination activates its disks
// when it completes; when that fails it reports the error and leaves the guest paused.
func TestIncomingActivation(t *testing.T) {
	for _, fail := range []bool{false, true} {
		p := newPair(t, 1<<20, nil, nil)
		if fail {
			p.ddisks.failNext = fmt.Errorf(`Failed to get "write" lock`)
		}
		if err := p.src.Migrate(p.uri, migration.MigrateOptions{}); err != nil {
			t.Fatal(err)
		}
		if info := p.src.Wait(); info.Status != migration.StatusCompleted {
			t.Fatalf("source %s", info.Status)
		}
		waitFor(t, "destination completed", func() bool { return p.dst.Info().Status == migration.StatusCompleted })
		want, state := "activate end-incoming", "running"
		if fail {
			state = "paused"
		}
		if got := p.ddisks.list(); got != want {
			t.Errorf("fail=%v: destination disks %s", fail, got)
		}
		if got := p.dm.RunState(); got != state {
			t.Errorf("fail=%v: destination %s", fail, got)
		}
		if fail && !strings.Contains(p.dErr.String(), `qemu-system-x86_64: Failed to get "write" lock`) {
			t.Errorf("stderr %q", p.dErr.String())
		}
	}
}
