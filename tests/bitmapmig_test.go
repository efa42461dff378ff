package tests_test

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"tlcvm/machine"
	"tlcvm/tests/harness"
)

// Dirty bitmaps across a checkpoint and restore: with the dirty-bitmaps capability they
// travel in the migration stream (names, granularity, state, persistence and bits), under
// block-bitmap-mapping's aliases when one is set; persistent ones also reach the image when
// the restored VM closes it.

// bitmapState is a VM's dirty bitmaps: "node/name recording persistent granularity count
// sha256", sorted.
func (v *mvm) bitmapState() []string {
	v.t.Helper()
	var out []string
	for _, n := range v.do("query-named-block-nodes", map[string]any{"flat": true}).Arr {
		bms, ok := n.Get("dirty-bitmaps")
		if !ok {
			continue
		}
		node, _ := n.Get("node-name")
		for _, b := range bms.Arr {
			name, _ := b.Get("name")
			rec, _ := b.Get("recording")
			pers, _ := b.Get("persistent")
			sum, _ := v.do("x-debug-block-dirty-bitmap-sha256", map[string]any{"node": node.Str(), "name": name.Str()}).Get("sha256")
			out = append(out, fmt.Sprintf("%s/%s %t %t %d %d %s", node.Str(), name.Str(), rec.Bool, pers.Bool,
				num(v.t, b, "granularity"), num(v.t, b, "count"), sum.Str()))
		}
	}
	sort.Strings(out)
	return out
}

func capsOn(v *mvm, caps ...string) {
	var l []map[string]any
	for _, c := range caps {
		l = append(l, map[string]any{"capability": c, "state": true})
	}
	v.do("migrate-set-capabilities", map[string]any{"capabilities": l})
}

// TestBitmapMigration: a recording, a persistent and a disabled bitmap of a disk the guest
// writes are checkpointed with the capability and restored in a new process; then the
// restored VM checkpoints again under a block-bitmap-mapping (one bitmap left out, one
// renamed and made non-persistent) restored with the same mapping.
func TestBitmapMigration(t *testing.T) {
	bin := requireCandidate(t)
	dir := shortDir(t)
	img := newDiskImage(t, dir)
	load := "idle,,disk=vd0,,disk-bs=4K,,disk-size=1M,,disk-rate=4M"
	src := startMigVM(t, bin, dir, "src", diskArgs(img, load, "-S")...)
	src.do("block-dirty-bitmap-add", map[string]any{"node": "q0", "name": "live"})
	src.do("block-dirty-bitmap-add", map[string]any{"node": "q0", "name": "cp", "persistent": true, "granularity": 16384})
	src.do("cont", nil)
	zero := make([]machine.DiskState, diskCPUs)
	src.waitWritten(zero, 128<<10)
	src.do("transaction", map[string]any{"actions": []any{
		map[string]any{"type": "block-dirty-bitmap-add", "data": map[string]any{"node": "q0", "name": "off", "disabled": true, "granularity": 4096}},
		map[string]any{"type": "block-dirty-bitmap-merge", "data": map[string]any{"node": "q0", "target": "off", "bitmaps": []string{"live"}}},
	}})
	capsOn(src, "dirty-bitmaps")
	chk := filepath.Join(dir, "a.chk")
	src.do("migrate", map[string]any{"uri": "file:" + chk})
	src.waitMigration("completed")
	want := src.bitmapState()
	if len(want) != 3 {
		t.Fatalf("source bitmaps: %q", want)
	}
	src.quit()
	// The migrated persistent bitmap was left to the destination: the image lacks it.
	if info := tool(t, "qemu-img", "info", img); strings.Contains(info, "name: cp") {
		t.Errorf("the source stored the migrated bitmap: %s", info)
	}

	// A destination that already has one of the bitmaps fails the restore as QEMU's does.
	dup := startMigVM(t, bin, dir, "dup", diskArgs(img, load, "-S", "-incoming", "defer")...)
	dup.do("block-dirty-bitmap-add", map[string]any{"node": "q0", "name": "off"})
	if r, err := dup.q.Execute("migrate-incoming", map[string]any{"uri": "file:" + chk}); err != nil || strings.Contains(string(r.Raw), "error") {
		t.Fatalf("migrate-incoming: %v %s", err, r.Raw)
	}
	if st, err := dup.p.Wait(harness.DefaultTimeout); err != nil || st.Code != 1 || !strings.Contains(string(dup.p.Stderr.Bytes()),
		"qemu-system-x86_64: Bitmap with the same name ('off') already exists on destination\n"+
			"qemu-system-x86_64: error while loading state for instance 0x0 of device 'dirty-bitmap'\n"+
			"qemu-system-x86_64: load of migration failed: Invalid argument\n") {
		t.Errorf("a bitmap already there: %v %v %s", st, err, dup.p.Stderr.Bytes())
	}

	dst := startMigVM(t, bin, dir, "dst", diskArgs(img, load, "-S", "-incoming", "file:"+chk)...)
	dst.waitMigration("completed")
	if got := dst.bitmapState(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("restored bitmaps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	dst.do("cont", nil)
	dst.waitWritten(dst.cursors(), 64<<10)

	// Again under a mapping: "off" is not mapped (not migrated), "cp" travels as "C",
	// non-persistent.
	mapping := []any{map[string]any{"node-name": "q0", "alias": "disk0", "bitmaps": []any{
		map[string]any{"name": "live", "alias": "L"},
		map[string]any{"name": "cp", "alias": "C", "transform": map[string]any{"persistent": false}},
	}}}
	if r, _ := dst.q.Execute("migrate-set-parameters", map[string]any{"block-bitmap-mapping": []any{
		map[string]any{"node-name": "q0", "alias": "a", "bitmaps": []any{}},
		map[string]any{"node-name": "q0", "alias": "b", "bitmaps": []any{}}}}); !strings.Contains(string(r.Raw), "Invalid mapping given for block-bitmap-mapping: The node name 'q0' is mapped twice") {
		t.Errorf("an ambiguous mapping: %s", r.Raw)
	}
	dst.do("migrate-set-parameters", map[string]any{"block-bitmap-mapping": mapping})
	capsOn(dst, "dirty-bitmaps")
	chk2 := filepath.Join(dir, "b.chk")
	dst.do("migrate", map[string]any{"uri": "file:" + chk2})
	dst.waitMigration("completed")
	second := dst.bitmapState()
	dst.quit()
	// "cp" migrated again: this VM left it out of the image too.
	info := tool(t, "qemu-img", "info", img)

	third := startMigVM(t, bin, dir, "third", diskArgs(img, load, "-S", "-incoming", "defer")...)
	third.do("migrate-set-parameters", map[string]any{"block-bitmap-mapping": mapping})
	third.do("migrate-incoming", map[string]any{"uri": "file:" + chk2})
	third.waitMigration("completed")
	got := third.bitmapState()
	var expect []string
	for _, s := range second {
		switch {
		case strings.HasPrefix(s, "q0/live "):
			expect = append(expect, "q0/live "+strings.TrimPrefix(s, "q0/live "))
		case strings.HasPrefix(s, "q0/cp "):
			expect = append(expect, strings.Replace(s, " true true ", " true false ", 1))
		}
	}
	sort.Strings(expect)
	if strings.Join(got, "\n") != strings.Join(expect, "\n") {
		t.Errorf("bitmaps through the mapping:\n%s\nwant:\n%s\n(image: %s)", strings.Join(got, "\n"), strings.Join(expect, "\n"), info)
	}

	// Without the capability (virsh save / restore): only the persistent bitmap comes
	// back, through the image: the checkpointed VM stored it there and let it go when its
	// images were inactivated at the end of the migration (qcow2_inactivate).
	third.do("block-dirty-bitmap-add", map[string]any{"node": "q0", "name": "cp2", "persistent": true})
	third.do("cont", nil)
	third.waitWritten(third.cursors(), 64<<10)
	third.do("stop", nil)
	var kept []string
	for _, s := range third.bitmapState() {
		if strings.HasPrefix(s, "q0/cp2 ") {
			kept = append(kept, s)
		}
	}
	chk3 := filepath.Join(dir, "c.chk")
	third.do("migrate", map[string]any{"uri": "file:" + chk3})
	third.waitMigration("completed")
	for _, s := range third.bitmapState() {
		if strings.HasPrefix(s, "q0/cp2 ") {
			t.Errorf("the source still holds the bitmap it stored at inactivation: %s", s)
		}
	}
	third.quit()
	if out := tool(t, "qemu-img", "check", img); !strings.Contains(out, "No errors were found on the image.") {
		t.Errorf("qemu-img check: %s", out)
	}
	if info := tool(t, "qemu-img", "info", img); !strings.Contains(info, "name: cp2") || strings.Contains(info, "in-use") {
		t.Errorf("the image after quit: %s", info)
	}
	fourth := startMigVM(t, bin, dir, "fourth", diskArgs(img, load, "-S", "-incoming", "file:"+chk3)...)
	fourth.waitMigration("completed")
	if got := fourth.bitmapState(); len(kept) != 1 || strings.Join(got, "\n") != kept[0] {
		t.Errorf("bitmaps through the image: %q, want %q", got, kept)
	}
	fourth.quit()
}
