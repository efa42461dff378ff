package migration_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"tlcvm/migration"
)

// deadPid returns the pid of a process that has exited and been reaped.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if err := unix.Kill(pid, 0); err != unix.ESRCH {
		t.Skipf("pid %d was reused at once (%v)", pid, err)
	}
	return pid
}

// TestStaleAsidesSwept: a checkpoint to PATH removes the aside files of PATH that dead
// writers left (".NAME.tlcvm-PID-XXXXXX"), and only those: a live process's, this
// process's own, one whose writer still holds its lock (a pid from another namespace), and
// other names stay.
func TestStaleAsidesSwept(t *testing.T) {
	for _, mapped := range []bool{true, false} {
		t.Run(map[bool]string{true: "mapped", false: "streamed"}[mapped], func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "vm.chk")
			dead := strconv.Itoa(deadPid(t))
			live := strconv.Itoa(os.Getppid())
			self := strconv.Itoa(os.Getpid())
			names := map[string]bool{ // name -> swept
				".vm.chk.tlcvm-" + dead + "-1a2b3c":  true,
				".vm.chk.tlcvm-" + dead + "-ff":      true,
				".vm.chk.tlcvm-" + live + "-1a2b3c":  false,
				".vm.chk.tlcvm-" + self + "-1a2b3c":  false,
				".vm.chk.tlcvm-" + dead + "-locked":  false, // not hex: not an aside name
				".vm.chk.tlcvm-" + dead + "-abcdef0": true,
				".other.chk.tlcvm-" + dead + "-1a2b": false,
				".vm.chk.tlcvm-0-1a2b":               false,
				".vm.chk.tlcvm--1-1a2b":              false,
				"vm.chk.tlcvm-" + dead + "-1a2b":     false,
			}
			for n := range names {
				if err := os.WriteFile(filepath.Join(dir, n), []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			// A dead pid's aside whose lock is held: its writer lives in another pid namespace.
			held := ".vm.chk.tlcvm-" + dead + "-c0ffee"
			names[held] = false
			hf, err := os.Create(filepath.Join(dir, held))
			if err != nil {
				t.Fatal(err)
			}
			defer hf.Close()
			lk := unix.Flock_t{Type: unix.F_WRLCK, Start: 0x7fff_ffff_ffff_0001, Len: 1}
			if err := unix.FcntlFlock(hf.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
				t.Fatal(err)
			}

			m := newFakeMachine(1<<20, "running")
			e, _, _ := newEngine(t, m)
			if mapped {
				setMapped(t, e)
			}
			if err := e.Migrate("file:"+path, migration.MigrateOptions{}); err != nil {
				t.Fatal(err)
			}
			if info := e.Wait(); info.Status != migration.StatusCompleted {
				t.Fatalf("status %s (%v)", info.Status, deref(info.ErrorDesc))
			}
			for n, swept := range names {
				_, err := os.Stat(filepath.Join(dir, n))
				if gone := os.IsNotExist(err); gone != swept {
					t.Errorf("%s: removed %v, want %v", n, gone, swept)
				}
			}
		})
	}
}
