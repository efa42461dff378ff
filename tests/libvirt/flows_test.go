package libvirt_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	lv "tlcvm/internal/libvirttest"
	"tlcvm/tests/harness"
)

// The differential flow suite: one domain under QEMU 7.2 and one under tlcvm, alike in
// everything but <emulator>, go through the same virsh story (flowlist_test.go); each
// flow's output (exit status, stdout, stderr) is compared after scrubbing what
// legitimately differs (names, UUIDs, ids, paths, ports, times, guest-dependent counters).
// The outcome of every flow on every model is written in docs/libvirt.md ("virsh flows
// beside QEMU 7.2"); TestFlows fails when a flow's outcome is not the one written there,
// so the table stays true. `-update` rewrites the table's outcome columns, keeping the
// hand-written "why" column.

var update = flag.Bool("update", false, "rewrite docs/libvirt.md's flow table from this run")

// flowDoc is the document holding the flow table, between flowBegin and flowEnd.
const (
	flowDoc   = "../../docs/libvirt.md"
	flowBegin = "<!-- flows: begin -->"
	flowEnd   = "<!-- flows: end -->"
)

// flowModels are the domain models every flow runs on (anchor2's devices on a pc, anchor2).
var flowModels = []lv.Kind{lv.PCFull, lv.Q35}

// flowMAC is the NIC's MAC on both sides, so that domif-* flows name the same interface.
const flowMAC = "52:54:00:7c:f1:05"

// status is a flow's outcome on one model.
type status string

const (
	same      status = "same"      // equal output after scrubbing
	different status = "different" // tlcvm answers otherwise (by design or not; the why column says)
	failing   status = "failing"   // QEMU's flow succeeds and tlcvm's fails, or tlcvm lacks a command libvirt sends
)

// flowDom is one side of a flow pair.
type flowDom struct {
	lv.Domain
	side  string // "qemu" or "tlcvm"
	dir   string
	cdrom string // the CD-ROM's target: hdc (pc) or sda (q35)
}

// expand replaces the placeholders of a flow's arguments: $DIR (the side's directory),
// $D (its domain name), $UUID, $MAC, $CDROM.
func (d *flowDom) expand(s string) string {
	return strings.NewReplacer("$DIR", d.dir, "$D", d.Name, "$UUID", d.UUID, "$MAC", flowMAC,
		"$CDROM", d.cdrom).Replace(s)
}

// commonScrub rewrites what differs between any two domains whatever the emulator.
var commonScrub = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`/dev/pts/\d+`), "/dev/pts/N"},
	{regexp.MustCompile(`domain-(?:-1|\d+)-[^/\s']+`), "domain-N-NAME"},
	{regexp.MustCompile(`( id=')\d+'`), "${1}N'"},
	{regexp.MustCompile(`(?m)^(Id:\s+)\d+`), "${1}N"},
	{regexp.MustCompile(`(port|websocket)='(59|57)\d\d'`), "$1='PORT'"},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:N"},
	{regexp.MustCompile(`\b\d+\.\ds\b`), "T.Ts"},
	{regexp.MustCompile(`\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`), "UUID"},
	{regexp.MustCompile(`"id": ?"libvirt-\d+"`), `"id":"libvirt-N"`},
}

// scrub makes one side's output comparable with the other's.
func (d *flowDom) scrub(s string, extra, drop []*regexp.Regexp) string {
	s = strings.ReplaceAll(s, d.dir, "$DIR")
	s = strings.ReplaceAll(s, d.Emulator, "$EMULATOR")
	s = strings.ReplaceAll(s, d.Name, "$D")
	s = strings.ReplaceAll(s, d.UUID, "$UUID")
	for _, c := range commonScrub {
		s = c.re.ReplaceAllString(s, c.with)
	}
	for _, re := range drop {
		s = re.ReplaceAllString(s, "")
	}
	for _, re := range extra {
		s = re.ReplaceAllStringFunc(s, func(m string) string {
			sub := re.FindStringSubmatchIndex(m)
			if len(sub) >= 4 && sub[2] >= 0 { // keep what precedes the first group
				return m[:sub[2]] + "…" + m[sub[3]:]
			}
			return "…"
		})
	}
	return s
}

// flow is one row of the story.
type flow struct {
	name string   // the table's key
	args []string // virsh arguments, with expand's placeholders
	// do replaces virsh: a step that is not one virsh command (go-libvirt, virt-install,
	// events collected around other commands). Its Result is compared like virsh's.
	do func(t *testing.T, d *flowDom) lv.Result
	// scrub: regexps whose matches (or, with a group, the group) become "…"; drop: regexps
	// whose matches are removed (a line one side prints and the other may not).
	scrub, drop []*regexp.Regexp
	// wait: the domstate both sides must reach after the command (a shutdown, a reboot).
	wait  string
	prep  bool   // a step of the story, not compared: it must succeed on both sides
	shows string // the table's command column for a do flow
}

// command is the flow's virsh command as the table shows it.
func (f flow) command() string {
	if f.args == nil {
		return f.shows
	}
	return "`" + strings.Join(f.args, " ") + "`"
}

// re compiles scrub expressions.
func re(exprs ...string) []*regexp.Regexp {
	out := make([]*regexp.Regexp, len(exprs))
	for i, e := range exprs {
		out[i] = regexp.MustCompile(e)
	}
	return out
}

// run runs the flow on one side.
func (f flow) run(t *testing.T, d *flowDom) lv.Result {
	if f.do != nil {
		return f.do(t, d)
	}
	args := make([]string, len(f.args))
	for i, a := range f.args {
		args[i] = d.expand(a)
	}
	r, err := virsh.Exec(args...)
	if err != nil {
		r.Code, r.Stderr = -1, r.Stderr+err.Error()
	}
	if f.wait != "" {
		if _, err := virsh.WaitState(d.Name, f.wait, stateDeadline); err != nil {
			r.Code, r.Stderr = -1, r.Stderr+err.Error()
		}
	}
	if f.wait == "running" {
		// libvirt says running before its fake reboot (system_reset and cont after the
		// guest's SHUTDOWN) has run: the emulator is still in shutdown, and a save taken
		// then carries that state, which no cont leaves (QEMU's global state does the
		// same). Wait for the emulator's own run state as well.
		err := lv.Poll(stateDeadline, 100*time.Millisecond, d.Name+"'s emulator to run", func() (bool, error) {
			out, err := virsh.Run("qemu-monitor-command", d.Name, `{"execute":"query-status"}`)
			if err != nil {
				return false, err
			}
			return strings.Contains(strings.ReplaceAll(out, " ", ""), `"status":"running"`), fmt.Errorf("query-status: %s", out)
		})
		if err != nil {
			r.Code, r.Stderr = -1, r.Stderr+err.Error()
		}
	}
	return r
}

// render is a result as compared: exit status, stdout, stderr.
func render(r lv.Result) string {
	return fmt.Sprintf("exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
}

// classify compares the scrubbed outputs of QEMU's side (q) and tlcvm's (tl).
func classify(q, tl lv.Result, qs, ts string) status {
	switch {
	case qs == ts:
		return same
	case q.Code == 0 && tl.Code != 0, strings.Contains(ts, "has not been found"):
		return failing
	}
	return different
}

// flowResult is one flow's outcome on one model, with both sides' scrubbed outputs.
type flowResult struct {
	status status
	qemu   string
	tlcvm  string
}

// TestFlows runs the story on every model beside QEMU 7.2 and checks the outcomes against
// docs/libvirt.md.
func TestFlows(t *testing.T) {
	need(t)
	ref := harness.Reference(t)
	story := flowStory()
	seen := map[string]bool{}
	for _, f := range story {
		if !f.prep && seen[f.name] {
			t.Fatalf("flow %q twice in the story", f.name)
		}
		seen[f.name] = true
	}
	results := map[lv.Kind]map[string]flowResult{}
	for _, k := range flowModels {
		t.Run(k.String(), func(t *testing.T) {
			results[k] = runFlowStory(t, k, ref, story)
		})
	}
	checkFlowTable(t, story, results)
}

// newFlowPair defines the model's domain twice, under QEMU 7.2 and under tlcvm, with the
// disk images and device XMLs the story uses; both are removed when the test ends.
func newFlowPair(t *testing.T, k lv.Kind, ref string) (q, tl *flowDom) {
	t.Helper()
	mbr, err := filepath.Abs("../testdata/mbr.bin")
	if err != nil {
		t.Fatal(err)
	}
	mk := func(side, emulator string) *flowDom {
		dir := t.TempDir()
		d := &flowDom{side: side, dir: dir, cdrom: "hdc", Domain: lv.Domain{Kind: k,
			Name: lv.NewName("tlcvm-flow-" + side), UUID: lv.NewUUID(), Emulator: emulator,
			Disk: filepath.Join(dir, "disk.qcow2"), Workload: "idle", VCPUs: 1, MaxVCPUs: 2,
			MAC: flowMAC, IOThreads: 1}}
		if k == lv.Q35 {
			d.cdrom, d.RootPorts = "sda", 14
		}
		// The boot sector powers QEMU's guest off on the ACPI power button (shutdown, reboot).
		if err := lv.CreateDisk(d.Disk, mbr); err != nil {
			t.Fatal(err)
		}
		for _, img := range []string{"hot.qcow2", "hot2.qcow2", "scsi.qcow2", "usb.qcow2"} {
			if err := lv.CreateDisk(filepath.Join(dir, img), ""); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "cd.iso"), make([]byte, 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		for name, x := range flowDevices(k) {
			if err := os.WriteFile(filepath.Join(dir, name+".xml"), []byte(d.expand(x)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			if err := virsh.Remove(d.Name); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		if err := virsh.Define(d.Domain, dir); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return mk("qemu", ref), mk("tlcvm", bin)
}

// runFlowStory runs every flow on both sides of one model, QEMU's and tlcvm's side at once.
func runFlowStory(t *testing.T, k lv.Kind, ref string, story []flow) map[string]flowResult {
	q, tl := newFlowPair(t, k, ref)
	out := map[string]flowResult{}
	for _, f := range story {
		var rq, rt lv.Result
		done := make(chan struct{})
		go func() {
			defer close(done)
			rq = f.run(t, q)
		}()
		rt = f.run(t, tl)
		<-done
		qs, ts := q.scrub(render(rq), f.scrub, f.drop), tl.scrub(render(rt), f.scrub, f.drop)
		if f.prep {
			if rq.Code != 0 || rt.Code != 0 {
				t.Fatalf("story step %s failed:\nQEMU 7.2: %s\ntlcvm: %s", f.name, qs, ts)
			}
			continue
		}
		st := classify(rq, rt, qs, ts)
		out[f.name] = flowResult{st, qs, ts}
		if st != same {
			t.Logf("%s: %s (- QEMU 7.2, + tlcvm)\n%s", f.name, st, lineDiff(qs, ts))
		}
	}
	return out
}

// tableRow is one row of the flow table.
type tableRow struct {
	name, command string
	status        map[lv.Kind]status
	why           string
}

// readFlowTable parses the table between flowBegin and flowEnd: the document before it,
// the rows, the document after it.
func readFlowTable(doc string) (before string, rows []tableRow, after string, err error) {
	b, e := strings.Index(doc, flowBegin), strings.Index(doc, flowEnd)
	if b < 0 || e < b {
		return "", nil, "", fmt.Errorf("%s: no %q … %q section", flowDoc, flowBegin, flowEnd)
	}
	before, after = doc[:b+len(flowBegin)], doc[e:]
	for _, l := range strings.Split(doc[b+len(flowBegin):e], "\n") {
		if !strings.HasPrefix(l, "| ") || strings.HasPrefix(l, "| flow ") {
			continue
		}
		cells := strings.Split(strings.Trim(l, "|"), " | ")
		if len(cells) != 3+len(flowModels) {
			return "", nil, "", fmt.Errorf("%s: flow row %q: %d cells", flowDoc, l, len(cells))
		}
		r := tableRow{name: strings.TrimSpace(cells[0]), command: strings.TrimSpace(cells[1]),
			status: map[lv.Kind]status{}, why: strings.TrimSpace(cells[len(cells)-1])}
		for i, k := range flowModels {
			r.status[k] = status(strings.TrimSpace(cells[2+i]))
		}
		rows = append(rows, r)
	}
	return before, rows, after, nil
}

// renderFlowTable writes the rows as the document shows them, with a count per model.
func renderFlowTable(rows []tableRow) string {
	var b strings.Builder
	b.WriteString("\n| flow | virsh | ")
	for _, k := range flowModels {
		b.WriteString(k.String() + " | ")
	}
	b.WriteString("why |\n|---|---|")
	for range flowModels {
		b.WriteString("---|")
	}
	b.WriteString("---|\n")
	count := map[lv.Kind]map[status]int{}
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | ", r.name, r.command)
		for _, k := range flowModels {
			fmt.Fprintf(&b, "%s | ", r.status[k])
			if count[k] == nil {
				count[k] = map[status]int{}
			}
			count[k][r.status[k]]++
		}
		b.WriteString(r.why + " |\n")
	}
	b.WriteString("\n")
	for _, k := range flowModels {
		c := count[k]
		fmt.Fprintf(&b, "%s: %d flows, %d same, %d different, %d failing. ", k, c[same]+c[different]+c[failing],
			c[same], c[different], c[failing])
	}
	b.WriteString("\n")
	return b.String()
}

// checkFlowTable compares this run's outcomes with the document's table, or rewrites the
// table under -update. Models that did not run (-run TestFlows/q35) keep their column.
func checkFlowTable(t *testing.T, story []flow, results map[lv.Kind]map[string]flowResult) {
	t.Helper()
	if len(results) == 0 || t.Failed() && !*update {
		return
	}
	raw, err := os.ReadFile(flowDoc)
	if err != nil {
		t.Fatal(err)
	}
	before, rows, after, err := readFlowTable(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	old := map[string]tableRow{}
	for _, r := range rows {
		old[r.name] = r
	}
	var now []tableRow
	var bad []string
	for _, f := range story {
		if f.prep {
			continue
		}
		r, ok := old[f.name]
		if !ok {
			r = tableRow{name: f.name, status: map[lv.Kind]status{}}
			bad = append(bad, fmt.Sprintf("%s: not in the table", f.name))
		}
		r.command = f.command()
		for k, res := range results {
			if got := res[f.name]; got.status != r.status[k] {
				bad = append(bad, fmt.Sprintf("%s on %s: %s, the table says %q (- QEMU 7.2, + tlcvm)\n%s",
					f.name, k, got.status, r.status[k], lineDiff(got.qemu, got.tlcvm)))
				r.status[k] = got.status
			}
		}
		delete(old, f.name)
		now = append(now, r)
	}
	for name := range old {
		bad = append(bad, fmt.Sprintf("%s: in the table, not in the story", name))
	}
	sort.Strings(bad)
	if *update {
		doc := before + renderFlowTable(now) + after
		if err := os.WriteFile(flowDoc, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d changes written", flowDoc, len(bad))
		return
	}
	for _, b := range bad {
		t.Errorf("flow table: %s", b)
	}
	if len(bad) > 0 {
		t.Errorf("run with -update to rewrite %s's table (then write the why column)", flowDoc)
	}
}

// background runs virsh args (an event listener) while during runs, until until appears
// in its output (or 30 s pass), then stops it; the listener's output is the Result.
func background(t *testing.T, d *flowDom, args []string, during [][]string, until string) lv.Result {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	full := []string{"-q", "-c", lv.URI}
	for _, a := range args {
		full = append(full, d.expand(a))
	}
	cmd := exec.CommandContext(ctx, "virsh", full...)
	var buf syncBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return lv.Result{Code: -1, Stderr: err.Error()}
	}
	// The listener registers with libvirtd before printing anything; give it a moment.
	time.Sleep(500 * time.Millisecond)
	var notes []string
	for _, a := range during {
		x := make([]string, len(a))
		for i, s := range a {
			x[i] = d.expand(s)
		}
		if r, err := virsh.Exec(x...); err != nil || r.Code != 0 {
			notes = append(notes, fmt.Sprintf("%s: exit %d %v %s", a[0], r.Code, err, r.Stderr))
		}
	}
	_ = lv.Poll(30*time.Second, 100*time.Millisecond, "event "+until, func() (bool, error) {
		return strings.Contains(buf.String(), until), nil
	})
	time.Sleep(300 * time.Millisecond) // events that follow the awaited one closely
	cancel()
	_ = cmd.Wait()
	return lv.Result{Stdout: buf.String(), Stderr: strings.Join(notes, "\n")}
}

// syncBuffer is a bytes.Buffer safe for a process's writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lineDiff shows the lines of a and b that differ ("- " a only, "+ " b only), around a
// longest common subsequence of lines.
func lineDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	// lcs[i][j]: the LCS length of x[i:] and y[j:].
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []string
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			out = append(out, "+ "+y[j])
			j++
		default:
			out = append(out, "- "+x[i])
			i++
		}
	}
	return strings.Join(out, "\n")
}
