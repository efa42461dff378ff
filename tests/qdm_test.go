package tests_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlcvm/tests/harness"
)

// TestInfoQdmBesideQEMU: HMP info qdm is QEMU 7.2's, byte for byte, on pc and q35 (it lists
// device types, the no-user ones included, whatever the machine); device_add and -device of
// a no-user model get QEMU's refusal, and -device help is unchanged.
func TestInfoQdmBesideQEMU(t *testing.T) {
	bin := requireCandidate(t)
	ref := harness.Reference(t)
	noUser := []string{"ICH9-LPC", "gpex-pcihost", "sgx-epc", "isabus-bridge"}
	for _, m := range []string{"pc", "q35"} {
		t.Run(m, func(t *testing.T) {
			parallel(t)
			dir := shortDir(t)
			out := map[string][]string{}
			for _, b := range []struct{ name, bin string }{{"qemu", ref}, {"tlcvm", bin}} {
				v := startMigVM(t, b.bin, dir, b.name, "-S", "-machine", m)
				out[b.name] = append(out[b.name], v.do("human-monitor-command", map[string]any{"command-line": "info qdm"}).Str())
				for _, d := range noUser {
					r, err := v.q.Execute("device_add", map[string]any{"driver": d})
					if err != nil {
						t.Fatal(err)
					}
					e, _ := r.Value.Get("error")
					out[b.name] = append(out[b.name], "device_add "+d+": "+e.String())
				}
				v.quit()
			}
			q, tl := out["qemu"], out["tlcvm"]
			if !strings.Contains(q[0], `name "ICH9-LPC", bus PCI, desc "ICH9 LPC bridge", no-user`) {
				t.Fatalf("QEMU printed %q", q[0])
			}
			for i := range q {
				if q[i] != tl[i] {
					t.Errorf("differs from QEMU's:\n%s", harness.Diff(strings.Split(q[i], "\n"), strings.Split(tl[i], "\n")))
				}
			}
		})
	}
	t.Run("cmdline", func(t *testing.T) {
		parallel(t)
		run := func(b string, args ...string) string {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			all := append([]string{"-machine", "pc", "-nodefaults", "-display", "none", "-S"}, args...)
			out, err := exec.CommandContext(ctx, b, all...).CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("%s %v: %v", b, args, ctx.Err())
			}
			// The messages name the program: drop that.
			s := strings.ReplaceAll(string(out), filepath.Base(b)+": ", "")
			if err != nil {
				s += "(" + err.Error() + ")"
			}
			return s
		}
		cases := [][]string{{"-device", "help"}}
		for _, d := range noUser {
			cases = append(cases, []string{"-device", d})
		}
		for _, args := range cases {
			q, tl := run(ref, args...), run(bin, args...)
			if !strings.Contains(q, "Controller/Bridge/Hub devices:") && !strings.Contains(q, "pluggable device type") {
				t.Fatalf("%v: QEMU printed %q", args, q)
			}
			if q != tl {
				t.Errorf("%v: QEMU printed %q, tlcvm %q", args, q, tl)
			}
		}
	})
}
