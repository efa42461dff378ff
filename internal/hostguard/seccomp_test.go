package hostguard_test

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"tlcvm/internal/hostguard"
	"tlcvm/tests/harness"
)

var update = flag.Bool("update", false, "rewrite testdata/qemu-7.2/*.bpf from the reference QEMU's filters")

// Clone flags as callers pass them.
const (
	goThread = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
		unix.CLONE_SYSVSEM | unix.CLONE_THREAD // runtime.cloneFlags
	pthread   = goThread | unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID // glibc
	glibcFork = unix.CLONE_CHILD_SETTID | unix.CLONE_CHILD_CLEARTID | uint64(unix.SIGCHLD)
	goExec    = unix.CLONE_VFORK | unix.CLONE_VM | uint64(unix.SIGCHLD)                    // syscall.forkAndExecInChild1
	goPidfd   = unix.CLONE_VFORK | unix.CLONE_VM | unix.CLONE_PIDFD | uint64(unix.SIGCHLD) // os/exec with pidfd
)

func call(nr int, args ...uint64) hostguard.Data {
	d := hostguard.Data{NR: int32(nr), Arch: unix.AUDIT_ARCH_X86_64}
	copy(d.Args[:], args)
	return d
}

var (
	libvirt = hostguard.Policy{Obsolete: true, Privileged: true, Spawn: true, ResourceControl: true}
	plain   = hostguard.Policy{Obsolete: true} // -sandbox on
)

// TestDecisions: what the filter does with the calls that matter, Go's own first.
func TestDecisions(t *testing.T) {
	kill := hostguard.RetKillProcess
	eperm := hostguard.RetErrno | uint32(unix.EPERM)
	for _, tt := range []struct {
		name string
		p    hostguard.Policy
		d    hostguard.Data
		want uint32
	}{
		{"Go runtime thread", libvirt, call(unix.SYS_CLONE, goThread), hostguard.RetAllow},
		{"pthread_create", libvirt, call(unix.SYS_CLONE, pthread), hostguard.RetAllow},
		{"os/exec clone", libvirt, call(unix.SYS_CLONE, goExec), kill},
		{"os/exec clone with pidfd", libvirt, call(unix.SYS_CLONE, goPidfd), kill},
		{"glibc fork", libvirt, call(unix.SYS_CLONE, glibcFork), kill},
		{"bare clone", libvirt, call(unix.SYS_CLONE, uint64(unix.SIGCHLD)), kill},
		{"thread in a new netns", libvirt, call(unix.SYS_CLONE, goThread|unix.CLONE_NEWNET), kill},
		{"clone without CLONE_THREAD", libvirt, call(unix.SYS_CLONE, goThread&^unix.CLONE_THREAD), kill},
		{"fork without spawn=deny", plain, call(unix.SYS_CLONE, glibcFork), hostguard.RetAllow},
		{"clone3", libvirt, call(unix.SYS_CLONE3), hostguard.RetErrno | uint32(unix.ENOSYS)},
		{"execve", libvirt, call(unix.SYS_EXECVE), kill},
		{"execveat (QEMU: kill the thread)", libvirt, call(unix.SYS_EXECVEAT), hostguard.RetKillThread},
		{"unshare (QEMU: kill the thread)", libvirt, call(unix.SYS_UNSHARE), hostguard.RetKillThread},
		{"vfork", libvirt, call(unix.SYS_VFORK), kill},
		{"setuid denied", libvirt, call(unix.SYS_SETUID, 65534), kill},
		{"setuid allowed", plain, call(unix.SYS_SETUID, 65534), hostguard.RetAllow},
		{"setgroups is not in the set", libvirt, call(unix.SYS_SETGROUPS), hostguard.RetAllow},
		{"reboot always", hostguard.Policy{}, call(unix.SYS_REBOOT), kill},
		{"mount always", hostguard.Policy{}, call(unix.SYS_MOUNT), kill},
		{"umount2 is not QEMU's umount", hostguard.Policy{}, call(unix.SYS_UMOUNT2), hostguard.RetAllow},
		{"sysfs obsolete", plain, call(unix.SYS_SYSFS), kill},
		{"sysfs with obsolete=allow", hostguard.Policy{}, call(unix.SYS_SYSFS), hostguard.RetAllow},
		{"sched_setaffinity", libvirt, call(unix.SYS_SCHED_SETAFFINITY), eperm},
		{"sched_getaffinity", libvirt, call(unix.SYS_SCHED_GETAFFINITY), hostguard.RetAllow},
		{"setpriority", libvirt, call(unix.SYS_SETPRIORITY), eperm},
		{"sched_setscheduler SCHED_IDLE", libvirt, call(unix.SYS_SCHED_SETSCHEDULER, 0, unix.SCHED_IDLE), hostguard.RetAllow},
		{"sched_setscheduler SCHED_FIFO", libvirt, call(unix.SYS_SCHED_SETSCHEDULER, 0, unix.SCHED_FIFO), eperm},
		{"sched_setscheduler IDLE in the high word", libvirt, call(unix.SYS_SCHED_SETSCHEDULER, 0, 1<<32|unix.SCHED_IDLE), eperm},
		{"sched_setaffinity without resourcecontrol=deny", plain, call(unix.SYS_SCHED_SETAFFINITY), hostguard.RetAllow},
		{"read", libvirt, call(unix.SYS_READ), hostguard.RetAllow},
		{"i386 system call", libvirt, hostguard.Data{NR: 1, Arch: unix.AUDIT_ARCH_I386}, hostguard.RetKillThread},
		{"x32 system call", libvirt, call(0x40000000 + unix.SYS_READ), hostguard.RetKillThread},
		{"nr -1 (ptrace skip)", libvirt, call(-1), hostguard.RetAllow},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prog, err := hostguard.Program(hostguard.Rules, tt.p.Sets(), true)
			if err != nil {
				t.Fatal(err)
			}
			got, err := hostguard.Evaluate(prog, tt.d)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("verdict %#x, want %#x", got, tt.want)
			}
		})
	}
}

// TestTrapWithoutKillProcess: on a kernel without SECCOMP_RET_KILL_PROCESS the fatal rules
// trap (SIGSYS), as QEMU's do.
func TestTrapWithoutKillProcess(t *testing.T) {
	prog, err := hostguard.Program(hostguard.Rules, libvirt.Sets(), false)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := hostguard.Evaluate(prog, call(unix.SYS_EXECVE)); got != hostguard.RetTrap {
		t.Errorf("execve: %#x, want SECCOMP_RET_TRAP", got)
	}
}

// TestEveryPolicy: every combination of sets assembles (no jump out of range) and only the
// sets asked for are denied.
func TestEveryPolicy(t *testing.T) {
	for s := hostguard.Set(0); s < hostguard.SetResourceControl<<1; s++ {
		prog, err := hostguard.Program(hostguard.Rules, s|hostguard.SetDefault, true)
		if err != nil {
			t.Fatalf("sets %05b: %v", s, err)
		}
		for _, r := range hostguard.Rules {
			nr, ok := number(r.Syscall)
			if !ok || len(r.Args) > 0 {
				continue
			}
			got, err := hostguard.Evaluate(prog, call(nr))
			if err != nil {
				t.Fatal(err)
			}
			if denied := r.Set&(s|hostguard.SetDefault) != 0; denied != (got != hostguard.RetAllow) {
				t.Errorf("sets %05b: %s gets %#x", s, r.Syscall, got)
			}
		}
	}
}

func number(name string) (int, bool) {
	nr, ok := hostguard.SyscallNumber(name)
	return int(nr), ok
}

// TestRulesKnown: every name of the denylist is a known call or one x86_64 never had.
func TestRulesKnown(t *testing.T) {
	for _, r := range hostguard.Rules {
		if _, ok := number(r.Syscall); !ok && !hostguard.Absent[r.Syscall] {
			t.Errorf("%s: no x86_64 number and not known to be absent", r.Syscall)
		}
	}
}

// qemuCases are the -sandbox arguments whose QEMU 7.2 filters testdata keeps, and the
// policy tlcvm builds for each.
var qemuCases = []struct {
	file, arg string
	p         hostguard.Policy
}{
	{"on", "on", plain},
	{"obsolete-allow", "on,obsolete=allow", hostguard.Policy{}},
	{"elevate-deny", "on,elevateprivileges=deny", hostguard.Policy{Obsolete: true, Privileged: true}},
	{"elevate-children", "on,elevateprivileges=children", hostguard.Policy{Obsolete: true, Privileged: true, Children: true}},
	{"spawn-deny", "on,spawn=deny", hostguard.Policy{Obsolete: true, Spawn: true}},
	{"resourcecontrol-deny", "on,resourcecontrol=deny", hostguard.Policy{Obsolete: true, ResourceControl: true}},
	{"libvirt", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny", libvirt},
}

// TestMatchesQEMU: for every system call number (and the arguments the rules look at) the
// filter tlcvm builds decides what QEMU 7.2's decides, but for Go's threads (see doc.go):
// on clone, tlcvm's verdict is QEMU's for the same flags plus the three that glibc's
// threads set and Go's do not. QEMU's filters are in testdata (-update reads them from the
// reference QEMU with PTRACE_SECCOMP_GET_FILTER).
func TestMatchesQEMU(t *testing.T) {
	if *update {
		updateQEMUFilters(t)
	}
	for _, c := range qemuCases {
		t.Run(c.file, func(t *testing.T) {
			want := readFilter(t, filepath.Join("testdata", "qemu-7.2", c.file+".bpf"))
			got, err := hostguard.Program(hostguard.Rules, c.p.Sets(), true)
			if err != nil {
				t.Fatal(err)
			}
			if err := sameDecisions(got, want); err != nil {
				t.Error(err)
			}
		})
	}
}

// glibcOnly are the clone flags every pthread_create passes and the Go runtime does not.
const glibcOnly = unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID

// sameDecisions compares ours with QEMU's over every call number 0..511 and the x32 and
// i386 ABIs with plain arguments, and, for the calls the denylist names, over argument
// words the rules test: each single bit of the low and high words, the clone flag sets of
// glibc and Go with each flag added and removed, and SCHED_IDLE in both words.
func sameDecisions(ours, qemu []unix.SockFilter) error {
	plainWords := []uint64{0, ^uint64(0)}
	words := append(plainWords, unix.SCHED_IDLE, 1<<32|unix.SCHED_IDLE, unix.SCHED_FIFO)
	for b := 0; b < 64; b++ {
		words = append(words, 1<<b)
	}
	for _, base := range []uint64{goThread, pthread, glibcFork, goExec, goPidfd} {
		words = append(words, base)
		for b := 0; b < 64; b++ {
			words = append(words, base|1<<b, base&^(1<<b))
		}
	}
	named := map[int32]bool{}
	for _, r := range hostguard.Rules {
		if nr, ok := number(r.Syscall); ok {
			named[int32(nr)] = true
		}
	}
	var nrs []int32
	for nr := int32(0); nr < 512; nr++ {
		nrs = append(nrs, nr)
	}
	nrs = append(nrs, -1, 0x40000000, 0x40000000+unix.SYS_EXECVE, 0x7fffffff)
	for _, arch := range []uint32{unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_I386} {
		for _, nr := range nrs {
			ws := plainWords
			if named[nr] && arch == unix.AUDIT_ARCH_X86_64 {
				ws = words
			}
			for _, w := range ws {
				for _, arg := range []int{0, 1} {
					d := hostguard.Data{NR: nr, Arch: arch}
					d.Args[arg] = w
					got, err := hostguard.Evaluate(ours, d)
					if err != nil {
						return err
					}
					if arch == unix.AUDIT_ARCH_X86_64 && nr == unix.SYS_CLONE {
						d.Args[0] |= glibcOnly
					}
					want, err := hostguard.Evaluate(qemu, d)
					if err != nil {
						return err
					}
					if got != want {
						return fmt.Errorf("arch %#x nr %d args %#x: tlcvm %#x, QEMU %#x", arch, nr, d.Args, got, want)
					}
				}
			}
		}
	}
	return nil
}

func readFilter(t *testing.T, path string) []unix.SockFilter {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with -update)", err)
	}
	var prog []unix.SockFilter
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var f unix.SockFilter
		if _, err := fmt.Sscanf(line, "%x %d %d %x", &f.Code, &f.Jt, &f.Jf, &f.K); err != nil {
			t.Fatalf("%s: %q: %v", path, line, err)
		}
		prog = append(prog, f)
	}
	return prog
}

// formatFilter renders a program as testdata keeps it: one instruction a line.
func formatFilter(comment string, prog []unix.SockFilter) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n# code jt jf k\n", comment)
	for _, f := range prog {
		fmt.Fprintf(&b, "%04x %d %d %08x\n", f.Code, f.Jt, f.Jf, f.K)
	}
	return b.Bytes()
}

// updateQEMUFilters starts the reference QEMU with each case's -sandbox and writes the filter
// it installed.
func updateQEMUFilters(t *testing.T) {
	bin := harness.Reference(t)
	dir := filepath.Join("testdata", "qemu-7.2")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range qemuCases {
		sock := filepath.Join(t.TempDir(), "qmp.sock")
		p := harness.Start(t, harness.Config{Bin: bin, Args: []string{"-machine", "none", "-nodefaults", "-display", "none",
			"-S", "-sandbox", c.arg, "-qmp", "unix:" + sock + ",server=on,wait=off"}})
		q, err := harness.DialQMP(sock, p, harness.DefaultTimeout)
		if err != nil {
			t.Fatal(err)
		}
		filters, err := harness.SeccompFilters(p.Pid())
		q.Close()
		p.Kill()
		if err != nil {
			t.Fatal(err)
		}
		if len(filters) != 1 {
			t.Fatalf("-sandbox %s: QEMU has %d filters", c.arg, len(filters))
		}
		out := formatFilter(fmt.Sprintf("%s -sandbox %s (PTRACE_SECCOMP_GET_FILTER)", bin, c.arg), filters[0])
		if err := os.WriteFile(filepath.Join(dir, c.file+".bpf"), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
