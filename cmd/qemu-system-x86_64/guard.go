package main

import (
	"tlcvm/compat"
	"tlcvm/internal/hostguard"
)

// installSandboxes is QEMU 7.2's parse_sandbox for each -sandbox that is on, at its point
// in qemu_process_early_options: after the command line is checked, before -daemonize and
// before anything the command line names is opened. Each adds a filter; none can be undone.
func installSandboxes(cfg *compat.Config) error {
	for _, sb := range cfg.Sandboxes {
		if !sb.Enable {
			continue
		}
		p := hostguard.Policy{Obsolete: sb.Obsolete, Privileged: sb.Privileged, Children: sb.Children,
			Spawn: sb.Spawn, ResourceControl: sb.ResourceControl}
		if err := hostguard.Install(p); err != nil {
			return failf(cfg, sb.Loc, "%v", err)
		}
	}
	return nil
}

// setupPost is QEMU 7.2's os_setup_post once everything is open: -chroot, then -runas.
func setupPost(cfg *compat.Config) error {
	s := hostguard.Setup{Chroot: cfg.Chroot}
	if r := cfg.RunAs; r != nil {
		s.RunAs = &hostguard.Identity{Name: r.Name, UID: r.UID, GID: r.GID}
	}
	if err := s.Apply(); err != nil {
		return failf(cfg, "", "%v", err)
	}
	return nil
}
