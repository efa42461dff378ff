package tests_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tlcvm/tests/harness"
)

// TestDifferential runs every case of testdata/qmp and testdata/hmp against
// QEMU and tlcvm and requires equal transcripts.
func TestDifferential(t *testing.T) {
	ref := requireReference(t)
	cand := requireCandidate(t)
	files, err := filepath.Glob("testdata/qmp/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	hmpFiles, _ := filepath.Glob("testdata/hmp/*.txt")
	files = append(files, hmpFiles...)
	if len(files) == 0 {
		t.Fatal("no case files")
	}
	runCaseFiles(t, ref, cand, files)
}

// runCaseFiles runs every case of the files as a subtest named dir/file/case.
func runCaseFiles(t *testing.T, ref, cand string, files []string) {
	for _, f := range files {
		scripts, err := harness.ParseScriptFile(f, false)
		if err != nil {
			t.Fatal(err)
		}
		group := filepath.Base(filepath.Dir(f)) + "/" + strings.TrimSuffix(filepath.Base(f), ".txt")
		for _, sc := range scripts {
			name := group
			if sc.Name != strings.TrimSuffix(filepath.Base(f), ".txt") {
				name += "/" + sc.Name
			}
			t.Run(name, func(t *testing.T) {
				if sc.Skip != "" {
					t.Skip(sc.Skip)
				}
				parallel(t)
				differential(t, ref, cand, sc)
			})
		}
	}
}

func differential(t *testing.T, ref, cand string, sc *harness.Script) {
	a, err := harness.Run(t, ref, sc, harness.RunOptions{Reference: true})
	if err != nil {
		t.Fatalf("reference %s: %v\n%s", ref, err, render(a))
	}
	for _, f := range a.Failures {
		t.Errorf("reference QEMU does not meet the case (fix the case): %s", f)
	}
	b, err := harness.Run(t, cand, sc, harness.RunOptions{})
	if err != nil {
		t.Fatalf("under test %s: %v\n%s", cand, err, render(b))
	}
	for _, f := range b.Failures {
		t.Errorf("tlcvm: %s", f)
	}
	opt := harness.RenderOptions{Raw: true}
	if d := harness.Diff(a.Render(opt), b.Render(opt)); d != "" {
		t.Errorf("%s:%d: transcripts differ (- QEMU %s, + %s):\n%s", sc.File, sc.Line, ref, cand, d)
	}
	if testing.Verbose() && os.Getenv("TLCVM_SHOW") != "" {
		t.Logf("transcript:\n%s", render(a))
	}
}

func render(tr *harness.Transcript) string {
	if tr == nil {
		return ""
	}
	return strings.Join(tr.Render(harness.RenderOptions{}), "\n")
}

// TestCmdline runs every line of testdata/cmdline.txt on both binaries.
func TestCmdline(t *testing.T) {
	ref := requireReference(t)
	cand := requireCandidate(t)
	src, err := os.ReadFile("testdata/cmdline.txt")
	if err != nil {
		t.Fatal(err)
	}
	cases, err := harness.ParseCmdlines("testdata/cmdline.txt", src)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name(), func(t *testing.T) {
			parallel(t)
			a, fa, err := harness.RunCmdline(t, ref, c)
			if err != nil {
				t.Fatalf("reference: %v", err)
			}
			for _, f := range fa {
				t.Errorf("reference QEMU does not meet the case (fix the case): %s", f)
			}
			b, fb, err := harness.RunCmdline(t, cand, c)
			if err != nil {
				t.Fatalf("under test: %v", err)
			}
			for _, f := range fb {
				t.Errorf("tlcvm: %s", f)
			}
			if d := harness.Diff(a, b); d != "" {
				t.Errorf("testdata/cmdline.txt:%d: %s\n(- QEMU, + tlcvm):\n%s", c.Line, c.Source, d)
			}
			if testing.Verbose() && os.Getenv("TLCVM_SHOW") != "" {
				t.Logf("%s\n%s", c.Source, strings.Join(a, "\n"))
			}
		})
	}
}
