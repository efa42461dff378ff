package cmds

import "tlcvm/qmp"

// ShutdownCause is QAPI's ShutdownCause enum (qapi/run-state.json).
type ShutdownCause string

// EnumValues lists the causes in QAPI order.
func (ShutdownCause) EnumValues() []string {
	return []string{"none", "host-error", "host-qmp-quit", "host-qmp-system-reset", "host-signal",
		"host-ui", "guest-shutdown", "guest-reset", "guest-panic", "subsystem-reset", "snapshot-load"}
}

// ShutdownEventData is SHUTDOWN's data as declared in the schema.
type ShutdownEventData struct {
	qmp.QAPIOrder
	Guest  bool          `json:"guest"`
	Reason ShutdownCause `json:"reason"`
}

// ResetEventData is RESET's data as declared in the schema.
type ResetEventData struct {
	qmp.QAPIOrder
	Guest  bool          `json:"guest"`
	Reason ShutdownCause `json:"reason"`
}

// RegisterEvents declares the events tlcvm emits, for the introspection schema.
func RegisterEvents(r *qmp.Registry) {
	r.RegisterEvent("SHUTDOWN", ShutdownEventData{})
	r.RegisterEvent("POWERDOWN", nil)
	r.RegisterEvent("RESET", ResetEventData{})
	r.RegisterEvent("STOP", nil)
	r.RegisterEvent("RESUME", nil)
}
