package tests_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestPackageArrows checks the arrows DESIGN.md says must never exist, on the import graph
// of the module's packages (their non-test imports, as `go list` reports them): machine
// imports neither qmp, hmp nor migration; migration never imports machine; compat imports
// no package of ours outside compat; blockdev imports neither qmp nor hmp; qmp never
// imports hmp; and no package but the composition root, qmp's and hmp's own imports qmp or
// hmp.
func TestPackageArrows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "tlcvm/"
	// in reports whether pkg is one of the packages rooted at each of roots.
	in := func(pkg string, roots ...string) bool {
		for _, r := range roots {
			if pkg == mod+r || strings.HasPrefix(pkg, mod+r+"/") {
				return true
			}
		}
		return false
	}
	rules := []struct {
		why  string
		from func(pkg string) bool
		to   func(imp string) bool
	}{
		{"machine never imports qmp, hmp or migration",
			func(p string) bool { return in(p, "machine") }, func(i string) bool { return in(i, "qmp", "hmp", "migration") }},
		{"migration never imports machine",
			func(p string) bool { return in(p, "migration") }, func(i string) bool { return in(i, "machine") }},
		{"compat imports no package of ours",
			func(p string) bool { return in(p, "compat") },
			func(i string) bool { return strings.HasPrefix(i, mod) && !in(i, "compat") }},
		{"blockdev never imports qmp or hmp",
			func(p string) bool { return in(p, "blockdev") }, func(i string) bool { return in(i, "qmp", "hmp") }},
		{"qmp never imports hmp",
			func(p string) bool { return in(p, "qmp") }, func(i string) bool { return in(i, "hmp") }},
		{"only the composition root, qmp and hmp import qmp or hmp",
			func(p string) bool { return !in(p, "cmd", "qmp", "hmp") }, func(i string) bool { return in(i, "qmp", "hmp") }},
	}
	pkgs := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pkgs++
		pkg, imports := f[0], f[1:]
		for _, imp := range imports {
			for _, r := range rules {
				if r.from(pkg) && r.to(imp) {
					t.Errorf("%s imports %s: %s (DESIGN.md)", pkg, imp, r.why)
				}
			}
		}
	}
	if pkgs < 10 {
		t.Fatalf("go list reported %d packages:\n%s", pkgs, out)
	}
}
