package migration_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"tlcvm/migration"
	"tlcvm/migration/stream"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEngine(t *testing.T, m *fakeMachine) (*migration.Engine, *eventLog, *syncBuffer) {
	t.Helper()
	ev := &eventLog{}
	stderr := &syncBuffer{}
	e := migration.New(migration.Options{Machine: m, Events: ev, Stderr: stderr})
	t.Cleanup(e.Close)
	if err := e.SetCapabilities([]migration.CapabilityStatus{{Capability: migration.CapEvents, State: true}}); err != nil {
		t.Fatal(err)
	}
	return e, ev, stderr
}

// waitActive polls until the migration has left setup (no timing involved: it yields).
func waitStatus(e *migration.Engine, want ...migration.Status) migration.Status {
	for {
		st := e.Info().Status
		for _, w := range want {
			if st == w {
				return st
			}
		}
		runtime.Gosched()
	}
}

// load reads a stream file into a fresh machine.
func load(t *testing.T, path string, size int) (*fakeMachine, string, error) {
	t.Helper()
	dst := newFakeMachine(size, "inmigrate")
	e := migration.New(migration.Options{Machine: dst})
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src, err := e.Load(f)
	return dst, src, err
}

func TestCheckpointQEMUModeIsExact(t *testing.T) {
	const size = 8 << 20
	m := newFakeMachine(size, "running")
	m.run(size / pageSize / 2) // a busy guest rewriting half its RAM
	defer m.stop()
	e, ev, _ := newEngine(t, m)
	if err := e.SetParams(migration.Params{MaxBandwidth: ptr[uint64](0)}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "a.chk")
	if err := e.Migrate("file:"+path, migration.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	info := e.Wait()
	if info.Status != migration.StatusCompleted {
		t.Fatalf("status %s (%v)", info.Status, info.ErrorDesc)
	}
	if got := m.RunState(); got != "postmigrate" {
		t.Fatalf("source run state %s, want postmigrate", got)
	}
	dst, src, err := load(t, path, size)
	if err != nil {
		t.Fatal(err)
	}
	if src != "running" {
		t.Errorf("source state in stream %q, want running", src)
	}
	if !bytes.Equal(dst.ram.mem, m.ram.mem) {
		t.Fatalf("restored RAM differs from the source stopped in stage 3 (%s; stages %+v)", firstDiff(dst.ram.mem, m.ram.mem), info.Stages)
	}
	for i := range m.secs {
		if a, b := m.secs[i].value.Load(), dst.secs[i].value.Load(); a != b {
			t.Errorf("section %s: %d restored, %d saved", m.secs[i].id, b, a)
		}
	}
	evs := ev.list()
	if evs[0] != "MIGRATION:setup" || evs[1] != "MIGRATION_PASS:1" || evs[2] != "MIGRATION:active" || evs[len(evs)-1] != "MIGRATION:completed" {
		t.Errorf("events %v", evs)
	}
	if len(info.Stages) != 4 || info.Stages[0].Name != "setup" || info.Stages[3].Name != "stage 3" {
		t.Errorf("stages %+v", info.Stages)
	}
	if info.RAM == nil || info.RAM.Transferred == 0 || info.Downtime == nil {
		t.Errorf("figures %+v", info)
	}
}

func TestCheckpointTLCResumesAndIsExact(t *testing.T) {
	const size = 4 << 20
	m := newFakeMachine(size, "running")
	m.run(size / pageSize / 4)
	defer m.stop()
	e, _, _ := newEngine(t, m)
	if err := e.SetCapabilities([]migration.CapabilityStatus{{Capability: migration.CapTLC, State: true}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i := 0; i < 2; i++ { // two checkpoints in a row while the guest runs
		path := filepath.Join(dir, "c.chk")
		if err := e.Migrate("file:"+path, migration.MigrateOptions{}); err != nil {
			t.Fatal(err)
		}
		if info := e.Wait(); info.Status != migration.StatusCompleted {
			t.Fatalf("checkpoint %d: %s", i, info.Status)
		}
		if got := m.RunState(); got != "running" {
			t.Fatalf("checkpoint %d: source %s, want running", i, got)
		}
		m.mu.Lock()
		atStop := m.atStop
		m.mu.Unlock()
		dst, _, err := load(t, path, size)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dst.ram.mem, atStop) {
			t.Fatalf("checkpoint %d: restored RAM differs from RAM at the stop", i)
		}
	}
}

// A checkpoint keeps the VM in the state it had: a paused guest stays paused (QEMU's own
// migration leaves it in postmigrate).
func TestCheckpointTLCKeepsAPausedGuestPaused(t *testing.T) {
	const size = 4 << 20
	for _, tlc := range []bool{true, false} {
		m := newFakeMachine(size, "paused")
		m.ram.store(5, 7)
		e, _, _ := newEngine(t, m)
		if err := e.SetCapabilities([]migration.CapabilityStatus{{Capability: migration.CapTLC, State: tlc}}); err != nil {
			t.Fatal(err)
		}
		if err := e.Migrate("file:"+filepath.Join(t.TempDir(), "p.chk"), migration.MigrateOptions{}); err != nil {
			t.Fatal(err)
		}
		if info := e.Wait(); info.Status != migration.StatusCompleted {
			t.Fatalf("x-tlc=%v: %s", tlc, info.Status)
		}
		want := map[bool]string{true: "paused", false: "postmigrate"}[tlc]
		if got := m.RunState(); got != want {
			t.Errorf("x-tlc=%v: source %s, want %s", tlc, got, want)
		}
	}
}

func TestUnwrittenPagesAreNotSent(t *testing.T) {
	const size = 64 << 20
	m := newFakeMachine(size, "paused")
	m.ram.store(3, 42)
	e, ev, _ := newEngine(t, m)
	path := filepath.Join(t.TempDir(), "idle.chk")
	if err := e.Migrate("file:"+path, migration.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	info := e.Wait()
	if info.Status != migration.StatusCompleted || info.RAM.Normal != 1 {
		t.Fatalf("%s, ram %+v", info.Status, info.RAM)
	}
	if fi, _ := os.Stat(path); fi.Size() > 64<<10 {
		t.Errorf("idle 64 MiB guest gave a %d-byte stream", fi.Size())
	}
	// A paused source goes straight to stage 3: QEMU's two passes.
	want := []string{"MIGRATION:setup", "MIGRATION_PASS:1", "MIGRATION:active", "MIGRATION_PASS:2", "MIGRATION:completed"}
	if got := ev.list(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("events %v, want %v", got, want)
	}
	if _, src, err := load(t, path, size); err != nil || src != "paused" {
		t.Errorf("load: %q %v", src, err)
	}
}

func TestCancel(t *testing.T) {
	const size = 16 << 20
	m := newFakeMachine(size, "running")
	m.run(size / pageSize)
	defer m.stop()
	e, ev, _ := newEngine(t, m)
	// 1 MiB/s: the stream would take 16 s; cancel once active.
	if err := e.SetParams(migration.Params{MaxBandwidth: ptr[uint64](1 << 20)}); err != nil {
		t.Fatal(err)
	}
	if err := e.Migrate("exec:cat >/dev/null", migration.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitStatus(e, migration.StatusActive)
	e.Cancel()
	info := e.Wait()
	if info.Status != migration.StatusCancelled || info.RAM != nil {
		t.Fatalf("after cancel: %+v", info)
	}
	if got := m.RunState(); got != "running" {
		t.Errorf("source %s after cancel", got)
	}
	evs := ev.list()
	if evs[len(evs)-2] != "MIGRATION:cancelling" || evs[len(evs)-1] != "MIGRATION:cancelled" {
		t.Errorf("events %v", evs)
	}
	e.Cancel() // nothing to cancel: no effect
	if err := e.SetParams(migration.Params{MaxBandwidth: ptr[uint64](0)}); err != nil {
		t.Fatal(err)
	}
	if err := e.Migrate("file:"+filepath.Join(t.TempDir(), "x"), migration.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	if info := e.Wait(); info.Status != migration.StatusCompleted {
		t.Fatalf("migrate after cancel: %s", info.Status)
	}
}

func TestFailures(t *testing.T) {
	for _, tc := range []struct{ name, uri, desc string }{
		{"command exits", "exec:exit 3", "Unable to write to command: Broken pipe"},
		{"unreachable", "unix:" + filepath.Join(os.TempDir(), "tlcvm-no-such.sock"), "Failed to connect to"},
		// QEMU's text: the command's own message goes to stderr.
		{"full disk", "exec:cat >/dev/full", "Unable to write to command: Broken pipe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newFakeMachine(8<<20, "running")
			for p := uint64(0); p < 2048; p++ {
				m.ram.store(p, p+1)
			}
			e, _, stderr := newEngine(t, m)
			if err := e.Migrate(tc.uri, migration.MigrateOptions{}); err != nil {
				t.Fatal(err)
			}
			info := e.Wait()
			if info.Status != migration.StatusFailed || info.ErrorDesc == nil || !strings.Contains(*info.ErrorDesc, tc.desc) {
				t.Fatalf("%+v (%v)", info, deref(info.ErrorDesc))
			}
			if !strings.Contains(stderr.String(), "qemu-system-x86_64: "+*info.ErrorDesc+"\n") {
				t.Errorf("stderr %q", stderr.String())
			}
			if got := m.RunState(); got != "running" {
				t.Errorf("source %s after failure", got)
			}
			// A later migrate works.
			if err := e.Migrate("file:"+filepath.Join(t.TempDir(), "ok"), migration.MigrateOptions{}); err != nil {
				t.Fatal(err)
			}
			if info := e.Wait(); info.Status != migration.StatusCompleted {
				t.Fatalf("later migrate: %s", info.Status)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func ptr[T any](v T) *T { return &v }

func TestMigrateErrors(t *testing.T) {
	for _, tc := range []struct {
		name, state, uri string
		opt              migration.MigrateOptions
		want             string
		sentinel         error
	}{
		{"resume", "running", "exec:true", migration.MigrateOptions{Resume: true}, "Cannot resume if there is no paused migration", migration.ErrState},
		{"inmigrate", "inmigrate", "exec:true", migration.MigrateOptions{}, "Guest is waiting for an incoming migration", migration.ErrState},
		{"postmigrate", "postmigrate", "exec:true", migration.MigrateOptions{}, "Can't migrate the vm that was paused due to previous migration", migration.ErrState},
		{"protocol", "running", "foo:bar", migration.MigrateOptions{}, "Parameter 'uri' expects a valid migration protocol", nil},
		{"fd name", "running", "fd:nope", migration.MigrateOptions{}, "File descriptor named 'nope' has not been found", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, ev, _ := newEngine(t, newFakeMachine(1<<20, tc.state))
			err := e.Migrate(tc.uri, tc.opt)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("%v does not wrap %v", err, tc.sentinel)
			}
			if tc.sentinel == nil { // checked after setup: setup then failed, as QEMU
				if got := strings.Join(ev.list(), " "); got != "MIGRATION:setup MIGRATION:failed" {
					t.Errorf("events %s", got)
				}
			}
		})
	}
}

func TestMigrateWhileActive(t *testing.T) {
	m := newFakeMachine(16<<20, "running")
	m.run(4096)
	defer m.stop()
	e, _, _ := newEngine(t, m)
	_ = e.SetParams(migration.Params{MaxBandwidth: ptr[uint64](1 << 20)})
	if err := e.Migrate("exec:cat >/dev/null", migration.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	const busy = "There's a migration process in progress"
	if err := e.Migrate("exec:cat >/dev/null", migration.MigrateOptions{}); err == nil || err.Error() != busy || !errors.Is(err, migration.ErrActive) {
		t.Errorf("second migrate: %v", err)
	}
	if err := e.SetCapabilities([]migration.CapabilityStatus{{Capability: "events", State: true}}); err == nil || err.Error() != busy {
		t.Errorf("set capabilities while active: %v", err)
	}
	if err := e.SetParams(migration.Params{DowntimeLimit: ptr[uint64](100)}); err != nil {
		t.Errorf("set parameters while active: %v", err)
	}
	e.Cancel()
	e.Wait()
}

func TestLoadDetectsDamage(t *testing.T) {
	const size = 1 << 20
	m := newFakeMachine(size, "paused")
	for p := uint64(0); p < 64; p++ {
		m.ram.store(p, p*7+1)
	}
	e, _, _ := newEngine(t, m)
	path := filepath.Join(t.TempDir(), "s.chk")
	if err := e.Migrate("file:"+path, migration.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.Wait()
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"truncated half", good[:len(good)/2]},
		{"truncated by one", good[:len(good)-1]},
		{"flipped page byte", flip(good, len(good)/3)},
		{"flipped last byte", flip(good, len(good)-1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad")
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			dst, _, err := load(t, p, size)
			if err == nil || !errors.Is(err, migration.ErrLoad) {
				t.Fatalf("load of a damaged stream: %v", err)
			}
			if !errors.Is(err, stream.ErrTruncated) && !errors.Is(err, stream.ErrIntegrity) && !errors.Is(err, stream.ErrFormat) {
				t.Errorf("%v wraps no stream sentinel", err)
			}
			for _, s := range dst.secs {
				if s.value.Load() != 0 {
					t.Errorf("device state applied from a damaged stream")
				}
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x40
	return c
}

func TestCapabilities(t *testing.T) {
	e, _, _ := newEngine(t, newFakeMachine(1<<20, "running"))
	caps := e.Capabilities()
	if len(caps) != 23 || caps[0].Capability != "xbzrle" || caps[21].Capability != migration.CapTLC || caps[22].Capability != migration.CapMappedRAM {
		t.Fatalf("capabilities %v", caps)
	}
	for _, tc := range []struct {
		c    migration.Capability
		on   bool
		want string
	}{
		{"foo", false, "Parameter 'capability' does not accept value 'foo'"},
		{"block", true, "QEMU compiled without old-style (blk/-b, inc/-i) block migration"},
		{"postcopy-preempt", true, "Postcopy preempt requires postcopy-ram"},
		{"rdma-pin-all", true, "Capability 'rdma-pin-all' is not supported by tlcvm"},
		{"xbzrle", true, ""},
		{"xbzrle", false, ""},
		{"postcopy-ram", true, ""},
		{"compress", true, "Postcopy is not currently compatible with compression"},
		{"postcopy-preempt", true, "Capability 'postcopy-preempt' is not supported by tlcvm"},
		{"x-tlc", true, "Postcopy is not compatible with x-tlc (a checkpoint keeps its guest)"},
		{"postcopy-ram", false, ""},
		{"dirty-bitmaps", true, ""},
		{"x-tlc", true, ""},
		{"mapped-ram", true, ""},
	} {
		err := e.SetCapabilities([]migration.CapabilityStatus{{Capability: tc.c, State: tc.on}})
		if got := errString(err); got != tc.want {
			t.Errorf("%s=%v: %q, want %q", tc.c, tc.on, got, tc.want)
		}
	}
	if !e.Capability(migration.CapTLC) {
		t.Error("x-tlc not on")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestParameters(t *testing.T) {
	e, _, _ := newEngine(t, newFakeMachine(1<<20, "running"))
	p := e.Params()
	if *p.MaxBandwidth != 128<<20 || *p.DowntimeLimit != 300 || *p.MultifdChannels != 2 || p.BlockBitmapMapping != nil || p.XCheckpointCPU != nil {
		t.Fatalf("defaults %+v", p)
	}
	for _, tc := range []struct {
		name string
		p    migration.Params
		want string
	}{
		{"downtime", migration.Params{DowntimeLimit: ptr[uint64](2000001)}, "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms"},
		{"compress-level", migration.Params{CompressLevel: ptr[uint8](10)}, "Parameter 'compress_level' expects a value between 0 and 9"},
		{"xbzrle", migration.Params{XbzrleCacheSize: ptr[uint64](1000)}, "Parameter 'xbzrle_cache_size' expects a power of two no less than the target page size"},
		{"max-cpu-throttle", migration.Params{MaxCPUThrottle: ptr[uint8](5)}, "Parameter 'max_cpu_throttle' expects an integer in the range of cpu_throttle_initial to 99"},
		{"announce-step", migration.Params{AnnounceStep: ptr[uint64](0)}, "Parameter 'announce_step' expects a value between 0 and 10000"},
		{"multifd-channels", migration.Params{MultifdChannels: ptr[uint8](0)}, "Parameter 'multifd_channels' expects a value between 1 and 255"},
		{"ok", migration.Params{DowntimeLimit: ptr[uint64](2000000), MaxBandwidth: ptr[uint64](1 << 62)}, ""},
	} {
		if got := errString(e.SetParams(tc.p)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if p := e.Params(); *p.DowntimeLimit != 2000000 || *p.CompressLevel != 1 {
		t.Errorf("after updates: %d %d", *p.DowntimeLimit, *p.CompressLevel)
	}
}

func TestIncomingRequiresDefer(t *testing.T) {
	m := newFakeMachine(1<<20, "inmigrate")
	e, _, _ := newEngine(t, m)
	err := e.Incoming("exec:cat /dev/null", migration.IncomingOptions{})
	if errString(err) != "'-incoming' was not specified on the command line" {
		t.Errorf("%v", err)
	}
}

// firstDiff describes where two RAM images first differ (page, offset, bytes), to tell a
// lost page from a torn one when an exactness test fails.
func firstDiff(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			p := i / pageSize
			return fmt.Sprintf("first at 0x%x (page %d): restored % x, source % x", i, p,
				got[i&^7:i&^7+8], want[i&^7:i&^7+8])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(got), len(want))
}
