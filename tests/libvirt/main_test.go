package libvirt_test

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	lv "tlcvm/internal/libvirttest"
	"tlcvm/tests/harness"
)

var (
	bin        string // the binary under test
	skipReason string // set when the suite cannot run
	setup      string // scripts/libvirt-setup.sh
	stateFile  string // what setup started, for stop
	virsh      = lv.NewVirsh()
	cleanups   []func() // run after the tests, last first (the two-host bed)
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	tmp, err := os.MkdirTemp("", "tlcvm-libvirt-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(tmp)
	setup, _ = filepath.Abs("../../scripts/libvirt-setup.sh")
	stateFile = filepath.Join(tmp, "setup.state")
	switch {
	case testing.Short():
		skipReason = "libvirt end-to-end suite skipped under -short"
	case os.Getuid() != 0:
		skipReason = "libvirt end-to-end suite needs root (libvirtd qemu:///system)"
	}
	if skipReason == "" {
		// One run at a time, held until what this run started is stopped: the
		// suite restarts libvirtd, and a second run must not stop daemons the
		// first relies on.
		unlock, err := lv.Lock()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer unlock()
		if _, err := exec.LookPath("virsh"); err != nil || !daemonUp() {
			out, err := setupCmd("start").CombinedOutput()
			if err != nil {
				skipReason = fmt.Sprintf("cannot start libvirt with %s: %v\n%s", setup, err, out)
			}
			defer func() {
				if out, err := setupCmd("stop").CombinedOutput(); err != nil {
					fmt.Fprintf(os.Stderr, "libvirt-setup stop: %v\n%s", err, out)
				}
			}()
		}
	}
	if skipReason == "" {
		var reason string
		bin, reason, err = harness.FindCandidate("../..", tmp)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if bin == "" {
			skipReason = reason
		}
		if strings.HasPrefix(bin, tmp) {
			// libvirt caches capabilities per emulator path; this path never comes back.
			sum := sha256.Sum256([]byte(bin))
			defer os.Remove(filepath.Join("/var/cache/libvirt/qemu/capabilities", hex.EncodeToString(sum[:])+".xml"))
		}
	}
	code := m.Run()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	return code
}

func setupCmd(arg string) *exec.Cmd {
	c := exec.Command(setup, arg)
	c.Env = append(os.Environ(), "STATE="+stateFile)
	return c
}

func daemonUp() bool {
	_, err := virsh.Run("version")
	return err == nil
}

// need skips t when the suite cannot run.
func need(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// newDomain creates a disk in a temp dir, defines the domain and removes it
// (destroy + undefine) at the end of the test.
func newDomain(t *testing.T, kind lv.Kind, workload string) (lv.Domain, string) {
	t.Helper()
	dir := t.TempDir()
	d := lv.Domain{Kind: kind, Name: lv.NewName("tlcvm-test"), UUID: lv.NewUUID(), Emulator: bin,
		Disk: filepath.Join(dir, "disk.qcow2"), Workload: workload}
	if err := lv.CreateDisk(d.Disk, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := virsh.Remove(d.Name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return d, dir
}

// startDomain is newDomain, then define and start: a running domain.
func startDomain(t *testing.T, kind lv.Kind, workload string) (lv.Domain, string) {
	t.Helper()
	d, dir := newDomain(t, kind, workload)
	if err := virsh.Define(d, dir); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "start", d.Name)
	wantState(t, d.Name, "running", "")
	return d, dir
}
