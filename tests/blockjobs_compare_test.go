package tests_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlcvm/tests/harness"
)

// The block jobs' images against QEMU 7.2's: the same starting images (made by qemu-img
// and qemu-io, so the guests' differences do not matter), the same QMP job sequence on a
// paused VM under each binary, then each image the jobs leave is compared with its twin
// from QEMU: contents (qemu-img compare, through the backing chains), the backing chain
// (qemu-img info --backing-chain: files, formats, backing names, sizes) and qemu-img check
// on both, and the allocation (qemu-img map without host offsets: which layer holds what,
// data or zeroes). Where the clusters went in the file may differ.

// jobCase is one job sequence: the images it starts from (qemu-img/qemu-io commands in
// the case's directory), the QMP steps (returning what else must match, as errors), and
// the files whose results are compared.
type jobCase struct {
	name  string
	steps func(t *testing.T, q *harness.QMP, dir string) string // what else to compare
	check []string
	// relative: the images name their backing files relatively ("base.qcow2"), so the
	// chain the VM opens with explicit backing nodes has overridden backings and QEMU
	// names mid and top json:{…} (bdrv_refresh_filename), which the new targets record.
	relative bool
}

// jobChain is base ← mid ← top, 8 MiB each: 0x11 in base's first 3 MiB, 0x22 in mid's
// [1 MiB, 4 MiB), 0x33 in top's [2.5 MiB, 5 MiB), zeroes written in top at 6 MiB.
func jobChain(t *testing.T, dir string, relative bool) {
	img := func(name string) string { return filepath.Join(dir, name) }
	backing := img
	if relative {
		backing = func(name string) string { return name }
	}
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", img("base.qcow2"), "8M")
	tool(t, "qemu-io", "-f", "qcow2", "-c", "write -q -P 0x11 0 3M", img("base.qcow2"))
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", backing("base.qcow2"), "-F", "qcow2", img("mid.qcow2"))
	tool(t, "qemu-io", "-f", "qcow2", "-c", "write -q -P 0x22 1M 3M", img("mid.qcow2"))
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", backing("mid.qcow2"), "-F", "qcow2", img("top.qcow2"))
	tool(t, "qemu-io", "-f", "qcow2", "-c", "write -q -P 0x33 2560k 2560k", "-c", "write -q -z 6M 512k", img("top.qcow2"))
}

// jobChainArgs opens the chain with named nodes: base, mid, top (the root).
func jobChainArgs(dir string) []string {
	var args []string
	for _, n := range []string{"base", "mid", "top"} {
		o := fmt.Sprintf(`{"driver":"qcow2","node-name":%q,"file":{"driver":"file","filename":%q}`, n, filepath.Join(dir, n+".qcow2"))
		switch n {
		case "mid":
			o += `,"backing":"base"`
		case "top":
			o += `,"backing":"mid"`
		}
		args = append(args, "-blockdev", o+"}")
	}
	return args
}

// runJob runs a job command and waits until the job has gone; with complete it sends
// block-job-complete once the job is ready.
func runJob(t *testing.T, q *harness.QMP, cmd string, args map[string]any, complete bool) {
	t.Helper()
	execOK(t, q, cmd, args)
	id, _ := args["job-id"].(string)
	waitJobGone(t, q, id, complete)
}

// waitJobGone waits until job id has gone; with complete it sends block-job-complete once
// the job is ready.
func waitJobGone(t *testing.T, q *harness.QMP, id string, complete bool) {
	t.Helper()
	deadline := time.Now().Add(harness.DefaultTimeout)
	sent := false
	for {
		found := false
		for _, j := range execOK(t, q, "query-block-jobs", nil).Arr {
			if dev, _ := j.Get("device"); dev.Str() != id {
				continue
			}
			found = true
			if ready, _ := j.Get("ready"); complete && ready.Bool && !sent {
				execOK(t, q, "block-job-complete", map[string]any{"device": id})
				sent = true
			}
		}
		if !found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still there after %v", id, harness.DefaultTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hmpIO runs an HMP qemu-io command on a node.
func hmpIO(t *testing.T, q *harness.QMP, node, cmd string) {
	t.Helper()
	line := fmt.Sprintf("qemu-io %s %q", node, cmd)
	if r := execOK(t, q, "human-monitor-command", map[string]any{"command-line": line}).Str(); r != "" {
		t.Fatalf("%s: %q", line, r)
	}
}

var jobCases = []jobCase{
	{"stream", func(t *testing.T, q *harness.QMP, dir string) string {
		runJob(t, q, "block-stream", map[string]any{"job-id": "j", "device": "top"}, false)
		return ""
	}, []string{"top.qcow2"}, false},
	{"stream-base", func(t *testing.T, q *harness.QMP, dir string) string {
		runJob(t, q, "block-stream", map[string]any{"job-id": "j", "device": "top", "base-node": "base"}, false)
		return ""
	}, []string{"top.qcow2"}, false},
	{"commit-intermediate", func(t *testing.T, q *harness.QMP, dir string) string {
		runJob(t, q, "block-commit", map[string]any{"job-id": "j", "device": "top", "top-node": "mid", "base-node": "base"}, false)
		return ""
	}, []string{"top.qcow2", "base.qcow2"}, false},
	{"commit-active", func(t *testing.T, q *harness.QMP, dir string) string {
		runJob(t, q, "block-commit", map[string]any{"job-id": "j", "device": "top"}, true)
		return ""
	}, []string{"base.qcow2", "mid.qcow2"}, false},
	{"mirror-full", func(t *testing.T, q *harness.QMP, dir string) string {
		runJob(t, q, "drive-mirror", map[string]any{"job-id": "j", "device": "top", "sync": "full",
			"target": filepath.Join(dir, "target.qcow2"), "format": "qcow2"}, true)
		return ""
	}, []string{"target.qcow2"}, false},
	{"mirror-top", func(t *testing.T, q *harness.QMP, dir string) string {
		runJob(t, q, "drive-mirror", map[string]any{"job-id": "j", "device": "top", "sync": "top",
			"target": filepath.Join(dir, "target.qcow2"), "format": "qcow2"}, true)
		return ""
	}, []string{"target.qcow2"}, false},
	{"mirror-none", func(t *testing.T, q *harness.QMP, dir string) string {
		execOK(t, q, "drive-mirror", map[string]any{"job-id": "j", "device": "top", "sync": "none",
			"target": filepath.Join(dir, "target.qcow2"), "format": "qcow2"})
		// a write while the job runs is what sync=none copies
		hmpIO(t, q, "top", "write -q -P 0x44 7M 300k")
		waitJobGone(t, q, "j", true)
		return ""
	}, []string{"target.qcow2"}, false},
	{"backup-full", func(t *testing.T, q *harness.QMP, dir string) string {
		runJob(t, q, "drive-backup", map[string]any{"job-id": "j", "device": "top", "sync": "full",
			"target": filepath.Join(dir, "target.qcow2"), "format": "qcow2"}, false)
		return ""
	}, []string{"target.qcow2"}, false},
	{"backup-top", func(t *testing.T, q *harness.QMP, dir string) string {
		// into an existing image without a backing file: only what top holds itself
		tool(t, "qemu-img", "create", "-q", "-f", "qcow2", filepath.Join(dir, "target.qcow2"), "8M")
		runJob(t, q, "drive-backup", map[string]any{"job-id": "j", "device": "top", "sync": "top", "mode": "existing",
			"target": filepath.Join(dir, "target.qcow2"), "format": "qcow2"}, false)
		// a new target over mid, which the VM holds: QEMU cannot open its backing file
		m, err := q.Execute("drive-backup", map[string]any{"job-id": "j2", "device": "top", "sync": "top",
			"target": filepath.Join(dir, "new.qcow2"), "format": "qcow2"})
		if err != nil {
			t.Fatal(err)
		}
		return strings.ReplaceAll(string(m.Raw), dir, "DIR")
	}, []string{"target.qcow2"}, false},
	{"backup-incremental", func(t *testing.T, q *harness.QMP, dir string) string {
		execOK(t, q, "block-dirty-bitmap-add", map[string]any{"node": "top", "name": "b0"})
		runJob(t, q, "drive-backup", map[string]any{"job-id": "j", "device": "top", "sync": "full",
			"target": filepath.Join(dir, "full.qcow2"), "format": "qcow2"}, false)
		hmpIO(t, q, "top", "write -q -P 0x55 100k 200k")
		hmpIO(t, q, "top", "write -q -z 5M 64k")
		runJob(t, q, "drive-backup", map[string]any{"job-id": "j", "device": "top", "sync": "incremental",
			"bitmap": "b0", "target": filepath.Join(dir, "inc.qcow2"), "format": "qcow2"}, false)
		return ""
	}, []string{"full.qcow2", "inc.qcow2", "top.qcow2"}, false},
	{"relative-mirror-top", func(t *testing.T, q *harness.QMP, dir string) string {
		runJob(t, q, "drive-mirror", map[string]any{"job-id": "j", "device": "top", "sync": "top",
			"target": filepath.Join(dir, "target.qcow2"), "format": "qcow2"}, true)
		return ""
	}, []string{"target.qcow2"}, true},
	{"relative-mirror-none", func(t *testing.T, q *harness.QMP, dir string) string {
		execOK(t, q, "drive-mirror", map[string]any{"job-id": "j", "device": "top", "sync": "none",
			"target": filepath.Join(dir, "target.qcow2"), "format": "qcow2", "mode": "absolute-paths"})
		hmpIO(t, q, "top", "write -q -P 0x44 7M 300k")
		waitJobGone(t, q, "j", true)
		return ""
	}, []string{"target.qcow2"}, true},
	{"relative-backup-none", func(t *testing.T, q *harness.QMP, dir string) string {
		execOK(t, q, "drive-backup", map[string]any{"job-id": "j", "device": "top", "sync": "none",
			"target": filepath.Join(dir, "target.qcow2"), "format": "qcow2"})
		execOK(t, q, "block-job-cancel", map[string]any{"device": "j"})
		waitJobGone(t, q, "j", false)
		return ""
	}, []string{"target.qcow2"}, true},
	{"relative-snapshot-sync", func(t *testing.T, q *harness.QMP, dir string) string {
		// (the overlay has no user: QEMU frees it after the command, tlcvm keeps it)
		execOK(t, q, "blockdev-snapshot-sync", map[string]any{"node-name": "top", "snapshot-file": filepath.Join(dir, "snap.qcow2"),
			"snapshot-node-name": "snap", "format": "qcow2"})
		return ""
	}, []string{"snap.qcow2"}, true},
	{"relative-commit-intermediate", func(t *testing.T, q *harness.QMP, dir string) string {
		runJob(t, q, "block-commit", map[string]any{"job-id": "j", "device": "top", "top-node": "mid", "base-node": "base"}, false)
		return ""
	}, []string{"top.qcow2", "base.qcow2"}, true},
	{"relative-stream-base", func(t *testing.T, q *harness.QMP, dir string) string {
		runJob(t, q, "block-stream", map[string]any{"job-id": "j", "device": "top", "base-node": "base"}, false)
		return ""
	}, []string{"top.qcow2"}, true},
}

// runJobCase makes the starting images in a fresh directory, runs the case's steps on a
// paused VM of bin, quits it, and returns the directory and what the steps returned.
func runJobCase(t *testing.T, bin string, c jobCase) (string, string) {
	dir := shortDir(t)
	jobChain(t, dir, c.relative)
	_, q, _ := startVM(t, bin, append([]string{"-machine", "pc", "-S"}, jobChainArgs(dir)...)...)
	out := c.steps(t, q, dir)
	execOK(t, q, "quit", nil)
	q.Close()
	return dir, out
}

// layerOpts names path alone, without its backing file (a json:{} backing name with
// nested backing options is one qemu-img cannot open: "Block format 'qcow2' does not
// support the option 'backing.driver'", with QEMU's images as with tlcvm's).
func layerOpts(path string) []string {
	return []string{fmt.Sprintf(`json:{"driver":"qcow2","file":{"driver":"file","filename":%q},"backing":null}`, path)}
}

// imageArgs are qemu-img's arguments naming path: the chain, or (relative) the layer.
func imageArgs(path string, relative bool) []string {
	if relative {
		return layerOpts(path)
	}
	return []string{path}
}

// chainInfo is what qemu-img info --backing-chain says of an image's chain (relative:
// of the image alone), the directory replaced by DIR.
func chainInfo(t *testing.T, path, dir string, relative bool) string {
	var layers []struct {
		Filename      string `json:"filename"`
		Format        string `json:"format"`
		VirtualSize   int64  `json:"virtual-size"`
		Backing       string `json:"backing-filename"`
		BackingFormat string `json:"backing-filename-format"`
		ClusterSize   int64  `json:"cluster-size"`
	}
	var out string
	if relative {
		out = "[" + tool(t, "qemu-img", "info", "-U", "--output=json", path) + "]"
	} else {
		out = tool(t, "qemu-img", "info", "-U", "--backing-chain", "--output=json", path)
	}
	if err := json.Unmarshal([]byte(out), &layers); err != nil {
		t.Fatalf("qemu-img info %s: %v\n%s", path, err, out)
	}
	var b strings.Builder
	for _, l := range layers {
		fmt.Fprintf(&b, "%s %s %d cluster %d backing %q (%s)\n", l.Filename, l.Format, l.VirtualSize, l.ClusterSize, l.Backing, l.BackingFormat)
	}
	return strings.ReplaceAll(b.String(), dir, "DIR")
}

// imageCheck is qemu-img check's verdict on path ("" when clean).
func imageCheck(path string, relative bool) string {
	out, err := exec.Command("qemu-img", append([]string{"check", "-U"}, imageArgs(path, relative)...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No errors were found on the image.") {
		return fmt.Sprintf("%v\n%s", err, out)
	}
	return ""
}

func TestBlockJobImagesMatchQEMU(t *testing.T) {
	bin := requireCandidate(t)
	ref := requireReference(t)
	needQemuImg(t)
	if _, err := exec.LookPath("qemu-io"); err != nil {
		t.Skip("qemu-io not installed (Debian: qemu-utils)")
	}
	for _, c := range jobCases {
		t.Run(c.name, func(t *testing.T) {
			parallel(t)
			want, wantOut := runJobCase(t, ref, c)
			got, gotOut := runJobCase(t, bin, c)
			if gotOut != wantOut {
				t.Errorf("replies differ from QEMU 7.2's:\n%s\nQEMU's:\n%s", gotOut, wantOut)
			}
			for _, f := range c.check {
				w, g := filepath.Join(want, f), filepath.Join(got, f)
				for _, p := range []string{w, g} {
					if v := imageCheck(p, c.relative); v != "" {
						t.Errorf("%s: qemu-img check %s: %s", f, p, v)
					}
				}
				if wi, gi := chainInfo(t, w, want, c.relative), chainInfo(t, g, got, c.relative); wi != gi {
					t.Errorf("%s: backing chain differs from QEMU 7.2's:\n%s\nQEMU's:\n%s", f, gi, wi)
				}
				cmp := []string{"compare", "-U", w, g}
				if c.relative {
					cmp = []string{"compare", "-U", layerOpts(w)[0], layerOpts(g)[0]}
				}
				if out, err := exec.Command("qemu-img", cmp...).CombinedOutput(); err != nil {
					t.Errorf("%s: contents differ from QEMU 7.2's: %v\n%s", f, err, out)
				}
				wm := tool(t, "qemu-img", append([]string{"map", "-U", "--output=json"}, imageArgs(w, c.relative)...)...)
				gm := tool(t, "qemu-img", append([]string{"map", "-U", "--output=json"}, imageArgs(g, c.relative)...)...)
				if stripOffsets(wm) != stripOffsets(gm) {
					t.Errorf("%s: allocation differs from QEMU 7.2's:\n%s\nQEMU's:\n%s", f, stripOffsets(gm), stripOffsets(wm))
				}
			}
		})
	}
}

// stripOffsets is qemu-img map's JSON without the host offsets (where clusters went),
// the extents that then look alike merged.
func stripOffsets(m string) string {
	var ex []struct {
		Start   int64 `json:"start"`
		Length  int64 `json:"length"`
		Depth   int   `json:"depth"`
		Present bool  `json:"present"`
		Zero    bool  `json:"zero"`
		Data    bool  `json:"data"`
	}
	if err := json.Unmarshal([]byte(m), &ex); err != nil {
		return m
	}
	var b strings.Builder
	for i := 0; i < len(ex); {
		e, end := ex[i], ex[i].Start+ex[i].Length
		for i++; i < len(ex) && ex[i].Depth == e.Depth && ex[i].Present == e.Present && ex[i].Zero == e.Zero && ex[i].Data == e.Data; i++ {
			end = ex[i].Start + ex[i].Length
		}
		fmt.Fprintf(&b, "%#x+%#x depth %d present %v zero %v data %v\n", e.Start, end-e.Start, e.Depth, e.Present, e.Zero, e.Data)
	}
	return b.String()
}
