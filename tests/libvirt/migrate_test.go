package libvirt_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	lv "tlcvm/internal/libvirttest"
	"tlcvm/tests/harness"
)

// Issue 12's stories: virsh migrate between two libvirt hosts (scripts/two-hosts.sh), every
// mode run with tlcvm and with QEMU 7.2 in the same subtest, their outcomes compared: the
// migrate command's success or error, the domain's state on both hosts afterwards, the
// lifecycle events libvirt reported on the source, and the domjobinfo fields.

// emulator is one side of a comparison.
type emulator struct{ name, bin string }

func emulators(t *testing.T) []emulator {
	t.Helper()
	ref := harness.ReferenceBin()
	if _, err := exec.LookPath(ref); err != nil {
		t.Skipf("QEMU 7.2 (%s) is not installed", ref)
	}
	return []emulator{{"tlcvm", bin}, {"qemu", ref}}
}

var (
	hostsOnce sync.Once
	hosts     *lv.TwoHosts
	hostsErr  error
)

// twoHosts starts the bed once for the whole run (stopped by TestMain's cleanup).
func twoHosts(t *testing.T) *lv.TwoHosts {
	t.Helper()
	hostsOnce.Do(func() {
		script, _ := filepath.Abs("../../scripts/two-hosts.sh")
		hosts, hostsErr = lv.StartTwoHosts(script)
		if hostsErr == nil {
			cleanups = append(cleanups, func() {
				if err := hosts.Stop(); err != nil {
					fmt.Println(err)
				}
			})
		}
	})
	if hostsErr != nil {
		t.Skipf("two-host bed: %v", hostsErr)
	}
	return hosts
}

// migDomain is a domain of emulator e defined (or created) on host a, its disk on the
// shared storage; removed from both hosts at the end of the test.
func migDomain(t *testing.T, h *lv.TwoHosts, e emulator, workload string, start bool) lv.Domain {
	t.Helper()
	d := lv.Domain{Kind: lv.PC, Name: lv.NewName("tlcvm-mig-" + e.name), UUID: lv.NewUUID(), Emulator: e.bin,
		Disk: filepath.Join(h.Shared, lv.NewName("disk")+".qcow2"), Workload: workload}
	if err := lv.CreateDisk(d.Disk, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.A.Define(d, h.Shared); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, v := range []*lv.Virsh{h.A, h.B} {
			_, _ = v.Run("destroy", d.Name)
			_, _ = v.Run("undefine", "--managed-save", "--snapshots-metadata", d.Name)
		}
	})
	if start {
		if _, err := h.A.Run("start", d.Name); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// outcome is what a migration left, for comparison between the emulators.
type outcome struct {
	err      string // the migrate command's error, "" on success
	src, dst string // domstate --reason on each host ("" when the host has no such domain)
	events   []string
	jobKeys  []string // domjobinfo --completed's fields on the destination
}

func (o outcome) String() string {
	return fmt.Sprintf("err=%q src=%q dst=%q events=%v", o.err, o.src, o.dst, o.events)
}

// stateOf is the domain's "state (reason)" on a host, or "" when it has none.
func stateOf(v *lv.Virsh, dom string) string {
	out, err := v.Run("domstate", "--reason", dom)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// events collects `virsh event --loop` lifecycle events of dom on a host while f runs.
func events(t *testing.T, v *lv.Virsh, dom string, f func()) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := v.Command(ctx, "event", "--loop", "--event", "lifecycle", dom)
	var out syncBuffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // registered before the migration starts
	f()
	time.Sleep(1500 * time.Millisecond) // the last events arrive
	cancel()
	_ = cmd.Wait()
	var evs []string
	for _, l := range strings.Split(out.String(), "\n") {
		// event 'lifecycle' for domain 'NAME': Suspended Migrated
		if strings.HasPrefix(l, "event 'lifecycle' for domain ") {
			if _, ev, ok := strings.Cut(l, "': "); ok {
				evs = append(evs, strings.TrimSpace(ev))
			}
		}
	}
	return evs
}

// jobKeys are the field names of a domjobinfo output.
func jobKeys(t *testing.T, out string) []string {
	t.Helper()
	m, err := lv.ParseKV(out)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// errClass is the part of a virsh error both emulators should share: libvirt's words
// without the emulator's own details.
func errClass(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if i := strings.Index(s, "error: "); i >= 0 {
		s = s[i+len("error: "):]
	}
	if i := strings.IndexAny(s, "\n"); i >= 0 {
		s = s[:i]
	}
	return s
}

// migrate runs `virsh migrate args… DOM BURI` on host a and returns what it left.
func migrate(t *testing.T, h *lv.TwoHosts, dom string, args ...string) outcome {
	t.Helper()
	var o outcome
	o.events = events(t, h.A, dom, func() {
		_, err := h.A.Run(append(append([]string{"migrate"}, args...), dom, h.BURI)...)
		o.err = errClass(err)
	})
	o.src, o.dst = stateOf(h.A, dom), stateOf(h.B, dom)
	if out, err := h.B.Run("domjobinfo", "--completed", dom); err == nil {
		o.jobKeys = jobKeys(t, out)
	}
	return o
}

// sameOutcome compares tlcvm's outcome with QEMU's.
func sameOutcome(t *testing.T, got, want outcome) {
	t.Helper()
	if got.err != want.err || got.src != want.src || got.dst != want.dst {
		t.Errorf("tlcvm: %s\n QEMU: %s", got, want)
	}
	if strings.Join(got.events, "|") != strings.Join(want.events, "|") {
		t.Errorf("source events\ntlcvm: %v\n QEMU: %v", got.events, want.events)
	}
	if missing := lv.Missing(want.jobKeys, got.jobKeys); len(missing) > 0 {
		t.Errorf("domjobinfo --completed lacks %v (QEMU's: %v)", missing, want.jobKeys)
	}
}

// TestMigrateModes runs the plain modes of virsh migrate, each with both emulators.
func TestMigrateModes(t *testing.T) {
	need(t)
	h := twoHosts(t)
	modes := []struct {
		name  string
		args  []string
		start bool // a running domain (else only defined: offline)
	}{
		{"live", []string{"--live", "--unsafe", "--verbose"}, true},
		{"p2p", []string{"--live", "--p2p", "--unsafe"}, true},
		{"tunnelled", []string{"--live", "--p2p", "--tunnelled", "--unsafe"}, true},
		{"persistent-undefinesource", []string{"--live", "--persistent", "--undefinesource", "--unsafe"}, true},
		{"suspend", []string{"--live", "--suspend", "--unsafe"}, true},
		{"offline", []string{"--offline", "--persistent", "--undefinesource"}, false},
		{"bandwidth", []string{"--live", "--unsafe", "--bandwidth", "50"}, true},
		{"parallel", []string{"--live", "--unsafe", "--parallel", "--parallel-connections", "3"}, true},
		{"auto-converge", []string{"--live", "--unsafe", "--auto-converge", "--auto-converge-initial", "30", "--auto-converge-increment", "10"}, true},
		{"compressed", []string{"--live", "--unsafe", "--compressed"}, true},
		{"compressed-mt", []string{"--live", "--unsafe", "--compressed", "--comp-methods", "mt", "--comp-mt-level", "3"}, true},
		{"non-live", []string{"--unsafe"}, true},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			res := map[string]outcome{}
			for _, e := range emulators(t) {
				d := migDomain(t, h, e, workload, m.start)
				res[e.name] = migrate(t, h, d.Name, m.args...)
				t.Logf("%s: %s", e.name, res[e.name])
			}
			if res["tlcvm"].err != "" {
				t.Fatalf("tlcvm: virsh migrate failed: %s", res["tlcvm"].err)
			}
			sameOutcome(t, res["tlcvm"], res["qemu"])
		})
	}
}
