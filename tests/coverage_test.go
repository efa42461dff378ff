package tests_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"tlcvm/hmp"
	"tlcvm/qmp/cmds"
)

// The generated sections of docs/compatibility.md that TestQMPCoverage and TestHMPCoverage
// keep equal to qmp/cmds/leftout.go and hmp/leftout.go (and rewrite with -update).
const coverageDoc = "../docs/compatibility.md"

// coverage is one command set held against QEMU 7.2's.
type coverage struct {
	what    string                                      // "QMP commands"
	source  string                                      // the Go file that holds the list
	test    string                                      // the test that regenerates the doc
	list    []cmds.LeftOut                              // the left-out list
	names   func(bin, machine string) ([]string, error) // a binary's command names
	machine []string
}

// TestQMPCoverage holds tlcvm's QMP command set against QEMU 7.2's, on pc and q35: every
// command QEMU's query-commands lists is answered by tlcvm or listed in cmds.LeftOutCommands
// with a reason; nothing listed is registered (a branch that landed takes its entries with
// it); nothing listed is unknown to QEMU 7.2; and docs/compatibility.md shows exactly that
// list and the counts.
func TestQMPCoverage(t *testing.T) {
	checkCoverage(t, coverage{what: "QMP commands", source: "qmp/cmds/leftout.go", test: "TestQMPCoverage",
		list: cmds.LeftOutCommands, names: queryCommands, machine: []string{"pc", "q35"}})
}

// TestHMPCoverage is TestQMPCoverage for the human monitor: help's commands and help
// info's subcommands (as "info X") against hmp.LeftOutCommands.
func TestHMPCoverage(t *testing.T) {
	list := make([]cmds.LeftOut, len(hmp.LeftOutCommands))
	for i, g := range hmp.LeftOutCommands {
		list[i] = cmds.LeftOut{Names: g.Names, Reason: g.Reason, Pending: g.Pending}
	}
	checkCoverage(t, coverage{what: "HMP commands and info subcommands", source: "hmp/leftout.go",
		test: "TestHMPCoverage", list: list, names: hmpCommands, machine: []string{"pc", "q35"}})
}

func checkCoverage(t *testing.T, cv coverage) {
	ref, cand := requireReference(t), requireCandidate(t)
	parallel(t)
	qemu, tl := map[string]bool{}, map[string]bool{}
	for _, m := range cv.machine {
		q, err := cv.names(ref, m)
		if err != nil {
			t.Fatalf("reference QEMU, -machine %s: %v", m, err)
		}
		c, err := cv.names(cand, m)
		if err != nil {
			t.Fatalf("tlcvm, -machine %s: %v", m, err)
		}
		for _, n := range q {
			qemu[n] = true
		}
		// a command counts as answered only when every machine answers it
		have := map[string]bool{}
		for _, n := range c {
			have[n] = true
		}
		if m == cv.machine[0] {
			tl = have
			continue
		}
		for n := range tl {
			if !have[n] {
				t.Errorf("tlcvm -machine %s does not list %s (-machine %s does)", m, n, cv.machine[0])
				delete(tl, n)
			}
		}
	}

	listed := map[string]string{}
	for _, g := range cv.list {
		if g.Pending == "" && g.Reason == "" {
			t.Errorf("left-out group %v has no reason", g.Names)
		}
		for _, n := range g.Names {
			if _, dup := listed[n]; dup {
				t.Errorf("%s is listed twice in %s", n, cv.source)
			}
			listed[n] = g.Pending
		}
	}
	cov := cmds.Coverage{What: cv.what, QEMU: len(qemu), Machines: strings.Join(cv.machine, ", ")}
	for _, n := range sortedKeys(qemu) {
		_, left := listed[n]
		switch {
		case tl[n]:
			cov.TLCVM++
		case !left:
			t.Errorf("QEMU 7.2's %s is neither answered by tlcvm nor listed, with its reason, in %s", n, cv.source)
		}
	}
	for n := range tl {
		if !qemu[n] {
			cov.Extra++
		}
	}
	for _, n := range sortedKeys(listedSet(listed)) {
		pending := listed[n]
		switch {
		case tl[n] && pending != "":
			t.Errorf("%s is answered now: branch %s has landed, delete its entry from %s", n, pending, cv.source)
		case tl[n]:
			t.Errorf("%s is answered now: delete it from %s", n, cv.source)
		case !qemu[n]:
			t.Errorf("%s is listed in %s but QEMU 7.2 has no such command", n, cv.source)
		case pending != "":
			cov.Pending++
		default:
			cov.LeftOut++
		}
	}
	t.Logf("QEMU 7.2: %d %s; tlcvm answers %d (+%d of its own); left out %d; pending on branches %d",
		cov.QEMU, cv.what, cov.TLCVM, cov.Extra, cov.LeftOut, cov.Pending)

	begin := "<!-- BEGIN left-out " + cv.what + ": generated from " + cv.source + " by `go test ./tests -run " + cv.test + " -update` -->\n"
	end := "<!-- END left-out " + cv.what + " -->\n"
	doc, err := os.ReadFile(coverageDoc)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no generated section (%q … %q)", coverageDoc, begin, end)
	}
	want := cmds.LeftOutMarkdown(cv.list, cov)
	if got := text[i+len(begin) : j]; got != want {
		if *update {
			coverageDocMu.Lock()
			defer coverageDocMu.Unlock()
			doc, err := os.ReadFile(coverageDoc) // the other test may have rewritten it
			if err != nil {
				t.Fatal(err)
			}
			text = string(doc)
			i, j = strings.Index(text, begin), strings.Index(text, end)
			text = text[:i+len(begin)] + want + text[j:]
			if err := os.WriteFile(coverageDoc, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("%s's left-out table is stale (rewrite it with -update):\n--- doc\n%s\n+++ %s\n%s", coverageDoc, got, cv.source, want)
	}
}

// queryCommands starts bin with -machine m and no devices, and returns query-commands' names.
func queryCommands(bin, m string) ([]string, error) {
	var names []string
	err := monitorSession(bin, m, `{"execute":"query-commands","id":"list"}`, func(raw json.RawMessage) error {
		var cs []struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(raw, &cs); err != nil {
			return err
		}
		for _, c := range cs {
			names = append(names, c.Name)
		}
		return nil
	})
	return names, err
}

// hmpName is a command name in a help line (what precedes it is the line's first word,
// "name|alias"); continuation lines of multi-line help texts do not match.
var hmpName = regexp.MustCompile(`^([a-z][a-z0-9_-]*)(\|\S+)?$`)

// hmpCommands returns help's command names and help info's subcommands as "info X".
func hmpCommands(bin, m string) ([]string, error) {
	var names []string
	for _, line := range []string{"help", "help info"} {
		req := fmt.Sprintf(`{"execute":"human-monitor-command","arguments":{"command-line":%q},"id":"list"}`, line)
		err := monitorSession(bin, m, req, func(raw json.RawMessage) error {
			var text string
			if err := json.Unmarshal(raw, &text); err != nil {
				return err
			}
			// An entry is "name params -- help"; params may run over several lines (drive_add's
			// "[file=file][,if=type]…" lines) before the " -- ", and help continues on lines
			// that begin with a tab.
			inParams := false
			for _, l := range strings.Split(text, "\r\n") {
				if inParams {
					inParams = !strings.Contains(l, " -- ")
					continue
				}
				if l == "" || l[0] == ' ' || l[0] == '\t' {
					continue
				}
				inParams = !strings.Contains(l, " -- ")
				w := strings.Fields(l)
				prefix := ""
				if w[0] == "info" && len(w) > 1 {
					prefix, w = "info ", w[1:]
				}
				if mt := hmpName.FindStringSubmatch(w[0]); mt != nil {
					names = append(names, prefix+mt[1])
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return names, nil
}

// monitorSession starts bin with -machine m and no devices, sends req (with "id":"list"),
// and hands the reply's return value to f.
func monitorSession(bin, m, req string, f func(json.RawMessage) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-machine", m, "-nodefaults", "-display", "none", "-qmp", "stdio")
	cmd.Stdin = strings.NewReader(`{"execute":"qmp_capabilities"}` + "\n" + req + "\n" + `{"execute":"quit"}` + "\n")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Wait() }()
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var msg struct {
			ID     string          `json:"id"`
			Return json.RawMessage `json:"return"`
		}
		if json.Unmarshal(sc.Bytes(), &msg) != nil || msg.ID != "list" {
			continue
		}
		return f(msg.Return)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return fmt.Errorf("no reply to %s (%v)", req, ctx.Err())
}

func listedSet(m map[string]string) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// coverageDocMu serialises the -update rewrites of coverageDoc by the parallel tests.
var coverageDocMu sync.Mutex
