package tests_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"tlcvm/tests/harness"
)

// TestPageTablesAgree: once tlcvm's guest has turned long-mode paging on, HMP info tlb lists
// its mappings, each of which gva2gpa translates the same way, and info mem's ranges cover
// every one of them. (QEMU without a guest OS never turns paging on: the differential case
// in testdata/qmp/gva.txt covers the paging-off answers.)
func TestPageTablesAgree(t *testing.T) {
	_, hmp, tlb := pagingGuest(t)
	line := regexp.MustCompile(`^([0-9a-f]{16}): ([0-9a-f]{16}) [-X][-G][-P][-D][-A][-C][-T][-U][-W]$`)
	var vas, pas []uint64
	for _, l := range strings.Split(strings.TrimSuffix(tlb, "\n"), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("info tlb line %q", l)
		}
		va, _ := strconv.ParseUint(m[1], 16, 64)
		pa, _ := strconv.ParseUint(m[2], 16, 64)
		vas, pas = append(vas, va), append(pas, pa)
	}
	if len(vas) == 0 {
		t.Fatal("info tlb lists no mapping")
	}
	mem := hmp("info mem")
	type rng struct{ from, to uint64 }
	var ranges []rng
	for _, l := range strings.Split(strings.TrimSuffix(mem, "\n"), "\n") {
		var r rng
		var size uint64
		var prot string
		if _, err := fmt.Sscanf(l, "%016x-%016x %016x %s", &r.from, &r.to, &size, &prot); err != nil || r.to-r.from != size {
			t.Fatalf("info mem line %q: %v", l, err)
		}
		ranges = append(ranges, r)
	}
	for i := 0; i < len(vas); i += 1 + len(vas)/16 {
		if got, want := hmp(fmt.Sprintf("gva2gpa 0x%x", vas[i]+0x123)), fmt.Sprintf("gpa: %#x\n", pas[i]+0x123); got != want {
			t.Errorf("gva2gpa 0x%x = %q, info tlb says %q", vas[i]+0x123, got, want)
		}
		covered := false
		for _, r := range ranges {
			covered = covered || r.from <= vas[i] && vas[i] < r.to
		}
		if !covered {
			t.Errorf("info mem does not cover 0x%x:\n%s", vas[i], mem)
		}
	}
}

// pagingGuest starts tlcvm (pc, 128 MiB) and waits for its guest to turn paging on; it
// runs t in parallel and returns the process, a function running an HMP command line through QMP, and info tlb.
func pagingGuest(t *testing.T) (*harness.Process, func(string) string, string) {
	bin := requireCandidate(t)
	parallel(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "qmp.sock")
	p := harness.Start(t, harness.Config{Bin: bin, Dir: dir, Args: []string{
		"-machine", "pc", "-m", "128", "-nodefaults", "-display", "none",
		"-qmp", "unix:" + sock + ",server=on,wait=off"}})
	q, err := harness.DialQMP(sock, p, harness.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Connect(); err != nil {
		t.Fatal(err)
	}
	hmp := func(line string) string {
		m, err := q.Execute("human-monitor-command", map[string]any{"command-line": line})
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Return *string `json:"return"`
		}
		if err := json.Unmarshal(m.Raw, &r); err != nil || r.Return == nil {
			t.Fatalf("%s: %s: %v", line, m.Raw, err)
		}
		return strings.ReplaceAll(*r.Return, "\r\n", "\n")
	}
	var tlb string
	for deadline := time.Now().Add(harness.DefaultTimeout); ; time.Sleep(20 * time.Millisecond) {
		if tlb = hmp("info tlb"); tlb != "PG disabled\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the guest never turned paging on")
		}
	}
	return p, hmp, tlb
}
