package tests_test

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tlcvm/migration/stream"
	"tlcvm/tests/harness"
)

// End-to-end tests of issue 6's first slice: file: checkpoints in QEMU 9.0's mapped-ram
// layout, restored with -incoming file: and migrate-incoming file:.

func mappedCaps(on bool) map[string]any {
	return map[string]any{"capabilities": []map[string]any{{"capability": "events", "state": true},
		{"capability": "mapped-ram", "state": on}}}
}

// mappedCheckpoint checkpoints a busy guest to chk and returns its RAM in postmigrate.
func mappedCheckpoint(t *testing.T, bin, dir, chk string, mapped bool) []byte {
	t.Helper()
	src := startMigVM(t, bin, dir, "src", migArgs("ws=16M,,rate=max")...)
	src.do("migrate-set-capabilities", mappedCaps(mapped))
	src.do("migrate-set-parameters", map[string]any{"max-bandwidth": uint64(9223372036853727232)})
	src.do("migrate", map[string]any{"uri": "file:" + chk})
	src.waitMigration("completed")
	want := src.pmemsave(migRAM, filepath.Join(dir, "src.mem"))
	src.quit()
	return want
}

// TestMappedRAMRoundTrip: with and without mapped-ram, a checkpoint through file: restores
// byte for byte, by -incoming file: and by migrate-incoming file:.
func TestMappedRAMRoundTrip(t *testing.T) {
	bin := requireCandidate(t)
	for _, tc := range []struct {
		name             string
		mapped, deferred bool
	}{
		{"streamed", false, false},
		{"mapped", true, false},
		{"mapped migrate-incoming", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parallel(t)
			dir := shortDir(t)
			chk := filepath.Join(dir, "a.chk")
			want := mappedCheckpoint(t, bin, dir, chk, tc.mapped)
			raw, err := os.ReadFile(chk)
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.Contains(raw[:128], []byte("\x0amapped-ram")); got != tc.mapped {
				t.Errorf("configuration lists mapped-ram: %v", got)
			}
			if st, _ := os.Stat(chk); tc.mapped && st.Size() > migRAM+16<<20 {
				t.Errorf("mapped file of %d bytes for %d of RAM", st.Size(), migRAM)
			}
			var dst *mvm
			if tc.deferred {
				dst = startMigVM(t, bin, dir, "dst", migArgs("ws=16M,,rate=max", "-S", "-incoming", "defer")...)
				dst.do("migrate-incoming", map[string]any{"uri": "file:" + chk})
			} else {
				dst = startMigVM(t, bin, dir, "dst", migArgs("ws=16M,,rate=max", "-S", "-incoming", "file:"+chk)...)
			}
			dst.waitMigration("completed")
			if st := dst.status(); st != "paused" {
				t.Fatalf("destination %s, want paused", st)
			}
			if got := dst.pmemsave(migRAM, filepath.Join(dir, "dst.mem")); !bytes.Equal(got, want) {
				t.Fatal("restored RAM differs from the source's")
			}
			dst.do("cont", nil)
			dst.quit()
		})
	}
}

// presentPage returns the file offset of the first page present in the first RAM block of
// a mapped-ram file.
func presentPage(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := stream.NewFileReader(f, 0)
	for {
		rec, err := rd.Next()
		if err != nil {
			t.Fatal(err)
		}
		if rec.Kind != stream.RAMBlocks {
			continue
		}
		mb := rec.Mapped[0]
		bm := make([]byte, stream.BitmapSize(rec.Blocks[0].Size/stream.PageSize))
		if _, err := f.ReadAt(bm, int64(mb.BitmapOffset)); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(bm); i += 8 {
			if w := binary.LittleEndian.Uint64(bm[i:]); w != 0 {
				return int64(mb.PagesOffset) + int64(i*8+bits.TrailingZeros64(w))*stream.PageSize
			}
		}
		t.Fatal("no page present")
	}
}

// TestMappedRAMDamaged: a truncated file makes the destination print QEMU's error and exit 1
// before the guest runs (a flipped byte in a page: TestFileCorruptPage).
func TestMappedRAMDamaged(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	dir := shortDir(t)
	chk := filepath.Join(dir, "good.chk")
	mappedCheckpoint(t, bin, dir, chk, true)
	good, err := os.ReadFile(chk)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good)
	flipped[len(good)-300] ^= 1 // the device state, verified before the guest runs
	for name, data := range map[string][]byte{"corrupt state": flipped, "truncated": good[:len(good)/2], "cut tail": good[:len(good)-10]} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".chk")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		p := harness.Start(t, harness.Config{Bin: bin, Dir: dir,
			Args: append([]string{"-nodefaults", "-display", "none"}, migArgs("ws=8M,,rate=max", "-incoming", "file:"+path)...)})
		st, err := p.Wait(harness.DefaultTimeout)
		if err != nil {
			t.Fatal(err)
		}
		<-p.Stderr.Done() // the process has exited: its stderr ends (Wait does not wait for it)
		if st.Code != 1 || !strings.Contains(string(p.Stderr.Bytes()), "qemu-system-x86_64: load of migration failed: ") {
			t.Errorf("%s: exit %s, stderr %q", name, st, p.Stderr.Bytes())
		}
	}
}

// TestMappedRAMNeedsFile: QEMU 9.0 refuses mapped-ram with a channel that cannot seek.
func TestMappedRAMNeedsFile(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	dir := shortDir(t)
	v := startMigVM(t, bin, dir, "src", migArgs("ws=8M,,rate=max")...)
	v.do("migrate-set-capabilities", mappedCaps(true))
	for _, uri := range []string{"unix:" + filepath.Join(dir, "none.sock"), "exec:cat >/dev/null"} {
		r, err := v.q.Execute("migrate", map[string]any{"uri": uri})
		if err != nil {
			t.Fatal(err)
		}
		e, _ := r.Value.Get("error")
		desc, _ := e.Get("desc")
		class, _ := e.Get("class")
		if desc.Str() != "Migration requires seekable transport (e.g. file)" || class.Str() != "GenericError" {
			t.Errorf("migrate %s: %s", uri, r.Raw)
		}
	}
	if st := v.status(); st != "running" {
		t.Errorf("source %s", st)
	}
	v.quit()
}
