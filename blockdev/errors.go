package blockdev

import (
	"errors"
	"fmt"

	"tlcvm/compat/qerror"
)

// Sentinel errors. Every error this package returns is a *qerror.Error wrapping one of them
// (errors.Is) and carries QEMU 7.2's text as its Error(); qmp/cmds maps them to QMP classes.
var (
	// ErrNotFound: no node, backend, device or job by that name.
	ErrNotFound = errors.New("blockdev: not found")
	// ErrDeviceNotFound: a device id that does not exist (QMP class DeviceNotFound).
	ErrDeviceNotFound = errors.New("blockdev: device not found")
	// ErrExists: a node name, drive id or job id already in use.
	ErrExists = errors.New("blockdev: already exists")
	// ErrDriveSlot: a -drive's interface, bus and unit are another drive's (an ErrExists).
	ErrDriveSlot = fmt.Errorf("%w: drive slot taken", ErrExists)
	// ErrInUse: the node or backend has users that forbid the operation.
	ErrInUse = errors.New("blockdev: in use")
	// ErrOpen: the image file could not be opened (missing, no permission, ...).
	ErrOpen = errors.New("blockdev: cannot open image")
	// ErrLocked: another process (or node) holds a conflicting lock on the image.
	ErrLocked = errors.New("blockdev: image locked")
	// ErrFormat: the image is not in the expected format or its header is damaged.
	ErrFormat = errors.New("blockdev: bad image format")
	// ErrUnsupported: a valid image or option QEMU or tlcvm does not support.
	ErrUnsupported = errors.New("blockdev: unsupported")
	// ErrEncrypted: an encrypted image, which tlcvm (like QEMU for AES) refuses.
	ErrEncrypted = errors.New("blockdev: encrypted image")
	// ErrInvalid: an invalid argument (bad size, bad name, conflicting options).
	ErrInvalid = errors.New("blockdev: invalid argument")
	// ErrReadOnly: a write was asked of a read-only node.
	ErrReadOnly = errors.New("blockdev: read-only")
	// ErrPermission: a permission conflict inside the graph.
	ErrPermission = errors.New("blockdev: permission conflict")
	// ErrJob: a job verb not allowed in the job's state.
	ErrJob = errors.New("blockdev: job state")
	// ErrJobNotActive: no block job by that id (QMP class DeviceNotActive).
	ErrJobNotActive = errors.New("blockdev: block job not found")
	// ErrIO: an I/O error on an image file.
	ErrIO = errors.New("blockdev: I/O error")
)

// errf is an error of this package: QEMU's text, the kind it wraps (error_setg).
func errf(kind error, format string, a ...any) *qerror.Error {
	return qerror.Errorf(kind, format, a...)
}

// prefix returns err with "p: " before its message (QEMU's error_prepend), keeping the kind
// and hint.
func prefix(err error, p string) error { return qerror.Prepend(err, "%s", p) }
