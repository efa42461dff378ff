package daemon_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"tlcvm/internal/daemon"
)

func TestPidfileWriteLockRemove(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.pid")
	p, err := daemon.WritePidfile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("pidfile holds %q", b)
	}
	p.Remove()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("pidfile not removed: %v", err)
	}
}

func TestPidfileErrors(t *testing.T) {
	_, err := daemon.WritePidfile("/nonexistent-dir/p.pid")
	want := "Could not create '/nonexistent-dir/p.pid': No such file or directory"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// TestPidfileRemoveOnlyOurs: a file that took the pid file's name meanwhile (the same path
// inside a -chroot names another file) is left alone.
func TestPidfileRemoveOnlyOurs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.pid")
	p, err := daemon.WritePidfile(path)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("not ours\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	p.Remove()
	if b, err := os.ReadFile(path); err != nil || string(b) != "not ours\n" {
		t.Errorf("the file at the pid file's path: %q, %v", b, err)
	}
}
