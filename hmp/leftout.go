package hmp

// The HMP commands of QEMU 7.2 (help, and help info for the info subcommands, named
// "info X" here) that tlcvm does not implement, each with the reason. As for QMP
// (qmp/cmds/leftout.go), docs/compatibility.md's table is rendered from this list and
// tests/coverage_test.go holds it against both binaries' help. Pending entries are
// implemented on branches not merged yet; the lead deletes them as the branches land.

// LeftOut is a group of QEMU 7.2 HMP commands left out for one reason.
type LeftOut struct {
	Names   []string
	Reason  string
	Pending string // the branch that implements them, not merged yet
}

// LeftOutCommands is the list, in the order the documentation shows it.
var LeftOutCommands = []LeftOut{

	{Names: []string{"i", "o"}, Reason: "not yet: tlcvm's I/O space (the one qtest drives) has only " +
		"the serial port and the i8042, in the state Linux finds them after firmware (i8042 status " +
		"0x04, LCR 8N1), where QEMU under -S shows their reset state (0x18, 0x00) and answers for its " +
		"PIT, RTC, PICs, DMA and the rest; QEMU also repeats a byte-wide port over a wider access"},
	{Names: []string{"info roms"},
		Reason: "tlcvm loads no firmware (as x-query-roms): QEMU lists bios-256k.bin at 0xfffc0000, " +
			"genroms/kvmvapic.bin and the ACPI blobs it built (and -kernel's linuxboot_dma.bin)"},
	{Names: []string{"info lapic", "info pic", "info irq"},
		Reason: "no local APIC, i8259 or IOAPIC model (see x-query-irq)"},
	{Names: []string{"boot_set"},
		Reason: "the boot order is the firmware's; tlcvm runs no firmware"},
	{Names: []string{"log", "logfile", "singlestep"},
		Reason: "TCG's debug log items and single-stepping; tlcvm logs through zerolog (-d is accepted without effect)"},
	{Names: []string{"gdbserver"}, Reason: "no gdb stub"},
	{Names: []string{"mce"}, Reason: "no machine-check architecture model"},
	{Names: []string{"pcie_aer_inject_error"}, Reason: "no PCIe AER model"},
	{Names: []string{"wavcapture", "stopcapture", "info capture"}, Reason: "no audio"},
	{Names: []string{"sync-profile", "info sync-profile"},
		Reason: "QEMU's mutex profiler of its C locks"},
	{Names: []string{"exit_preconfig"}, Reason: "as QMP x-exit-preconfig"},
	{Names: []string{"client_migrate_info", "info spice"}, Reason: "SPICE (see the QMP table)"},
	{Names: []string{"replay_break", "replay_delete_break", "replay_seek", "info replay"},
		Reason: "record/replay (see the QMP table)"},
	{Names: []string{"x_colo_lost_heartbeat"}, Reason: "COLO (see the QMP table)"},
	{Names: []string{"info jit", "info opcount", "info profile"}, Reason: "TCG statistics"},
	{Names: []string{"info rdma"}, Reason: "no RDMA devices"},
	{Names: []string{"info rocker", "info rocker-of-dpa-flows", "info rocker-of-dpa-groups", "info rocker-ports"},
		Reason: "no rocker switch device"},
	{Names: []string{"info sev", "info sgx", "info tpm"}, Reason: "SEV, SGX, TPM (see the QMP table)"},
	{Names: []string{"info usbhost"}, Reason: "no host USB passthrough"},
	{Names: []string{"info virtio", "info virtio-queue-element", "info virtio-queue-status",
		"info virtio-status", "info virtio-vhost-queue-status"},
		Reason: "virtio devices have no virtqueues (see the QMP table)"},
}
