//go:build !amd64

package hostguard

// On other architectures tlcvm has no system call table: every name is unknown and Program
// fails, so -sandbox on fails to start rather than run unfiltered.
const (
	auditArch = 0
	x32Bit    = 0
)

var syscalls = map[string]uint32{}

var absent = map[string]bool{}
