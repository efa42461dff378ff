package hostguard

import "golang.org/x/sys/unix"

// auditArch is the architecture a filter accepts (seccomp_data.arch); x32Bit marks the x32
// ABI's system call numbers, which libseccomp treats as another architecture.
const (
	auditArch = unix.AUDIT_ARCH_X86_64
	x32Bit    = 0x40000000
)

// syscalls maps QEMU's SCMP_SYS names to x86_64 numbers. The denylist also names calls
// x86_64 never had (umount, break, ftime, gtty, lock, mpx, prof, profil, stty, ulimit,
// readdir, bdflush, sgetmask, ssetmask): libseccomp gives them negative pseudo-numbers and
// leaves them out of the filter, and so does Program.
var syscalls = map[string]uint32{
	"reboot":             unix.SYS_REBOOT,
	"swapon":             unix.SYS_SWAPON,
	"swapoff":            unix.SYS_SWAPOFF,
	"syslog":             unix.SYS_SYSLOG,
	"mount":              unix.SYS_MOUNT,
	"kexec_load":         unix.SYS_KEXEC_LOAD,
	"afs_syscall":        unix.SYS_AFS_SYSCALL,
	"getpmsg":            unix.SYS_GETPMSG,
	"putpmsg":            unix.SYS_PUTPMSG,
	"security":           unix.SYS_SECURITY,
	"tuxcall":            unix.SYS_TUXCALL,
	"vserver":            unix.SYS_VSERVER,
	"_sysctl":            unix.SYS__SYSCTL,
	"create_module":      unix.SYS_CREATE_MODULE,
	"get_kernel_syms":    unix.SYS_GET_KERNEL_SYMS,
	"query_module":       unix.SYS_QUERY_MODULE,
	"sysfs":              unix.SYS_SYSFS,
	"uselib":             unix.SYS_USELIB,
	"ustat":              unix.SYS_USTAT,
	"setuid":             unix.SYS_SETUID,
	"setgid":             unix.SYS_SETGID,
	"setpgid":            unix.SYS_SETPGID,
	"setsid":             unix.SYS_SETSID,
	"setreuid":           unix.SYS_SETREUID,
	"setregid":           unix.SYS_SETREGID,
	"setresuid":          unix.SYS_SETRESUID,
	"setresgid":          unix.SYS_SETRESGID,
	"setfsuid":           unix.SYS_SETFSUID,
	"setfsgid":           unix.SYS_SETFSGID,
	"fork":               unix.SYS_FORK,
	"vfork":              unix.SYS_VFORK,
	"execve":             unix.SYS_EXECVE,
	"clone":              unix.SYS_CLONE,
	"clone3":             unix.SYS_CLONE3,
	"execveat":           unix.SYS_EXECVEAT,
	"setns":              unix.SYS_SETNS,
	"unshare":            unix.SYS_UNSHARE,
	"setpriority":        unix.SYS_SETPRIORITY,
	"sched_setparam":     unix.SYS_SCHED_SETPARAM,
	"sched_setscheduler": unix.SYS_SCHED_SETSCHEDULER,
	"sched_setaffinity":  unix.SYS_SCHED_SETAFFINITY,
}

// absent are the denylist's names with no x86_64 number.
var absent = map[string]bool{
	"umount": true, "break": true, "ftime": true, "gtty": true, "lock": true, "mpx": true,
	"prof": true, "profil": true, "stty": true, "ulimit": true, "readdir": true,
	"bdflush": true, "sgetmask": true, "ssetmask": true,
}
