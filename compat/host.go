package compat

import (
	"tlcvm/compat/optval"
	"tlcvm/compat/qerror"
)

// The options that protect the host: -sandbox, -runas, -chroot (QEMU 7.2's
// softmmu/qemu-seccomp.c parse_sandbox and os-posix.c os_parse_cmd_args).

// Sandbox is one -sandbox option. QEMU keeps each apart (its list does not merge): every
// option that is on installs a filter of its own.
type Sandbox struct {
	Loc    string // the option as written, for errors
	Enable bool   // the implied first key: "on", "off", enable=…
	// What is denied besides QEMU's default set, once checked (Enable only):
	Obsolete        bool // obsolete=deny, the default; false for obsolete=allow
	Privileged      bool // elevateprivileges=deny or children
	Children        bool // elevateprivileges=children (no_new_privs first)
	Spawn           bool // spawn=deny
	ResourceControl bool // resourcecontrol=deny
}

// sandbox reads one -sandbox QemuOpts group. Values are checked later (checkSandbox), at
// the point of QEMU's option processing where parse_sandbox runs.
func sandbox(o *Opts) Sandbox {
	on, _ := o.Bool("enable", false) // checked by parseList: the list types enable as a bool
	return Sandbox{Loc: o.Loc, Enable: on, Obsolete: true}
}

// checkSandbox is parse_sandbox's value check of an enabled option, in its order, with its
// texts ("invalid argument for spawn"); it fills the typed fields.
func checkSandbox(o *Opts, sb *Sandbox) *qerror.Error {
	for _, k := range []struct {
		key  string
		vals map[string]func()
	}{
		{"obsolete", map[string]func(){"allow": func() { sb.Obsolete = false }, "deny": func() {}}},
		{"elevateprivileges", map[string]func(){"allow": func() {},
			"deny":     func() { sb.Privileged = true },
			"children": func() { sb.Privileged, sb.Children = true, true }}},
		{"spawn", map[string]func(){"allow": func() {}, "deny": func() { sb.Spawn = true }}},
		{"resourcecontrol", map[string]func(){"allow": func() {}, "deny": func() { sb.ResourceControl = true }}},
	} {
		v, ok := o.Get(k.key)
		if !ok {
			continue
		}
		set, ok := k.vals[v]
		if !ok {
			return newErr(ErrBadValue, "invalid argument for "+k.key)
		}
		set()
	}
	return nil
}

// RunAs is -runas: a user name (Name set, with the UID and primary GID the password
// database gave when the option was read), or a "UID:GID" pair (Name empty).
type RunAs struct {
	Loc      string
	Name     string
	UID, GID uint32
}

// runAs is os_parse_cmd_args's -runas: getpwnam first, then UID:GID with qemu_strtoul's
// syntax (base 0, blanks before each number, the whole of GID); neither may be -1.
func runAs(arg, loc string, lookup func(string) (uid, gid uint32, ok bool)) (*RunAs, *qerror.Error) {
	if lookup != nil {
		if uid, gid, ok := lookup(arg); ok {
			return &RunAs{Loc: loc, Name: arg, UID: uid, GID: gid}, nil
		}
	}
	bad := newErr(ErrInvalid, "User \""+arg+"\" doesn't exist (and is not <uid>:<gid>)")
	uid, rest, err := optval.ScanUint64(arg, 0)
	if err != nil || len(rest) == 0 || rest[0] != ':' || uid >= 1<<32-1 {
		return nil, bad
	}
	gid, rest, err := optval.ScanUint64(rest[1:], 0)
	if err != nil || rest != "" || gid >= 1<<32-1 {
		return nil, bad
	}
	return &RunAs{Loc: loc, UID: uint32(uid), GID: uint32(gid)}, nil
}
