// Package gentest holds the check that a package's generated file is current: its
// generator (./gen, taking -out DIR and -qemu BIN) is run against the reference QEMU 7.2
// and must write the committed file byte for byte.
package gentest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ReferenceQEMU is the binary the generators read.
const ReferenceQEMU = "/usr/bin/qemu-system-x86_64"

// UpToDate runs `go run ./gen -out TMP -qemu ReferenceQEMU` in the test's package
// directory and fails unless TMP/file equals the committed file; pkg names the package in
// the `go generate` hint. It skips without the reference QEMU or a go toolchain.
func UpToDate(t *testing.T, file, pkg string) {
	t.Helper()
	if _, err := os.Stat(ReferenceQEMU); err != nil {
		t.Skip("no reference QEMU")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain")
	}
	dir := t.TempDir()
	if out, err := exec.Command(goBin, "run", "./gen", "-out", dir, "-qemu", ReferenceQEMU).CombinedOutput(); err != nil {
		t.Fatalf("go run ./gen: %v\n%s", err, out)
	}
	want, _ := os.ReadFile(filepath.Join(dir, file))
	got, _ := os.ReadFile(file)
	if string(got) != string(want) {
		t.Errorf("%s is stale: run go generate %s", file, pkg)
	}
}
