// Package catalog is tlcvm's catalogue of what it offers, in QEMU 7.2's names
// and shapes: machine types, CPU models, QOM types with their parents and
// interfaces, and the properties of every type. It is plain data plus lookup
// functions and imports nothing of tlcvm's; the QMP and HMP layers answer
// query-machines, query-cpu-definitions, query-cpu-model-expansion,
// qom-list-types, qom-list-properties, device-list-properties and the
// `-machine help`, `-cpu help`, `-device help` and `-device X,help` texts
// from it.
//
// # Where the data comes from
//
// The tables (zz_generated_*.go) are written by ./gen, which asks the real
// /usr/bin/qemu-system-x86_64 (7.2, TCG) over QMP and runs its help options.
// The user-creatable devices (Devices, LookupDevice, DeviceClass) are
// `-device help`'s lines: type, bus type, alias ("ahci" for ich9-ahci: every
// alias of QEMU's qdev_alias_table that the x86_64 binary has), and whether
// device_add takes the type on a running machine, which gen asks the binary
// with a bare device_add of every type and of every alias (an alias must get
// its type's answer). Aliases are resolved where QEMU resolves them
// (-device, device_add, `-device ALIAS,help`) and nowhere else:
// device-list-properties, qom-list-properties and qom-list-types do not know
// them. HMP info qdm (DeviceModelsHelp) adds the models that are not
// user-creatable (no-user: ICH9-LPC, q35-pcihost, …), which gen captures from
// the binary's own info qdm with their heading; the catalogue renders both
// lists as qdev_print_devinfos does, and its rendering of the user-creatable
// ones is checked against the captured `-device help` text. The PCI identity of every PCI device type (PCIModel: ids, class,
// interrupt pin, BAR sizes, a bridge's reset window) is query-pci's answer
// for it on a -S machine, captured on pc's pci.0 and behind a q35 PCIe root
// port (virtio devices drop their legacy interface there).
// Regenerating is one command from the module root:
//
//	go generate ./machine/catalog
//
// The freshness test regenerates into a temporary directory and fails if the
// result differs from what is committed (it is skipped without the binary).
// Nothing is read at run time: no recording, no file.
//
// # Wire shapes
//
// The exported structs marshal with encoding/json to exactly QEMU's bytes
// modulo whitespace. QEMU emits a QDict's members in hash-bucket order (see
// qobject/qdict.c tdb_hash), not in schema order, and the struct fields are
// declared in that order:
//
//	query-machines          {"hotpluggable-cpus", "name", "numa-mem-supported",
//	                         "default-cpu-type"?, "is-default"?, "cpu-max",
//	                         "deprecated", "default-ram-id"?, "alias"?}
//	query-cpu-definitions   {"name", "typename", "unavailable-features",
//	                         "alias-of"?, "static", "migration-safe", "deprecated"}
//	qom-list-types          {"abstract"?, "name", "parent"?}
//	*-list-properties       {"default-value"?, "name", "description"?, "type"}
//	query-cpu-model-expansion {"model": {"name", "props": {...}}}
//
// QEMU 7.2 has no "acpi" member in query-machines (it came in 8.0).
//
// # Storage
//
// Properties are interned: propTable holds each distinct record once and a
// type's list is a string of two-character indexes (internal/pack). CPU
// models are stored as the most common value of each of the ~430 properties
// of a full expansion plus each model's differences; an expansion is computed
// from them, with the user's props applied the way x86_cpu_from_model and
// x86_cpu_expand_features apply them, using what the generator measured on
// the binary: alias groups (sse4.2 = sse4-2 = sse4_2), feature dependencies
// (vmx-* need vmx), definition features a dependency hides, features TCG
// always clears (FEAT_KVM), and the CPUID level each feature needs (level,
// xlevel, xlevel2 follow min-level, min-xlevel, min-xlevel2). Tables are
// decoded once, on first use, so start-up pays nothing.
//
// # Errors
//
// Failures are *qerror.Error values whose text is QEMU's desc and which wrap
// one of the sentinels. ErrNotFound is QMP class DeviceNotFound; every other
// sentinel is GenericError.
//
// # Modeled devices
//
// Modeled reports which device types tlcvm gives behaviour; all others in the
// catalogue are accepted on the command line and by device_add and do
// nothing. The set is hand-written in modeled.go.
package catalog

//go:generate go run ./gen
