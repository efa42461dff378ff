package migration

// Capability is QAPI's MigrationCapability plus tlcvm's x-tlc. Its method set satisfies
// qmp.Enum.
type Capability string

// Capabilities with behaviour in tlcvm.
const (
	CapEvents Capability = "events"
	// CapTLC is the checkpoint semantics: after stage 3 the VM runs on, and the final
	// dirty pages and device state are written after it resumed.
	CapTLC Capability = "x-tlc"
	// CapMultifd writes a mapped-ram checkpoint's pages with multifd-channels threads
	// (the only multifd tlcvm has).
	CapMultifd Capability = "multifd"
	// CapReturnPath opens the return path: the destination answers on the channel, and
	// the source completes only once the destination has (SHUT).
	CapReturnPath Capability = "return-path"
	// CapPauseBeforeSwitchover stops the source in pre-switchover until migrate-continue.
	CapPauseBeforeSwitchover Capability = "pause-before-switchover"
	// CapLateBlockActivate leaves a destination's images inactive until cont, unless the
	// guest starts at once.
	CapLateBlockActivate Capability = "late-block-activate"
	// CapAutoConverge throttles the vCPUs of a guest that dirties faster than stage 2
	// sends (throttle.go).
	CapAutoConverge Capability = "auto-converge"
	// CapXBZRLE sends pages sent before as their difference (xbzrle.go).
	CapXBZRLE Capability = "xbzrle"
	// CapCompress sends pages deflated (compress.go).
	CapCompress Capability = "compress"
	// CapPostcopyRAM allows migrate-start-postcopy.
	CapPostcopyRAM Capability = "postcopy-ram"
)

// capabilityNames is QEMU 7.2's list in QAPI order, then tlcvm's x-tlc, then QEMU 9.0's
// mapped-ram (file: only).
var capabilityNames = []string{"xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks",
	"compress", "events", "postcopy-ram", "x-colo", "release-ram", "block", "return-path",
	"pause-before-switchover", "multifd", "dirty-bitmaps", "postcopy-blocktime",
	"late-block-activate", "x-ignore-shared", "validate-uuid", "background-snapshot",
	"zero-copy-send", "postcopy-preempt", string(CapTLC), string(CapMappedRAM)}

// EnumValues lists the capabilities in QAPI order (x-tlc and mapped-ram last).
func (Capability) EnumValues() []string { return capabilityNames }

// capIndex returns the capability's position, or -1.
func capIndex(c Capability) int {
	for i, n := range capabilityNames {
		if n == string(c) {
			return i
		}
	}
	return -1
}

// refusals are the texts with which enabling a capability fails. Where QEMU 7.2 has its
// own text for a capability that cannot be enabled (a feature compiled out, a missing
// prerequisite), it is used; the others say that tlcvm does not implement it. Capabilities
// absent from the map are accepted: events and x-tlc have behaviour, the rest concern
// features tlcvm's machine does not have (block devices' dirty bitmaps, shared RAM,
// postcopy statistics), so enabling them changes nothing, as in QEMU on such a machine.
var refusals = map[Capability]string{
	"block":               "QEMU compiled without old-style (blk/-b, inc/-i) block migration",
	"x-colo":              "QEMU compiled without replication module can't enable COLO",
	"background-snapshot": "Background-snapshot is not supported by host kernel",
	"zero-copy-send":      "Zero copy only available for non-compressed non-TLS multifd migration",
	"rdma-pin-all":        "Capability 'rdma-pin-all' is not supported by tlcvm",
	"release-ram":         "Capability 'release-ram' is not supported by tlcvm",
}

// CapabilityStatus is one element of query-migrate-capabilities and of
// migrate-set-capabilities' list.
type CapabilityStatus struct {
	Capability Capability `json:"capability"`
	State      bool       `json:"state"`
}

// checkCaps validates a requested change (QEMU's migrate_caps_check) against cur, the
// capabilities in force (by capIndex): every capability must be known, none that tlcvm
// cannot honour may be enabled, and the capabilities as they would be must go together
// as QEMU 7.2 requires (its checks and texts, in its order).
func checkCaps(cur []bool, list []CapabilityStatus) error {
	merged := append([]bool(nil), cur...)
	for _, c := range list {
		if capIndex(c.Capability) < 0 {
			return errorf(ErrInvalid, "Parameter 'capability' does not accept value '%s'", c.Capability)
		}
		merged[capIndex(c.Capability)] = c.State
	}
	for _, c := range list {
		if msg, ok := refusals[c.Capability]; ok && c.State {
			return errorf(ErrUnsupported, "%s", msg)
		}
	}
	on := func(c Capability) bool { return merged[capIndex(c)] }
	switch {
	case on(CapPostcopyRAM) && on(CapCompress):
		return errorf(ErrInvalid, "Postcopy is not currently compatible with compression")
	case on(CapPostcopyRAM) && on("x-ignore-shared"):
		return errorf(ErrInvalid, "Postcopy is not compatible with ignore-shared")
	case on("postcopy-preempt") && !on(CapPostcopyRAM):
		return errorf(ErrInvalid, "Postcopy preempt requires postcopy-ram")
	case on("postcopy-preempt") && on(CapCompress):
		return errorf(ErrInvalid, "Postcopy preempt not compatible with compress")
	case on("postcopy-preempt"):
		return errorf(ErrUnsupported, "Capability 'postcopy-preempt' is not supported by tlcvm")
	case on(CapMultifd) && on(CapCompress):
		return errorf(ErrInvalid, "Multifd is not compatible with compress")
	case on(CapTLC) && on(CapPostcopyRAM):
		return errorf(ErrInvalid, "Postcopy is not compatible with x-tlc (a checkpoint keeps its guest)")
	}
	return nil
}
