package tests_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"tlcvm/tests/harness"
)

// End-to-end tests of checkpoints at file speed (issue 6): incremental checkpoints in place,
// a kill in the middle of one, restore by mapping and the file under a restored guest.

func tlcMappedCaps() map[string]any {
	return map[string]any{"capabilities": []map[string]any{{"capability": "events", "state": true},
		{"capability": "x-tlc", "state": true}, {"capability": "mapped-ram", "state": true}}}
}

// fileInfo is query-migrate's x-tlc-file.
func fileInfo(t *testing.T, info harness.Value) gjson.Result {
	t.Helper()
	f := gjson.Get(info.String(), "x-tlc-file")
	if !f.Exists() {
		t.Fatalf("query-migrate without x-tlc-file: %s", info)
	}
	return f
}

// checkpoint runs migrate to uri and returns x-tlc-file once completed.
func (v *mvm) checkpoint(uri string) gjson.Result {
	v.t.Helper()
	v.do("migrate", map[string]any{"uri": uri})
	return fileInfo(v.t, v.waitMigration("completed"))
}

// TestFileIncremental: a second x-tlc checkpoint to the same file writes only what the guest
// dirtied since the first, and the file restores to the guest's RAM at the second.
func TestFileIncremental(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	dir := shortDir(t)
	chk := filepath.Join(dir, "inc.chk")
	// The fill is paced like the rewrite loop: 8 MiB at 4 MB/s of guest time take ~2 s.
	src := startMigVM(t, bin, dir, "src", migArgs("ws=8M,,rate=4M")...)
	src.do("migrate-set-capabilities", tlcMappedCaps())
	src.waitFilled()
	src.do("stop", nil)
	first := src.checkpoint("file:" + chk)
	if first.Get("incremental").Bool() || first.Get("mode").Str != "mapped" {
		t.Fatalf("first checkpoint: %s", first.Raw)
	}
	src.do("cont", nil)
	time.Sleep(200 * time.Millisecond) // the guest dirties a little (4 MB/s of guest time)
	src.do("stop", nil)
	second := src.checkpoint("file:" + chk)
	if !second.Get("incremental").Bool() {
		t.Fatalf("second checkpoint not incremental: %s", second.Raw)
	}
	if w1, w2 := first.Get("written-bytes").Int(), second.Get("written-bytes").Int(); w2 >= w1/2 {
		t.Errorf("incremental checkpoint wrote %d bytes, the full one %d", w2, w1)
	}
	want := src.pmemsave(migRAM, filepath.Join(dir, "src.mem"))
	src.quit()
	dst := startMigVM(t, bin, dir, "dst", migArgs("ws=8M,,rate=4M", "-S", "-incoming", "file:"+chk)...)
	info := dst.waitMigration("completed")
	if f := fileInfo(t, info); f.Get("mode").Str != "mapped" || f.Get("populate").Str != "background" {
		t.Errorf("restore: %s", f.Raw)
	}
	if got := dst.pmemsave(migRAM, filepath.Join(dir, "dst.mem")); !bytes.Equal(got, want) {
		t.Fatal("restored RAM differs from the source's at the incremental checkpoint")
	}
	hmp := dst.do("human-monitor-command", map[string]any{"command-line": "info migrate"})
	if !strings.Contains(hmp.Str(), "restore from file: mapped, populate background, pages populated eagerly: ") {
		t.Errorf("info migrate: %s", hmp.Str())
	}
	dst.do("cont", nil)
	dst.quit()
}

// TestFileIncrementalKilled: a source killed (SIGKILL) in the middle of an incremental
// checkpoint leaves the previous checkpoint, whole.
func TestFileIncrementalKilled(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	dir := shortDir(t)
	chk := filepath.Join(dir, "k.chk")
	src := startMigVM(t, bin, dir, "src", migArgs("ws=16M,,rate=max")...)
	src.do("migrate-set-capabilities", tlcMappedCaps())
	src.do("stop", nil)
	src.checkpoint("file:" + chk)
	want := src.pmemsave(migRAM, filepath.Join(dir, "src.mem"))
	src.do("cont", nil)
	time.Sleep(200 * time.Millisecond)
	// 1 MiB/s: the incremental checkpoint of the rewritten working set takes seconds.
	src.do("migrate-set-parameters", map[string]any{"max-bandwidth": 1 << 20})
	src.do("migrate", map[string]any{"uri": "file:" + chk})
	deadline := time.Now().Add(harness.DefaultTimeout)
	for {
		info := src.do("query-migrate", nil)
		if f := gjson.Get(info.String(), "x-tlc-file"); f.Get("incremental").Bool() &&
			gjson.Get(info.String(), "ram.transferred").Int() > 1<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("incremental checkpoint not under way: %s", info)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = src.p.Signal(syscall.SIGKILL)
	_, _ = src.p.Wait(harness.DefaultTimeout)
	dst := startMigVM(t, bin, dir, "dst", migArgs("ws=16M,,rate=max", "-S", "-incoming", "file:"+chk)...)
	dst.waitMigration("completed")
	if got := dst.pmemsave(migRAM, filepath.Join(dir, "dst.mem")); !bytes.Equal(got, want) {
		t.Fatal("the file is not the previous checkpoint after a kill mid-checkpoint")
	}
	dst.quit()
}

// TestFileBackingUnchanged: a guest restored by mapping is not changed by later checkpoints
// to its own file (incremental in place, full written aside), by another guest's checkpoint
// to it, or by its removal; a checkpoint that would rewrite it in place is refused.
func TestFileBackingUnchanged(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	dir := shortDir(t)
	chk := filepath.Join(dir, "b.chk")
	mk := startMigVM(t, bin, dir, "mk", migArgs("ws=16M,,rate=max")...)
	mk.do("migrate-set-capabilities", tlcMappedCaps())
	time.Sleep(100 * time.Millisecond)
	mk.do("stop", nil)
	mk.checkpoint("file:" + chk)
	mk.quit()

	g := startMigVM(t, bin, dir, "g", migArgs("ws=16M,,rate=max", "-S", "-incoming", "defer")...)
	g.do("migrate-set-parameters", map[string]any{"x-restore-populate": "none"})
	g.do("migrate-incoming", map[string]any{"uri": "file:" + chk})
	g.waitMigration("completed")
	g.do("migrate-set-capabilities", tlcMappedCaps())
	g.do("cont", nil)
	time.Sleep(100 * time.Millisecond)
	g.do("stop", nil)
	want := g.pmemsave(migRAM, filepath.Join(dir, "g0.mem"))
	same := func(step string) {
		t.Helper()
		if got := g.pmemsave(migRAM, filepath.Join(dir, "g.mem")); !bytes.Equal(got, want) {
			t.Fatalf("guest RAM changed by %s", step)
		}
	}

	// Its own file, incrementally (the baseline is the restore).
	if f := g.checkpoint("file:" + chk); !f.Get("incremental").Bool() {
		t.Errorf("checkpoint to the restored file not incremental: %s", f.Raw)
	}
	same("an incremental checkpoint to its own file")

	// Another guest: a streamed checkpoint would cut the file in place: refused.
	other := startMigVM(t, bin, dir, "other", migArgs("ws=24M,,rate=max")...)
	r, err := other.q.Execute("migrate", map[string]any{"uri": "file:" + chk})
	if err != nil || !strings.Contains(string(r.Raw), "holds the memory of a running guest") {
		t.Errorf("streamed checkpoint over a mapped file: %s %v", r.Raw, err)
	}
	// A mapped-ram one is written aside and renamed over it.
	other.do("migrate-set-capabilities", tlcMappedCaps())
	time.Sleep(100 * time.Millisecond)
	if f := other.checkpoint("file:" + chk); f.Get("incremental").Bool() {
		t.Errorf("another guest's first checkpoint incremental: %s", f.Raw)
	}
	same("another guest's checkpoint to its file")
	other.quit()

	// Its own file again: the file is now another guest's checkpoint, so a full one, aside.
	if f := g.checkpoint("file:" + chk); f.Get("incremental").Bool() {
		t.Errorf("checkpoint over another guest's file incremental: %s", f.Raw)
	}
	same("a full checkpoint to its own file")

	if err := os.Remove(chk); err != nil {
		t.Fatal(err)
	}
	same("removing the file")
	g.do("cont", nil)
	if st := g.status(); st != "running" {
		t.Errorf("guest %s after its file went", st)
	}
	g.quit()
}

// TestFileCorruptPage: a page damaged in the file is caught before the guest reads it: with
// populate before-run the restore fails; with lazy populate the guest stops in
// internal-error and the page cannot be read through the monitor.
func TestFileCorruptPage(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	dir := shortDir(t)
	chk := filepath.Join(dir, "c.chk")
	mappedCheckpoint(t, bin, dir, chk, true)
	raw, err := os.ReadFile(chk)
	if err != nil {
		t.Fatal(err)
	}
	raw[presentPage(t, chk)+100] ^= 1
	if err := os.WriteFile(chk, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("before-run", func(t *testing.T) {
		p := harness.Start(t, harness.Config{Bin: bin, Dir: dir, Args: append([]string{"-nodefaults", "-display", "none",
			"-qmp", "unix:" + filepath.Join(dir, "br.qmp") + ",server=on,wait=off"}, migArgs("ws=8M,,rate=max", "-incoming", "defer")...)})
		q, err := harness.DialQMP(filepath.Join(dir, "br.qmp"), p, harness.DefaultTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Connect(); err != nil {
			t.Fatal(err)
		}
		_, _ = q.Execute("migrate-set-parameters", map[string]any{"x-restore-populate": "before-run"})
		_, _ = q.Execute("migrate-incoming", map[string]any{"uri": "file:" + chk})
		st, err := p.Wait(harness.DefaultTimeout)
		if err != nil {
			t.Fatal(err)
		}
		<-p.Stderr.Done()
		if st.Code != 1 || !strings.Contains(string(p.Stderr.Bytes()), "CRC32C") {
			t.Errorf("exit %s, stderr %q", st, p.Stderr.Bytes())
		}
	})

	t.Run("lazy", func(t *testing.T) {
		g := startMigVM(t, bin, dir, "lazy", migArgs("ws=16M,,rate=max", "-incoming", "file:"+chk)...)
		g.waitMigration("completed")
		deadline := time.Now().Add(harness.DefaultTimeout)
		for g.status() != "internal-error" {
			if time.Now().After(deadline) {
				t.Fatalf("guest %s with a corrupt page under it", g.status())
			}
			time.Sleep(20 * time.Millisecond)
		}
		r, err := g.q.Execute("pmemsave", map[string]any{"val": 0, "size": migRAM, "filename": filepath.Join(dir, "x.mem")})
		if err != nil || !strings.Contains(string(r.Raw), "CRC32C") {
			t.Errorf("pmemsave over a corrupt page: %s %v", r.Raw, err)
		}
		g.quit()
	})
}
