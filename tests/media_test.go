package tests_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"tlcvm/internal/locktest"
	"tlcvm/tests/harness"
)

// Removable media beyond what a transcript shows: the image locks a medium's nodes take
// (QEMU's file-posix lock bytes, seen from another process), and HMP's password prompt.

// lockBytes lists the lock bytes of QEMU's file-posix scheme that some open file
// description holds on path ("-" when none).
func lockBytes(t *testing.T, path string) string {
	t.Helper()
	held, err := locktest.Held(path)
	if err != nil {
		t.Fatal(err)
	}
	if held == "" {
		return "-"
	}
	return held
}

// TestMediaLocks changes the media of a pc's CD-ROMs and floppy through every path
// (change-medium with each read-only mode, eject, formats probed and given) with QEMU
// 7.2 and with tlcvm, and after each step compares the reply and the lock bytes each image
// carries: the permissions a medium's nodes take under a tray or slot must be QEMU's.
func TestMediaLocks(t *testing.T) {
	ref := requireReference(t)
	cand := requireCandidate(t)
	needQemuImg(t)
	steps := []struct {
		cmd  string
		args map[string]any
	}{
		{"query-status", nil},
		{"blockdev-change-medium", map[string]any{"device": "ide1-cd0", "filename": "cd.iso", "format": "raw"}},
		{"blockdev-change-medium", map[string]any{"device": "floppy0", "filename": "fd.img", "format": "raw"}},
		{"blockdev-change-medium", map[string]any{"id": "cd9", "filename": "q.qcow2"}},
		{"blockdev-change-medium", map[string]any{"id": "cd9", "filename": "q.qcow2", "read-only-mode": "read-write"}},
		{"eject", map[string]any{"id": "cd9"}},
		{"blockdev-change-medium", map[string]any{"id": "cd9", "filename": "q.qcow2", "read-only-mode": "read-write"}},
		{"eject", map[string]any{"device": "floppy0"}},
		{"blockdev-change-medium", map[string]any{"device": "floppy0", "filename": "fd.img", "format": "raw", "read-only-mode": "read-only"}},
		{"blockdev-change-medium", map[string]any{"device": "floppy0", "filename": "fd.img", "format": "raw", "read-only-mode": "read-write"}},
		{"eject", map[string]any{"device": "ide1-cd0", "force": true}},
		{"blockdev-change-medium", map[string]any{"device": "ide1-cd0", "filename": "cd.iso", "format": "raw", "read-only-mode": "read-write"}},
		{"blockdev-change-medium", map[string]any{"device": "floppy0", "filename": "cd.iso", "format": "raw"}},
		{"blockdev-add", map[string]any{"driver": "file", "filename": "fd.img", "node-name": "fdf", "read-only": true}},
		{"blockdev-open-tray", map[string]any{"id": "cd9"}},
		{"blockdev-remove-medium", map[string]any{"id": "cd9"}},
		{"blockdev-insert-medium", map[string]any{"id": "cd9", "node-name": "fdf"}},
		{"blockdev-close-tray", map[string]any{"id": "cd9"}},
	}
	images := []string{"cd.iso", "fd.img", "q.qcow2"}
	run := func(bin string) []string {
		dir := shortDir(t)
		for _, a := range [][]string{
			{"create", "-q", "-f", "raw", "cd.iso", "1M"},
			{"create", "-q", "-f", "raw", "fd.img", "1440K"},
			{"create", "-q", "-f", "qcow2", "q.qcow2", "4M"},
		} {
			cmd := exec.Command("qemu-img", a...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("qemu-img %v: %v\n%s", a, err, out)
			}
		}
		v := startMigVM(t, bin, dir, "vm", "-machine", "pc", "-accel", "tcg", "-S",
			"-drive", "if=ide,index=2,media=cdrom", "-drive", "if=floppy",
			"-device", "ide-cd,bus=ide.1,unit=1,id=cd9")
		var out []string
		for _, s := range steps {
			var args any
			if s.args != nil {
				m := map[string]any{}
				for k, val := range s.args {
					if k == "filename" {
						val = filepath.Join(dir, val.(string))
					}
					m[k] = val
				}
				args = m
			}
			r, err := v.q.Execute(s.cmd, args)
			if err != nil {
				t.Fatalf("%s: %v", s.cmd, err)
			}
			line := fmt.Sprintf("%s %v: %s;", s.cmd, s.args, strings.ReplaceAll(string(r.Raw), dir+"/", ""))
			for _, img := range images {
				line += " " + img + "=" + lockBytes(t, filepath.Join(dir, img))
			}
			out = append(out, line)
		}
		v.quit()
		return out
	}
	want, got := run(ref), run(cand)
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Errorf("step %d:\n QEMU  %s\n tlcvm %s", i, want[i], got[i])
		}
	}
	if testing.Verbose() {
		t.Logf("QEMU 7.2:\n%s", strings.Join(want, "\n"))
	}
}

// TestMediaPasswordPrompt: `change vnc password` without a password prompts for one on an
// HMP terminal, as QEMU's monitor_read_password does (the line echoed as stars, kept out
// of the history), then takes commands again; byte for byte QEMU's.
func TestMediaPasswordPrompt(t *testing.T) {
	ref := requireReference(t)
	cand := requireCandidate(t)
	run := func(bin string) string {
		dir := shortDir(t)
		sock := filepath.Join(dir, "hmp.sock")
		p := harness.Start(t, harness.Config{Bin: bin, Dir: dir, Args: []string{"-machine", "none",
			"-nodefaults", "-display", "none", "-monitor", "unix:" + sock + ",server=on,wait=off"}})
		c, err := harness.DialUnix(sock, p, harness.DefaultTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s := harness.NewStream(c)
		var out strings.Builder
		expect := func(send, until string) {
			t.Helper()
			if send != "" {
				if _, err := c.Write([]byte(send)); err != nil {
					t.Fatal(err)
				}
			}
			b, err := s.ReadUntil([]byte(until), harness.DefaultTimeout)
			out.Write(b)
			if err != nil {
				t.Fatalf("%s: waiting for %q: %v\n%q", bin, until, err, out.String())
			}
		}
		expect("", harness.Prompt)
		expect("change vnc password\r", "Password: ")
		expect("sec\x7fcret\r", harness.Prompt)
		// The history has the command, not the password.
		expect("\x1b[A\r", "Password: ")
		expect("x\r", harness.Prompt)
		expect("info version\r", harness.Prompt)
		return strings.ReplaceAll(out.String(), bin, "BIN")
	}
	want, got := run(ref), run(cand)
	// The banner and info version name the version and package: compare up to there.
	cut := func(s string) string {
		if i := strings.Index(s, "info version"); i >= 0 {
			s = s[:i]
		}
		if i := strings.Index(s, "\r\n"); i >= 0 {
			s = s[i:]
		}
		return s
	}
	if cut(got) != cut(want) {
		t.Errorf("terminal differs\n QEMU  %q\n tlcvm %q", cut(want), cut(got))
	}
}
