package tests_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tlcvm/tests/harness"
)

// TestGolden replays testdata/golden/*.txt against the binary under test.
// With -update it rewrites them from that binary: regenerate from QEMU
// (TLCVM_BIN=/usr/bin/qemu-system-x86_64), read the diff, commit only what
// you understand.
func TestGolden(t *testing.T) {
	bin := requireCandidate(t)
	files, err := filepath.Glob("testdata/golden/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			parallel(t)
			want, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			scripts, err := harness.ParseScriptFile(f, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(scripts) != 1 {
				t.Fatalf("%s: a golden file holds one case, not %d", f, len(scripts))
			}
			tr, err := harness.Run(t, bin, scripts[0], harness.RunOptions{})
			if err != nil {
				t.Fatalf("%v\n%s", err, render(tr))
			}
			for _, fl := range tr.Failures {
				t.Errorf("%s", fl)
			}
			got := strings.Join(tr.Render(harness.RenderOptions{}), "\n") + "\n"
			if *update {
				if err := os.WriteFile(f, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if d := harness.Diff(strings.Split(strings.TrimSuffix(string(want), "\n"), "\n"), strings.Split(strings.TrimSuffix(got, "\n"), "\n")); d != "" {
				t.Errorf("%s differs (- golden, + %s); rerun with -update if intended:\n%s", f, bin, d)
			}
		})
	}
}
