package tests_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The nbd block driver (the client a migration with storage mirrors through): blockdev-add
// driver=nbd against qemu-nbd, the same commands given to tlcvm and to QEMU 7.2, whose
// replies (errors, query-named-block-nodes) must be the same and whose writes must leave
// the same image; and tlcvm's client against tlcvm's own server, a drive-mirror into the
// export by its legacy nbd: filename.

// qemuNBD serves img (raw) as export "exp" on a unix socket until the test ends.
func qemuNBD(t *testing.T, dir, img string) string {
	t.Helper()
	sock := filepath.Join(dir, "qnbd.sock")
	cmd := exec.Command("qemu-nbd", "-f", "raw", "-x", "exp", "-t", "-k", sock, img)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(harnessWait)
	for {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatal("qemu-nbd did not create its socket")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const harnessWait = 20 * time.Second

// nbdClientReplies runs the client sequence on bin against a fresh copy of the image
// served by qemu-nbd, returning the replies and the image written.
func nbdClientReplies(t *testing.T, bin, name string) ([]string, string) {
	dir := shortDir(t)
	img := filepath.Join(dir, "img.raw")
	tool(t, "qemu-img", "create", "-q", "-f", "raw", img, "8M")
	tool(t, "qemu-io", "-f", "raw", "-c", "write -P 0x11 0 1M", "-c", "write -z 4M 64k", img)
	sock := qemuNBD(t, dir, img)
	v := startMigVM(t, bin, dir, name, "-M", "none")
	server := map[string]any{"type": "unix", "path": sock}
	steps := []struct {
		cmd  string
		args map[string]any
	}{
		{"blockdev-add", map[string]any{"driver": "nbd", "node-name": "n0", "server": map[string]any{"type": "unix", "path": filepath.Join(dir, "none.sock")}}},
		{"blockdev-add", map[string]any{"driver": "nbd", "node-name": "n1", "server": server, "export": "nope"}},
		{"blockdev-add", map[string]any{"driver": "nbd", "node-name": "n2", "server": server, "export": "exp", "tls-creds": "t0"}},
		{"blockdev-add", map[string]any{"driver": "nbd", "node-name": "n3", "server": server, "export": "exp"}},
		{"blockdev-add", map[string]any{"driver": "raw", "node-name": "f3", "file": "n3"}},
		{"query-named-block-nodes", map[string]any{"flat": true}},
		{"human-monitor-command", map[string]any{"command-line": `qemu-io f3 "read -P 0x11 0 1M"`}},
		{"human-monitor-command", map[string]any{"command-line": `qemu-io f3 "read -P 0 1M 7M"`}},
		{"human-monitor-command", map[string]any{"command-line": `qemu-io f3 "write -P 0x22 2M 64k"`}},
		{"human-monitor-command", map[string]any{"command-line": `qemu-io f3 "write -z 16k 8k"`}},
		{"human-monitor-command", map[string]any{"command-line": `qemu-io f3 "discard 3M 1M"`}},
		{"human-monitor-command", map[string]any{"command-line": `qemu-io f3 "flush"`}},
		{"blockdev-del", map[string]any{"node-name": "f3"}},
		{"blockdev-del", map[string]any{"node-name": "n3"}},
	}
	// qemu-io's timing lines differ run to run.
	timing := regexp.MustCompile(`[0-9.]+ (sec|MiB/sec|ops/sec)`)
	var out []string
	for _, s := range steps {
		r, err := v.q.Execute(s.cmd, s.args)
		if err != nil {
			t.Fatalf("%s: %s: %v", name, s.cmd, err)
		}
		out = append(out, s.cmd+": "+timing.ReplaceAllString(strings.ReplaceAll(string(r.Raw), dir, "DIR"), "T"))
	}
	return out, img
}

// TestNBDClientMatchesQEMU: tlcvm's nbd driver answers and writes as QEMU 7.2's.
func TestNBDClientMatchesQEMU(t *testing.T) {
	bin := requireCandidate(t)
	ref := requireReference(t)
	needNBDTools(t)
	got, gotImg := nbdClientReplies(t, bin, "tlcvm")
	want, wantImg := nbdClientReplies(t, ref, "qemu")
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Errorf("step %d\ntlcvm: %s\n QEMU: %s", i, got[i], want[i])
		}
	}
	if out, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", "raw", gotImg, wantImg).CombinedOutput(); err != nil {
		t.Errorf("the images differ: %v\n%s", err, out)
	}
}

// TestNBDClientMirrorIntoTlcvm: a tlcvm destination exports its disk (opened under
// -incoming, as libvirt's destination does) writable; a tlcvm source mirrors a disk the
// guest writes into it by the legacy nbd:unix:PATH:exportname=E filename (drive-mirror
// mode=existing format=raw, older libvirt's way), waits for READY, stops the guest and
// cancels the ready job (libvirt's completion without pivot): the destination's image
// then equals the source's.
func TestNBDClientMirrorIntoTlcvm(t *testing.T) {
	bin := requireCandidate(t)
	needNBDTools(t)
	dir := shortDir(t)
	srcImg := newDiskImage(t, dir)
	// Data the guest does not write (it writes the first MiB), and zeroes written as data.
	tool(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 2M 512k", "-c", "write -z 3M 64k", srcImg)
	dstImg := filepath.Join(dir, "dst.qcow2")
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", dstImg, "4M")
	sock := filepath.Join(dir, "dst-nbd.sock")
	// The guest's device on the destination holds the node too: the export activates it
	// with the node, taking write but sharing everything while the migration is incoming.
	dst := startMigVM(t, bin, dir, "dst", "-machine", "pc", "-incoming", "defer", "-blockdev",
		`{"driver":"qcow2","node-name":"q0","file":{"driver":"file","filename":"`+dstImg+`"}}`,
		"-device", "virtio-blk-pci,drive=q0,id=vd0")
	dst.do("nbd-server-start", map[string]any{"addr": map[string]any{"type": "unix", "data": map[string]any{"path": sock}}})
	dst.do("block-export-add", map[string]any{"type": "nbd", "id": "drive-vd0", "node-name": "q0", "name": "drive-vd0", "writable": true})
	src := startMigVM(t, bin, dir, "src", diskArgs(srcImg, "idle,,disk=vd0,,disk-bs=4K,,disk-size=1M,,disk-rate=1M")...)
	src.do("drive-mirror", map[string]any{"device": "q0", "job-id": "drive-vd0", "target": "nbd:unix:" + sock + ":exportname=drive-vd0",
		"mode": "existing", "format": "raw", "sync": "full"})
	deadline := time.Now().Add(harnessWait * 3)
	for {
		r := src.do("query-block-jobs", nil)
		if strings.Contains(r.String(), `"ready": true`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mirror never got ready: %s", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	src.do("stop", nil)
	src.do("block-job-cancel", map[string]any{"device": "drive-vd0"})
	for {
		r := src.do("query-block-jobs", nil)
		if r.String() == "[]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cancelled mirror did not end: %s", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	dst.do("block-export-del", map[string]any{"id": "drive-vd0"})
	dst.do("nbd-server-stop", nil)
	if out, err := exec.Command("qemu-img", "compare", "-U", srcImg, dstImg).CombinedOutput(); err != nil {
		t.Errorf("the destination's image differs from the source's: %v\n%s", err, out)
	}
}

// TestNBDBlockdevSchemaLikeQEMU: blockdev-add's nbd, null-co and null-aio variants
// introspect as QEMU 7.2's, member for member (libvirt probes blockdev.nbd.tls-hostname in
// it).
func TestNBDBlockdevSchemaLikeQEMU(t *testing.T) {
	cand := requireCandidate(t)
	ref := requireReference(t)
	parallel(t)
	drivers := []string{"nbd", "null-co", "null-aio"}
	get := func(bin string) map[string]string {
		byName := schemaByName(t, bin)
		cmd := byName["blockdev-add"]
		arg, _ := cmd.Get("arg-type")
		vs, _ := byName[arg.Str()].Get("variants")
		out := map[string]string{}
		for _, d := range drivers {
			out[d] = "missing"
			for _, v := range vs.Arr {
				if c, _ := v.Get("case"); c.Str() == d {
					typ, _ := v.Get("type")
					out[d] = canonType(byName, byName[typ.Str()], 0)
				}
			}
		}
		return out
	}
	want, got := get(ref), get(cand)
	for _, d := range drivers {
		if want[d] == "missing" {
			t.Fatalf("QEMU's blockdev-add has no %s variant", d)
		}
		if want[d] != got[d] {
			t.Errorf("blockdev-add's %s variant:\n QEMU  %s\n tlcvm %s", d, want[d], got[d])
		}
	}
}
