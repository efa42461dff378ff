package catalog_test

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"tlcvm/machine/catalog"
)

// TestAgainstQEMU asks the real binary the questions the catalogue answers
// and requires the same replies, member order included.
func TestAgainstQEMU(t *testing.T) {
	cmds := []string{
		`{"execute":"query-machines"}`,
		`{"execute":"query-cpu-definitions"}`,
		`{"execute":"qom-list-types"}`,
		`{"execute":"qom-list-types","arguments":{"abstract":true}}`,
		`{"execute":"qom-list-types","arguments":{"implements":"device"}}`,
		`{"execute":"qom-list-types","arguments":{"implements":"pci-express-device","abstract":true}}`,
		`{"execute":"qom-list-types","arguments":{"implements":"user-creatable"}}`,
		`{"execute":"qom-list-types","arguments":{"implements":"interface","abstract":true}}`,
		`{"execute":"qom-list-types","arguments":{"implements":"x86_64-cpu"}}`,
		`{"execute":"qom-list-types","arguments":{"implements":"no-such-type"}}`,
		`{"execute":"device-list-properties","arguments":{"typename":"nonexist"}}`,
		`{"execute":"device-list-properties","arguments":{"typename":"virtio-pci"}}`,
		`{"execute":"qom-list-properties","arguments":{"typename":"nonexist"}}`,
		`{"execute":"qom-list-properties","arguments":{"typename":"interface"}}`,
	}
	for _, name := range libvirtProbed {
		cmds = append(cmds, fmt.Sprintf(`{"execute":"device-list-properties","arguments":{"typename":%q}}`, name))
		cmds = append(cmds, fmt.Sprintf(`{"execute":"qom-list-properties","arguments":{"typename":%q}}`, name))
	}
	for _, name := range []string{"memory-backend-file", "memory-backend-memfd", "max-x86_64-cpu", "none-machine",
		"pc-i440fx-7.2-machine", "pc-q35-7.2-machine", "virtio-pci", "pci-device"} {
		cmds = append(cmds, fmt.Sprintf(`{"execute":"qom-list-properties","arguments":{"typename":%q}}`, name))
	}
	cmds = append(cmds, expansionCases...)
	replies := qmpBatch(t, cmds)
	for i, c := range cmds {
		got, ok := answer([]byte(c))
		if !ok {
			t.Fatalf("no answer for %s", c)
		}
		if want := stripID([]byte(replies[i])); got != want {
			t.Errorf("%s:\n got %.600s\nwant %.600s\n%s", c, got, want, firstDiff(got, want))
		}
	}
}

// expansionCases are query-cpu-model-expansion commands: libvirt's three,
// then models and property settings that exercise aliases, dependencies,
// value types and errors.
var expansionCases = func() []string {
	cs := []string{
		`{"execute":"query-cpu-model-expansion","arguments":{"type":"static","model":{"name":"host"}}}`,
		`{"execute":"query-cpu-model-expansion","arguments":{"type":"static","model":{"name":"host","props":{"migratable":false}}}}`,
		`{"execute":"query-cpu-model-expansion","arguments":{"type":"full","model":{"name":"host","props":{"migratable":false,"hv-passthrough":true}}}}`,
		`{"execute":"query-cpu-model-expansion","arguments":{"type":"full","model":{"name":"nope"}}}`,
		`{"execute":"query-cpu-model-expansion","arguments":{"type":"full","model":{"name":"qemu64","props":{"foo":1}}}}`,
		`{"execute":"query-cpu-model-expansion","arguments":{"type":"full","model":{"name":"qemu64","props":{"sse4.2":"x"}}}}`,
		`{"execute":"query-cpu-model-expansion","arguments":{"type":"full","model":{"name":"qemu64","props":{"family":1.5}}}}`,
		`{"execute":"query-cpu-model-expansion","arguments":{"type":"full","model":{"name":"qemu64","props":{"model-id":5}}}}`,
		`{"execute":"query-cpu-model-expansion","arguments":{"type":"full","model":{"name":"qemu64","props":[1]}}}`,
		`{"execute":"query-cpu-model-expansion","arguments":{"type":"full","model":{"name":"qemu64","props":{"family":6,"model-id":"x<é>\"y","vendor":"GenuineIntel"}}}}`,
		`{"execute":"query-cpu-model-expansion","arguments":{"type":"full","model":{"name":"max","props":{"migratable":false}}}}`,
	}
	props := []string{`{"sse4.2":true}`, `{"sse4_2":false}`, `{"svm":false}`, `{"vmx":true}`, `{"vmx":false}`,
		`{"pni":false}`, `{"avx2":true,"xsave":false}`, `{"lm":false,"i64":true}`, `{"fxsr_opt":true}`}
	for _, m := range []string{"qemu64", "max", "base", "Skylake-Client-v4", "EPYC-v3", "Cascadelake-Server", "486", "phenom"} {
		for _, typ := range []string{"static", "full"} {
			cs = append(cs, fmt.Sprintf(`{"execute":"query-cpu-model-expansion","arguments":{"type":%q,"model":{"name":%q}}}`, typ, m))
		}
		for _, p := range props {
			cs = append(cs, fmt.Sprintf(`{"execute":"query-cpu-model-expansion","arguments":{"type":"full","model":{"name":%q,"props":%s}}}`, m, p))
		}
	}
	return cs
}()

func firstDiff(a, b string) string {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			lo := max(0, i-80)
			return fmt.Sprintf("first difference at %d: got …%.160s… want …%.160s…", i, a[lo:], b[lo:])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}

// TestDeviceOptionsHelpAgainstQEMU compares `-device X,help`.
func TestDeviceOptionsHelpAgainstQEMU(t *testing.T) {
	requireQEMU(t)
	for _, name := range []string{"virtio-blk-pci", "isa-serial", "i8042", "ide-hd", "qxl", "virtserialport"} {
		out, err := exec.Command(qemuBin, "-machine", "none", "-nodefaults", "-device", name+",help").Output()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := catalog.DeviceOptionsHelp(name)
		if err != nil || got != string(out) {
			t.Errorf("%s: got\n%s\nwant\n%s", name, got, out)
		}
	}
}

// TestHelpTextsAgainstQEMU compares the stored help texts.
func TestHelpTextsAgainstQEMU(t *testing.T) {
	requireQEMU(t)
	for _, tc := range []struct {
		arg  string
		text string
	}{{"-machine", catalog.MachineHelp()}, {"-cpu", catalog.CPUHelp()}, {"-device", catalog.DeviceHelp()}} {
		out, err := exec.Command(qemuBin, tc.arg, "help").Output()
		if err != nil || string(out) != tc.text {
			t.Errorf("%s help differs from the binary (%v)", tc.arg, err)
		}
	}
}

// TestLibvirtProbe replays libvirt 9.0's recorded probe of QEMU 7.2 and
// requires the catalogue's answers to match QEMU's recorded replies.
func TestLibvirtProbe(t *testing.T) {
	const path = "/work/shared/reference/libvirt/probe/probe-qmp-x86_64-full.jsonl.gz"
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("no recording: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	type line struct {
		Dir string          `json:"dir"`
		Msg json.RawMessage `json:"msg"`
	}
	var pending []byte
	checked := 0
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		switch l.Dir {
		case "->":
			pending = l.Msg
		case "<-":
			got, ok := answer(pending)
			if !ok {
				continue
			}
			checked++
			if want := stripID(l.Msg); got != want {
				t.Errorf("%s:\n%s", pending, firstDiff(got, want))
			}
		}
	}
	if checked < 35 {
		t.Errorf("only %d catalogue replies in the recording", checked)
	}
}

// TestGeneratedUpToDate regenerates the tables from the binary into a
// temporary directory and requires them to equal the committed ones.
func TestGeneratedUpToDate(t *testing.T) {
	requireQEMU(t)
	if testing.Short() {
		t.Skip("regeneration takes ~10 s")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	if _, err := os.Stat(goBin); err != nil {
		t.Skipf("no go toolchain: %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command(goBin, "run", "./gen", "-out", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./gen: %v\n%s", err, out)
	}
	fresh, _ := filepath.Glob(filepath.Join(dir, "zz_generated_*.go"))
	committed, _ := filepath.Glob("zz_generated_*.go")
	if len(fresh) != len(committed) || len(fresh) == 0 {
		t.Fatalf("%d fresh files, %d committed", len(fresh), len(committed))
	}
	for _, f := range fresh {
		want, _ := os.ReadFile(f)
		got, err := os.ReadFile(filepath.Base(f))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s is stale: run go generate ./machine/catalog (%s)", filepath.Base(f), firstDiff(string(got), string(want)))
		}
	}
}

// TestExpansionSweepAgainstQEMU expands every model with a few settings
// drawn deterministically from its feature list, and compares.
func TestExpansionSweepAgainstQEMU(t *testing.T) {
	requireQEMU(t)
	base, err := catalog.ExpandCPU(catalog.ExpansionStatic, "max", nil)
	if err != nil {
		t.Fatal(err)
	}
	var features []string
	for _, n := range base.Model.Props.Names() {
		if v, _ := base.Model.Props.Get(n); string(v) == "true" || string(v) == "false" {
			features = append(features, n)
		}
	}
	var cmds []string
	seed := uint32(1)
	next := func(n int) int { seed = seed*1103515245 + 12345; return int(seed>>8) % n }
	for i, m := range catalog.CPUModels() {
		props := map[string]bool{}
		for j := 0; j < 1+i%4; j++ {
			props[features[next(len(features))]] = next(2) == 1
		}
		p, _ := json.Marshal(props)
		cmds = append(cmds, fmt.Sprintf(`{"execute":"query-cpu-model-expansion","arguments":{"type":"full","model":{"name":%q,"props":%s}}}`, m.Name, p))
	}
	replies := qmpBatch(t, cmds)
	bad := 0
	for i, c := range cmds {
		got, _ := answer([]byte(c))
		if want := stripID([]byte(replies[i])); got != want {
			bad++
			t.Errorf("%s:\n%s", c, firstDiff(got, want))
		}
	}
	t.Logf("%d of %d sweeps differ", bad, len(cmds))
}
