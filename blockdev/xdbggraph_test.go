package blockdev_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"tlcvm/blockdev"
)

// TestDebugGraph checks x-debug-query-block-graph's graph for a qcow2 node over a file
// with a backing chain under a virtio-blk device (QEMU 7.2's reply for the same lines:
// tests/blockgraph_test.go): vertices and edges newest first, ids by first appearance.
func TestDebugGraph(t *testing.T) {
	needQemuImg(t)
	dir := t.TempDir()
	base, top := filepath.Join(dir, "base.qcow2"), filepath.Join(dir, "top.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", base, "1M")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
	g := newGraph(nil)
	defer g.Close()
	if _, err := g.Add(&blockdev.Options{Driver: "qcow2", NodeName: "q", File: &blockdev.Ref{Options: &blockdev.Options{Driver: "file", Filename: top, NodeName: "f"}}}); err != nil {
		t.Fatal(err)
	}
	if err := g.AttachDevice(&blockdev.Device{Driver: "virtio-blk-pci", Path: "/machine/peripheral/vd0"}, "q"); err != nil {
		t.Fatal(err)
	}
	gr := g.DebugGraph()
	var got []string
	for _, v := range gr.Vertices {
		got = append(got, fmt.Sprintf("%d %s %s", v.ID, v.Type, v.Name))
	}
	for _, e := range gr.Edges {
		got = append(got, fmt.Sprintf("%d-%s->%d perm=%s shared=%s", e.Parent, e.Name, e.Child, e.Perm, e.Shared))
	}
	// The backing's nodes are named after q: its file first (#block0NN), then itself.
	want := []string{
		"4 block-driver #block102",
		"5 block-driver #block001",
		"2 block-driver q",
		"3 block-driver f",
		"1 block-backend /machine/peripheral/vd0/virtio-backend",
		"4-file->5 perm=consistent read shared=consistent read, write unchanged",
		"2-file->3 perm=consistent read, write, resize shared=consistent read, write unchanged",
		"2-backing->4 perm=consistent read shared=consistent read, write unchanged",
		"1-root->2 perm=consistent read, write shared=consistent read, write unchanged, resize",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("graph:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
