package blockdev

import (
	"strings"

	"golang.org/x/sys/unix"

	"tlcvm/compat/qerror"
)

// Perm is a set of QEMU block permissions (include/block/block-common.h, QEMU 7.2).
type Perm uint64

// The permissions, in QEMU's bit order.
const (
	PermConsistentRead Perm = 1 << iota
	PermWrite
	PermWriteUnchanged
	PermResize
	PermAll = PermConsistentRead | PermWrite | PermWriteUnchanged | PermResize
)

// permNames are bdrv_perm_names' texts.
var permNames = []string{"consistent read", "write", "write unchanged", "resize"}

// String joins the permission names with ", " as bdrv_perm_names does.
func (p Perm) String() string {
	var out []string
	for i, n := range permNames {
		if p&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ", ")
}

// QEMU's file-posix lock bytes: byte lockPermBase+i is read-locked while permission bit i
// is held, byte lockSharedBase+i while bit i is NOT shared with other users. All locks are
// shared (F_RDLCK) open-file-description locks; a conflict is found by testing for an
// exclusive lock (F_OFD_GETLK with F_WRLCK), which any other description's read lock blocks.
const (
	lockPermBase   = 100
	lockSharedBase = 200
)

// fileLock tracks the bytes one open file description has locked.
type fileLock struct {
	fd           int
	off          bool // locking=off: no bytes taken, no conflicts checked (file-posix)
	lockedPerm   Perm // bytes lockPermBase+i held
	lockedUnshar Perm // bytes lockSharedBase+i held
}

func lockByte(fd int, off int64, typ int16) error {
	fl := unix.Flock_t{Type: typ, Whence: 0, Start: off, Len: 1}
	return unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &fl)
}

// held reports whether another open file description holds a lock on byte off.
func held(fd int, off int64) (bool, error) {
	fl := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: off, Len: 1}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &fl); err != nil {
		return false, err
	}
	return fl.Type != unix.F_UNLCK, nil
}

// apply locks the bytes for perm and unshared that are not yet locked; with unlock it also
// releases the bytes no longer wanted (raw_apply_lock_bytes).
func (l *fileLock) apply(perm, unshared Perm, unlock bool) error {
	if l.off {
		return nil
	}
	for i := 0; i < len(permNames); i++ {
		bit := Perm(1) << i
		if perm&bit != 0 && l.lockedPerm&bit == 0 {
			if err := lockByte(l.fd, lockPermBase+int64(i), unix.F_RDLCK); err != nil {
				return errf(ErrLocked, "Failed to lock byte %d", lockPermBase+i)
			}
			l.lockedPerm |= bit
		} else if unlock && l.lockedPerm&bit != 0 && perm&bit == 0 {
			_ = lockByte(l.fd, lockPermBase+int64(i), unix.F_UNLCK)
			l.lockedPerm &^= bit
		}
	}
	for i := 0; i < len(permNames); i++ {
		bit := Perm(1) << i
		if unshared&bit != 0 && l.lockedUnshar&bit == 0 {
			if err := lockByte(l.fd, lockSharedBase+int64(i), unix.F_RDLCK); err != nil {
				return errf(ErrLocked, "Failed to lock byte %d", lockSharedBase+i)
			}
			l.lockedUnshar |= bit
		} else if unlock && l.lockedUnshar&bit != 0 && unshared&bit == 0 {
			_ = lockByte(l.fd, lockSharedBase+int64(i), unix.F_UNLCK)
			l.lockedUnshar &^= bit
		}
	}
	return nil
}

// check tests that no one else forbids what perm needs, and that no one else holds what
// shared does not allow (raw_check_lock_bytes), with QEMU's texts.
func (l *fileLock) check(perm, shared Perm) error {
	for i := 0; i < len(permNames); i++ {
		bit := Perm(1) << i
		if perm&bit == 0 {
			continue
		}
		if h, err := held(l.fd, lockSharedBase+int64(i)); err != nil || h {
			return errf(ErrLocked, "Failed to get \"%s\" lock", permNames[i])
		}
	}
	for i := 0; i < len(permNames); i++ {
		bit := Perm(1) << i
		if shared&bit != 0 {
			continue
		}
		if h, err := held(l.fd, lockPermBase+int64(i)); err != nil || h {
			return errf(ErrLocked, "Failed to get shared \"%s\" lock", permNames[i])
		}
	}
	return nil
}

// change moves the locks from (curPerm, curShared) to (perm, shared) as
// raw_handle_perm_lock's prepare and commit do; on a conflict nothing changes and the error
// carries QEMU's hint naming filename.
func (l *fileLock) change(curPerm, curShared, perm, shared Perm, filename string) error {
	if l.off {
		return nil
	}
	if (curPerm|perm) != curPerm || (curShared&shared) != curShared {
		err := l.apply(curPerm|perm, (PermAll&^curShared)|(PermAll&^shared), false)
		if err == nil {
			err = l.check(perm, shared)
		}
		if err != nil {
			_ = l.apply(curPerm, PermAll&^curShared, true)
			if e, ok := err.(*qerror.Error); ok {
				e.Hint = "Is another process using the image [" + filename + "]?\n"
			}
			return err
		}
	}
	return l.apply(perm, PermAll&^shared, true)
}
