package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ErrNoBinary is wrapped when a binary a test needs is absent.
var ErrNoBinary = errors.New("harness: binary not available")

// ReferenceBin is QEMU 7.2, the reference of every differential test:
// $QEMU_BIN, or /usr/bin/qemu-system-x86_64.
func ReferenceBin() string {
	if b := os.Getenv("QEMU_BIN"); b != "" {
		return b
	}
	return "/usr/bin/qemu-system-x86_64"
}

// RequiresBinary skips the test, with the reason, unless path is an
// executable file.
func RequiresBinary(t testing.TB, path string) {
	t.Helper()
	if err := Executable(path); err != nil {
		t.Skipf("skipping: %v", err)
	}
}

// Executable reports whether path is an executable regular file.
func Executable(path string) error {
	if path == "" {
		return fmt.Errorf("%w: no path", ErrNoBinary)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoBinary, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%w: %s is not an executable file", ErrNoBinary, path)
	}
	return nil
}

// FindCandidate locates the binary under test (tlcvm): $TLCVM_BIN if set;
// else the main package ./cmd/qemu-system-x86_64 of the module at root,
// built into outDir; else root/bin/qemu-system-x86_64. It returns "" and the
// reason when there is none.
func FindCandidate(root, outDir string) (path, reason string, err error) {
	if b := os.Getenv("TLCVM_BIN"); b != "" {
		abs, err := filepath.Abs(b)
		if err != nil {
			return "", "", err
		}
		if err := Executable(abs); err != nil {
			return "", "", fmt.Errorf("TLCVM_BIN: %w", err)
		}
		return abs, "", nil
	}
	if fi, err := os.Stat(filepath.Join(root, "cmd", ProgName)); err == nil && fi.IsDir() {
		out := filepath.Join(outDir, ProgName)
		cmd := exec.Command("go", "build", "-o", out, "./cmd/"+ProgName)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("go build ./cmd/%s: %v\n%s", ProgName, err, b)
		}
		return out, "", nil
	}
	prebuilt := filepath.Join(root, "bin", ProgName)
	if Executable(prebuilt) == nil {
		return prebuilt, "", nil
	}
	return "", fmt.Sprintf("no tlcvm binary: TLCVM_BIN is unset, %s/cmd/%s does not exist and %s is absent "+
		"(set TLCVM_BIN=/usr/bin/qemu-system-x86_64 to run the suite QEMU against QEMU)", root, ProgName, prebuilt), nil
}
