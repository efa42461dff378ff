package tests_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"tlcvm/qmp/cmds"
)

// The generated section of docs/compatibility.md that TestQMPCoverage keeps equal to
// qmp/cmds/leftout.go (and rewrites with -update).
const (
	coverageDoc   = "../docs/compatibility.md"
	coverageBegin = "<!-- BEGIN left-out QMP commands: generated from qmp/cmds/leftout.go by `go test ./tests -run TestQMPCoverage -update` -->\n"
	coverageEnd   = "<!-- END left-out QMP commands -->\n"
)

// TestQMPCoverage holds tlcvm's command set against QEMU 7.2's, on pc and q35: every command
// QEMU's query-commands lists is answered by tlcvm or listed in cmds.LeftOutCommands with a
// reason; nothing listed is registered (a branch that landed takes its entries with it);
// nothing listed is unknown to QEMU 7.2; and docs/compatibility.md shows exactly that list and
// the counts.
func TestQMPCoverage(t *testing.T) {
	ref, cand := requireReference(t), requireCandidate(t)
	parallel(t)
	machines := []string{"pc", "q35"}
	qemu, tl := map[string]bool{}, map[string]bool{}
	for _, m := range machines {
		q, err := queryCommands(ref, m)
		if err != nil {
			t.Fatalf("reference QEMU, -machine %s: %v", m, err)
		}
		c, err := queryCommands(cand, m)
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
		if m == machines[0] {
			tl = have
		} else {
			for n := range tl {
				if !have[n] {
					t.Errorf("tlcvm -machine %s does not list %s (-machine %s does)", m, n, machines[0])
					delete(tl, n)
				}
			}
		}
	}

	listed := map[string]string{}
	for _, g := range cmds.LeftOutCommands {
		if g.Pending == "" && g.Reason == "" {
			t.Errorf("left-out group %v has no reason", g.Names)
		}
		for _, n := range g.Names {
			if _, dup := listed[n]; dup {
				t.Errorf("%s is listed twice in cmds.LeftOutCommands", n)
			}
			listed[n] = g.Pending
		}
	}
	cov := cmds.Coverage{QEMU: len(qemu), Machines: strings.Join(machines, ", ")}
	for _, n := range sortedKeys(qemu) {
		_, left := listed[n]
		switch {
		case tl[n]:
			cov.TLCVM++
		case left:
		default:
			t.Errorf("QEMU 7.2's %s is neither answered by tlcvm nor listed, with its reason, in qmp/cmds/leftout.go", n)
		}
	}
	for _, n := range sortedKeys(tl) {
		if !qemu[n] {
			cov.Extra++
		}
	}
	for _, n := range sortedKeys(listedSet(listed)) {
		pending := listed[n]
		switch {
		case tl[n] && pending != "":
			t.Errorf("%s is registered now: branch %s has landed, delete its entry from qmp/cmds/leftout.go", n, pending)
		case tl[n]:
			t.Errorf("%s is registered now: delete it from qmp/cmds/leftout.go", n)
		case !qemu[n]:
			t.Errorf("%s is listed in qmp/cmds/leftout.go but QEMU 7.2 has no such command", n)
		case pending != "":
			cov.Pending++
		default:
			cov.LeftOut++
		}
	}
	t.Logf("QEMU 7.2: %d commands; tlcvm answers %d (+%d of its own); left out %d; pending on branches %d",
		cov.QEMU, cov.TLCVM, cov.Extra, cov.LeftOut, cov.Pending)

	doc, err := os.ReadFile(coverageDoc)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	i, j := strings.Index(text, coverageBegin), strings.Index(text, coverageEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no generated section (%q … %q)", coverageDoc, coverageBegin, coverageEnd)
	}
	want := cmds.LeftOutMarkdown(cov)
	if got := text[i+len(coverageBegin) : j]; got != want {
		if *update {
			text = text[:i+len(coverageBegin)] + want + text[j:]
			if err := os.WriteFile(coverageDoc, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("%s's left-out table is stale (rewrite it with -update):\n--- doc\n%s\n+++ qmp/cmds/leftout.go\n%s", coverageDoc, got, want)
	}
}

// queryCommands starts bin with -machine m and no devices, and returns query-commands' names.
func queryCommands(bin, m string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-machine", m, "-nodefaults", "-display", "none", "-qmp", "stdio")
	cmd.Stdin = strings.NewReader(`{"execute":"qmp_capabilities"}` + "\n" +
		`{"execute":"query-commands","id":"list"}` + "\n" + `{"execute":"quit"}` + "\n")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() { _ = cmd.Wait() }()
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var msg struct {
			ID     string `json:"id"`
			Return []struct {
				Name string `json:"name"`
			} `json:"return"`
		}
		if json.Unmarshal(sc.Bytes(), &msg) != nil || msg.ID != "list" {
			continue
		}
		names := make([]string, len(msg.Return))
		for i, c := range msg.Return {
			names[i] = c.Name
		}
		return names, nil
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("no reply to query-commands (%v)", ctx.Err())
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
