package hostguard

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"tlcvm/compat/qerror"
)

// Set is one of QEMU's groups of denied system calls (include/sysemu/seccomp.h).
type Set uint8

// The sets. SetDefault is always denied once -sandbox is on; SetObsolete unless
// obsolete=allow; the others when their option says deny (or children).
const (
	SetDefault Set = 1 << iota
	SetObsolete
	SetPrivileged
	SetSpawn
	SetResourceControl
)

// Policy is one -sandbox option that is on: which sets it denies.
type Policy struct {
	Obsolete        bool // obsolete=deny (QEMU's default) — not obsolete=allow
	Privileged      bool // elevateprivileges=deny or =children
	Children        bool // elevateprivileges=children: PR_SET_NO_NEW_PRIVS before anything else
	Spawn           bool // spawn=deny
	ResourceControl bool // resourcecontrol=deny
}

// Sets returns the sets p denies.
func (p Policy) Sets() Set {
	s := SetDefault
	if p.Obsolete {
		s |= SetObsolete
	}
	if p.Privileged {
		s |= SetPrivileged
	}
	if p.Spawn {
		s |= SetSpawn
	}
	if p.ResourceControl {
		s |= SetResourceControl
	}
	return s
}

// Verdicts a filter returns (SECCOMP_RET_*, include/uapi/linux/seccomp.h).
const (
	RetKillProcess uint32 = unix.SECCOMP_RET_KILL_PROCESS
	RetKillThread  uint32 = unix.SECCOMP_RET_KILL_THREAD
	RetTrap        uint32 = unix.SECCOMP_RET_TRAP
	RetErrno       uint32 = unix.SECCOMP_RET_ERRNO
	RetAllow       uint32 = unix.SECCOMP_RET_ALLOW
)

// Op compares a system call argument (libseccomp's scmp_compare, the two QEMU uses).
type Op uint8

// The comparisons.
const (
	// MaskedEq: (arg & Mask) == Datum, on all 64 bits.
	MaskedEq Op = iota + 1
	// Ne: arg != Datum, on all 64 bits.
	Ne
)

// Cmp is one argument comparison of a rule.
type Cmp struct {
	Arg   int // 0..5
	Op    Op
	Mask  uint64 // MaskedEq only
	Datum uint64
}

// Rule denies one system call, when every comparison holds, with an action.
type Rule struct {
	Syscall string // QEMU's SCMP_SYS name
	Set     Set
	Args    []Cmp
	// Action is what the filter returns. RetTrap is QEMU's SCMP_ACT_TRAP, which it turns
	// into SECCOMP_RET_KILL_PROCESS where the kernel has it (qemu_seccomp_update_action).
	Action uint32
}

func errnoAction(e unix.Errno) uint32 { return RetErrno | uint32(e) }

// clone's flags argument (man 2 clone, "NOTES": the first on x86_64).
const cloneFlagsArg = 0

// cSignal is CSIGNAL, the exit-signal byte of clone's flags.
const cSignal = 0xff

func requireCloneFlag(flag uint64) Rule {
	return Rule{Syscall: "clone", Set: SetSpawn, Args: []Cmp{{Arg: cloneFlagsArg, Op: MaskedEq, Mask: flag, Datum: 0}}, Action: RetTrap}
}

func forbidCloneFlag(flag uint64) Rule {
	return Rule{Syscall: "clone", Set: SetSpawn, Args: []Cmp{{Arg: cloneFlagsArg, Op: MaskedEq, Mask: flag, Datum: flag}}, Action: RetTrap}
}

// Rules is QEMU 7.2's denylist (softmmu/qemu-seccomp.c), in its order, with one change for
// Go (see doc.go, "Threads"): QEMU also kills a clone without CLONE_SETTLS,
// CLONE_PARENT_SETTID or CLONE_CHILD_CLEARTID, which glibc's pthread_create always sets
// and the Go runtime's own thread creation (runtime.newosproc) does not; those three
// rules are left out. QEMU's rules without an action (execveat, setns, unshare) carry
// libseccomp's action 0, SCMP_ACT_KILL_THREAD, as QEMU 7.2's filter does.
var Rules = []Rule{
	// default set
	{Syscall: "reboot", Set: SetDefault, Action: RetTrap},
	{Syscall: "swapon", Set: SetDefault, Action: RetTrap},
	{Syscall: "swapoff", Set: SetDefault, Action: RetTrap},
	{Syscall: "syslog", Set: SetDefault, Action: RetTrap},
	{Syscall: "mount", Set: SetDefault, Action: RetTrap},
	{Syscall: "umount", Set: SetDefault, Action: RetTrap},
	{Syscall: "kexec_load", Set: SetDefault, Action: RetTrap},
	{Syscall: "afs_syscall", Set: SetDefault, Action: RetTrap},
	{Syscall: "break", Set: SetDefault, Action: RetTrap},
	{Syscall: "ftime", Set: SetDefault, Action: RetTrap},
	{Syscall: "getpmsg", Set: SetDefault, Action: RetTrap},
	{Syscall: "gtty", Set: SetDefault, Action: RetTrap},
	{Syscall: "lock", Set: SetDefault, Action: RetTrap},
	{Syscall: "mpx", Set: SetDefault, Action: RetTrap},
	{Syscall: "prof", Set: SetDefault, Action: RetTrap},
	{Syscall: "profil", Set: SetDefault, Action: RetTrap},
	{Syscall: "putpmsg", Set: SetDefault, Action: RetTrap},
	{Syscall: "security", Set: SetDefault, Action: RetTrap},
	{Syscall: "stty", Set: SetDefault, Action: RetTrap},
	{Syscall: "tuxcall", Set: SetDefault, Action: RetTrap},
	{Syscall: "ulimit", Set: SetDefault, Action: RetTrap},
	{Syscall: "vserver", Set: SetDefault, Action: RetTrap},
	// obsolete
	{Syscall: "readdir", Set: SetObsolete, Action: RetTrap},
	{Syscall: "_sysctl", Set: SetObsolete, Action: RetTrap},
	{Syscall: "bdflush", Set: SetObsolete, Action: RetTrap},
	{Syscall: "create_module", Set: SetObsolete, Action: RetTrap},
	{Syscall: "get_kernel_syms", Set: SetObsolete, Action: RetTrap},
	{Syscall: "query_module", Set: SetObsolete, Action: RetTrap},
	{Syscall: "sgetmask", Set: SetObsolete, Action: RetTrap},
	{Syscall: "ssetmask", Set: SetObsolete, Action: RetTrap},
	{Syscall: "sysfs", Set: SetObsolete, Action: RetTrap},
	{Syscall: "uselib", Set: SetObsolete, Action: RetTrap},
	{Syscall: "ustat", Set: SetObsolete, Action: RetTrap},
	// privileged
	{Syscall: "setuid", Set: SetPrivileged, Action: RetTrap},
	{Syscall: "setgid", Set: SetPrivileged, Action: RetTrap},
	{Syscall: "setpgid", Set: SetPrivileged, Action: RetTrap},
	{Syscall: "setsid", Set: SetPrivileged, Action: RetTrap},
	{Syscall: "setreuid", Set: SetPrivileged, Action: RetTrap},
	{Syscall: "setregid", Set: SetPrivileged, Action: RetTrap},
	{Syscall: "setresuid", Set: SetPrivileged, Action: RetTrap},
	{Syscall: "setresgid", Set: SetPrivileged, Action: RetTrap},
	{Syscall: "setfsuid", Set: SetPrivileged, Action: RetTrap},
	{Syscall: "setfsgid", Set: SetPrivileged, Action: RetTrap},
	// spawn
	{Syscall: "fork", Set: SetSpawn, Action: RetTrap},
	{Syscall: "vfork", Set: SetSpawn, Action: RetTrap},
	{Syscall: "execve", Set: SetSpawn, Action: RetTrap},
	// A clone with no flag besides the exit signal is a fork.
	{Syscall: "clone", Set: SetSpawn, Args: []Cmp{{Arg: cloneFlagsArg, Op: MaskedEq, Mask: ^uint64(cSignal), Datum: 0}}, Action: RetTrap},
	// A thread shares all of these (QEMU requires three more; see Rules).
	requireCloneFlag(unix.CLONE_VM),
	requireCloneFlag(unix.CLONE_FS),
	requireCloneFlag(unix.CLONE_FILES),
	requireCloneFlag(unix.CLONE_SIGHAND),
	requireCloneFlag(unix.CLONE_THREAD),
	requireCloneFlag(unix.CLONE_SYSVSEM),
	// and asks for none of these, which make a process or something stranger.
	forbidCloneFlag(unix.CLONE_PIDFD),
	forbidCloneFlag(unix.CLONE_PTRACE),
	forbidCloneFlag(unix.CLONE_VFORK),
	forbidCloneFlag(unix.CLONE_PARENT),
	forbidCloneFlag(unix.CLONE_NEWNS),
	forbidCloneFlag(unix.CLONE_UNTRACED),
	forbidCloneFlag(unix.CLONE_NEWCGROUP),
	forbidCloneFlag(unix.CLONE_NEWUTS),
	forbidCloneFlag(unix.CLONE_NEWIPC),
	forbidCloneFlag(unix.CLONE_NEWUSER),
	forbidCloneFlag(unix.CLONE_NEWPID),
	forbidCloneFlag(unix.CLONE_NEWNET),
	forbidCloneFlag(unix.CLONE_IO),
	// clone3 passes its flags in memory, out of a filter's reach: ENOSYS makes glibc
	// fall back to clone, where the rules above apply.
	{Syscall: "clone3", Set: SetSpawn, Action: errnoAction(unix.ENOSYS)},
	{Syscall: "execveat", Set: SetSpawn, Action: RetKillThread},
	{Syscall: "setns", Set: SetSpawn, Action: RetKillThread},
	{Syscall: "unshare", Set: SetSpawn, Action: RetKillThread},
	// resource control: refused, not fatal
	{Syscall: "setpriority", Set: SetResourceControl, Action: errnoAction(unix.EPERM)},
	{Syscall: "sched_setparam", Set: SetResourceControl, Action: errnoAction(unix.EPERM)},
	{Syscall: "sched_setscheduler", Set: SetResourceControl,
		Args: []Cmp{{Arg: 1, Op: Ne, Datum: unix.SCHED_IDLE}}, Action: errnoAction(unix.EPERM)},
	{Syscall: "sched_setaffinity", Set: SetResourceControl, Action: errnoAction(unix.EPERM)},
}

// Program assembles the filter for the sets in s from rules. Its shape (see doc.go):
//
//	arch != AUDIT_ARCH_X86_64                 → KILL_THREAD
//	nr >= X32_SYSCALL_BIT && nr != -1         → KILL_THREAD
//	nr == N₁ → [every comparison of a rule holds → its action]… → ALLOW
//	…
//	                                          → ALLOW
//
// which is what libseccomp builds for QEMU (its bad-architecture action is
// SCMP_ACT_KILL_THREAD). killProcess turns RetTrap into RetKillProcess, as QEMU does when the
// kernel offers SECCOMP_RET_KILL_PROCESS. Names with no number on this architecture are
// skipped, as libseccomp skips them.
func Program(rules []Rule, s Set, killProcess bool) ([]unix.SockFilter, error) {
	if auditArch == 0 {
		return nil, fmt.Errorf("hostguard: no system call table for %s", runtime.GOARCH)
	}
	type call struct {
		nr    uint32
		rules []Rule
	}
	var calls []*call
	byNR := map[uint32]*call{}
	for _, r := range rules {
		if r.Set&s == 0 {
			continue
		}
		nr, ok := syscallNumber(r.Syscall)
		if !ok {
			continue
		}
		if r.Action == RetTrap && killProcess {
			r.Action = RetKillProcess
		}
		c := byNR[nr]
		if c == nil {
			c = &call{nr: nr}
			byNR[nr] = c
			calls = append(calls, c)
		}
		if len(c.rules) > 0 && c.rules[0].Action != r.Action {
			return nil, fmt.Errorf("hostguard: %s has rules with different actions", r.Syscall)
		}
		c.rules = append(c.rules, r)
	}

	var a asm
	archOK, nrOK := a.label(), a.label()
	a.ld(offArch)
	a.jeq(auditArch, archOK, next)
	a.ret(RetKillThread)
	a.bind(archOK)
	a.ld(offNR)
	if x32Bit != 0 {
		a.jge(x32Bit, next, nrOK)
		a.jeq(0xffffffff, nrOK, next)
		a.ret(RetKillThread)
	}
	a.bind(nrOK)
	for _, c := range calls {
		other := a.label()
		a.jeq(c.nr, next, other)
		for _, r := range c.rules {
			miss := a.label()
			for _, cmp := range r.Args {
				if err := compare(&a, cmp, miss); err != nil {
					return nil, fmt.Errorf("hostguard: %s: %w", r.Syscall, err)
				}
			}
			a.ret(r.Action)
			a.bind(miss)
			if len(r.Args) == 0 {
				break // unconditional: the rules after it never apply
			}
		}
		a.ret(RetAllow)
		a.bind(other)
	}
	a.ret(RetAllow)
	return a.finish()
}

// compare emits one comparison: on to the next instruction when it holds, to miss when not.
func compare(a *asm, c Cmp, miss int) error {
	if c.Arg < 0 || c.Arg > 5 {
		return fmt.Errorf("argument %d", c.Arg)
	}
	switch c.Op {
	case MaskedEq:
		for _, w := range []struct {
			off         uint32
			mask, datum uint32
		}{
			{argHi(c.Arg), uint32(c.Mask >> 32), uint32(c.Datum >> 32)},
			{argLo(c.Arg), uint32(c.Mask), uint32(c.Datum)},
		} {
			switch {
			case w.datum&^w.mask != 0: // a bit the mask clears can never equal the datum's
				a.ja(miss)
				return nil
			case w.mask == 0: // 0 == 0
				continue
			}
			a.ld(w.off)
			if w.mask != 0xffffffff {
				a.and(w.mask)
			}
			a.jeq(w.datum, next, miss)
		}
	case Ne:
		holds := a.label()
		a.ld(argHi(c.Arg))
		a.jeq(uint32(c.Datum>>32), next, holds)
		a.ld(argLo(c.Arg))
		a.jeq(uint32(c.Datum), miss, next)
		a.bind(holds)
	default:
		return fmt.Errorf("comparison %d", c.Op)
	}
	return nil
}

// killProcessAvailable asks the kernel whether it knows SECCOMP_RET_KILL_PROCESS (Linux
// 4.14), as QEMU's qemu_seccomp_update_action does.
func killProcessAvailable() bool {
	action := RetKillProcess
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&action)))
	return e == 0
}

// Filter is the program one Policy installs on this kernel.
func (p Policy) Filter() ([]unix.SockFilter, error) {
	return Program(Rules, p.Sets(), killProcessAvailable())
}

// Error is a failure with QEMU's text, printed after "qemu-system-x86_64: ".
type Error struct {
	Msg string
	Err error // the errno, when there is one
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

func fail(cause error, format string, a ...any) error {
	return &Error{Msg: fmt.Sprintf(format, a...), Err: cause}
}

// Install puts p's filter on every thread of the process (SECCOMP_FILTER_FLAG_TSYNC), with
// PR_SET_NO_NEW_PRIVS set first as libseccomp does by default. It cannot be undone: each
// call adds a filter (QEMU installs one per -sandbox option). Errors carry QEMU's texts.
func Install(p Policy) error {
	prog, err := p.Filter()
	if err != nil {
		return fail(err, "failed to add seccomp denylist rules: %v", err)
	}
	// prctl and seccomp act on the calling thread (TSYNC then copies its filter, and its
	// no_new_privs, to the others): both on one thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if p.Children {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fail(err, "failed to set no_new_privs aborting")
		}
	}
	const loadFailed = "failed to load seccomp syscall filter in kernel: %s"
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fail(err, loadFailed, qerror.Strerror(err))
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	switch {
	case e != 0:
		return fail(e, loadFailed, qerror.Strerror(e))
	case r != 0: // the id of a thread that could not be synchronised (libseccomp: -ESRCH)
		return fail(unix.ESRCH, loadFailed, qerror.Strerror(unix.ESRCH))
	}
	return nil
}

// syscallNumber resolves a denylist name. ok is false for names this architecture does not
// have (skipped); a name that is neither known nor absent is a mistake in Rules and
// panics in the tests (TestRulesKnown).
func syscallNumber(name string) (nr uint32, ok bool) {
	nr, ok = syscalls[name]
	return nr, ok
}
