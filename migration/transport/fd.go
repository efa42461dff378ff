package transport

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// takeFD resolves fd:NAME / fd:N and returns the descriptor as a file the caller owns,
// with QEMU's channel noun for it ("socket" or "file").
//
// Outgoing (QEMU 7.2's fd_start_outgoing_migration → monitor_get_fd): only a name from the
// getfd table; a number is a name like any other, never a descriptor of the process
// ("File descriptor named '8' has not been found"), so migrate cannot write into a disk
// image, a socket or stderr that happens to have that number.
//
// Incoming (QEMU's monitor_fd_param): a name that does not start with a digit is looked up
// in the getfd table when there is a monitor; otherwise the text is a number
// (qemu_parse_fd), "Invalid file descriptor number 'x'" when it is not. libvirt's restore
// relies on the number (`migrate-incoming fd:27` with a descriptor it left open, and
// `-incoming fd:N`). QEMU 7.2 waits forever on a number that is not open; tlcvm says so.
func takeFD(name string, outgoing bool, env Env) (*os.File, string, error) {
	isDigit := name != "" && name[0] >= '0' && name[0] <= '9'
	notFound := func(cause error) error {
		return newError(fmt.Sprintf("File descriptor named '%s' has not been found", name), ErrFDNotFound, cause)
	}
	var fd int
	switch {
	case outgoing:
		if env.LookupFD == nil {
			return nil, "", notFound(nil)
		}
		n, err := env.LookupFD(name)
		if err != nil {
			return nil, "", notFound(err)
		}
		fd = n
	case !isDigit && env.LookupFD != nil:
		n, err := env.LookupFD(name)
		if err != nil {
			return nil, "", notFound(err)
		}
		fd = n
	default:
		n, ok := parseFDNumber(name)
		if !ok {
			return nil, "", newError(fmt.Sprintf("Invalid file descriptor number '%s'", name), ErrFDNotFound, nil)
		}
		if !fdIsOpen(n) {
			return nil, "", withErrno(fmt.Sprintf("Invalid file descriptor number '%s'", name), ErrFDNotFound, unix.EBADF)
		}
		fd = n
	}
	return wrapFD(fd, "fd:"+name)
}

func fdIsOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

// wrapFD makes fd an *os.File for the transport. Descriptors 0–2 are duplicated (and the
// original left alone): closing stdio would hand its number to the next file opened, and
// Go raises SIGPIPE for EPIPE on 1 and 2. The descriptor is made close-on-exec (an exec:
// command must not hold libvirt's pipe open), and pipes and sockets non-blocking so that
// Abort can interrupt a blocked Read or Write. The file position is left where it is.
func wrapFD(fd int, name string) (*os.File, string, error) {
	if fd <= 2 {
		n, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			return nil, "", withErrno(fmt.Sprintf("Unable to duplicate file descriptor %d", fd), ErrFDNotFound, err)
		}
		fd = n
	}
	unix.CloseOnExec(fd)
	kind := "file"
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err == nil {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFSOCK:
			kind = "socket"
			unix.SetNonblock(fd, true) //nolint:errcheck // blocking still works, without Abort
		case unix.S_IFIFO:
			unix.SetNonblock(fd, true)                              //nolint:errcheck // as above
			unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, pipeSize) //nolint:errcheck // best effort
		}
	}
	return os.NewFile(uintptr(fd), name), kind, nil
}

// createFile opens file:PATH for writing: created (0600: it holds guest memory) or cut to
// offset bytes (the bytes before offset kept), positioned at offset.
func createFile(path string, offset uint64, env Env) (*os.File, error) {
	f, err := env.openFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, withErrno("Unable to open "+path, ErrConnect, err)
	}
	if err := f.Truncate(int64(offset)); err != nil {
		f.Close()
		return nil, withErrno("Unable to truncate "+path, ErrConnect, err)
	}
	if _, err := f.Seek(int64(offset), 0); err != nil {
		f.Close()
		return nil, withErrno("Unable to seek "+path, ErrConnect, err)
	}
	return f, nil
}

// OpenCheckpointFile opens file:PATH for reading and writing at any offset, created (0600)
// when missing and not truncated: a mapped-ram checkpoint decides itself what to keep (an
// incremental checkpoint keeps the previous one). Errors are QEMU's ("Unable to open …").
// "/dev/fdset/N" goes through env.Open.
func OpenCheckpointFile(path string, env Env) (*os.File, error) {
	f, err := env.openFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, withErrno("Unable to open "+path, ErrConnect, err)
	}
	return f, nil
}

// openFile opens file:PATH for reading at offset: read-write when it may (a loader of
// mapped-ram recovers a committed journal in place first), else read-only.
func openFile(path string, offset uint64, env Env) (*os.File, error) {
	f, err := env.openFile(path, os.O_RDWR, 0)
	if err != nil {
		f, err = env.openFile(path, os.O_RDONLY, 0)
	}
	if err != nil {
		return nil, withErrno("Unable to open "+path, ErrConnect, err)
	}
	if _, err := f.Seek(int64(offset), 0); err != nil {
		f.Close()
		return nil, withErrno("Unable to seek "+path, ErrConnect, err)
	}
	return f, nil
}

// File returns a duplicate of the file a file: source reads (r as Accept returned it), so
// that a loader can read the file at offsets, and keep it open under guest RAM, whatever
// happens to r and to the file's name (a root changed since, a file renamed). ok is false
// for other channels.
func File(r io.Reader) (f *os.File, ok bool) {
	rd, isReader := r.(*reader)
	if !isReader || rd.kind != "file" {
		return nil, false
	}
	src, isFile := rd.raw.(*os.File)
	if !isFile {
		return nil, false
	}
	fd, err := unix.FcntlInt(src.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	return os.NewFile(uintptr(fd), src.Name()), true
}
