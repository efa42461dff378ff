package stream_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testdata/analyze-migration.py is QEMU's scripts/analyze-migration.py (LGPL-2.1+, header
// kept), of the 7.x/8.0 era, used only by these tests.

func analyzer(t *testing.T) (python, script string) {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	script, err = filepath.Abs("testdata/analyze-migration.py")
	if err != nil {
		t.Fatal(err)
	}
	return python, script
}

func runAnalyzer(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	python, script := analyzer(t)
	cmd := exec.Command(python, append([]string{script}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("analyze-migration.py %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

func writeStream(t *testing.T, m *machine) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tlcvm.mig")
	if err := os.WriteFile(path, m.stream(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// hexField decodes the analyser's rendering of a buffer field ("7b 22 …").
func hexField(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("field %q: %v", s, err)
	}
	return b
}

// TestAnalyzerDumpsState: `analyze-migration.py -f FILE` shows the RAM section with every
// block's size, each device section with its length and state bytes, and the integrity
// section.
func TestAnalyzerDumpsState(t *testing.T) {
	m := newMachine(3, 64<<10, 8<<10, 4<<10)
	path := writeStream(t, m)
	out := runAnalyzer(t, t.TempDir(), "-f", path)
	var dump map[string]map[string]any
	if err := json.Unmarshal(out, &dump); err != nil {
		t.Fatalf("analyser output is not JSON: %v\n%s", err, out)
	}
	ram, ok := dump["ram (0)"]
	if !ok {
		t.Fatalf("no \"ram (0)\" in the analyser's output:\n%s", out)
	}
	sizes := ram["section sizes"].(map[string]any)
	for _, b := range m.blocks {
		if want := fmt.Sprintf("0x%016x", b.Size); sizes[b.Name] != want {
			t.Errorf("block %s: analyser says %v, want %s", b.Name, sizes[b.Name], want)
		}
	}
	for i, d := range m.devices {
		key := fmt.Sprintf("%s (%d)", d.idstr, i+1)
		sec, ok := dump[key]
		if !ok {
			t.Fatalf("no %q in the analyser's output:\n%s", key, out)
		}
		if want := fmt.Sprintf("0x%08x", len(d.state)); sec["length"] != want {
			t.Errorf("%s length %v, want %s", key, sec["length"], want)
		}
		if got := hexField(t, sec["state"].(string)); !bytes.Equal(got, d.state) {
			t.Errorf("%s state %q, want %q", key, got, d.state)
		}
	}
	integ, ok := dump[fmt.Sprintf("tlcvm/integrity (%d)", len(m.devices)+1)]
	if !ok {
		t.Fatalf("no integrity section in the analyser's output:\n%s", out)
	}
	for _, f := range []string{"stream-length", "stream-crc32c", "vmdesc-length", "vmdesc-crc32c"} {
		if _, ok := integ[f]; !ok {
			t.Errorf("integrity field %s missing", f)
		}
	}
}

// TestAnalyzerExtracts: `analyze-migration.py -x` writes desc.json, state.json and one file
// per RAM block whose bytes are the guest's memory.
func TestAnalyzerExtracts(t *testing.T) {
	m := newMachine(4, 64<<10, 8<<10, 4<<10)
	path := writeStream(t, m)
	dir := t.TempDir()
	out := runAnalyzer(t, dir, "-x", "-f", path)
	for _, want := range []string{"desc.json", "state.json", "pc.ram", "vga.vram", "/rom@etc/acpi/tables"} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("-x did not list %s:\n%s", want, out)
		}
	}
	for i, b := range m.blocks {
		got, err := os.ReadFile(filepath.Join(dir, b.Name))
		if err != nil {
			t.Fatal(err)
		}
		// The analyser does not clear a page when a ZERO record follows data sent earlier
		// (QEMU's loader does): save re-zeroes block 0's last page and the last block's
		// first page in stage 3, so blank those in both before comparing.
		want := bytes.Clone(m.mem[i])
		for _, p := range rezeroed(m, i) {
			clear(got[p : p+4096])
			clear(want[p : p+4096])
		}
		if !bytes.Equal(got, want) {
			t.Errorf("block %s extracted by the analyser differs from guest memory", b.Name)
		}
	}
	desc, err := os.ReadFile(filepath.Join(dir, "desc.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.devices {
		if !strings.Contains(string(desc), `"name": "`+d.idstr+`"`) {
			t.Errorf("desc.json does not describe %s", d.idstr)
		}
	}
}

// TestAnalyzerDescribes: `-d desc` prints the vmdesc.
func TestAnalyzerDescribes(t *testing.T) {
	m := newMachine(5, 8<<10)
	out := runAnalyzer(t, t.TempDir(), "-d", "desc", "-f", writeStream(t, m))
	var desc struct {
		PageSize int `json:"page_size"`
		Devices  []struct {
			Name string `json:"name"`
		} `json:"devices"`
	}
	if err := json.Unmarshal(out, &desc); err != nil {
		t.Fatal(err)
	}
	if desc.PageSize != 4096 || len(desc.Devices) != len(m.devices)+1 {
		t.Fatalf("desc: %+v", desc)
	}
}

// rezeroed lists the pages of block i that save turned to zero in stage 3.
func rezeroed(m *machine, i int) (offsets []uint64) {
	if i == 0 {
		offsets = append(offsets, m.blocks[0].Size-4096)
	}
	if i == len(m.blocks)-1 {
		offsets = append(offsets, 0)
	}
	return offsets
}
