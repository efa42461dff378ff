package migration_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"tlcvm/migration"
	"tlcvm/migration/stream"
)

func setMapped(t *testing.T, e *migration.Engine, caps ...migration.Capability) {
	t.Helper()
	list := []migration.CapabilityStatus{{Capability: migration.CapMappedRAM, State: true}}
	for _, c := range caps {
		list = append(list, migration.CapabilityStatus{Capability: c, State: true})
	}
	if err := e.SetCapabilities(list); err != nil {
		t.Fatal(err)
	}
}

// incoming loads uri into a fresh machine through StartIncoming, as -incoming does.
func incoming(t *testing.T, uri string, size int) (*fakeMachine, migration.Status, string) {
	t.Helper()
	dst := newFakeMachine(size, "inmigrate")
	stderr := &syncBuffer{}
	exited := make(chan int, 1)
	e := migration.New(migration.Options{Machine: dst, Stderr: stderr, Exit: func(s int) { exited <- s }})
	t.Cleanup(e.Close)
	if err := e.StartIncoming(uri, migration.IncomingOptions{}); err != nil {
		t.Fatal(err)
	}
	e.Ready()
	st := waitStatus(e, migration.StatusCompleted, migration.StatusFailed)
	if st == migration.StatusFailed {
		<-exited // the report is written before Exit
	}
	return dst, st, stderr.String()
}

// TestMappedRAMRoundTrip: checkpoints of a running guest with and without mapped-ram, in
// QEMU mode and x-tlc, at offset 0 and at an offset, restore byte for byte through file:.
func TestMappedRAMRoundTrip(t *testing.T) {
	const size = 4 << 20
	for _, tc := range []struct {
		name   string
		mapped bool
		tlc    bool
		suffix string
		off    int
	}{
		{"sequential", false, false, "", 0},
		{"mapped", true, false, "", 0},
		{"mapped x-tlc", true, true, "", 0},
		{"mapped offset", true, false, ",offset=0x1000", 0x1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newFakeMachine(size, "running")
			m.run(size / pageSize / 2)
			defer m.stop()
			e, _, _ := newEngine(t, m)
			var caps []migration.Capability
			if tc.tlc {
				caps = append(caps, migration.CapTLC)
			}
			if tc.mapped {
				setMapped(t, e, caps...)
			}
			path := filepath.Join(t.TempDir(), "m.chk")
			uri := "file:" + path + tc.suffix
			for pass := 0; pass < 2; pass++ { // the second checkpoint rewrites the file
				if err := e.Migrate(uri, migration.MigrateOptions{}); err != nil {
					t.Fatal(err)
				}
				if info := e.Wait(); info.Status != migration.StatusCompleted {
					t.Fatalf("status %s (%v)", info.Status, deref(info.ErrorDesc))
				}
				if !tc.tlc {
					break
				}
			}
			m.mu.Lock()
			want := bytes.Clone(m.ram.mem)
			if tc.tlc {
				want = m.atStop
			}
			m.mu.Unlock()
			dst, st, stderr := incoming(t, uri, size)
			if st != migration.StatusCompleted {
				t.Fatalf("incoming %s: %s", st, stderr)
			}
			if !bytes.Equal(dst.ram.mem, want) {
				t.Fatal("restored RAM differs")
			}
			if dst.incoming != "running" {
				t.Errorf("source state %q", dst.incoming)
			}
			if tc.mapped {
				st, _ := os.Stat(path)
				if st.Size() > size+3<<20 {
					t.Errorf("file of %d bytes for %d bytes of RAM", st.Size(), size)
				}
				raw, _ := os.ReadFile(path)
				if !bytes.Contains(raw[tc.off:tc.off+200], []byte("\x0amapped-ram")) {
					t.Error("configuration does not list mapped-ram")
				}
			}
		})
	}
}

// TestMappedRAMDamage: a flipped byte in a page and a truncated file are refused before
// the device state is applied (the guest would not run); the process exits 1 with QEMU's
// two lines.
func TestMappedRAMDamage(t *testing.T) {
	const size = 2 << 20
	m := newFakeMachine(size, "paused")
	for p := uint64(0); p < 300; p++ {
		m.ram.store(p, p*7+1)
	}
	e, _, _ := newEngine(t, m)
	setMapped(t, e)
	dir := t.TempDir()
	path := filepath.Join(dir, "good")
	if err := e.Migrate("file:"+path, migration.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	if info := e.Wait(); info.Status != migration.StatusCompleted {
		t.Fatal(info.Status)
	}
	good, _ := os.ReadFile(path)
	// Page 5 of pc.ram is at the first 1 MiB boundary after the header + 5 pages.
	pageByte := 1<<20 + 5*pageSize + 3
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"flipped page byte", flip(good, pageByte), stream.ErrIntegrity},
		{"truncated in the pages", good[:1<<20+100*pageSize], stream.ErrTruncated},
		{"truncated by one", good[:len(good)-1], stream.ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad")
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			dst, st, stderr := incoming(t, "file:"+p, size)
			if st != migration.StatusFailed {
				t.Fatalf("status %s", st)
			}
			if !bytes.Contains([]byte(stderr), []byte(tc.want.Error())) || !bytes.Contains([]byte(stderr), []byte("load of migration failed: ")) {
				t.Errorf("stderr %q", stderr)
			}
			for _, s := range dst.secs {
				if s.value.Load() != 0 {
					t.Error("device state applied from a damaged file")
				}
			}
			if dst.incoming != "" {
				t.Error("IncomingDone called")
			}
		})
	}
	// Load (a channel that cannot seek) refuses a mapped-ram stream.
	f, _ := os.Open(path)
	defer f.Close()
	_, err := migration.New(migration.Options{Machine: newFakeMachine(size, "inmigrate")}).Load(f)
	if !errors.Is(err, stream.ErrFormat) || !errors.Is(err, migration.ErrLoad) {
		t.Errorf("mapped-ram through Load: %v", err)
	}
}

// TestMappedRAMNeedsFile: QEMU 9.0's refusal of mapped-ram with a channel that cannot seek,
// before anything starts (no MIGRATION event), on both sides.
func TestMappedRAMNeedsFile(t *testing.T) {
	m := newFakeMachine(1<<20, "running")
	e, ev, _ := newEngine(t, m)
	setMapped(t, e)
	for _, uri := range []string{"tcp:127.0.0.1:1", "unix:/nonexistent", "exec:cat >/dev/null", "fd:3"} {
		err := e.Migrate(uri, migration.MigrateOptions{})
		if errString(err) != "Migration requires seekable transport (e.g. file)" || !errors.Is(err, migration.ErrInvalid) {
			t.Errorf("migrate %s: %v", uri, err)
		}
		if err := e.StartIncoming(uri, migration.IncomingOptions{}); errString(err) != "Migration requires seekable transport (e.g. file)" {
			t.Errorf("incoming %s: %v", uri, err)
		}
	}
	if evs := ev.list(); len(evs) != 0 {
		t.Errorf("events %v", evs)
	}
	caps := e.Capabilities()
	if n := len(caps); caps[n-2].Capability != migration.CapTLC || caps[n-1].Capability != migration.CapMappedRAM || !caps[n-1].State {
		t.Errorf("capabilities end with %v", caps[n-2:])
	}
}
