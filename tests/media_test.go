package tests_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// qmpStep is one command of a step-by-step comparison.
type qmpStep struct {
	cmd  string
	args map[string]any
}

// startMediaVM starts bin as the pc these tests use: the board's empty CD-ROM (ide1-cd0),
// an empty floppy drive (floppy0) and an empty ide-cd of the command line (cd9).
func startMediaVM(t *testing.T, bin, dir string) *mvm {
	return startMigVM(t, bin, dir, "vm", "-machine", "pc", "-accel", "tcg", "-S",
		"-drive", "if=ide,index=2,media=cdrom", "-drive", "if=floppy",
		"-device", "ide-cd,bus=ide.1,unit=1,id=cd9")
}

// runSteps runs each step on v (args passed through fix) and renders its reply with line.
func runSteps(t *testing.T, v *mvm, steps []qmpStep, fix func(k string, v any) any, line func(s qmpStep, reply string) string) []string {
	t.Helper()
	var out []string
	for _, s := range steps {
		var args any
		if s.args != nil {
			m := map[string]any{}
			for k, val := range s.args {
				m[k] = fix(k, val)
			}
			args = m
		}
		r, err := v.q.Execute(s.cmd, args)
		if err != nil {
			t.Fatalf("%s: %v", s.cmd, err)
		}
		out = append(out, line(s, string(r.Raw)))
	}
	v.quit()
	return out
}

// diffSteps reports each step whose rendering differs from QEMU's.
func diffSteps(t *testing.T, steps []qmpStep, want, got []string) {
	t.Helper()
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Errorf("step %d %s:\n QEMU  %s\n tlcvm %s", i, steps[i].cmd, want[i], got[i])
		}
	}
	if testing.Verbose() {
		t.Logf("QEMU 7.2:\n%s", strings.Join(want, "\n"))
	}
}

// TestMediaLocks changes the media of a pc's CD-ROMs and floppy through every path
// (change-medium with each read-only mode, eject, formats probed and given) with QEMU
// 7.2 and with tlcvm, and after each step compares the reply and the lock bytes each image
// carries: the permissions a medium's nodes take under a tray or slot must be QEMU's.
func TestMediaLocks(t *testing.T) {
	ref := requireReference(t)
	cand := requireCandidate(t)
	needQemuImg(t)
	steps := []qmpStep{
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
		v := startMediaVM(t, bin, dir)
		fix := func(k string, val any) any {
			if k == "filename" {
				return filepath.Join(dir, val.(string))
			}
			return val
		}
		return runSteps(t, v, steps, fix, func(s qmpStep, reply string) string {
			line := fmt.Sprintf("%s %v: %s;", s.cmd, s.args, strings.ReplaceAll(reply, dir+"/", ""))
			for _, img := range images {
				line += " " + img + "=" + lockBytes(t, filepath.Join(dir, img))
			}
			return line
		})
	}
	diffSteps(t, steps, run(ref), run(cand))
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

// TestMediaHostDevice: a medium on a host block device (virsh change-media --block gives
// libvirt's host_device nodes; a /dev path given to blockdev-change-medium or -drive is
// probed as one) is opened, queried and locked as QEMU 7.2 does. Needs root and a free
// loop device.
func TestMediaHostDevice(t *testing.T) {
	ref := requireReference(t)
	cand := requireCandidate(t)
	dir := shortDir(t)
	img := filepath.Join(dir, "disc.iso")
	if err := os.WriteFile(img, make([]byte, 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device (needs root): losetup: %v: %s", err, out)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", loop).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", loop, err, out)
		}
	})
	steps := []qmpStep{
		{"blockdev-add", map[string]any{"driver": "host_device", "filename": img, "node-name": "bad1"}},
		{"blockdev-add", map[string]any{"driver": "file", "filename": loop, "node-name": "bad2"}},
		{"blockdev-add", map[string]any{"driver": "host_device", "filename": dir, "node-name": "bad3"}},
		{"blockdev-add", map[string]any{"driver": "host_device", "filename": loop, "node-name": "libvirt-4-storage", "auto-read-only": true, "discard": "unmap"}},
		{"blockdev-add", map[string]any{"node-name": "libvirt-4-format", "read-only": true, "driver": "raw", "file": "libvirt-4-storage"}},
		{"blockdev-open-tray", map[string]any{"id": "cd9"}},
		{"blockdev-insert-medium", map[string]any{"id": "cd9", "node-name": "libvirt-4-format"}},
		{"blockdev-close-tray", map[string]any{"id": "cd9"}},
		{"blockdev-change-medium", map[string]any{"device": "ide1-cd0", "filename": loop}},
		{"query-block", nil},
		{"query-named-block-nodes", nil},
		{"query-blockstats", map[string]any{"query-nodes": true}},
		{"human-monitor-command", map[string]any{"command-line": "info block -v"}},
		{"eject", map[string]any{"device": "ide1-cd0"}},
		{"blockdev-change-medium", map[string]any{"device": "floppy0", "filename": loop, "format": "raw"}},
		{"query-block", nil},
	}
	run := func(bin string) []string {
		keep := func(_ string, val any) any { return val }
		return runSteps(t, startMediaVM(t, bin, dir), steps, keep, func(_ qmpStep, reply string) string {
			line := strings.NewReplacer(loop, "LOOP", dir, "DIR").Replace(reply)
			return blockScrubs[0].ReplaceAllString(line, "#blockN") + " locks=" + lockBytes(t, loop)
		})
	}
	diffSteps(t, steps, run(ref), run(cand))
}

// TestMediaTrayCheckpoint: a checkpoint carries the trays (QEMU's ide_drive/tray_state), so
// a VM restored with the same command line has the CD-ROM trays where the source left them
// (open with the medium in, open and empty, closed), announced by no DEVICE_TRAY_MOVED;
// each binary restores its own stream and the answers are compared.
func TestMediaTrayCheckpoint(t *testing.T) {
	ref := requireReference(t)
	cand := requireCandidate(t)
	run := func(bin string) string {
		dir := shortDir(t)
		if err := os.WriteFile(filepath.Join(dir, "cd.iso"), make([]byte, 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"-machine", "pc", "-m", "64", "-accel", "tcg", "-S",
			"-drive", "if=ide,index=2,media=cdrom,file=cd.iso,format=raw",
			"-device", "ide-cd,bus=ide.1,unit=1,id=cd9", "-device", "ide-cd,bus=ide.0,unit=0,id=cd0"}
		src := startMigVM(t, bin, dir, "src", args...)
		src.do("blockdev-open-tray", map[string]any{"device": "ide1-cd0"})
		src.do("blockdev-change-medium", map[string]any{"id": "cd9", "filename": filepath.Join(dir, "cd.iso"), "format": "raw"})
		src.do("eject", map[string]any{"id": "cd9"})
		src.do("blockdev-open-tray", map[string]any{"id": "cd0"})
		src.do("blockdev-close-tray", map[string]any{"id": "cd0"})
		src.do("migrate", map[string]any{"uri": "exec:cat > " + filepath.Join(dir, "ckpt")})
		src.waitMigration("completed")
		src.quit()
		dst := startMigVM(t, bin, dir, "dst", append(args, "-incoming", "defer")...)
		dst.do("migrate-set-capabilities", map[string]any{"capabilities": []map[string]any{{"capability": "events", "state": true}}})
		dst.do("migrate-incoming", map[string]any{"uri": "exec:cat " + filepath.Join(dir, "ckpt")})
		var events []string
		for {
			evs, err := dst.q.WaitEvent("MIGRATION")
			if err != nil {
				t.Fatal(err)
			}
			e := evs[len(evs)-1]
			for _, x := range evs {
				events = append(events, x.Event())
			}
			if st, _ := e.Value.Get("data"); strings.Contains(st.String(), `"completed"`) {
				break
			}
			if st, _ := e.Value.Get("data"); strings.Contains(st.String(), `"failed"`) {
				t.Fatalf("%s: incoming failed", bin)
			}
		}
		var trays []string
		for _, b := range dst.do("query-block", nil).Arr {
			dev, _ := b.Get("qdev")
			open, _ := b.Get("tray_open")
			_, inserted := b.Get("inserted")
			trays = append(trays, fmt.Sprintf("%s open=%s inserted=%t", dev.Str(), open, inserted))
		}
		dst.quit()
		return strings.Join(events, " ") + "\n" + strings.Join(trays, "\n")
	}
	want, got := run(ref), run(cand)
	if got != want {
		t.Errorf("restored trays differ\nQEMU 7.2:\n%s\ntlcvm:\n%s", want, got)
	}
	if testing.Verbose() {
		t.Logf("QEMU 7.2:\n%s", want)
	}
}

// TestMediaGuestLock: a guest that locks its CD-ROM's tray (QEMU boots the boot sector
// testdata/lockcd.bin, which sends PREVENT MEDIUM REMOVAL; tlcvm's guest does the same for
// the workload item cdlock, on the same command line) makes the tray refuse the monitor:
// blockdev-open-tray only asks the guest (no event, the tray stays shut), eject and
// blockdev-change-medium fail with QEMU's text, force opens it and drops the lock.
func TestMediaGuestLock(t *testing.T) {
	ref := requireReference(t)
	cand := requireCandidate(t)
	mbr, err := os.ReadFile("testdata/lockcd.bin")
	if err != nil {
		t.Fatal(err)
	}
	steps := []qmpStep{
		{"query-block", nil},
		{"blockdev-open-tray", map[string]any{"device": "ide1-cd0"}},
		{"query-block", nil},
		{"eject", map[string]any{"device": "ide1-cd0"}},
		{"blockdev-change-medium", map[string]any{"device": "ide1-cd0", "filename": "cd.iso", "format": "raw"}},
		{"blockdev-close-tray", map[string]any{"device": "ide1-cd0"}},
		{"human-monitor-command", map[string]any{"command-line": "info block ide1-cd0"}},
		{"human-monitor-command", map[string]any{"command-line": "eject ide1-cd0"}},
		{"human-monitor-command", map[string]any{"command-line": "change ide1-cd0 cd.iso raw"}},
		{"eject", map[string]any{"device": "ide1-cd0", "force": true}},
		{"query-block", nil},
		{"blockdev-change-medium", map[string]any{"device": "ide1-cd0", "filename": "cd.iso", "format": "raw"}},
		{"query-block", nil},
	}
	run := func(bin string) []string {
		dir := shortDir(t)
		disk := append(append([]byte(nil), mbr...), make([]byte, 1<<20-len(mbr))...)
		for name, b := range map[string][]byte{"disk.img": disk, "cd.iso": make([]byte, 1<<20)} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		v := startMigVM(t, bin, dir, "vm", "-machine", "pc", "-accel", "tcg",
			"-drive", "file=disk.img,format=raw,if=ide,index=0",
			"-drive", "if=ide,index=2,media=cdrom,file=cd.iso,format=raw",
			"-fw_cfg", "name=opt/tlcvm/workload,string=idle,,cdlock")
		deadline := time.Now().Add(harness.DefaultTimeout)
		for !strings.Contains(v.do("query-block", nil).String(), `"locked": true`) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the guest never locked the tray", bin)
			}
			time.Sleep(20 * time.Millisecond)
		}
		v.q.DropEvents("RESUME")
		fix := func(k string, val any) any {
			if k == "filename" {
				return filepath.Join(dir, val.(string))
			}
			return val
		}
		return runSteps(t, v, steps, fix, func(_ qmpStep, reply string) string {
			var evs []string
			for _, e := range v.q.Pending() {
				d, _ := e.Value.Get("data")
				evs = append(evs, e.Event()+" "+d.String())
			}
			v.q.DropEvents("DEVICE_TRAY_MOVED")
			reply = strings.ReplaceAll(reply, dir+"/", "")
			return blockScrubs[0].ReplaceAllString(reply, "#blockN") + " events: " + strings.Join(evs, ", ")
		})
	}
	diffSteps(t, steps, run(ref), run(cand))
}
