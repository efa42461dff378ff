package tests_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"tlcvm/tests/harness"
)

// x-debug-query-block-graph against QEMU 7.2: the same -blockdev/-drive/-device lines
// (and a mirror job) in both binaries, the replies compared byte for byte after the
// generated node names ("#block" N RR, random digits) and the vertex ids are renumbered
// by first appearance.

var (
	autoNodeName = regexp.MustCompile(`#block\d+`)
	graphID      = regexp.MustCompile(`"(id|parent|child)": (\d+)`)
)

// normalizeGraph renumbers generated node names and vertex ids by first appearance.
func normalizeGraph(raw string) string {
	names := map[string]int{}
	raw = autoNodeName.ReplaceAllStringFunc(raw, func(s string) string {
		if _, ok := names[s]; !ok {
			names[s] = len(names)
		}
		return fmt.Sprintf("#auto%d", names[s])
	})
	ids := map[string]int{}
	return graphID.ReplaceAllStringFunc(raw, func(s string) string {
		m := graphID.FindStringSubmatch(s)
		if _, ok := ids[m[2]]; !ok {
			ids[m[2]] = len(ids) + 1
		}
		return fmt.Sprintf("%q: %d", m[1], ids[m[2]])
	})
}

// blockGraph is the normalized reply of x-debug-query-block-graph, one edge or vertex a line.
func blockGraph(t *testing.T, q *harness.QMP) string {
	t.Helper()
	m, err := q.Execute("x-debug-query-block-graph", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Value.Get("return"); !ok {
		t.Fatalf("x-debug-query-block-graph: %s", m.Raw)
	}
	s := normalizeGraph(strings.TrimSpace(string(m.Raw)))
	return strings.ReplaceAll(s, "}, {", "},\n{")
}

func runBlockGraph(t *testing.T, bin, dir string, mirror bool) string {
	img := func(n string) string { return filepath.Join(dir, n) }
	args := append([]string{"-machine", "pc", "-S"}, jobChainArgs(dir)...)
	args = append(args, "-device", "virtio-blk-pci,drive=top,id=vd0",
		"-drive", "if=none,id=d1,file="+img("lone.qcow2")+",format=qcow2,readonly=on")
	p, q, _ := startVM(t, bin, args...)
	var out []string
	out = append(out, blockGraph(t, q))
	if mirror {
		execOK(t, q, "blockdev-add", map[string]any{"driver": "qcow2", "node-name": "tgt",
			"file": map[string]any{"driver": "file", "filename": img("tgt.qcow2")}})
		execOK(t, q, "blockdev-mirror", map[string]any{"job-id": "m0", "device": "top",
			"target": "tgt", "sync": "top"})
		if _, err := q.WaitEvent("BLOCK_JOB_READY"); err != nil {
			t.Fatal(err)
		}
		out = append(out, blockGraph(t, q))
		execOK(t, q, "block-job-cancel", map[string]any{"device": "m0"})
		waitJobGone(t, q, "m0", false)
		out = append(out, blockGraph(t, q))
	}
	execOK(t, q, "quit", nil)
	_ = p
	return strings.Join(out, "\n----\n")
}

// runRawMirrorGraph is a mirror between two raw nodes: the target's file child shares
// only what the mirror's target user shares (write unchanged).
func runRawMirrorGraph(t *testing.T, bin, dir string) string {
	img := func(n string) string { return filepath.Join(dir, n) }
	p, q, _ := startVM(t, bin, "-machine", "pc", "-S",
		"-blockdev", "driver=raw,node-name=s,file.driver=file,file.filename="+img("s.raw"),
		"-blockdev", "driver=raw,node-name=t,file.driver=file,file.filename="+img("t.raw"))
	execOK(t, q, "blockdev-mirror", map[string]any{"job-id": "m0", "device": "s", "target": "t",
		"sync": "full", "speed": 1})
	out := blockGraph(t, q)
	execOK(t, q, "quit", nil)
	_ = p
	return out
}

func TestBlockGraphRawMirrorDifferential(t *testing.T) {
	bin, ref := imageDifferential(t)
	run := func(b string) string {
		dir := t.TempDir()
		for _, n := range []string{"s.raw", "t.raw"} {
			tool(t, "qemu-img", "create", "-q", "-f", "raw", filepath.Join(dir, n), "1M")
		}
		return runRawMirrorGraph(t, b, dir)
	}
	want, got := run(ref), run(bin)
	if d := harness.Diff(strings.Split(want, "\n"), strings.Split(got, "\n")); d != "" {
		t.Errorf("x-debug-query-block-graph differs from QEMU 7.2 (- QEMU, + tlcvm):\n%s", d)
	}
}

func TestBlockGraphDifferential(t *testing.T) {
	bin, ref := imageDifferential(t)
	for _, mirror := range []bool{false, true} {
		t.Run(fmt.Sprintf("mirror=%v", mirror), func(t *testing.T) {
			run := func(b string) string {
				dir := t.TempDir()
				jobChain(t, dir, false)
				tool(t, "qemu-img", "create", "-q", "-f", "qcow2", filepath.Join(dir, "lone.qcow2"), "1M")
				tool(t, "qemu-img", "create", "-q", "-f", "qcow2", filepath.Join(dir, "tgt.qcow2"), "8M")
				return runBlockGraph(t, b, dir, mirror)
			}
			want, got := run(ref), run(bin)
			if !strings.Contains(want, `"block-job"`) && mirror {
				t.Errorf("QEMU's graph has no job:\n%s", want)
			}
			if d := harness.Diff(strings.Split(want, "\n"), strings.Split(got, "\n")); d != "" {
				t.Errorf("x-debug-query-block-graph differs from QEMU 7.2 (- QEMU, + tlcvm):\n%s", d)
			}
		})
	}
}

// imageDifferential starts a differential test of images: both binaries and qemu-img are
// needed; it runs in parallel.
func imageDifferential(t *testing.T) (bin, ref string) {
	bin, ref = requireCandidate(t), requireReference(t)
	needQemuImg(t)
	parallel(t)
	return bin, ref
}
