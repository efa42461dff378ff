package tests_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlcvm/machine"
	"tlcvm/tests/harness"
)

// Memory hotplug end to end: a DIMM plugged into a running guest (libvirt's object-add
// memory-backend-ram + device_add pc-dimm), written by tlcvm's guest (workload dimm=all),
// carried by a migration or a checkpoint to a destination that rebuilds the DIMM from its
// command line (libvirt passes -object + -device pc-dimm with the slot and address the
// source reported), where the guest goes on.

const (
	dimmAddr = 1 << 32
	dimmSize = 64 << 20
)

func dimmArgs(workload string, extra ...string) []string {
	return append([]string{"-machine", "pc", "-m", "128M,slots=2,maxmem=1G",
		"-fw_cfg", "name=opt/tlcvm/workload,string=" + workload}, extra...)
}

// dimmCmdline is the DIMM as libvirt writes it on the destination's command line.
var dimmCmdline = []string{"-object", fmt.Sprintf(`{"qom-type":"memory-backend-ram","id":"memdimm0","size":%d}`, dimmSize),
	"-device", fmt.Sprintf(`{"driver":"pc-dimm","node":0,"memdev":"memdimm0","id":"dimm0","slot":0,"addr":%d}`, dimmAddr)}

// dimmPages reads the DIMM's RAM and counts the pages the guest's dimm= fill wrote; a page
// with any other content fails the test.
func dimmPages(t *testing.T, v *mvm, name string) (int, []byte) {
	t.Helper()
	path := filepath.Join(v.dir, name)
	v.do("pmemsave", map[string]any{"val": dimmAddr, "size": dimmSize, "filename": path})
	mem, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	zero := make([]byte, machine.PageSize)
	for off := 0; off < len(mem); off += machine.PageSize {
		page := mem[off : off+machine.PageSize]
		if bytes.Equal(page, zero) {
			continue
		}
		gpa := uint64(dimmAddr + off)
		for w := uint64(0); w < machine.PageSize/8; w++ {
			if got := binary.LittleEndian.Uint64(page[8*w:]); got != machine.DIMMWord(gpa, w) {
				t.Fatalf("DIMM page %#x word %d = %#x, not the guest's", gpa, w, got)
			}
		}
		n++
	}
	return n, mem
}

// waitDIMMFilled polls until the guest has written every page of the DIMM.
func waitDIMMFilled(t *testing.T, v *mvm) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n, _ := dimmPages(t, v, "poll.mem"); n == dimmSize/machine.PageSize {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the guest never filled the DIMM")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDIMMMigration: a hot-plugged DIMM, half written when the migration runs, arrives
// whole; the destination's guest finishes writing it; query-memory-devices agrees.
func TestDIMMMigration(t *testing.T) {
	bin := requireCandidate(t)
	for _, mode := range []string{"stream", "mapped"} {
		t.Run(mode, func(t *testing.T) {
			parallel(t)
			dir := shortDir(t)
			chk := filepath.Join(dir, "a.chk")
			load := "ws=4M,,rate=16M,,dimm=all" // 64 MiB of DIMM at 16 MB/s: 4 s
			src := startMigVM(t, bin, dir, "src", dimmArgs(load)...)
			src.do("object-add", map[string]any{"qom-type": "memory-backend-ram", "id": "memdimm0", "size": dimmSize})
			src.do("device_add", map[string]any{"driver": "pc-dimm", "node": 0, "memdev": "memdimm0", "id": "dimm0", "slot": 0})
			devs := strings.ReplaceAll(src.do("query-memory-devices", nil).String(), " ", "")
			if !strings.Contains(devs, fmt.Sprintf(`"addr":%d`, dimmAddr)) || !strings.Contains(devs, `"hotplugged":true`) {
				t.Fatalf("query-memory-devices: %s", devs)
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				if n, _ := dimmPages(t, src, "early.mem"); n > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the guest never wrote the DIMM")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if mode == "mapped" {
				// an x-tlc checkpoint keeps the guest running: stop it to compare
				src.do("migrate-set-capabilities", tlcMappedCaps())
				src.do("stop", nil)
			}
			src.do("migrate", map[string]any{"uri": "file:" + chk})
			src.waitMigration("completed")
			n, want := dimmPages(t, src, "src.mem")
			if n == 0 || n == dimmSize/machine.PageSize {
				t.Logf("the DIMM was %d/%d pages written when checkpointed", n, dimmSize/machine.PageSize)
			}
			low := src.pmemsave(128<<20, filepath.Join(dir, "src.low"))
			src.quit()

			dst := startMigVM(t, bin, dir, "dst", dimmArgs(load, append(dimmCmdline, "-S", "-incoming", "file:"+chk)...)...)
			dst.waitMigration("completed")
			if _, got := dimmPages(t, dst, "dst.mem"); !bytes.Equal(got, want) {
				t.Fatal("the destination's DIMM differs from the source's")
			}
			if !bytes.Equal(dst.pmemsave(128<<20, filepath.Join(dir, "dst.low")), low) {
				t.Fatal("the destination's RAM differs from the source's")
			}
			devs = strings.ReplaceAll(dst.do("query-memory-devices", nil).String(), " ", "")
			if !strings.Contains(devs, fmt.Sprintf(`"addr":%d`, dimmAddr)) || !strings.Contains(devs, `"hotplugged":false`) {
				t.Fatalf("destination query-memory-devices: %s", devs)
			}
			dst.do("cont", nil)
			waitDIMMFilled(t, dst)
			dst.quit()
		})
	}
}

// TestDIMMMigrationNeedsTheDIMM: a destination started without the DIMM refuses the
// stream as QEMU does.
func TestDIMMMigrationNeedsTheDIMM(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	dir := shortDir(t)
	chk := filepath.Join(dir, "a.chk")
	src := startMigVM(t, bin, dir, "src", dimmArgs("idle", dimmCmdline...)...)
	src.do("migrate", map[string]any{"uri": "file:" + chk})
	src.waitMigration("completed")
	src.quit()
	dst := harness.Start(t, harness.Config{Bin: bin, Dir: dir,
		Args: append([]string{"-nodefaults", "-display", "none"}, dimmArgs("idle", "-incoming", "file:"+chk)...)})
	if _, err := dst.Wait(harness.DefaultTimeout); err != nil {
		t.Fatal(err)
	}
	if e := string(dst.Stderr.Bytes()); !strings.Contains(e, `Unknown ramblock "memdimm0", cannot accept migration`) {
		t.Fatalf("stderr %q", e)
	}
}
