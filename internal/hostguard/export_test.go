package hostguard

// SyscallNumber and Absent expose the system call table to the external tests.
var (
	SyscallNumber = syscallNumber
	Absent        = absent
)
