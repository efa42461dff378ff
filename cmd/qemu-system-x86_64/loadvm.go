package main

// loadVM is -loadvm NAME (QEMU's load_snapshot at start-up, its errors fatal): the block
// layer's checks, with QEMU's texts. A snapshot that passes them holds a VM state tlcvm
// cannot load (QEMU saved it, or a disk-only snapshot was refused above; tlcvm has no
// savevm), which QEMU too reports as "Error -22 while loading VM state" when a VM state
// does not match the machine.
func (v *vm) loadVM() error {
	cfg := v.plan.cfg
	if cfg.LoadVM == "" {
		return nil
	}
	if v.block == nil {
		return failf(cfg, "", "no block device can store vmstate for snapshot")
	}
	if _, err := v.block.CheckLoadVM(cfg.LoadVM); err != nil {
		return failf(cfg, "", "%v", err)
	}
	return failf(cfg, "", "Error -22 while loading VM state")
}
