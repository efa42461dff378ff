package transport

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// Sentinels. Every error this package returns wraps one of them (and the underlying
// syscall.Errno or *net.OpError when there is one) while its text stays QEMU 7.2's exactly,
// e.g. "Unable to write to command: Broken pipe" wraps ErrWrite and syscall.EPIPE.
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

// Error is this package's error: Error() is QEMU's text, Unwrap gives the sentinel and
// the cause so errors.Is works on both.
type Error struct {
	Msg   string
	Kind  error // one of the sentinels above
	Cause error // may be nil
}

func (e *Error) Error() string   { return e.Msg }
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Cause} }

func newError(msg string, kind, cause error) error {
	return &Error{Msg: msg, Kind: kind, Cause: cause}
}

// withErrno is QEMU's error_setg_errno: "<msg>: <strerror(errno)>".
func withErrno(msg string, kind, cause error) error {
	return newError(msg+": "+strerror(cause), kind, cause)
}

// strerror renders err as glibc's strerror does for its errno ("Broken pipe",
// "Connection refused"): Go's errno texts are glibc's with a lower-case first letter.
func strerror(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return capitalize(errno.Error())
	}
	if errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) {
		return "Bad file descriptor"
	}
	if err == nil {
		return "Success"
	}
	return capitalize(err.Error())
}

func capitalize(s string) string {
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		return string(s[0]-'a'+'A') + s[1:]
	}
	return s
}
