package migration

// Status is QAPI's MigrationStatus. Its method set satisfies qmp.Enum (structurally), so
// the wire layer can use it directly.
type Status string

// The statuses this engine uses (QAPI also has colo and wait-unplug).
const (
	StatusNone            Status = "none"
	StatusSetup           Status = "setup"
	StatusCancelling      Status = "cancelling"
	StatusCancelled       Status = "cancelled"
	StatusActive          Status = "active"
	StatusPostcopyActive  Status = "postcopy-active"
	StatusPostcopyPaused  Status = "postcopy-paused"
	StatusPostcopyRecover Status = "postcopy-recover"
	StatusCompleted       Status = "completed"
	StatusFailed          Status = "failed"
	StatusPreSwitchover   Status = "pre-switchover"
	StatusDevice          Status = "device"
)

// EnumValues lists QAPI's MigrationStatus in QAPI order.
func (Status) EnumValues() []string {
	return []string{"none", "setup", "cancelling", "cancelled", "active", "postcopy-active",
		"postcopy-paused", "postcopy-recover", "completed", "failed", "colo", "pre-switchover",
		"device", "wait-unplug"}
}

// String returns the wire name.
func (s Status) String() string { return string(s) }

// running reports whether a migration in this status is in progress (QEMU 7.2's
// migration_is_running).
func (s Status) running() bool {
	switch s {
	case StatusSetup, StatusActive, StatusPostcopyActive, StatusPostcopyPaused,
		StatusPostcopyRecover, StatusCancelling, StatusPreSwitchover, StatusDevice:
		return true
	}
	return false
}

// finished reports a terminal status.
func (s Status) finished() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// Statuses in which the source reports times and RAM figures (QEMU 7.2's
// fill_source_migration_info).
func (s Status) reportsFigures() bool {
	switch s {
	case StatusActive, StatusCancelling, StatusPostcopyActive, StatusPreSwitchover, StatusDevice,
		StatusPostcopyPaused, StatusPostcopyRecover, StatusCompleted:
		return true
	}
	return false
}
