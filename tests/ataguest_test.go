package tests_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"tlcvm/tests/harness"
)

// Guest I/O errors against a running QEMU 7.2. QEMU's own guest does no disk I/O, so
// testdata/guests/ataw.c is one that does: a multiboot kernel writing and reading sectors
// of the primary IDE disk with ATA PIO for ever (QEMU boots it with -kernel). tlcvm's guest
// is its workload writing (and, with disk-verify, reading back) the same ide-hd disk. Both
// disks sit on blkdebug failing the first write (werror) or read (rerror) once with an
// errno; what the monitor sees must be the same: BLOCK_IO_ERROR's data, STOP and the run
// state io-error, query-block's io-status, and what cont does to both.

// ataGuest builds testdata/guests/ataw.c into a directory of t's (gcc -m32: Debian's
// gcc-multilib where gcc cannot build 32-bit code).
func ataGuest(t *testing.T) string {
	t.Helper()
	src, _ := filepath.Abs("testdata/guests")
	elf := filepath.Join(t.TempDir(), "ataw.elf")
	cmd := exec.Command("gcc", "-m32", "-O2", "-ffreestanding", "-fno-pic", "-fno-stack-protector",
		"-fno-asynchronous-unwind-tables", "-nostdlib", "-static", "-Wl,-T,"+filepath.Join(src, "link.ld"),
		"-Wl,--build-id=none", "-Wl,-z,noexecstack", "-Wl,--no-warn-rwx-segments", "-o", elf, filepath.Join(src, "ataw.c"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("gcc -m32 (Debian: gcc-multilib): %v\n%s", err, out)
	}
	return elf
}

// ioErrorCase is one policy under test.
type ioErrorCase struct {
	kind   string // "werror" or "rerror"
	policy string
	errno  int
	drive  bool // -drive id=d0 (a named backend) rather than -blockdev with an anonymous one
}

// runIOError starts bin with the case's disk, lets the guest run into the injected error
// and returns what the monitor showed, the directory and the node names scrubbed.
func runIOError(t *testing.T, bin string, c ioErrorCase, guest string) string {
	qemu := guest != ""
	dir := shortDir(t)
	img := filepath.Join(dir, "disk.raw")
	tool(t, "qemu-img", "create", "-q", "-f", "raw", img, "1M")
	ev, iotype := "write_aio", "write"
	if c.kind == "rerror" {
		ev, iotype = "read_aio", "read"
	}
	conf := filepath.Join(dir, "bd.conf")
	// sector 64: the guests' requests (ide-hd reads sector 0 when it guesses the geometry
	// at realize, which would take a rule for any sector, in QEMU as in tlcvm)
	rule := fmt.Sprintf("[inject-error]\nevent = \"%s\"\nerrno = \"%d\"\nonce = \"on\"\niotype = \"%s\"\nsector = \"64\"\n", ev, c.errno, iotype)
	if err := os.WriteFile(conf, []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-machine", "pc", "-accel", "tcg", "-m", "64", "-S"}
	if c.drive {
		args = append(args, "-drive", fmt.Sprintf("if=none,id=d0,format=raw,file=blkdebug:%s:%s,%s=%s", conf, img, c.kind, c.policy),
			"-device", "ide-hd,drive=d0,id=hd0,bus=ide.0,unit=0")
	} else {
		args = append(args, "-blockdev", fmt.Sprintf(`{"driver":"raw","node-name":"r0","file":{"driver":"blkdebug","node-name":"dbg","config":%q,"image":{"driver":"file","filename":%q}}}`, conf, img),
			"-device", fmt.Sprintf("ide-hd,drive=r0,id=hd0,bus=ide.0,unit=0,%s=%s", c.kind, c.policy))
	}
	serial := filepath.Join(dir, "serial.txt")
	if qemu {
		args = append(args, "-kernel", guest, "-append", "lba=64 n=8", "-serial", "file:"+serial)
	} else {
		args = append(args, "-fw_cfg", "name=opt/tlcvm/workload,string=idle,,disk=hd0,,disk-bs=4K,,disk-size=1M,,disk-rate=4M,,disk-verify")
	}
	_, q, _ := startVM(t, bin, args...)
	var b strings.Builder
	status := func() {
		s := execOK(t, q, "query-status", nil)
		st, _ := s.Get("status")
		ios := "none"
		for _, blk := range execOK(t, q, "query-block", nil).Arr {
			if v, ok := blk.Get("io-status"); ok {
				ios = v.Str()
			}
		}
		fmt.Fprintf(&b, "status %s io-status %s\n", st.Str(), ios)
	}
	execOK(t, q, "cont", nil)
	evs, err := q.WaitEvent("BLOCK_IO_ERROR")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := evs[len(evs)-1].Value.Get("data")
	fmt.Fprintf(&b, "BLOCK_IO_ERROR %s\n", d.String())
	if strings.Contains(d.String(), `"action": "stop"`) {
		if _, err := q.WaitEvent("STOP"); err != nil {
			t.Fatal(err)
		}
		b.WriteString("STOP\n")
		status()
		execOK(t, q, "cont", nil)
		if _, err := q.WaitEvent("RESUME"); err != nil {
			t.Fatal(err)
		}
		b.WriteString("cont: RESUME\n")
	}
	status()
	if qemu {
		checkATAGuest(t, serial, c, d.String())
	}
	execOK(t, q, "quit", nil)
	return regexp.MustCompile(`#block\d+`).ReplaceAllString(b.String(), "#blockN")
}

// checkATAGuest reads what QEMU's guest reported on its serial port once it has gone on
// past the error: it saw the error with report only (stop retries the request on cont,
// ignore completes it).
func checkATAGuest(t *testing.T, serial string, c ioErrorCase, event string) {
	t.Helper()
	want := 0
	if strings.Contains(event, `"action": "report"`) {
		want = 1
	}
	line := regexp.MustCompile(`ataw: pass (\d+) wr-errors (\d+) rd-errors (\d+)\n`)
	deadline := time.Now().Add(harness.DefaultTimeout)
	for {
		out, _ := os.ReadFile(serial)
		m := line.FindAllStringSubmatch(string(out), -1)
		if len(m) >= 2 {
			last := m[len(m)-1]
			got := last[2]
			if c.kind == "rerror" {
				got = last[3]
			}
			if got != strconv.Itoa(want) {
				t.Errorf("QEMU's guest counted %s failed %s requests, want %d:\n%s", got, c.kind, want, out)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("QEMU's guest did not go on after the error:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGuestIOErrorsLikeQEMU(t *testing.T) {
	bin := requireCandidate(t)
	ref := requireReference(t)
	needQemuImg(t)
	guest := ataGuest(t)
	for _, c := range []ioErrorCase{
		{"werror", "stop", 5, false},
		{"werror", "stop", 5, true},
		{"werror", "enospc", 28, false},
		{"werror", "enospc", 28, true},
		{"werror", "enospc", 5, false},
		{"werror", "report", 5, true},
		{"werror", "ignore", 28, false},
		{"rerror", "stop", 5, false},
		{"rerror", "stop", 28, true},
		{"rerror", "report", 13, false},
		{"rerror", "ignore", 5, true},
	} {
		form := "blockdev"
		if c.drive {
			form = "drive"
		}
		t.Run(fmt.Sprintf("%s-%s-%d-%s", c.kind, c.policy, c.errno, form), func(t *testing.T) {
			parallel(t)
			want := runIOError(t, ref, c, guest)
			got := runIOError(t, bin, c, "")
			if d := harness.Diff(strings.Split(want, "\n"), strings.Split(got, "\n")); d != "" {
				t.Errorf("differs from QEMU 7.2 (- QEMU, + tlcvm):\n%s", d)
			}
		})
	}
}
