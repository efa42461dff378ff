package tests_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"tlcvm/tests/harness"
)

// blkdebug through HMP qemu-io, against QEMU 7.2: what qemu-io prints when the rules inject
// errors (errno texts, sectors, once, iotype, states), the breakpoint commands' failures,
// and the qcow2 image a failed L2 update leaves.

// blkdebugScript is run on a raw node d0 over blkdebug node dbg, and a qcow2 node q0 over
// blkdebug node dbq.
var blkdebugScript = []string{
	`qemu-io d0 "read 0 512"`, `qemu-io d0 "read -q 0 512"`,
	`qemu-io d0 "write -q 0 512"`, `qemu-io d0 "write -q 4096 512"`, `qemu-io d0 "write -q 3584 1024"`,
	`qemu-io d0 "flush"`, `qemu-io d0 "break nosuch A"`, `qemu-io dbg "resume A"`,
	`qemu-io dbg "remove_break A"`, `qemu-io dbg "break write_aio A"`, `qemu-io dbg "remove_break A"`,
	`qemu-io q0 "write -q 0 512"`, `qemu-io q0 "write -q -P 0x33 0 512"`, `qemu-io q0 "read -q -P 0x33 0 512"`,
	`qemu-io q0 "write -q 65536 512"`, `qemu-io q0 "read -q 65536 512"`, `qemu-io q0 "read -q 65536 512"`,
	`qemu-io q0 "read -q 65536 512"`,
	// c0: -drive file=blkdebug:CONFIG:IMAGE, the rules in the config file
	`qemu-io c0 "read -q 0 512"`, `qemu-io c0 "read -q 0 512"`, `qemu-io c0 "write -q 0 512"`,
	`qemu-io c0 "read -q 0 512"`, `qemu-io c0 "read -q 0 512"`,
}

// blkdebugConfig is c0's config file.
const blkdebugConfig = `# rules
[inject-error]
event = "read_aio"
errno = "13"
once = "on"

[set-state]
event = "write_aio"
new_state = "2"

[inject-error]
event = "read_aio"
state = "2"
errno = "28"
`

func runBlkdebug(t *testing.T, bin string) (stdout, qmap string) {
	dir := shortDir(t)
	var extra strings.Builder
	raw, qc := filepath.Join(dir, "img.raw"), filepath.Join(dir, "img.qcow2")
	tool(t, "qemu-img", "create", "-q", "-f", "raw", raw, "1M")
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", qc, "1M")
	bd := fmt.Sprintf(`{"driver":"raw","node-name":"d0","file":{"driver":"blkdebug","node-name":"dbg","image":{"driver":"file","filename":%q},`+
		`"inject-error":[{"event":"read_aio","errno":5,"once":true},{"event":"write_aio","errno":28,"sector":8},{"event":"flush_to_disk","errno":1,"iotype":"flush","once":true}]}}`, raw)
	bq := fmt.Sprintf(`{"driver":"qcow2","node-name":"q0","file":{"driver":"blkdebug","node-name":"dbq","image":{"driver":"file","filename":%q},`+
		`"inject-error":[{"event":"l2_update","errno":5,"once":true},{"event":"read_aio","state":2,"errno":13,"once":true}],`+
		`"set-state":[{"event":"cluster_alloc","new_state":2}]}}`, qc)
	conf, raw2 := filepath.Join(dir, "bd.conf"), filepath.Join(dir, "img2.raw")
	if err := os.WriteFile(conf, []byte(blkdebugConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	tool(t, "qemu-img", "create", "-q", "-f", "raw", raw2, "1M")
	p, q, _ := startVM(t, bin, "-machine", "pc", "-S", "-blockdev", bd, "-blockdev", bq,
		"-drive", "if=none,id=c0,format=raw,file=blkdebug:"+conf+":"+raw2)
	for _, c := range blkdebugScript {
		if r := execOK(t, q, "human-monitor-command", map[string]any{"command-line": c}).Str(); r != "" {
			t.Fatalf("%s: %q", c, r)
		}
	}
	// a missing config file: QEMU's error
	m, err := q.Execute("blockdev-add", map[string]any{"driver": "blkdebug", "node-name": "b2",
		"config": filepath.Join(dir, "nosuch.conf"), "image": map[string]any{"driver": "file", "filename": raw2}})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&extra, "%s\n", m.Raw)
	execOK(t, q, "quit", nil)
	out, err := p.Stdout.ReadAll(harness.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	stdout = regexp.MustCompile(`(?m)^\d+ bytes, \d+ ops;.*\n`).ReplaceAllString(string(out), "")
	var qm []map[string]any
	if err := json.Unmarshal([]byte(tool(t, "qemu-img", "map", "--output=json", qc)), &qm); err != nil {
		t.Fatal(err)
	}
	check := tool(t, "qemu-img", "check", qc)
	return stdout + strings.ReplaceAll(extra.String(), dir, "DIR"), fmt.Sprint(qm) + "\n" + strings.SplitN(check, "\n", 2)[0]
}

func TestBlkdebugDifferential(t *testing.T) {
	bin := requireCandidate(t)
	ref := requireReference(t)
	parallel(t)
	wantOut, wantMap := runBlkdebug(t, ref)
	gotOut, gotMap := runBlkdebug(t, bin)
	if d := harness.Diff(strings.Split(wantOut, "\n"), strings.Split(gotOut, "\n")); d != "" {
		t.Errorf("qemu-io output differs from QEMU 7.2 (- QEMU, + tlcvm):\n%s", d)
	}
	if gotMap != wantMap {
		t.Errorf("qcow2 image after the failed write:\n%s\nQEMU 7.2's:\n%s", gotMap, wantMap)
	}
	for _, s := range []string{"write failed: No space left on device", "read failed: Permission denied",
		"Could not read blkdebug config file: No such file or directory"} {
		if !strings.Contains(wantOut, s) {
			t.Errorf("QEMU's output lacks %q:\n%s", s, wantOut)
		}
	}
}

// runStreamError streams a qcow2 overlay (over blkdebug) from its backing file with
// on-error=stop while blkdebug fails the job's second write: the job's events, its
// query-block-jobs entry while paused, and the overlay's content once resumed.
func runStreamError(t *testing.T, bin string) (events []string, paused string, top string) {
	dir := shortDir(t)
	base, top := filepath.Join(dir, "base.qcow2"), filepath.Join(dir, "top.qcow2")
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "4M")
	tool(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 2M", base)
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
	bd := fmt.Sprintf(`{"driver":"qcow2","node-name":"top","file":%s}`, failSecondWrite(top))
	events, paused = runJobError(t, bin, []string{"-blockdev", bd}, "block-stream",
		map[string]any{"job-id": "s0", "device": "top", "on-error": "stop"})
	return events, paused, top
}

// failSecondWrite is a blkdebug node over image whose second write fails with EIO, once.
func failSecondWrite(image string) string {
	return fmt.Sprintf(`{"driver":"blkdebug","node-name":"dbg","image":{"driver":"file","filename":%q},`+
		`"inject-error":[{"event":"write_aio","errno":5,"once":true,"state":2}],"set-state":[{"event":"write_aio","state":1,"new_state":2}]}`, image)
}

// runJobError starts bin with args, runs the job cmd (job id in args) that an injected
// error stops, resumes it once paused and returns its events and its query-block-jobs
// entry while paused.
func runJobError(t *testing.T, bin string, args []string, cmd string, cmdArgs map[string]any) (events []string, paused string) {
	_, q, _ := startVM(t, bin, append([]string{"-machine", "pc", "-S"}, args...)...)
	execOK(t, q, cmd, cmdArgs)
	waitJob := func(status string) {
		t.Helper()
		deadline := time.Now().Add(harness.DefaultTimeout)
		for {
			jobs := execOK(t, q, "query-jobs", nil)
			if len(jobs.Arr) == 0 && status == "" {
				return
			}
			if len(jobs.Arr) > 0 {
				if s, _ := jobs.Arr[0].Get("status"); s.Str() == status {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("job never %q: %s", status, jobs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitJob("paused")
	paused = execOK(t, q, "query-block-jobs", nil).String()
	execOK(t, q, "block-job-resume", map[string]any{"device": cmdArgs["job-id"]})
	waitJob("")
	msgs, err := q.WaitEvent("JOB_STATUS_CHANGE") // at least one is pending by now
	if err != nil {
		t.Fatal(err)
	}
	msgs = append(msgs, q.Pending()...)
	for _, m := range msgs {
		e, _ := m.Value.Get("event")
		d, _ := m.Value.Get("data")
		events = append(events, e.Str()+" "+d.String())
	}
	execOK(t, q, "quit", nil)
	return events, paused
}

// TestBlkdebugStreamError: an error blkdebug injects into block-stream's writes stops the
// job (BLOCK_JOB_ERROR, paused, io-status failed) as in QEMU 7.2, and once resumed the
// overlay holds what QEMU's does.
func TestBlkdebugStreamError(t *testing.T) {
	bin := requireCandidate(t)
	ref := requireReference(t)
	parallel(t)
	wantEv, wantPaused, wantTop := runStreamError(t, ref)
	gotEv, gotPaused, gotTop := runStreamError(t, bin)
	if d := harness.Diff(wantEv, gotEv); d != "" {
		t.Errorf("events differ from QEMU 7.2 (- QEMU, + tlcvm):\n%s", d)
	}
	if gotPaused != wantPaused {
		t.Errorf("query-block-jobs while paused:\n%s\nQEMU 7.2:\n%s", gotPaused, wantPaused)
	}
	if !strings.Contains(strings.Join(wantEv, "\n"), `BLOCK_JOB_ERROR`) {
		t.Errorf("QEMU reported no error: %q", wantEv)
	}
	tool(t, "qemu-img", "compare", wantTop, gotTop)
	tool(t, "qemu-img", "check", gotTop)
}

// runCommitError commits mid into base (base ← mid ← top, base's file over blkdebug,
// mid holding 2 MiB) with on-error=stop while blkdebug fails the job's second write to
// base, and with speed when not 0: the job's events, its query-block-jobs entry while
// paused, and base's image once resumed.
func runCommitError(t *testing.T, bin string, speed int64) (events []string, paused string, base string) {
	dir := shortDir(t)
	base, mid, top := filepath.Join(dir, "base.qcow2"), filepath.Join(dir, "mid.qcow2"), filepath.Join(dir, "top.qcow2")
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "4M")
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", mid)
	tool(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x22 0 2M", mid)
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", mid, "-F", "qcow2", top)
	args := []string{
		"-blockdev", fmt.Sprintf(`{"driver":"qcow2","node-name":"base","file":%s}`, failSecondWrite(base)),
		"-blockdev", fmt.Sprintf(`{"driver":"qcow2","node-name":"mid","backing":"base","file":{"driver":"file","filename":%q}}`, mid),
		"-blockdev", fmt.Sprintf(`{"driver":"qcow2","node-name":"top","backing":"mid","file":{"driver":"file","filename":%q}}`, top),
	}
	cmdArgs := map[string]any{"job-id": "c0", "device": "top", "top-node": "mid", "base-node": "base", "on-error": "stop"}
	if speed != 0 {
		cmdArgs["speed"] = speed
	}
	events, paused = runJobError(t, bin, args, "block-commit", cmdArgs)
	return events, paused, base
}

// TestBlkdebugCommitError: an error blkdebug injects into an intermediate commit's
// writes to base stops the job as in QEMU 7.2, and once resumed base holds what QEMU's
// does. With a speed tlcvm copies one extent at a time, as QEMU always does: the events
// and the paused job (its offset too) are QEMU's. Without one its copies run in flight
// together, so which extent the second write belongs to is a race: the events and base
// are still QEMU's, and the paused job's offset is the start of the extent that failed.
func TestBlkdebugCommitError(t *testing.T) {
	bin := requireCandidate(t)
	ref := requireReference(t)
	parallel(t)
	for _, speed := range []int64{1 << 30, 0} {
		t.Run(fmt.Sprint("speed=", speed), func(t *testing.T) {
			wantEv, wantPaused, wantBase := runCommitError(t, ref, speed)
			gotEv, gotPaused, gotBase := runCommitError(t, bin, speed)
			if d := harness.Diff(wantEv, gotEv); d != "" {
				t.Errorf("events differ from QEMU 7.2 (- QEMU, + tlcvm):\n%s", d)
			}
			if !strings.Contains(strings.Join(wantEv, "\n"), `BLOCK_JOB_ERROR`) {
				t.Errorf("QEMU reported no error: %q", wantEv)
			}
			if speed == 0 {
				var jobs []struct{ Offset int64 }
				if err := json.Unmarshal([]byte(gotPaused), &jobs); err != nil || len(jobs) != 1 ||
					jobs[0].Offset%(512<<10) != 0 || jobs[0].Offset >= 2<<20 {
					t.Errorf("paused at %s: not an extent's start within mid's data (%v)", gotPaused, err)
				}
				off := regexp.MustCompile(`"offset": \d+`)
				wantPaused, gotPaused = off.ReplaceAllString(wantPaused, `"offset": N`), off.ReplaceAllString(gotPaused, `"offset": N`)
			}
			if gotPaused != wantPaused {
				t.Errorf("query-block-jobs while paused:\n%s\nQEMU 7.2:\n%s", gotPaused, wantPaused)
			}
			tool(t, "qemu-img", "compare", wantBase, gotBase)
			tool(t, "qemu-img", "check", gotBase)
		})
	}
}
