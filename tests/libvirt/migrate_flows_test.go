package libvirt_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	lv "tlcvm/internal/libvirttest"
)

// Issue 12's stories that need a migration in progress: a guest that dirties its memory
// faster than --bandwidth lets precopy send it, so that the job lasts until the test acts
// on it (post-copy, domjobinfo, migrate-setmaxdowntime, migrate-setspeed, domjobabort). They
// run tlcvm only: QEMU 7.2's guest in the same domain (firmware, no workload) has nothing to
// dirty and completes at once. A paused guest's RAM is compared with pmemsave for both.

// hotWorkload dirties 16 MiB a second in a 16 MiB working set: more than --bandwidth 1
// (MiB/s) sends, so precopy never converges on its own.
const hotWorkload = "ws=16M,,rate=16M"

// running is a `virsh migrate` in progress on host a.
type running struct {
	done chan error
}

// startMigrate starts `virsh migrate args… DOM BURI` on host a.
func startMigrate(h *lv.TwoHosts, dom string, args ...string) *running {
	r := &running{done: make(chan error, 1)}
	go func() {
		_, err := h.A.Run(append(append([]string{"migrate"}, args...), dom, h.BURI)...)
		r.done <- err
	}()
	return r
}

// wait returns the migrate command's result, failing t after the deadline.
func (r *running) wait(t *testing.T, deadline time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(deadline):
		t.Fatalf("virsh migrate did not return within %v", deadline)
		return nil
	}
}

// jobInfo is domjobinfo's fields for dom on v.
func jobInfo(v *lv.Virsh, dom string, args ...string) (map[string]string, error) {
	out, err := v.Run(append([]string{"domjobinfo"}, append(args, dom)...)...)
	if err != nil {
		return nil, err
	}
	return lv.ParseKV(out)
}

// awaitTransfer waits until the outgoing migration of dom has sent data, and returns
// domjobinfo then.
func awaitTransfer(t *testing.T, h *lv.TwoHosts, dom string) map[string]string {
	t.Helper()
	var info map[string]string
	err := lv.Poll(90*time.Second, 200*time.Millisecond, "the migration sends data", func() (bool, error) {
		m, err := jobInfo(h.A, dom)
		if err != nil {
			return false, nil
		}
		info = m
		return m["Job type"] == "Unbounded" && m["Data processed"] != "" && !strings.HasPrefix(m["Data processed"], "0.000 B"), nil
	})
	if err != nil {
		t.Fatalf("%v (last domjobinfo %v)", err, info)
	}
	return info
}

// TestMigrateJobControl: domjobinfo while the job runs, migrate-setmaxdowntime and
// migrate-setspeed on the running job (read back with their get commands), then
// domjobabort: virsh migrate fails with libvirt's cancel error, the guest keeps running on
// the source and the destination keeps nothing.
func TestMigrateJobControl(t *testing.T) {
	need(t)
	h := twoHosts(t)
	e := emulator{"tlcvm", bin}
	d := migDomain(t, h, e, hotWorkload, true)
	r := startMigrate(h, d.Name, "--live", "--unsafe", "--verbose", "--bandwidth", "1")
	info := awaitTransfer(t, h, d.Name)
	for _, k := range []string{"Operation", "Time elapsed", "Data processed", "Data remaining", "Data total",
		"Memory processed", "Memory remaining", "Memory total", "Dirty rate", "Iteration",
		"Constant pages", "Normal pages", "Normal data", "Expected downtime"} {
		if _, ok := info[k]; !ok {
			t.Errorf("domjobinfo during the migration lacks %q: %v", k, info)
		}
	}
	if info["Operation"] != "Outgoing migration" {
		t.Errorf("domjobinfo Operation %q", info["Operation"])
	}
	if _, err := h.A.Run("migrate-setmaxdowntime", d.Name, "450"); err != nil {
		t.Fatal(err)
	}
	if out, err := h.A.Run("migrate-getmaxdowntime", d.Name); err != nil || strings.TrimSpace(out) != "450" {
		t.Errorf("migrate-getmaxdowntime: %q %v", out, err)
	}
	if _, err := h.A.Run("migrate-setspeed", d.Name, "2"); err != nil {
		t.Fatal(err)
	}
	if out, err := h.A.Run("migrate-getspeed", d.Name); err != nil || strings.TrimSpace(out) != "2" {
		t.Errorf("migrate-getspeed: %q %v", out, err)
	}
	if _, err := h.A.Run("domjobabort", d.Name); err != nil {
		t.Fatal(err)
	}
	err := r.wait(t, 2*time.Minute)
	if err == nil || !strings.Contains(err.Error(), "canceled by client") {
		t.Fatalf("virsh migrate after domjobabort: %v", err)
	}
	if got := stateOf(h.A, d.Name); !strings.HasPrefix(got, "running") {
		t.Errorf("source after domjobabort: %q", got)
	}
	if err := lv.Poll(30*time.Second, 200*time.Millisecond, "the destination drops the domain", func() (bool, error) {
		return stateOf(h.B, d.Name) == "", nil
	}); err != nil {
		t.Errorf("%v: %q", err, stateOf(h.B, d.Name))
	}
	// The guest goes on running on the source: its pages-written counter grows.
	guestProgresses(t, h.A, d.Name)
}

// guestProgresses checks that the workload's pages-written counter of vCPU 0 (guest
// physical 0x508) grows on the host's domain.
func guestProgresses(t *testing.T, v *lv.Virsh, dom string) {
	t.Helper()
	read := func() uint64 {
		out, err := v.Run("qemu-monitor-command", "--hmp", dom, "xp /1gx 0x508")
		if err != nil {
			t.Fatal(err)
		}
		_, val, ok := strings.Cut(strings.TrimSpace(out), ": ")
		n, perr := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(val), "0x"), 16, 64)
		if !ok || perr != nil {
			t.Fatalf("xp: %q", out)
		}
		return n
	}
	first := read()
	if err := lv.Poll(30*time.Second, 100*time.Millisecond, "the guest writes pages", func() (bool, error) {
		return read() > first, nil
	}); err != nil {
		t.Error(err)
	}
}

// TestMigratePostcopy: --postcopy with virsh migrate-postcopy while precopy runs, and
// --postcopy-after-precopy. The source reports "Suspended Post-copy", the guest runs on
// the destination and its workload goes on there.
func TestMigratePostcopy(t *testing.T) {
	need(t)
	h := twoHosts(t)
	for _, tc := range []struct {
		name string
		args []string
		kick bool // run virsh migrate-postcopy
	}{
		{"migrate-postcopy", []string{"--live", "--unsafe", "--postcopy", "--bandwidth", "1"}, true},
		{"after-precopy", []string{"--live", "--unsafe", "--postcopy", "--postcopy-after-precopy", "--bandwidth", "2"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := migDomain(t, h, emulator{"tlcvm", bin}, hotWorkload, true)
			var err error
			evs := events(t, h.A, d.Name, func() {
				r := startMigrate(h, d.Name, tc.args...)
				if tc.kick {
					awaitTransfer(t, h, d.Name)
					if _, err := h.A.Run("migrate-postcopy", d.Name); err != nil {
						t.Error(err)
					}
				}
				err = r.wait(t, 3*time.Minute)
			})
			if err != nil {
				t.Fatalf("virsh migrate: %v", err)
			}
			if !strings.Contains(strings.Join(evs, "|"), "Suspended Post-copy") {
				t.Errorf("source events %v lack Suspended Post-copy", evs)
			}
			if got := stateOf(h.B, d.Name); !strings.HasPrefix(got, "running") {
				t.Errorf("destination: %q", got)
			}
			if got := stateOf(h.A, d.Name); got != "shut off (migrated)" {
				t.Errorf("source: %q", got)
			}
			guestProgresses(t, h.B, d.Name)
		})
	}
}

// TestMigratePausedRAMIdentical: a paused guest migrated with --live arrives paused, its
// RAM byte for byte the source's (HMP pmemsave on both hosts, into the shared directory);
// for tlcvm and QEMU 7.2.
func TestMigratePausedRAMIdentical(t *testing.T) {
	need(t)
	h := twoHosts(t)
	for _, e := range emulators(t) {
		t.Run(e.name, func(t *testing.T) {
			d := migDomain(t, h, e, workload, true)
			if _, err := h.A.Run("suspend", d.Name); err != nil {
				t.Fatal(err)
			}
			const size = 256 << 20
			save := func(v *lv.Virsh, side string) []byte {
				p := filepath.Join(h.Shared, d.Name+"-"+side+".mem")
				defer os.Remove(p)
				if out, err := v.Run("qemu-monitor-command", "--hmp", d.Name, fmt.Sprintf("pmemsave 0 %d \"%s\"", size, p)); err != nil || strings.TrimSpace(out) != "" {
					t.Fatalf("pmemsave: %q %v", out, err)
				}
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			src := save(h.A, "src")
			if _, err := h.A.Run("migrate", "--live", "--unsafe", d.Name, h.BURI); err != nil {
				t.Fatal(err)
			}
			if got := stateOf(h.B, d.Name); !strings.HasPrefix(got, "paused") {
				t.Fatalf("destination: %q", got)
			}
			dst := save(h.B, "dst")
			if len(src) != size || !bytes.Equal(src, dst) {
				t.Fatalf("RAM differs after migration (%d and %d bytes)", len(src), len(dst))
			}
		})
	}
}

// TestMigrateLinkDownPrecopy: the veth between the hosts goes down while precopy runs
// (--p2p: the source's libvirtd talks to the destination's over the link). libvirt finds
// the destination lost (its keepalive), cancels, and reports the error; the guest keeps
// running on the source, and the destination drops its half once the link is back.
func TestMigrateLinkDownPrecopy(t *testing.T) {
	need(t)
	h := twoHosts(t)
	d := migDomain(t, h, emulator{"tlcvm", bin}, hotWorkload, true)
	r := startMigrate(h, d.Name, "--live", "--p2p", "--unsafe", "--bandwidth", "1")
	awaitTransfer(t, h, d.Name)
	if err := h.Link(false); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Link(true) }()
	err := r.wait(t, 4*time.Minute)
	if err == nil {
		t.Fatal("virsh migrate succeeded over a link that is down")
	}
	t.Logf("virsh migrate: %v", errClass(err))
	if err := h.Link(true); err != nil {
		t.Fatal(err)
	}
	if got := stateOf(h.A, d.Name); !strings.HasPrefix(got, "running") {
		t.Errorf("source after the failed migration: %q", got)
	}
	guestProgresses(t, h.A, d.Name)
	if err := lv.Poll(2*time.Minute, 500*time.Millisecond, "the destination drops the domain", func() (bool, error) {
		return stateOf(h.B, d.Name) == "", nil
	}); err != nil {
		t.Errorf("%v: %q", err, stateOf(h.B, d.Name))
	}
}

// postcopyWorkload keeps a post-copy going for seconds at 1 MiB/s: 16 MiB written once (fill=)
// in the guest's first second, which the destination's guest never touches again, so that
// the source sends it in the background at max-postcopy-bandwidth, and a 4 MiB working set
// that the destination fetches on demand. With hotWorkload the destination's guest rewrote
// its whole working set within a second, fetching every page still missing: the post-copy
// could end before a poll of domstate saw it (a CI run found the source "shut off
// (migrated)" where the test waited for "paused (post-copy)").
const postcopyWorkload = "ws=4M,,rate=16M,,fill=16M"

// guestFilled waits until every vCPU of the guest has written its fill= pages: its pass
// counter (0x500+16*i) goes from 1 to 2 at the end of its first rewrite of the working set,
// which follows the fill. A post-copy switched to before then had the destination's guest
// write the rest of the fill, fetching each page on demand at the guest's rate, and ended
// within a second or two (CI found the source "shut off (migrated)" where the test waited
// for "paused (post-copy)").
func guestFilled(t *testing.T, v *lv.Virsh, dom string) {
	t.Helper()
	var last string
	if err := lv.Poll(time.Minute, 100*time.Millisecond, "the guest's fill", func() (bool, error) {
		out, err := v.Run("qemu-monitor-command", "--hmp", dom, "xp /8gx 0x500")
		if err != nil {
			return false, err
		}
		last = out
		var passes []uint64
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			_, vals, _ := strings.Cut(line, ": ")
			for _, f := range strings.Fields(vals) {
				n, err := strconv.ParseUint(strings.TrimPrefix(f, "0x"), 16, 64)
				if err != nil {
					return false, fmt.Errorf("xp: %q", out)
				}
				passes = append(passes, n)
			}
		}
		if len(passes) != 8 || passes[0] == 0 {
			return false, nil
		}
		for i := 0; i < len(passes); i += 2 { // pass counters; the written ones between them
			if passes[i] == 1 {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Fatalf("%v: %q", err, last)
	}
}

// TestMigrateLinkDownPostcopy: the link goes down in post-copy (the guest runs on the
// destination, pages still on the source). `virsh domjobabort --postcopy` pauses the
// migration (QEMU's migrate-pause); once the link is back both ends are in post-copy
// failure, and `virsh migrate --postcopy-resume` (migrate-recover on the destination,
// migrate resume=true on the source) completes it: the guest runs on the destination and
// goes on writing its pages.
func TestMigrateLinkDownPostcopy(t *testing.T) {
	need(t)
	h := twoHosts(t)
	d := migDomain(t, h, emulator{"tlcvm", bin}, postcopyWorkload, true)
	guestFilled(t, h.A, d.Name)
	args := []string{"--live", "--p2p", "--unsafe", "--postcopy", "--bandwidth", "1", "--postcopy-bandwidth", "1"}
	r := startMigrate(h, d.Name, args...)
	awaitTransfer(t, h, d.Name)
	if _, err := h.A.Run("migrate-postcopy", d.Name); err != nil {
		t.Fatal(err)
	}
	if err := lv.Poll(time.Minute, 100*time.Millisecond, "the source in post-copy", func() (bool, error) {
		return stateOf(h.A, d.Name) == "paused (post-copy)", nil
	}); err != nil {
		t.Fatalf("%v: %q", err, stateOf(h.A, d.Name))
	}
	if err := h.Link(false); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Link(true) }()
	if _, err := h.A.Run("domjobabort", "--postcopy", d.Name); err != nil {
		t.Fatal(err)
	}
	err := r.wait(t, 3*time.Minute)
	if err == nil {
		t.Fatal("virsh migrate succeeded over a link that went down in post-copy")
	}
	t.Logf("virsh migrate: %v", errClass(err))
	if err := h.Link(true); err != nil {
		t.Fatal(err)
	}
	failed := func(v *lv.Virsh) bool { return strings.HasSuffix(stateOf(v, d.Name), "(post-copy failed)") }
	if err := lv.Poll(2*time.Minute, 200*time.Millisecond, "both ends in post-copy failure", func() (bool, error) {
		return failed(h.A) && failed(h.B), nil
	}); err != nil {
		t.Fatalf("%v: source %q, destination %q", err, stateOf(h.A, d.Name), stateOf(h.B, d.Name))
	}
	if _, err := h.A.Run(append(append([]string{"migrate"}, args...), "--postcopy-resume", d.Name, h.BURI)...); err != nil {
		t.Fatalf("virsh migrate --postcopy-resume: %v", err)
	}
	if got := stateOf(h.B, d.Name); !strings.HasPrefix(got, "running") {
		t.Errorf("destination after recovery: %q", got)
	}
	guestProgresses(t, h.B, d.Name)
}

// TestMigrateVerbose: `virsh migrate --verbose` shows its progress (libvirt's
// "Migration: [ N %]" lines from domjobinfo) up to 100 %, for tlcvm (a guest whose
// migration lasts seconds) and QEMU 7.2.
func TestMigrateVerbose(t *testing.T) {
	need(t)
	h := twoHosts(t)
	for _, e := range emulators(t) {
		t.Run(e.name, func(t *testing.T) {
			d := migDomain(t, h, e, hotWorkload, true)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := h.A.Command(ctx, "migrate", "--live", "--unsafe", "--verbose", "--bandwidth", "4", d.Name, h.BURI)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("virsh migrate: %v: %s", err, stderr.String())
			}
			out := stderr.String()
			if !strings.Contains(out, "Migration: [") || !strings.Contains(out, "Migration: [100 %]") {
				t.Errorf("virsh migrate --verbose showed %q", out)
			}
		})
	}
}
