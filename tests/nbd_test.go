package tests_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlcvm/machine"
	"tlcvm/nbd"
	"tlcvm/tests/harness"
)

// The NBD server end to end, with qemu-img, qemu-io and qemu-nbd (qemu-utils) as clients:
// exports of a disk the guest writes meanwhile, read back byte for byte (the workload's
// formula), their allocation map and dirty bitmaps; writable exports; the export life
// cycle with a client attached; and the same client commands against QEMU 7.2's server
// over an identical image, whose answers must be tlcvm's.

func needNBDTools(t *testing.T) {
	t.Helper()
	needQemuImg(t)
	for _, tool := range []string{"qemu-nbd", "qemu-io"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian: qemu-utils)", tool)
		}
	}
}

func tool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func nbdURL(sock, export string) string { return "nbd+unix:///" + export + "?socket=" + sock }

// mapEntry is one extent of qemu-img map --output=json.
type mapEntry struct {
	Start   int64 `json:"start"`
	Length  int64 `json:"length"`
	Depth   int64 `json:"depth"`
	Present bool  `json:"present"`
	Zero    bool  `json:"zero"`
	Data    bool  `json:"data"`
}

func imgMap(t *testing.T, args ...string) []mapEntry {
	t.Helper()
	out := tool(t, "qemu-img", append([]string{"map", "--output=json"}, args...)...)
	var m []mapEntry
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("qemu-img map: %v\n%s", err, out)
	}
	return m
}

// dirtyOf is a bitmap's dirty runs read with x-dirty-bitmap (dirty shows as "data": false).
func dirtyOf(t *testing.T, sock, export, context string) string {
	t.Helper()
	var runs []string
	for _, e := range imgMap(t, "--image-opts", "driver=nbd,server.type=unix,server.path="+sock+",export="+export+",x-dirty-bitmap="+context) {
		if !e.Data {
			runs = append(runs, fmt.Sprintf("%d+%d", e.Start, e.Length))
		}
	}
	return strings.Join(runs, " ")
}

// TestNBDExportGuestDisk: a disk the guest writes is exported read-only while the guest
// runs, with a snapshot of a recording bitmap; qemu-nbd lists it as QEMU would, qemu-img
// reads what the workload's formula says once the guest stops, its allocation map and the
// bitmap come through the meta contexts, and the export's life cycle holds with a client
// attached.
func TestNBDExportGuestDisk(t *testing.T) {
	bin := requireCandidate(t)
	needNBDTools(t)
	dir := shortDir(t)
	img := newDiskImage(t, dir)
	sock := filepath.Join(dir, "nbd.sock")
	load := "idle,,disk=vd0,,disk-bs=4K,,disk-size=1M,,disk-rate=4M"
	v := startMigVM(t, bin, dir, "vm", diskArgs(img, load, "-S")...)
	v.do("block-dirty-bitmap-add", map[string]any{"node": "q0", "name": "b0"})
	v.do("cont", nil)
	zero := make([]machine.DiskState, diskCPUs)
	v.waitWritten(zero, 64<<10)
	// libvirt's pull backup: a disabled copy of the recording bitmap is exported.
	v.do("transaction", map[string]any{"actions": []any{
		map[string]any{"type": "block-dirty-bitmap-add", "data": map[string]any{"node": "q0", "name": "snap", "disabled": true}},
		map[string]any{"type": "block-dirty-bitmap-merge", "data": map[string]any{"node": "q0", "target": "snap", "bitmaps": []string{"b0"}}},
	}})
	v.do("nbd-server-start", map[string]any{"addr": map[string]any{"type": "unix", "data": map[string]any{"path": sock}}})
	if r, _ := v.q.Execute("block-export-add", map[string]any{"type": "nbd", "id": "e0", "node-name": "q0", "bitmaps": []string{"b0"}}); !strings.Contains(string(r.Raw), "incompatible with readonly export") {
		t.Errorf("an enabled bitmap exported read-only: %s", r.Raw)
	}
	v.do("block-export-add", map[string]any{"type": "nbd", "id": "e0", "node-name": "q0", "name": "disk",
		"bitmaps": []string{"snap"}, "allocation-depth": true, "description": "the guest's disk"})
	list := tool(t, "qemu-nbd", "--list", "-k", sock)
	for _, want := range []string{"export: 'disk'", "description: the guest's disk", "size:  4194304",
		"flags: 0x58f ( readonly flush fua df multi cache )", "min block: 1", "opt block: 4096", "max block: 33554432",
		"available meta contexts: 3", "base:allocation", "qemu:allocation-depth", "qemu:dirty-bitmap:snap"} {
		if !strings.Contains(list, want) {
			t.Errorf("qemu-nbd --list lacks %q:\n%s", want, list)
		}
	}
	if info := tool(t, "qemu-img", "info", nbdURL(sock, "disk")); !strings.Contains(info, "virtual size: 4 MiB (4194304 bytes)") {
		t.Errorf("qemu-img info: %s", info)
	}
	// The guest writes on; the export reads the disk as it is: stop it to compare. The
	// exported bitmap is the snapshot: what each vCPU had written of its half of the
	// region when it was taken, no more; the recording one has everything since.
	v.waitWritten(zero, 2*diskSize)
	var snapCount, liveCount int64
	for _, n := range v.do("query-named-block-nodes", map[string]any{"flat": true}).Arr {
		if bms, ok := n.Get("dirty-bitmaps"); ok {
			for _, b := range bms.Arr {
				name, _ := b.Get("name")
				if name.Str() == "snap" {
					snapCount = num(t, b, "count")
				} else {
					liveCount = num(t, b, "count")
				}
			}
		}
	}
	var n0, n1 int64
	if _, err := fmt.Sscanf(dirtyOf(t, sock, "disk", "qemu:dirty-bitmap:snap"), "0+%d 524288+%d", &n0, &n1); err != nil ||
		n0 < 64<<10 || n1 < 64<<10 || n0+n1 != snapCount || liveCount != diskSize {
		t.Errorf("the exported bitmap: %d+%d bytes, count %d; the recording bitmap counts %d", n0, n1, snapCount, liveCount)
	}
	v.do("stop", nil)
	st := v.cursors()
	raw := filepath.Join(dir, "out.raw")
	tool(t, "qemu-img", "convert", "-f", "raw", "-O", "raw", nbdURL(sock, "disk"), raw)
	got, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, len(got))
	machine.ExpectDisk(want, 0, st)
	if !bytes.Equal(got, want) {
		t.Errorf("the export's content is not the workload's formula (cursors %+v)", st)
	}
	// base:allocation as qemu-img map sees the image directly (-U: tlcvm holds it).
	viaNBD := imgMap(t, nbdURL(sock, "disk"))
	direct := imgMap(t, "-U", "-f", "qcow2", img)
	if len(viaNBD) != 2 || viaNBD[0] != (mapEntry{0, diskSize, 0, true, false, true}) ||
		viaNBD[1] != (mapEntry{diskSize, 3 << 20, 0, true, true, false}) {
		t.Errorf("map through NBD: %+v", viaNBD)
	}
	var dataBytes int64
	for _, e := range direct {
		if e.Data && e.Start+e.Length <= diskSize {
			dataBytes += e.Length
		} else if e.Data {
			t.Errorf("map of the image: data past the written region: %+v", e)
		}
	}
	if dataBytes != diskSize {
		t.Errorf("map of the image: %d bytes of data, want %d", dataBytes, diskSize)
	}
	// qemu:allocation-depth: depth 1 (the disk itself) where written reads as "data":
	// false through x-dirty-bitmap (bit 0 is set), depth 0 elsewhere.
	if got := dirtyOf(t, sock, "disk", "qemu:allocation-depth"); got != "0+1048576" {
		t.Errorf("allocation depth: %q", got)
	}
	// A client attached: a safe removal is refused, the bitmap stays busy; a hard one
	// closes the client and the export is deleted.
	nc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(harness.DefaultTimeout))
	c, err := nbd.NewClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Go("disk"); err != nil {
		t.Fatal(err)
	}
	if r, _ := v.q.Execute("block-export-del", map[string]any{"id": "e0"}); !strings.Contains(string(r.Raw), "export 'e0' still in use") {
		t.Errorf("safe removal with a client: %s", r.Raw)
	}
	if r, _ := v.q.Execute("block-dirty-bitmap-remove", map[string]any{"node": "q0", "name": "snap"}); !strings.Contains(string(r.Raw), "currently in use") {
		t.Errorf("removing an exported bitmap: %s", r.Raw)
	}
	if r, _ := v.q.Execute("blockdev-del", map[string]any{"node-name": "q0"}); !strings.Contains(string(r.Raw), "Node q0 is in use") {
		t.Errorf("blockdev-del of the exported node: %s", r.Raw)
	}
	v.do("block-export-del", map[string]any{"id": "e0", "mode": "hard"})
	if _, err := v.q.WaitEvent("BLOCK_EXPORT_DELETED"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadAt(make([]byte, 512), 0); err == nil {
		t.Error("the client still reads after a hard removal")
	}
	c.Close()
	if e := v.do("query-block-exports", nil); len(e.Arr) != 0 {
		t.Errorf("exports left: %s", e)
	}
	v.do("block-dirty-bitmap-remove", map[string]any{"node": "q0", "name": "snap"})
	v.do("nbd-server-stop", nil)
	v.quit()
	checkImage(t, img, st)
}

// TestNBDWritableExport: a writable export of a node nobody else uses takes writes, zeroes
// and discards from qemu-io, and each marks the node's bitmap (3 granules written, 1
// zeroed, 1 discarded); qemu-img check finds the image clean afterwards.
func TestNBDWritableExport(t *testing.T) {
	bin := requireCandidate(t)
	needNBDTools(t)
	dir := shortDir(t)
	img := filepath.Join(dir, "w.qcow2")
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "8M")
	sock := filepath.Join(dir, "nbd.sock")
	v := startMigVM(t, bin, dir, "vm", "-machine", "pc", "-S",
		"-blockdev", "driver=file,filename="+img+",node-name=f0,discard=unmap",
		"-blockdev", "driver=qcow2,file=f0,node-name=q0,discard=unmap")
	v.do("block-dirty-bitmap-add", map[string]any{"node": "q0", "name": "w", "granularity": 65536})
	v.do("nbd-server-start", map[string]any{"addr": map[string]any{"type": "unix", "data": map[string]any{"path": sock}}, "max-connections": 1})
	v.do("block-export-add", map[string]any{"type": "nbd", "id": "e0", "node-name": "q0", "writable": true})
	list := tool(t, "qemu-nbd", "--list", "-k", sock)
	if !strings.Contains(list, "flags: 0xced ( flush fua trim zeroes df cache fast-zero )") {
		t.Errorf("writable export (max-connections 1): %s", list)
	}
	url := nbdURL(sock, "q0")
	tool(t, "qemu-io", "-f", "raw", "-c", "write -P 0x5a 1M 192k", "-c", "write -z 2M 64k", "-c", "discard 1216k 64k", url)
	out := tool(t, "qemu-io", "-f", "raw", "-c", "read -P 0x5a 1M 128k", "-c", "read -P 0 1216k 64k", "-c", "read -P 0 2M 64k", url)
	if strings.Contains(out, "Pattern verification failed") {
		t.Errorf("read back:\n%s", out)
	}
	nodes := v.do("query-named-block-nodes", map[string]any{"flat": true}).String()
	if !strings.Contains(nodes, `"name": "w", "recording": true, "persistent": false, "busy": false, "granularity": 65536, "count": 327680`) {
		t.Errorf("the bitmap did not count the export's writes: %s", nodes)
	}
	if r, _ := v.q.Execute("block_resize", map[string]any{"node-name": "q0", "size": 16 << 20}); !strings.Contains(string(r.Raw), "Permission conflict") {
		t.Errorf("resize of an exported node: %s", r.Raw)
	}
	v.do("nbd-server-stop", nil)
	v.quit()
	checkClean := tool(t, "qemu-img", "check", img)
	if !strings.Contains(checkClean, "No errors were found on the image.") {
		t.Errorf("qemu-img check: %s", checkClean)
	}
}

// TestNBDLikeQEMU: the same image exported by QEMU 7.2 and by tlcvm (a qcow2 over a
// backing file, a persistent bitmap written through by qemu-io) answers qemu-nbd --list,
// qemu-img map (base:allocation, qemu:allocation-depth, qemu:dirty-bitmap) and reads the
// same way.
func TestNBDLikeQEMU(t *testing.T) {
	cand := requireCandidate(t)
	ref := requireReference(t)
	needNBDTools(t)
	parallel(t)
	dir := shortDir(t)
	base := filepath.Join(dir, "base.qcow2")
	top := filepath.Join(dir, "top.qcow2")
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "4M")
	tool(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 256k", "-c", "write -P 0x22 2M 64k", base)
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top)
	tool(t, "qemu-img", "bitmap", "--add", top, "bm")
	tool(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x33 128k 256k", "-c", "write -z 1M 64k", "-c", "write -P 0 3M 4k", top)
	tool(t, "qemu-img", "bitmap", "--disable", top, "bm")
	run := func(bin, sub string) (list, maps, data string) {
		d := filepath.Join(dir, sub)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"base.qcow2", "top.qcow2"} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		sock := filepath.Join(d, "nbd.sock")
		v := startMigVM(t, bin, d, "vm", "-machine", "pc", "-S",
			"-blockdev", "driver=file,filename="+filepath.Join(d, "top.qcow2")+",node-name=f0",
			"-blockdev", "driver=qcow2,file=f0,node-name=q0")
		v.do("nbd-server-start", map[string]any{"addr": map[string]any{"type": "unix", "data": map[string]any{"path": sock}}})
		v.do("block-export-add", map[string]any{"type": "nbd", "id": "e0", "node-name": "q0", "name": "top",
			"bitmaps": []any{"bm"}, "allocation-depth": true})
		list = tool(t, "qemu-nbd", "--list", "-k", sock)
		var b strings.Builder
		for _, ctx := range []string{"", "qemu:allocation-depth", "qemu:dirty-bitmap:bm"} {
			var m []mapEntry
			if ctx == "" {
				m = imgMap(t, nbdURL(sock, "top"))
			} else {
				m = imgMap(t, "--image-opts", "driver=nbd,server.type=unix,server.path="+sock+",export=top,x-dirty-bitmap="+ctx)
			}
			fmt.Fprintf(&b, "%s: %+v\n", ctx, m)
		}
		raw := filepath.Join(d, "out.raw")
		tool(t, "qemu-img", "convert", "-f", "raw", "-O", "raw", nbdURL(sock, "top"), raw)
		out, err := os.ReadFile(raw)
		if err != nil {
			t.Fatal(err)
		}
		v.do("nbd-server-stop", nil)
		v.quit()
		return list, b.String(), string(out)
	}
	ql, qm, qd := run(ref, "qemu")
	tl, tm, td := run(cand, "tlcvm")
	if ql != tl {
		t.Errorf("qemu-nbd --list:\n QEMU:\n%s tlcvm:\n%s", ql, tl)
	}
	if qm != tm {
		t.Errorf("qemu-img map:\n QEMU:\n%s tlcvm:\n%s", qm, tm)
	}
	if qd != td {
		t.Error("the exports read differently")
	}
}

// TestBitmapNBDSchemaLikeQEMU: the introspected types of the bitmap, NBD and export
// commands are QEMU 7.2's, member for member (libvirt probes them: block-export-add,
// nbd-server-add's bitmap, nbd-server-start's tls-creds).
func TestBitmapNBDSchemaLikeQEMU(t *testing.T) {
	cand := requireCandidate(t)
	ref := requireReference(t)
	parallel(t)
	cmds := []string{"block-dirty-bitmap-add", "block-dirty-bitmap-remove", "block-dirty-bitmap-clear",
		"block-dirty-bitmap-enable", "block-dirty-bitmap-disable", "block-dirty-bitmap-merge",
		"x-debug-block-dirty-bitmap-sha256", "nbd-server-start", "nbd-server-add", "nbd-server-remove",
		"nbd-server-stop", "block-export-add", "block-export-del", "query-block-exports", "BLOCK_EXPORT_DELETED"}
	get := func(bin string) map[string]string {
		byName := schemaByName(t, bin)
		out := map[string]string{}
		for _, c := range cmds {
			if e, ok := byName[c]; ok {
				out[c] = canonType(byName, e, 0)
			} else {
				out[c] = "missing"
			}
		}
		return out
	}
	want, got := get(ref), get(cand)
	for _, c := range cmds {
		if want[c] != got[c] {
			t.Errorf("%s:\n QEMU  %s\n tlcvm %s", c, want[c], got[c])
		}
	}
}
