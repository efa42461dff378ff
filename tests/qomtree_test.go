package tests_test

import (
	"strings"
	"testing"

	"tlcvm/tests/harness"
)

// TestInfoQOMTreeBesideQEMU: info qom-tree (from /machine, and from other paths, whole
// or partial, resolvable or not) prints QEMU 7.2's tree for the same command line,
// stopped before its firmware runs (-S): the board's objects, IRQ pins, buses and
// containers, the memory regions under their owners, the -device and -object objects.
func TestInfoQOMTreeBesideQEMU(t *testing.T) {
	bin := requireCandidate(t)
	ref := harness.Reference(t)
	cases := []struct {
		name     string
		defaults bool // without -nodefaults
		args     []string
		lines    []string // beside "info qom-tree"
	}{
		{name: "pc", args: []string{"-machine", "pc"}},
		{name: "q35", args: []string{"-machine", "q35"}},
		{name: "pc-smp3", args: []string{"-machine", "pc", "-smp", "3"},
			lines: []string{"info qom-tree lapic", "info qom-tree device[8]", "info qom-tree /machine/unattached/device[0]/",
				"info qom-tree /", "info qom-tree /nope", "info qom-tree ioapic", "info qom-tree /machine/i440fx/pci.0"}},
		{name: "q35-backend", args: []string{"-machine", "q35,memory-backend=m0", "-m", "128",
			"-object", "memory-backend-ram,id=m0,size=128M", "-object", "memory-backend-ram,id=m1,size=64M"},
			lines: []string{"info qom-tree /objects", "info qom-tree m1", "info qom-tree mch"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parallel(t)
			dir := shortDir(t)
			lines := append([]string{"info qom-tree"}, c.lines...)
			out := map[string][]string{}
			for _, b := range []struct{ name, bin string }{{"qemu", ref}, {"tlcvm", bin}} {
				args := append([]string{"-S"}, c.args...)
				if !c.defaults {
					args = append([]string{"-nodefaults"}, args...)
				}
				v := startNamedVM(t, b.bin, dir, b.name, args...)
				for _, l := range lines {
					out[b.name] = append(out[b.name], v.do("human-monitor-command", map[string]any{"command-line": l}).Str())
				}
				v.quit()
			}
			for i, l := range lines {
				q, tl := out["qemu"][i], out["tlcvm"][i]
				if l == "info qom-tree" && !strings.Contains(q, "/machine (") {
					t.Fatalf("%s: QEMU printed %q", l, q)
				}
				if q != tl {
					t.Errorf("%s differs from QEMU's:\n%s", l, harness.Diff(strings.Split(q, "\n"), strings.Split(tl, "\n")))
				}
			}
		})
	}
}
