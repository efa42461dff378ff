package tests_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"tlcvm/tests/harness"
)

// Who uses a node, against QEMU 7.2: an overlay blockdev-snapshot-sync puts over a node no
// device uses, HMP qemu-io writes beside a drive-backup sync=none (its copy-before-write
// filter), and two -drive on one image with file.locking=off. Each side runs the same
// command line and QMP steps; the replies are compared after the generated node names are
// renumbered.

// usersStep is one QMP command of a case (an HMP command line when hmp is set).
type usersStep struct {
	cmd  string
	args map[string]any
	hmp  string
}

// runUsers starts bin with args and returns each step's reply (the return or the error,
// never the events), query-named-block-nodes cut down to what says who holds what.
func runUsers(t *testing.T, bin string, args []string, steps []usersStep) string {
	t.Helper()
	_, q, _ := startVM(t, bin, append([]string{"-machine", "pc", "-S"}, args...)...)
	var out []string
	for _, s := range steps {
		cmd, a := s.cmd, any(nil)
		if s.args != nil {
			a = s.args
		}
		if s.hmp != "" {
			cmd, a = "human-monitor-command", map[string]any{"command-line": s.hmp}
		}
		m, err := q.Execute(cmd, a)
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		var reply struct {
			Return json.RawMessage `json:"return"`
			Error  *struct{ Class, Desc string }
		}
		if err := json.Unmarshal(m.Raw, &reply); err != nil {
			t.Fatalf("%s: %v: %s", cmd, err, m.Raw)
		}
		line := cmd + ": "
		switch {
		case reply.Error != nil:
			line += "error " + reply.Error.Class + ": " + reply.Error.Desc
		case cmd == "query-named-block-nodes":
			line += namedNodesSummary(t, reply.Return)
		case cmd == "x-debug-query-block-graph":
			line += strings.ReplaceAll(normalizeGraph(string(reply.Return)), "}, {", "},\n{")
		default:
			line += string(reply.Return)
		}
		out = append(out, line)
	}
	execOK(t, q, "quit", nil)
	return autoNodeName.ReplaceAllString(strings.Join(out, "\n"), "#block")
}

// namedNodesSummary is query-named-block-nodes as node name, driver, file and read-only.
func namedNodesSummary(t *testing.T, raw json.RawMessage) string {
	var nodes []struct {
		NodeName string `json:"node-name"`
		Drv      string
		File     string
		RO       bool
	}
	if err := json.Unmarshal(raw, &nodes); err != nil {
		t.Fatalf("query-named-block-nodes: %v", err)
	}
	var s []string
	for _, n := range nodes {
		s = append(s, fmt.Sprintf("%s %s %s ro=%v", n.NodeName, n.Drv, filepath.Base(n.File), n.RO))
	}
	return strings.Join(s, ", ")
}

// usersDifferential runs one case under both binaries, each in a new directory holding
// base.qcow2 (args and steps name it through dir), and compares the transcripts.
func usersDifferential(t *testing.T, args func(dir string) []string, steps func(dir string) []usersStep) {
	bin, ref := imageDifferential(t)
	run := func(b string) string {
		dir := shortDir(t)
		tool(t, "qemu-img", "create", "-q", "-f", "qcow2", filepath.Join(dir, "base.qcow2"), "64M")
		s := runUsers(t, b, args(dir), steps(dir))
		return strings.ReplaceAll(s, dir, "DIR")
	}
	want, got := run(ref), run(bin)
	if d := harness.Diff(strings.Split(want, "\n"), strings.Split(got, "\n")); d != "" {
		t.Errorf("differs from QEMU 7.2 (- QEMU, + tlcvm):\n%s", d)
	}
}

// TestSnapshotSyncUnusedNodeDifferential: blockdev-snapshot-sync over a -blockdev node that
// no device uses leaves no overlay behind (QEMU's transaction drops its only reference),
// the node read-only with its file child, its name free and the node deletable; over a
// device's node the overlay stays.
func TestSnapshotSyncUnusedNodeDifferential(t *testing.T) {
	for _, device := range []bool{false, true} {
		t.Run(fmt.Sprintf("device=%v", device), func(t *testing.T) {
			usersDifferential(t, func(dir string) []string {
				a := []string{"-blockdev", fmt.Sprintf(`{"driver":"qcow2","node-name":"n0","file":{"driver":"file","filename":%q}}`,
					filepath.Join(dir, "base.qcow2"))}
				if device {
					a = append(a, "-device", "virtio-blk-pci,drive=n0,id=vd0")
				}
				return a
			}, func(dir string) []usersStep {
				snap := func(file string) usersStep {
					return usersStep{cmd: "blockdev-snapshot-sync", args: map[string]any{"node-name": "n0",
						"snapshot-file": filepath.Join(dir, file), "snapshot-node-name": "ov", "format": "qcow2"}}
				}
				return []usersStep{snap("ov.qcow2"), {cmd: "query-named-block-nodes", args: map[string]any{"flat": true}},
					{cmd: "x-debug-query-block-graph"}, snap("ov2.qcow2"),
					{cmd: "query-named-block-nodes", args: map[string]any{"flat": true}},
					{cmd: "blockdev-del", args: map[string]any{"node-name": "n0"}},
					{cmd: "query-named-block-nodes", args: map[string]any{"flat": true}}}
			})
		})
	}
}

// TestBackupSyncNoneQemuIoDifferential: beside a backup sync=none (its copy-before-write
// filter over the source), HMP qemu-io writes through the drive the device uses, and is
// refused on the node itself (a new user wanting write, which the filter does not share).
// The cases: drive-backup of a -drive's node with a device, of a -blockdev node without
// one, and libvirt's pull-mode backup (blockdev-backup into a scratch overlay whose
// backing is the source, which qemu-io may write).
func TestBackupSyncNoneQemuIoDifferential(t *testing.T) {
	for _, c := range []string{"drive", "blockdev", "scratch"} {
		t.Run(c, func(t *testing.T) {
			usersDifferential(t, func(dir string) []string {
				img := filepath.Join(dir, "base.qcow2")
				switch c {
				case "drive":
					return []string{"-drive", "file=" + img + ",if=none,id=d0,node-name=n0", "-device", "virtio-blk-pci,drive=d0"}
				case "scratch":
					tool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", img, filepath.Join(dir, "scratch.qcow2"))
				}
				return []string{"-blockdev", fmt.Sprintf(`{"driver":"qcow2","node-name":"n0","file":{"driver":"file","filename":%q}}`, img)}
			}, func(dir string) []usersStep {
				s := []usersStep{{cmd: "drive-backup", args: map[string]any{"job-id": "b0", "device": "n0",
					"target": filepath.Join(dir, "tgt.qcow2"), "sync": "none", "format": "qcow2"}}}
				if c == "scratch" {
					s = []usersStep{{cmd: "blockdev-add", args: map[string]any{"driver": "qcow2", "node-name": "sc", "backing": "n0",
						"file": map[string]any{"driver": "file", "filename": filepath.Join(dir, "scratch.qcow2")}}},
						{cmd: "blockdev-backup", args: map[string]any{"job-id": "b0", "device": "n0", "target": "sc", "sync": "none"}},
						{hmp: `qemu-io sc "write -P 0x77 0 64k"`}}
				}
				s = append(s, usersStep{cmd: "x-debug-query-block-graph"})
				if c == "drive" {
					s = append(s, usersStep{hmp: `qemu-io d0 "write -P 0x55 0 64k"`}, usersStep{hmp: `qemu-io d0 "write -P 0x66 1M 64k"`})
				}
				return append(s, usersStep{hmp: `qemu-io n0 "write -P 0x55 0 64k"`}, usersStep{cmd: "query-block-jobs"})
			})
		})
	}
}

// TestLockingOffSharedImageDifferential: two -drive over one image open when either of
// them has file.locking=off (the other takes its locks alone), and both write and read
// it; without it the second drive fails on the first's write lock, in both binaries with
// QEMU's message.
func TestLockingOffSharedImageDifferential(t *testing.T) {
	for _, locks := range [][2]string{{"off", "off"}, {"off", "on"}, {"on", "off"}} {
		t.Run(locks[0]+","+locks[1], func(t *testing.T) {
			usersDifferential(t, func(dir string) []string {
				img := filepath.Join(dir, "base.qcow2")
				return []string{"-drive", "file=" + img + ",if=none,id=d0,file.locking=" + locks[0],
					"-drive", "file=" + img + ",if=none,id=d1,file.locking=" + locks[1],
					"-device", "virtio-blk-pci,drive=d0", "-device", "virtio-blk-pci,drive=d1"}
			}, func(dir string) []usersStep {
				return []usersStep{{cmd: "query-named-block-nodes", args: map[string]any{"flat": true}},
					{hmp: `qemu-io d1 "write -P 0x55 0 64k"`}, {hmp: `qemu-io d0 "write -P 0x66 1M 64k"`},
					{cmd: "x-debug-query-block-graph"}}
			})
		})
	}
	t.Run("on,on", func(t *testing.T) {
		bin, ref := imageDifferential(t)
		run := func(b string) string {
			dir := shortDir(t)
			img := filepath.Join(dir, "base.qcow2")
			tool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "64M")
			ctx, cancel := context.WithTimeout(context.Background(), harness.DefaultTimeout)
			defer cancel()
			out, err := exec.CommandContext(ctx, b, "-machine", "pc", "-S", "-nodefaults", "-display", "none",
				"-drive", "file="+img+",if=none,id=d0", "-drive", "file="+img+",if=none,id=d1").CombinedOutput()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("%s started with two drives locking one image: %v: %s", b, err, out)
			}
			return strings.ReplaceAll(string(out), dir, "DIR")
		}
		want, got := run(ref), run(bin)
		if want != got {
			t.Errorf("start-up error differs from QEMU 7.2:\nQEMU:  %q\ntlcvm: %q", want, got)
		}
	})
}

// TestJobCancelEventsBeforeReplyDifferential: cancelling a backup with sync=none (its
// goroutine ends as soon as it is entered) emits aborting, BLOCK_JOB_CANCELLED, concluded
// and null before the command's reply, as QEMU 7.2's job_exit runs before it; with
// block-job-cancel and job-cancel.
func TestJobCancelEventsBeforeReplyDifferential(t *testing.T) {
	for _, cmd := range []string{"block-job-cancel", "job-cancel"} {
		t.Run(cmd, func(t *testing.T) {
			bin, ref := imageDifferential(t)
			run := func(b string) string {
				dir := shortDir(t)
				img := filepath.Join(dir, "base.qcow2")
				tool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "64M")
				_, q, _ := startVM(t, b, "-machine", "pc", "-S", "-drive", "file="+img+",if=none,id=d0,node-name=n0",
					"-device", "virtio-blk-pci,drive=d0")
				execOK(t, q, "drive-backup", map[string]any{"job-id": "b0", "device": "n0",
					"target": filepath.Join(dir, "tgt.qcow2"), "sync": "none", "format": "qcow2"})
				execOK(t, q, "query-block-jobs", nil)
				q.Pending()
				args := map[string]any{"device": "b0"}
				if cmd == "job-cancel" {
					args = map[string]any{"id": "b0"}
				}
				execOK(t, q, cmd, args)
				var before []string
				for _, m := range q.Pending() {
					ev, _ := m.Value.Get("event")
					data, _ := m.Value.Get("data")
					st, _ := data.Get("status")
					before = append(before, ev.Str()+" "+st.Str())
				}
				execOK(t, q, "quit", nil)
				return strings.Join(before, "\n")
			}
			want, got := run(ref), run(bin)
			if !strings.Contains(want, "BLOCK_JOB_CANCELLED") {
				t.Fatalf("QEMU emitted no BLOCK_JOB_CANCELLED before the reply:\n%s", want)
			}
			if d := harness.Diff(strings.Split(want, "\n"), strings.Split(got, "\n")); d != "" {
				t.Errorf("events before %s's reply differ from QEMU 7.2 (- QEMU, + tlcvm):\n%s", cmd, d)
			}
		})
	}
}
