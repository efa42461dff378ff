package libvirt_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	lv "tlcvm/internal/libvirttest"
	"tlcvm/machine"
)

// Checkpoints and backups (libvirt's incremental backup, which it offers for tlcvm as for
// QEMU 7.2 since tlcvm has blockdev-reopen and block-export-add): a checkpoint is a
// persistent dirty bitmap on the disk's format node, created and deleted through
// transaction; a pull-mode backup exports a point-in-time view of the disk (a scratch
// overlay fed by blockdev-backup sync=none) over NBD, optionally with the bitmap of what
// changed since a checkpoint.

// bitmapView is one entry of a node's dirty-bitmaps in query-named-block-nodes.
type bitmapView struct {
	Node       string
	Name       string `json:"name"`
	Recording  bool   `json:"recording"`
	Persistent bool   `json:"persistent"`
	Busy       bool   `json:"busy"`
	Count      int64  `json:"count"`
}

// domBitmaps lists the dirty bitmaps of the domain's nodes by name.
func domBitmaps(t *testing.T, dom string) map[string]bitmapView {
	t.Helper()
	out := mustRun(t, "qemu-monitor-command", dom, `{"execute":"query-named-block-nodes","arguments":{"flat":true}}`)
	var r struct {
		Return []struct {
			NodeName     string       `json:"node-name"`
			DirtyBitmaps []bitmapView `json:"dirty-bitmaps"`
		} `json:"return"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("query-named-block-nodes: %v: %s", err, out)
	}
	m := map[string]bitmapView{}
	for _, n := range r.Return {
		for _, b := range n.DirtyBitmaps {
			b.Node = n.NodeName
			m[b.Name] = b
		}
	}
	return m
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestCheckpointStory: virsh checkpoint-create-as makes a recording persistent bitmap on
// the disk, checkpoint-list and checkpoint-dumpxml show it, a second checkpoint adds
// another, checkpoint-delete removes the first; the remaining bitmap survives virsh save
// and restore (through the image); the image stores it when the domain is destroyed (qemu-img info sees it, qemu-img check is clean) and tlcvm
// loads it again when the domain starts.
func TestCheckpointStory(t *testing.T) {
	need(t)
	d, dir := startDomain(t, lv.PC, "idle,,disk=virtio-disk0,,disk-rate=1M,,disk-size=4M,,disk-bs=4K")
	name := d.Name

	mustRun(t, "checkpoint-create-as", name, "cp1", "--description", "first")
	if out := mustRun(t, "checkpoint-list", name, "--name"); strings.TrimSpace(out) != "cp1" {
		t.Fatalf("checkpoint-list: %q", out)
	}
	if x := mustRun(t, "checkpoint-dumpxml", name, "cp1"); !strings.Contains(x, "<disk name='vda' checkpoint='bitmap' bitmap='cp1'/>") ||
		!strings.Contains(x, "<description>first</description>") {
		t.Fatalf("checkpoint-dumpxml: %s", x)
	}
	if err := lv.Poll(stateDeadline, 200*time.Millisecond, "the guest's writes in cp1", func() (bool, error) {
		b, ok := domBitmaps(t, name)["cp1"]
		if ok && (!b.Recording || !b.Persistent || b.Busy) {
			return false, fmt.Errorf("cp1: %+v", b)
		}
		return ok && b.Count > 0, nil
	}); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "checkpoint-create-as", name, "cp2")
	if out := mustRun(t, "checkpoint-list", name, "--name", "--topological"); strings.Fields(out)[0] != "cp1" || !strings.Contains(out, "cp2") {
		t.Fatalf("checkpoint-list --topological: %q", out)
	}
	if x := mustRun(t, "checkpoint-dumpxml", name, "cp2"); !strings.Contains(x, "<parent>") || !strings.Contains(x, "<name>cp1</name>") {
		t.Errorf("cp2's parent: %s", x)
	}
	mustRun(t, "checkpoint-delete", name, "cp1")
	bms := domBitmaps(t, name)
	if _, ok := bms["cp1"]; ok || !bms["cp2"].Persistent || !bms["cp2"].Recording {
		t.Fatalf("bitmaps after checkpoint-delete: %+v", bms)
	}

	// virsh save / restore: the bitmap comes back through the image.
	saved := filepath.Join(dir, "saved")
	mustRun(t, "save", name, saved)
	mustRun(t, "restore", saved)
	wantState(t, name, "running", "")
	if b, ok := domBitmaps(t, name)["cp2"]; !ok || !b.Persistent || !b.Recording || b.Count < bms["cp2"].Count {
		t.Fatalf("cp2 after save and restore: %+v (before: %+v)", domBitmaps(t, name), bms["cp2"])
	}

	mustRun(t, "destroy", name)
	var info struct {
		FormatSpecific struct {
			Data struct {
				Bitmaps []struct {
					Name  string   `json:"name"`
					Flags []string `json:"flags"`
				} `json:"bitmaps"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	out := runTool(t, "qemu-img", "info", "--output=json", d.Disk)
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	if bm := info.FormatSpecific.Data.Bitmaps; len(bm) != 1 || bm[0].Name != "cp2" || fmt.Sprint(bm[0].Flags) != "[auto]" {
		t.Fatalf("the image's bitmaps after destroy: %s", out)
	}
	if out := runTool(t, "qemu-img", "check", d.Disk); !strings.Contains(out, "No errors were found") {
		t.Fatalf("qemu-img check: %s", out)
	}
	mustRun(t, "start", name)
	wantState(t, name, "running", "")
	if b, ok := domBitmaps(t, name)["cp2"]; !ok || !b.Persistent || !b.Recording {
		t.Fatalf("cp2 after start: %+v", domBitmaps(t, name))
	}
	mustRun(t, "checkpoint-delete", name, "cp2")
	if bms := domBitmaps(t, name); len(bms) != 0 {
		t.Fatalf("bitmaps after deleting every checkpoint: %+v", bms)
	}
	if out := mustRun(t, "checkpoint-list", name, "--name"); strings.TrimSpace(out) != "" {
		t.Fatalf("checkpoint-list: %q", out)
	}
}

// diskCursors reads the one vCPU's disk cursor from guest RAM (docs/workload.md) with
// the domain paused.
func diskCursors(t *testing.T, dom string, size, bs uint64) []machine.DiskState {
	t.Helper()
	out := mustRun(t, "qemu-monitor-command", dom, "--hmp", "xp /4gx 0x6000")
	var w []uint64
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		_, rest, _ := strings.Cut(line, ": ")
		for _, f := range strings.Fields(rest) {
			v, err := strconv.ParseUint(strings.TrimPrefix(f, "0x"), 16, 64)
			if err != nil {
				t.Fatalf("xp: %q", out)
			}
			w = append(w, v)
		}
	}
	if len(w) != 4 {
		t.Fatalf("xp: %q", out)
	}
	return []machine.DiskState{{Names: []string{"virtio-disk0"}, BS: bs, Blocks: size / bs, Pass: w[0], Block: w[1], Disk: w[2], Written: w[3]}}
}

// TestBackupPullStory: virsh backup-begin in pull mode exports the disk as it was when the
// backup began (the guest writes on) over NBD; qemu-nbd and qemu-img read it there,
// byte for byte the workload's formula at that moment; an incremental backup also
// exports the bitmap of what changed since the checkpoint; domjobabort ends each.
func TestBackupPullStory(t *testing.T) {
	need(t)
	d, dir := startDomain(t, lv.PC, "idle,,disk=virtio-disk0,,disk-rate=1M,,disk-size=4M,,disk-bs=4K")
	name := d.Name
	mustRun(t, "checkpoint-create-as", name, "cp1")

	xml := func(file, sock, scratch, incremental string) string {
		inc := ""
		if incremental != "" {
			inc = "<incremental>" + incremental + "</incremental>"
		}
		p := filepath.Join(dir, file)
		x := fmt.Sprintf(`<domainbackup mode='pull'>%s<server transport='unix' socket='%s'/><disks>`+
			`<disk name='vda' backup='yes' type='file'><scratch file='%s'/></disk></disks></domainbackup>`, inc, sock, scratch)
		if err := os.WriteFile(p, []byte(x), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const size, bs = 4 << 20, 4 << 10
	for _, tc := range []struct{ name, incremental string }{{"full", ""}, {"incremental", "cp1"}} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(dir, tc.name+".sock")
			mustRun(t, "suspend", name)
			st := diskCursors(t, name, size, bs)
			mustRun(t, "backup-begin", name, xml(tc.name+".xml", sock, filepath.Join(dir, tc.name+".scratch"), tc.incremental))
			mustRun(t, "resume", name)
			list := runTool(t, "qemu-nbd", "--list", "-k", sock)
			if !strings.Contains(list, "export: 'vda'") || !strings.Contains(list, "readonly") ||
				(tc.incremental != "") != strings.Contains(list, "qemu:dirty-bitmap:backup-vda") {
				t.Errorf("qemu-nbd --list: %s", list)
			}
			raw := filepath.Join(dir, tc.name+".raw")
			runTool(t, "qemu-img", "convert", "-f", "raw", "-O", "raw", "nbd+unix:///vda?socket="+sock, raw)
			got, err := os.ReadFile(raw)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]byte, 64<<20)
			machine.ExpectDisk(want, 0, st)
			if len(got) != len(want) || string(got) != string(want) {
				t.Errorf("the backup is not the disk at backup-begin (cursor %+v)", st)
			}
			if tc.incremental != "" {
				m := runTool(t, "qemu-img", "map", "--output=json", "--image-opts",
					"driver=nbd,server.type=unix,server.path="+sock+",export=vda,x-dirty-bitmap=qemu:dirty-bitmap:backup-vda")
				if !strings.Contains(m, `"data": false`) {
					t.Errorf("no dirty extent since cp1: %s", m)
				}
			}
			mustRun(t, "domjobabort", name)
		})
	}
	for _, cp := range strings.Fields(mustRun(t, "checkpoint-list", name, "--name", "--topological")) {
		mustRun(t, "checkpoint-delete", name, cp)
	}
}
