package tests_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Block-layer tests that need image files on disk: made with qemu-img (or crafted) in a
// temporary directory, then opened by QEMU 7.2 and by tlcvm with the same command line.

func needQemuImg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed (Debian: qemu-utils)")
	}
}

// blockImages makes the images the cases use in dir.
func blockImages(t *testing.T, dir string) {
	t.Helper()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("qemu-img", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
		}
	}
	run("create", "-q", "-f", "qcow2", "a.qcow2", "64M")
	run("create", "-q", "-f", "qcow2", "-o", "compat=0.10", "v2.qcow2", "32M")
	run("create", "-q", "-f", "qcow2", "b.qcow2", "16M")
	run("create", "-q", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", "ov.qcow2")
	run("create", "-q", "-f", "qcow2", "-b", "gone.qcow2", "-F", "qcow2", "-u", "orphan.qcow2", "16M")
	run("create", "-q", "-f", "raw", "r.img", "8M")
	run("create", "-q", "-f", "qcow2", "--object", "secret,id=s0,data=abc", "-o", "encrypt.format=aes,encrypt.key-secret=s0", "aes.qcow2", "1M")
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("text.img", []byte("not an image\n"))
	a, err := os.ReadFile(filepath.Join(dir, "a.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	v4 := append([]byte(nil), a...)
	v4[7] = 4
	write("v4.qcow2", v4)
	feat := append([]byte(nil), a...)
	feat[72] = 0x40 // an incompatible feature bit QEMU 7.2 does not know
	write("feat.qcow2", feat)
	corrupt := append([]byte(nil), a...)
	corrupt[79] |= 2
	write("corrupt.qcow2", corrupt)
}

var blockScrubs = []*regexp.Regexp{
	regexp.MustCompile(`#block\d+`),
	regexp.MustCompile(`"package": "[^"]*"`),
	regexp.MustCompile(`"seconds": \d+, "microseconds": \d+`),
	regexp.MustCompile(`terminating on signal 15 from pid \d+ \([^)]*\)`),
}

// runBlock runs bin in dir with args and a QMP session on stdio that queries the block
// layer and quits; it returns exit status, stderr and stdout, scrubbed.
func runBlock(t *testing.T, bin, dir string, args []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	full := append([]string{"-nodefaults", "-display", "none", "-S", "-qmp", "stdio"}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(`{"execute":"qmp_capabilities"}` + "\n" + `{"execute":"query-block"}` + "\n" +
		`{"execute":"query-named-block-nodes","arguments":{"flat":true}}` + "\n" +
		`{"execute":"human-monitor-command","arguments":{"command-line":"info block -v"}}` + "\n" + `{"execute":"quit"}` + "\n")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	status := "0"
	if ee, ok := err.(*exec.ExitError); ok {
		status = ee.ProcessState.String()
	} else if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	s := "exit: " + status + "\nstderr:\n" + errb.String()
	if status == "0" {
		// On failure only the texts count: QEMU greets on a stdio monitor before it
		// creates -device devices, tlcvm reports device errors before any monitor runs.
		s += "stdout:\n" + out.String()
	}
	s = strings.ReplaceAll(s, dir, "TEST_DIR")
	s = strings.ReplaceAll(s, filepath.Base(bin)+":", "PROG:")
	for _, re := range blockScrubs {
		s = re.ReplaceAllString(s, "<scrubbed>")
	}
	return s
}

// TestBlockImages opens every image variant and every image QEMU refuses, on the command
// line, with both binaries: exit status, stderr (error texts, the raw probing warning) and
// the block queries must be QEMU's.
func TestBlockImages(t *testing.T) {
	ref := requireReference(t)
	cand := requireCandidate(t)
	needQemuImg(t)
	dir := t.TempDir()
	blockImages(t, dir)
	cases := [][]string{
		{"-machine", "pc", "-drive", "file=a.qcow2,if=virtio,id=d0", "-hdb", "ov.qcow2", "-cdrom", "r.img"},
		{"-machine", "q35", "-drive", "file=v2.qcow2", "-drive", "file=r.img,format=raw,if=none,id=d1,cache=none,readonly=on"},
		{"-machine", "pc", "-drive", "file=text.img,if=none,id=t"},
		{"-machine", "pc", "-blockdev", "driver=file,filename=a.qcow2,node-name=f", "-blockdev", `{"driver":"qcow2","file":"f","node-name":"q","backing":null}`, "-device", "virtio-blk-pci,drive=q,id=vd"},
		{"-machine", "pc", "-drive", "file=missing.qcow2"},
		{"-machine", "pc", "-hda", "missing.img"},
		{"-machine", "pc", "-cdrom", "missing.iso"},
		{"-machine", "pc", "-drive", "file=v4.qcow2,if=none"},
		{"-machine", "pc", "-drive", "file=feat.qcow2,if=none"},
		{"-machine", "pc", "-drive", "file=corrupt.qcow2,if=none"},
		{"-machine", "pc", "-drive", "file=corrupt.qcow2,if=none,readonly=on"},
		{"-machine", "pc", "-drive", "file=aes.qcow2,if=none"},
		{"-machine", "pc", "-drive", "file=text.img,format=qcow2,if=none"},
		{"-machine", "pc", "-drive", "file=orphan.qcow2,if=none"},
		{"-machine", "pc", "-drive", "file=a.qcow2,format=bogus"},
		{"-machine", "pc", "-drive", "file=a.qcow2,media=bogus"},
		{"-machine", "pc", "-drive", "file=a.qcow2,werror=bogus"},
		{"-machine", "pc", "-drive", "file=a.qcow2,cache=bogus"},
		{"-machine", "pc", "-drive", "file=a.qcow2,aio=native"},
		{"-machine", "pc", "-drive", "file=a.qcow2,index=0", "-drive", "file=r.img,format=raw,index=0"},
		{"-machine", "pc", "-drive", "file=a.qcow2,if=none,id=x", "-device", "virtio-blk-pci,drive=y"},
		{"-machine", "pc", "-drive", "file=a.qcow2,if=none,id=x", "-device", "virtio-blk-pci,drive=x", "-device", "ide-hd,drive=x"},
		{"-machine", "pc", "-drive", "file=a.qcow2,if=none,id=x,readonly=on", "-device", "ide-hd,drive=x"},
		{"-machine", "pc", "-drive", "if=none,id=e", "-device", "virtio-blk-pci,drive=e"},
		{"-machine", "pc", "-blockdev", "driver=qcow2,file=nonode,node-name=x"},
		{"-machine", "pc", "-blockdev", "driver=file,filename=a.qcow2,node-name=f", "-blockdev", "driver=file,filename=a.qcow2,node-name=g", "-blockdev", "driver=qcow2,file=f,node-name=q", "-blockdev", "driver=qcow2,file=g,node-name=q2"},
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			want := runBlock(t, ref, dir, args)
			got := runBlock(t, cand, dir, args)
			if want != got {
				t.Errorf("QEMU:\n%s\ntlcvm:\n%s", want, got)
			}
		})
	}
}

// holder starts bin holding image with extra -drive options and waits until it serves QMP
// (its drives are then open and locked). The process is killed when the test ends.
func holder(t *testing.T, bin, dir, drive string) {
	t.Helper()
	cmd := exec.Command(bin, "-machine", "none", "-nodefaults", "-display", "none", "-qmp", "stdio", "-drive", drive)
	cmd.Dir = dir
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatalf("%s did not greet: %v", bin, err)
	}
}

// TestBlockLocking: an image one VM has open read-write cannot be opened by another, be it
// QEMU or tlcvm on either side; read-only users are refused too, with QEMU's texts.
func TestBlockLocking(t *testing.T) {
	ref := requireReference(t)
	cand := requireCandidate(t)
	needQemuImg(t)
	for _, first := range []string{ref, cand} {
		for _, second := range []string{ref, cand} {
			t.Run(filepath.Base(first)+"_then_"+filepath.Base(second), func(t *testing.T) {
				dir := t.TempDir()
				blockImages(t, dir)
				holder(t, first, dir, "file=a.qcow2,if=none,id=h")
				for _, c := range []struct{ drive, want string }{
					{"file=a.qcow2,if=none", `-drive file=a.qcow2,if=none: Failed to get "write" lock`},
					{"file=a.qcow2,if=none,readonly=on", `-drive file=a.qcow2,if=none,readonly=on: Failed to get shared "write" lock`},
				} {
					got := runBlock(t, second, dir, []string{"-machine", "none", "-drive", c.drive})
					want := "exit: exit status 1\nstderr:\nPROG: " + c.want + "\nIs another process using the image [a.qcow2]?\n"
					if !strings.HasPrefix(got, want) {
						t.Errorf("second user %s: got\n%s\nwant prefix\n%s", c.drive, got, want)
					}
				}
			})
		}
	}
}
