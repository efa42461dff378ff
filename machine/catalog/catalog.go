package catalog

import (
	"errors"
	"slices"
	"sync"

	"tlcvm/compat/qerror"
)

// Sentinels. Every error of this package is a *qerror.Error wrapping one of them.
var (
	// ErrNotFound: no such type (QMP class DeviceNotFound).
	ErrNotFound = errors.New("type not found")
	// ErrInvalidType: the type exists but is the wrong kind for the
	// question, e.g. device-list-properties of an abstract or non-device type.
	ErrInvalidType = errors.New("wrong kind of type")
	// ErrUnavailable: QEMU 7.2 itself aborts when asked about this type
	// (microvm-machine, colo-compare, …), so the catalogue has no answer.
	ErrUnavailable = errors.New("type cannot be introspected")
	// ErrCPUNotFound: no such CPU model.
	ErrCPUNotFound = errors.New("CPU model not found")
	// ErrPropertyNotFound: a CPU model has no property of that name.
	ErrPropertyNotFound = errors.New("property not found")
	// ErrInvalidValue: a property value has the wrong JSON type.
	ErrInvalidValue = errors.New("invalid property value")
)

// newError is an error of kind sentinel with QEMU's exact text (the QMP desc).
func newError(sentinel error, format string, args ...any) error {
	return qerror.Errorf(sentinel, format, args...)
}

// Machine is one entry of query-machines (QAPI MachineInfo), fields in the
// order QEMU 7.2 emits them.
type Machine struct {
	HotpluggableCPUs bool   `json:"hotpluggable-cpus"`
	Name             string `json:"name"`
	NUMAMemSupported bool   `json:"numa-mem-supported"`
	DefaultCPUType   string `json:"default-cpu-type,omitempty"`
	IsDefault        bool   `json:"is-default,omitempty"`
	CPUMax           int    `json:"cpu-max"`
	Deprecated       bool   `json:"deprecated"`
	DefaultRAMID     string `json:"default-ram-id,omitempty"`
	Alias            string `json:"alias,omitempty"`
}

// TypeName is the machine's QOM type, e.g. "pc-i440fx-7.2-machine".
func (m Machine) TypeName() string { return m.Name + "-machine" }

// QEMUVersion is the version string of the binary the catalogue was captured
// from, e.g. "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)".
func QEMUVersion() string { return qemuVersion }

// Machines returns query-machines: every x86_64 machine type in QEMU's
// order. The slice is the caller's.
func Machines() []Machine { return slices.Clone(machineTable) }

var machineIndex = sync.OnceValue(func() map[string]int {
	m := make(map[string]int, 2*len(machineTable))
	for i, mt := range machineTable {
		m[mt.Name] = i
	}
	for i, mt := range machineTable {
		if _, taken := m[mt.Alias]; mt.Alias != "" && !taken {
			m[mt.Alias] = i
		}
	}
	return m
})

// LookupMachine finds a machine by name or alias ("pc" → pc-i440fx-7.2,
// "q35" → pc-q35-7.2), as -machine type= does.
func LookupMachine(name string) (Machine, bool) {
	i, ok := machineIndex()[name]
	if !ok {
		return Machine{}, false
	}
	return machineTable[i], true
}

// DefaultMachine is the machine used without -machine (is-default).
func DefaultMachine() Machine {
	for _, m := range machineTable {
		if m.IsDefault {
			return m
		}
	}
	panic("catalog: no default machine in the generated table")
}

// MachineHelp is the exact stdout of `qemu-system-x86_64 -machine help`.
func MachineHelp() string { return machineHelp }

// CPUHelp is the exact stdout of `qemu-system-x86_64 -cpu help`.
func CPUHelp() string { return cpuHelp }

// DeviceHelp is the exact stdout of `qemu-system-x86_64 -device help`:
// devices by category.
func DeviceHelp() string { return deviceHelp }
