package migration

// Status is QAPI's MigrationStatus. Its method set satisfies qmp.Enum (structurally), so
// the wire layer can use it directly.
type Status string

// The statuses this engine uses (QAPI lists more: postcopy-*, colo, pre-switchover,
// device, wait-unplug).
const (
	StatusNone       Status = "none"
	StatusSetup      Status = "setup"
	StatusCancelling Status = "cancelling"
	StatusCancelled  Status = "cancelled"
	StatusActive     Status = "active"
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"
)

// EnumValues lists QAPI's MigrationStatus in QAPI order.
func (Status) EnumValues() []string {
	return []string{"none", "setup", "cancelling", "cancelled", "active", "postcopy-active",
		"postcopy-paused", "postcopy-recover", "completed", "failed", "colo", "pre-switchover",
		"device", "wait-unplug"}
}

// String returns the wire name.
func (s Status) String() string { return string(s) }

// running reports whether a migration in this status is in progress (QEMU's
// migration_is_running).
func (s Status) running() bool {
	return s == StatusSetup || s == StatusActive || s == StatusCancelling
}

// finished reports a terminal status.
func (s Status) finished() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}
