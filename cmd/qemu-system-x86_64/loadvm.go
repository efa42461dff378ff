package main

import "tlcvm/qmp/cmds"

// loadVM is -loadvm NAME: QEMU's load_snapshot once the devices exist (its errors fatal,
// after any device error), the same operation as HMP loadvm (cmds.LoadSnapshot): the
// disks go back to the snapshot and its VM state is loaded into the machine, which has
// not run yet; -S keeps it there (libvirt reverts a domain to an internal snapshot by
// starting it with -loadvm and -S, then cont).
func (v *vm) loadVM(deps *cmds.Deps) error {
	cfg := v.plan.cfg
	if cfg.LoadVM == "" {
		return nil
	}
	if v.block == nil {
		return failf(cfg, "", "no block device can store vmstate for snapshot")
	}
	if err := cmds.LoadSnapshot(deps, cfg.LoadVM); err != nil {
		return failf(cfg, "", "%v", err)
	}
	return nil
}
