// Command gencmdopts captures QEMU 7.2's query-command-line-options from the
// real binary and writes it as compat's option-group table,
// compat/zz_generated_cmdlineopts.go.
//
//	go generate ./compat                       # from the module root
//	go run ./compat/internal/gencmdopts        # same
//	go run ./compat/internal/gencmdopts -qemu /usr/bin/qemu-system-x86_64 -out /tmp/x
//
// It starts `qemu-system-x86_64 -machine none -accel tcg -nodefaults
// -display none -qmp stdio` and sends, after qmp_capabilities:
//
//	query-command-line-options    the groups of a fresh QEMU
//	qom-list-types                loads every module (module_load_qom_all)
//	query-command-line-options    now with the groups modules register (spice)
//	quit
//
// Groups present only in the second list are marked Module. The output is
// deterministic: the same binary gives the same bytes, which the package's
// freshness test checks.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

const outName = "zz_generated_cmdlineopts.go"

func main() {
	bin := flag.String("qemu", "/usr/bin/qemu-system-x86_64", "QEMU binary to capture from")
	out := flag.String("out", "", "output directory (default: the compat package directory)")
	flag.Parse()
	if err := run(*bin, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gencmdopts:", err)
		os.Exit(1)
	}
}

func run(bin, dir string) error {
	if dir == "" {
		var err error
		if dir, err = packageDir(); err != nil {
			return err
		}
	}
	c, err := capture(bin)
	if err != nil {
		return err
	}
	src, err := render(c)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, outName), src, 0o644)
}

// packageDir finds compat: the current directory under go generate, or
// <module root>/compat under go run from the root.
func packageDir() (string, error) {
	for _, d := range []string{".", "compat"} {
		if _, err := os.Stat(filepath.Join(d, "cmdlineopts.go")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("run from the module root or compat/, or pass -out")
}
