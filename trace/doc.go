// Package trace is QEMU 7.2's table of trace events (trace/control.c) and their dynamic
// states, as trace-event-get-state, trace-event-set-state and HMP's info trace-events and
// trace-event see them.
//
// QEMU's trace events are probes compiled into its C code; tlcvm has none of them, but a
// client listing or switching them (libvirt, a person at the monitor) sees QEMU's names:
// the table is captured from the reference binary by ./gen (go generate ./trace) and
// committed as zz_generated_events.go; TestGeneratedUpToDate holds it against the binary.
//
// The captured list, one event a line, in trace-event-get-state's order for the pattern
// "*" (QEMU prepends each match, so this is its registration order reversed):
//
//	name[ vcpu][ unavailable]
//
// "vcpu" marks the per-vCPU events (guest_cpu_enter ...), whose state is kept per vCPU;
// "unavailable" the events QEMU's trace-events files declare "disable" (statically off:
// their state cannot change).
//
// Patterns are QEMU's: a name containing '*' is a glob in which '*' matches any run of
// characters and every other character itself; a pattern matching nothing is no error.
package trace

//go:generate go run ./gen
