package harness

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Reference returns the reference QEMU 7.2 (ReferenceBin) for a differential test. The test
// is skipped when that binary is not installed, and fails at once, naming the Debian package
// to install, when the binary prints set-up noise of its own (Debian's QEMU without
// qemu-system-gui prints "qemu: module ui-ui-gtk not found, do you want to install
// qemu-system-gui package?" on every start): without this check every differential case
// would fail with a confusing diff instead.
func Reference(t testing.TB) string {
	t.Helper()
	bin := ReferenceBin()
	RequiresBinary(t, bin)
	if err := ReferenceClean(bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

var (
	refMu    sync.Mutex
	refCheck = map[string]error{}
)

// moduleNoise is the line QEMU's module loader prints for a module it cannot find
// (util/module.c: "%s: module %s not found, do you want to install %s package?").
var moduleNoise = regexp.MustCompile(`(?m)^\S+: module (\S+) not found(?:, do you want to install (\S+) package\?)?$`)

// ReferenceClean reports whether bin starts without set-up noise: it runs `bin -chardev null`
// (which fails at once with one line of its own) and looks for anything else on stderr that
// says the installation is incomplete. The answer is cached per binary.
func ReferenceClean(bin string) error {
	refMu.Lock()
	defer refMu.Unlock()
	if err, ok := refCheck[bin]; ok {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "-chardev", "null").CombinedOutput()
	var err error
	if m := moduleNoise.FindAllStringSubmatch(string(out), -1); m != nil {
		pkgs, lines := []string{}, []string{}
		seen := map[string]bool{}
		for _, g := range m {
			lines = append(lines, g[0])
			p := g[2]
			if p == "" {
				p = "the package that ships module " + g[1]
			}
			if !seen[p] {
				seen[p] = true
				pkgs = append(pkgs, p)
			}
		}
		err = fmt.Errorf("reference QEMU %s is incomplete; it prints on every start:\n  %s\n"+
			"install %s (scripts/deps.sh does: make deps), or every differential test compares this noise",
			bin, strings.Join(lines, "\n  "), strings.Join(pkgs, ", "))
	} else if ctx.Err() != nil {
		err = fmt.Errorf("reference QEMU %s: `-chardev null` did not exit within 30 s", bin)
	}
	refCheck[bin] = err
	return err
}
