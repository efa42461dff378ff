// Command gen captures tlcvm's catalogue from the real QEMU 7.2 binary and
// writes it as Go tables (zz_generated_*.go) into the catalog package.
//
//	go run ./machine/catalog/gen                    # from the module root
//	go generate ./machine/catalog                   # same, through go:generate
//	go run ./machine/catalog/gen -out /tmp/x -qemu /usr/bin/qemu-system-x86_64
//
// It asks one `qemu-system-x86_64 -machine none -accel tcg -nodefaults
// -display none -qmp stdio` process (replaced when a type aborts it) for
// query-machines, query-cpu-definitions, query-cpu-model-expansion,
// qom-list-types, qom-list-properties, device-list-properties and HMP info qdm
// (through human-monitor-command), and runs
// the binary with -machine help, -cpu help and -device help. The output is
// deterministic: running it twice against the same binary gives the same
// bytes, which is what the catalogue's freshness test checks.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	bin := flag.String("qemu", "/usr/bin/qemu-system-x86_64", "QEMU binary to capture from")
	out := flag.String("out", "", "output directory (default: the catalog package directory)")
	verbose := flag.Bool("v", false, "log progress to stderr")
	flag.Parse()
	lg := log.New(os.Stderr, "catalog/gen: ", 0)
	if !*verbose {
		lg.SetOutput(discard{})
	}
	dir := *out
	if dir == "" {
		var err error
		if dir, err = packageDir(); err != nil {
			fmt.Fprintln(os.Stderr, "catalog/gen:", err)
			os.Exit(1)
		}
	}
	if err := run(*bin, dir, lg); err != nil {
		fmt.Fprintln(os.Stderr, "catalog/gen:", err)
		os.Exit(1)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// packageDir finds machine/catalog: the current directory under go generate,
// or <module root>/machine/catalog under go run from the root.
func packageDir() (string, error) {
	for _, d := range []string{".", "machine/catalog"} {
		if _, err := os.Stat(filepath.Join(d, "doc.go")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "gen")); err == nil {
				return d, nil
			}
		}
	}
	return "", errors.New("run from the module root or machine/catalog, or pass -out")
}

// run captures everything, then writes the files. Nothing is written unless
// the whole capture succeeded.
func run(bin, dir string, lg *log.Logger) error {
	c, err := capture(bin, lg)
	if err != nil {
		return err
	}
	files, err := c.render()
	if err != nil {
		return err
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), src, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func capture(bin string, lg *log.Logger) (*catalog, error) {
	c := &catalog{bin: bin}
	ver, err := helpText(bin, "-version")
	if err != nil {
		return nil, err
	}
	c.version = strings.TrimPrefix(strings.SplitN(ver, "\n", 2)[0], "QEMU emulator version ")
	if c.machineHelp, err = helpText(bin, "-machine", "help"); err != nil {
		return nil, err
	}
	if c.cpuHelp, err = helpText(bin, "-cpu", "help"); err != nil {
		return nil, err
	}
	if c.deviceHelp, err = helpText(bin, "-device", "help"); err != nil {
		return nil, err
	}
	s := &session{bin: bin, timeout: 20 * time.Second}
	defer s.close()
	start := time.Now()
	steps := []struct {
		name string
		fn   func(*session, *log.Logger) error
	}{
		{"machines", c.captureMachines},
		{"cpu definitions", c.captureCPUs},
		{"types", c.captureTypes},
		{"properties", c.captureProperties},
		{"cpu expansions", c.captureExpansions},
		// last: device_add leaves devices behind in the session
		{"devices", c.captureDevices},
		{"PCI identities", c.capturePCI},
	}
	for _, st := range steps {
		lg.Printf("capturing %s (%v)", st.name, time.Since(start).Round(time.Millisecond))
		if err := st.fn(s, lg); err != nil {
			return nil, fmt.Errorf("%s: %w", st.name, err)
		}
	}
	for _, d := range s.deaths {
		lg.Printf("qemu died on: %s", d)
	}
	return c, nil
}
