// Package hostguard protects the host from the VM process as QEMU 7.2 does with -sandbox
// (seccomp filters), -chroot and -runas. It is a leaf: it knows the three options' effects,
// not the command line (compat parses them) nor the machine.
//
// # Order of operations
//
// The composition root calls it at QEMU's two points (softmmu/vl.c, os-posix.c):
//
//	parse and check the command line
//	Install(policy) for each -sandbox that is on     qemu_process_early_options → parse_sandbox
//	-daemonize                                       qemu_maybe_daemonize
//	open everything: chardevs, monitors, disks, the machine, -incoming, pidfile
//	Setup.Apply: chroot, chdir /, setgid,            os_setup_post → change_root,
//	             initgroups|setgroups, setuid          change_process_uid
//	run the guest
//
// So, as in QEMU, the filters are in place before anything is opened, and whatever the
// process does afterwards is under them: -daemonize's re-execution under spawn=deny and
// -runas's setgid under elevateprivileges=deny end the process with SIGSYS, exactly as
// QEMU 7.2's fork and setgid do (both checked against the binary). libvirt passes neither
// -daemonize nor -runas (it starts QEMU as its own user), only
// `-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny`.
//
// # The filter
//
// Rules is QEMU 7.2's denylist (softmmu/qemu-seccomp.c) in five sets: the default set
// (always), obsolete (unless obsolete=allow), privileged (elevateprivileges=deny|children),
// spawn (spawn=deny) and resource control (resourcecontrol=deny). Everything not denied is
// allowed. Program assembles it the way libseccomp does for QEMU:
//
//	ld  arch;  arch != AUDIT_ARCH_X86_64                  → KILL_THREAD
//	ld  nr;    nr >= 0x40000000 (x32) && nr != -1          → KILL_THREAD
//	nr == reboot, mount, … (default, obsolete)             → KILL_PROCESS
//	nr == setuid, setgid, setsid, … (privileged)           → KILL_PROCESS
//	nr == fork, vfork, execve (spawn)                      → KILL_PROCESS
//	nr == clone: flags&~CSIGNAL == 0, or a thread flag
//	     missing, or a process flag present                → KILL_PROCESS, else ALLOW
//	nr == clone3                                           → ERRNO(ENOSYS)
//	nr == execveat, setns, unshare                         → KILL_THREAD (QEMU's rules name
//	                                                          no action: libseccomp's 0)
//	nr == setpriority, sched_setparam, sched_setaffinity,
//	      sched_setscheduler unless policy == SCHED_IDLE   → ERRNO(EPERM)
//	                                                       → ALLOW
//
// QEMU asks for SCMP_ACT_TRAP and turns it into SECCOMP_RET_KILL_PROCESS where the kernel
// has it (Linux 4.14); so does Program. Argument comparisons are on all 64 bits, as
// libseccomp's. PR_SET_NO_NEW_PRIVS is set first (libseccomp's default), and
// SECCOMP_FILTER_FLAG_TSYNC puts the filter on every thread at once; threads created
// later inherit it. /proc/PID/status then shows "NoNewPrivs: 1", "Seccomp: 2" and one
// "Seccomp_filters" per -sandbox on, on every task, as QEMU's does. TestMatchesQEMU
// compares the filter's verdicts with QEMU 7.2's own filters, read from the running binary
// (testdata/qemu-7.2).
//
// # Threads
//
// A Go process must keep creating threads under the filter. QEMU allows a clone only with
// all of CLONE_VM, FS, FILES, SIGHAND, THREAD, SYSVSEM, SETTLS, PARENT_SETTID and
// CHILD_CLEARTID (what glibc's pthread_create passes). The Go runtime's own thread creation
// (runtime.newosproc, used when cgo is not) passes the first six only, so Rules leaves
// out the last three requirements: a clone is still refused unless it shares memory,
// files, handlers and thread group, which is what makes it a thread rather than a process.
// os/exec's clone(CLONE_VFORK|CLONE_VM[|CLONE_PIDFD]|SIGCHLD) has no CLONE_THREAD and is
// killed, so `migrate "exec:…"` under spawn=deny ends the process with SIGSYS, as it ends
// QEMU. The runtime never calls the other denied calls; sched_setaffinity (the checkpoint
// thread's pinning) fails with EPERM under resourcecontrol=deny, and the checkpoint then
// runs unpinned.
//
// # -runas and -chroot
//
// Setup.Apply follows os_setup_post: chroot(DIR) and chdir("/"), then setgid, initgroups
// (by user name: the group database as seen inside the new root, or the primary group
// alone) or setgroups(1, [gid]) (UID:GID), setuid, and a check that setuid(0) now fails.
// Go's syscall.Set* change every thread of the process. Paths the monitor names later
// (migrate "file:…", blockdev-add) resolve inside the new root, with the new identity;
// what was opened before (the -incoming source, disks, sockets, the -D log) stays open.
package hostguard
