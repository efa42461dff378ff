package transport

import (
	"errors"

	"tlcvm/compat/qerror"
)

// Sentinels. Every error this package returns is a *qerror.Error wrapping one of them (and
// the underlying syscall.Errno or *net.OpError when there is one) while its text stays QEMU
// 7.2's exactly, e.g. "Unable to write to command: Broken pipe" wraps ErrWrite and syscall.EPIPE.
var (
	// ErrUnknownProtocol: the URI's scheme is none of exec, fd, file, tcp, unix.
	ErrUnknownProtocol = errors.New("unknown migration protocol")
	// ErrUnsupported: a scheme QEMU 7.2 has and tlcvm does not (rdma:), refused with the
	// text QEMU gives on a host without RDMA devices.
	ErrUnsupported = errors.New("unsupported migration protocol")
	// ErrBadURI: the scheme is known but the rest does not parse.
	ErrBadURI = errors.New("malformed migration URI")
	// ErrFDNotFound: fd:NAME is not in the monitor's getfd table, or fd:N is not a valid
	// descriptor.
	ErrFDNotFound = errors.New("file descriptor not found")
	// ErrConnect: a tcp:/unix: destination could not be resolved, connected or bound, or a
	// file: path could not be opened.
	ErrConnect = errors.New("cannot open migration destination")
	// ErrCommand: an exec: command could not start, or exited with a non-zero status or
	// on a signal.
	ErrCommand = errors.New("migration command failed")
	// ErrWrite and ErrRead: the channel failed mid-stream (EPIPE when an exec'd command or a
	// socket peer went away, ENOSPC …).
	ErrWrite = errors.New("migration write failed")
	ErrRead  = errors.New("migration read failed")
	// ErrAborted: Abort (or a Close that raced a Write/Read) ended the channel.
	ErrAborted = errors.New("migration channel aborted")
)

// kinds are the sentinels above, for Find.
var kinds = []error{ErrUnknownProtocol, ErrUnsupported, ErrBadURI, ErrFDNotFound, ErrConnect,
	ErrCommand, ErrWrite, ErrRead, ErrAborted}

// Find returns the error of this package in err's chain, nil if there is none: the text
// QEMU gives for a failed channel, however the layers above wrapped it.
func Find(err error) *qerror.Error { return qerror.Find(err, kinds...) }

func newError(msg string, kind, cause error) error {
	return &qerror.Error{Msg: msg, Kind: kind, Cause: cause}
}

// withErrno is QEMU's error_setg_errno: "<msg>: <strerror(errno)>".
func withErrno(msg string, kind, cause error) error {
	return qerror.Errno(kind, cause, "%s", msg)
}
