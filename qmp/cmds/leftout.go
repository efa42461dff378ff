package cmds

import (
	"fmt"
	"sort"
	"strings"
)

// The QMP commands of QEMU 7.2 that tlcvm does not register, each with the reason. This is
// the one list: docs/compatibility.md's table is rendered from it (LeftOutMarkdown), and
// tests/coverage_test.go holds it against QEMU 7.2's query-commands and tlcvm's (every
// command of QEMU is answered or listed here; nothing listed here is registered; nothing is
// listed that QEMU lacks).
//
// Pending entries are commands implemented on a branch that is not merged yet: the lead
// deletes the entry as the branch lands (the coverage test fails while a registered command
// is still listed).

// LeftOut is a group of QEMU 7.2 commands left out for one reason.
type LeftOut struct {
	Names   []string
	Reason  string
	Pending string // the branch that implements them, not merged yet; "" when left out for good
}

// LeftOutCommands is the list, in the order the documentation shows it.
var LeftOutCommands = []LeftOut{
	// Implemented on branches not merged yet.

	// Not yet: these have a meaning here and are still to be written.

	// Left out for good: nothing in tlcvm's machine for them to act on.
	{Names: []string{"x-query-roms"},
		Reason: "tlcvm loads no firmware: its guest runs no BIOS, so bios-256k.bin, kvmvapic.bin and " +
			"the ACPI blobs QEMU lists are not in its memory; loading them for real would add QEMU's " +
			"ROM blocks (pc.bios, pc.rom, vga.rom, /rom@etc/acpi/tables, …) to every migration stream " +
			"and checkpoint, and the ACPI blobs are QEMU's own table builder's output"},
	{Names: []string{"client_migrate_info", "query-spice"},
		Reason: "SPICE: tlcvm has no SPICE server (its display is VNC only)"},
	{Names: []string{"query-sev", "query-sev-attestation-report", "query-sev-launch-measure",
		"sev-inject-launch-secret"},
		Reason: "AMD SEV: no confidential guests (query-sev-capabilities answers as QEMU does on " +
			"a host without SEV)"},
	{Names: []string{"query-sgx"},
		Reason: "Intel SGX: no EPC sections (memory-backend-epc, -M sgx-epc) are modelled; " +
			"query-sgx-capabilities answers as QEMU does on a host without SGX"},
	{Names: []string{"query-tpm", "query-tpm-models", "query-tpm-types"},
		Reason: "no TPM device or back-end (tpm-tis, tpm-crb, swtpm); without them libvirt " +
			"reports no TPM support, which is the truth"},
	{Names: []string{"query-xen-replication-status", "xen-colo-do-checkpoint",
		"xen-load-devices-state", "xen-save-devices-state", "xen-set-global-dirty-log",
		"xen-set-replication"},
		Reason: "Xen only: tlcvm has no Xen accelerator"},
	{Names: []string{"query-colo-status", "x-colo-lost-heartbeat"},
		Reason: "COLO fault tolerance: the x-colo capability is refused as by a QEMU built " +
			"without replication, so no COLO state exists"},
	{Names: []string{"query-replay", "replay-break", "replay-delete-break", "replay-seek"},
		Reason: "record/replay (-icount rr=…) is TCG's deterministic execution; tlcvm has no " +
			"instruction counter to replay against"},
	{Names: []string{"query-rocker", "query-rocker-of-dpa-flows", "query-rocker-of-dpa-groups",
		"query-rocker-ports"},
		Reason: "no rocker switch device"},
	{Names: []string{"x-query-jit", "x-query-opcount", "x-query-profile"},
		Reason: "TCG translator statistics: tlcvm translates no guest code"},
	{Names: []string{"x-query-rdma"},
		Reason: "no RDMA devices (pvrdma)"},
	{Names: []string{"x-query-irq"},
		Reason: "no i8259 or IOAPIC model: the few device interrupts (ACPI SCI, i8042) go " +
			"straight to vCPU 0 and no PIT ticks, so QEMU's per-controller counts do not exist"},
	{Names: []string{"x-query-virtio", "x-query-virtio-queue-element", "x-query-virtio-queue-status",
		"x-query-virtio-status", "x-query-virtio-vhost-queue-status"},
		Reason: "virtio devices are plugged and listed but have no virtqueues (the guest drives " +
			"none), so there is no queue or feature state to show"},
	{Names: []string{"x-blockdev-change"},
		Reason: "adds and removes quorum children; tlcvm has no quorum driver"},
	{Names: []string{"x-blockdev-amend"},
		Reason: "amends qcow2 LUKS encryption keys; tlcvm's qcow2 has no encryption"},
	{Names: []string{"x-blockdev-set-iothread"},
		Reason: "block nodes have no AioContext in tlcvm: every request runs on its caller's " +
			"thread, so there is nothing to move"},
	{Names: []string{"query-pr-managers"},
		Reason: "no pr-manager-helper objects (SCSI persistent reservations need SCSI " +
			"passthrough, which tlcvm does not model)"},
	{Names: []string{"set-numa-node", "x-exit-preconfig"},
		Reason: "act only in the --preconfig state; tlcvm accepts --preconfig but builds the " +
			"machine at once"},
}

// LeftOutNames returns every listed name with the branch it is pending on ("" for none).
func LeftOutNames() map[string]string {
	out := map[string]string{}
	for _, g := range LeftOutCommands {
		for _, n := range g.Names {
			out[n] = g.Pending
		}
	}
	return out
}

// Coverage is the closing note's figures.
type Coverage struct {
	What     string // "QMP commands", "HMP commands"
	QEMU     int    // QEMU 7.2's (query-commands; help and help info)
	TLCVM    int    // tlcvm's that are also QEMU's
	Extra    int    // tlcvm's that QEMU 7.2 lacks
	LeftOut  int    // listed and not pending
	Pending  int    // listed as pending on another branch
	Machines string
}

// LeftOutMarkdown renders a left-out list (this package's, or hmp's as LeftOut values) and
// the closing note as docs/compatibility.md shows them between its generated-section markers.
func LeftOutMarkdown(list []LeftOut, c Coverage) string {
	var b strings.Builder
	b.WriteString("| Command | Why tlcvm does not answer it |\n|---|---|\n")
	for _, g := range list {
		names := append([]string(nil), g.Names...)
		sort.Strings(names)
		for i, n := range names {
			names[i] = "`" + n + "`"
		}
		reason := g.Reason
		if g.Pending != "" {
			reason = "pending: implemented on branch `" + g.Pending + "`, not merged yet"
		}
		fmt.Fprintf(&b, "| %s | %s |\n", strings.Join(names, ", "), reason)
	}
	fmt.Fprintf(&b, "\nQEMU 7.2 (%s) has %d %s; tlcvm answers %d of them", c.Machines, c.QEMU, c.What, c.TLCVM)
	if c.Extra > 0 {
		fmt.Fprintf(&b, " (and %d of its own)", c.Extra)
	}
	fmt.Fprintf(&b, ". %d are left out above", c.LeftOut)
	if c.Pending > 0 {
		fmt.Fprintf(&b, ", and %d more wait on branches not merged yet", c.Pending)
	}
	b.WriteString(".\n")
	return b.String()
}
