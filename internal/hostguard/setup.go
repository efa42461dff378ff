package hostguard

import (
	"os/user"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"tlcvm/compat/qerror"
)

// LookupUser is getpwnam(3): the uid and primary gid of the user called name. QEMU looks
// -runas's argument up when it reads the option, before anything else happens.
func LookupUser(name string) (uid, gid uint32, ok bool) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, false
	}
	uid64, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid64, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return uint32(uid64), uint32(gid64), true
}

// Identity is whom -runas names: a user (Name set: its uid, its primary gid, and its
// supplementary groups from the group database) or a bare UID:GID pair (Name empty: that
// gid is the only group).
type Identity struct {
	Name     string
	UID, GID uint32
}

// Setup is what QEMU 7.2's os_setup_post does once everything the command line names is
// open: change root, then drop privileges. The zero value does nothing.
type Setup struct {
	Chroot string    // -chroot DIR; "" for none
	RunAs  *Identity // -runas; nil for none
}

// Apply changes root and identity, in os_setup_post's order and with its texts:
//
//	chroot(DIR)                 "chroot failed"
//	chdir("/")                  "not able to chdir to /: <strerror>"
//	setgid(gid)                 "Failed to setgid(<gid>)"
//	initgroups(name, gid)       "Failed to initgroups(\"<name>\", <gid>)"   (by name)
//	setgroups(1, [gid])         "Failed to setgroups(1, [<gid>])"           (UID:GID)
//	setuid(uid)                 "Failed to setuid(<uid>)"
//	setuid(0) must now fail     "Dropping privileges failed"
//
// Go's syscall.Setgid, Setgroups and Setuid change every thread of the process, as glibc's
// do. The time zone is loaded before the root changes, so that local time stays right
// inside a chroot without /etc/localtime (glibc has it loaded by then too). The group
// database is read after, as initgroups(3) does in QEMU: inside the new root.
func (s Setup) Apply() error {
	if s.Chroot != "" {
		_ = time.Local.String() // loads the zone now; see above
		if err := unix.Chroot(s.Chroot); err != nil {
			return fail(err, "chroot failed")
		}
		if err := unix.Chdir("/"); err != nil {
			return fail(err, "not able to chdir to /: %s", qerror.Strerror(err))
		}
	}
	if s.RunAs == nil {
		return nil
	}
	id := *s.RunAs
	if err := syscall.Setgid(int(id.GID)); err != nil {
		return fail(err, "Failed to setgid(%d)", id.GID)
	}
	if id.Name != "" {
		if err := syscall.Setgroups(groupsOf(id)); err != nil {
			return fail(err, "Failed to initgroups(\"%s\", %d)", id.Name, id.GID)
		}
	} else if err := syscall.Setgroups([]int{int(id.GID)}); err != nil {
		return fail(err, "Failed to setgroups(1, [%d])", id.GID)
	}
	if err := syscall.Setuid(int(id.UID)); err != nil {
		return fail(err, "Failed to setuid(%d)", id.UID)
	}
	if syscall.Setuid(0) == nil {
		return fail(nil, "Dropping privileges failed")
	}
	return nil
}

// groupsOf is getgrouplist(3) for the user: its primary group and every group that lists
// it. Without a readable group database (a chroot without /etc/group) it is the primary
// group alone, as glibc's initgroups then sets.
func groupsOf(id Identity) []int {
	u := &user.User{Username: id.Name, Uid: strconv.FormatUint(uint64(id.UID), 10), Gid: strconv.FormatUint(uint64(id.GID), 10)}
	ids, err := u.GroupIds()
	if err != nil {
		return []int{int(id.GID)}
	}
	out := []int{int(id.GID)}
	for _, s := range ids {
		g, err := strconv.ParseUint(s, 10, 32)
		if err != nil || uint32(g) == id.GID {
			continue
		}
		out = append(out, int(g))
	}
	return out
}
