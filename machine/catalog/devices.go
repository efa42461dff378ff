package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Device is one user-creatable device type as `-device help` lists it.
type Device struct {
	Name  string // the QOM type, e.g. "ich9-ahci"
	Bus   string // the QOM type of the bus it plugs into ("PCI", "IDE", "ISA", …); "" for none
	Alias string // the other name -device and device_add accept, e.g. "ahci"; "" for none
	Desc  string
	// Hotpluggable: device_add takes the type once the machine runs (DeviceClass
	// hotpluggable); whether a given bus takes it is the bus's affair.
	Hotpluggable bool
}

// deviceRec is one generated row of deviceTable.
type deviceRec struct {
	name, bus, alias, desc string
	hotpluggable           bool
	category               string // one of deviceCategories
}

var deviceIndex = sync.OnceValue(func() map[string]int {
	m := make(map[string]int, 2*len(deviceTable))
	for i, d := range deviceTable {
		m[d.name] = i
	}
	return m
})

var aliasIndex = sync.OnceValue(func() map[string]int {
	m := make(map[string]int)
	for i, d := range deviceTable {
		if d.alias != "" {
			m[d.alias] = i
		}
	}
	return m
})

// Devices returns the user-creatable device types in `-device help` order.
func Devices() []Device {
	out := make([]Device, len(deviceTable))
	for i, d := range deviceTable {
		out[i] = d.info()
	}
	return out
}

func (d deviceRec) info() Device {
	return Device{Name: d.name, Bus: d.bus, Alias: d.alias, Desc: d.desc, Hotpluggable: d.hotpluggable}
}

// LookupDevice finds a user-creatable device type by its name, else by its alias, as QEMU's
// qdev_get_device_class does for -device and device_add ("ahci" → ich9-ahci). ok is false for
// names that are no user-creatable device: see DeviceModel for QEMU's errors.
func LookupDevice(name string) (Device, bool) {
	if i, ok := deviceIndex()[name]; ok {
		return deviceTable[i].info(), true
	}
	if _, isType := typeIndex()[name]; isType {
		return Device{}, false // a type name is never read as an alias
	}
	if i, ok := aliasIndex()[name]; ok {
		return deviceTable[i].info(), true
	}
	return Device{}, false
}

// ResolveDeviceName turns an alias into its type name; any other name comes back unchanged.
// -device NAME,help, device_add NAME,help and QEMU's own lookups resolve aliases this way;
// device-list-properties and qom-list-* do not.
func ResolveDeviceName(name string) string {
	if d, ok := LookupDevice(name); ok {
		return d.Name
	}
	return name
}

// ErrNotPluggable: the device type exists but -device or device_add may not create it
// (abstract, not user-creatable, or not hotpluggable once the machine runs).
var ErrNotPluggable = errors.New("device type cannot be plugged")

// DeviceClass is QEMU's qdev_get_device_class: the device type -device or device_add names
// (by type name or alias), with QEMU's errors in its order. running is QEMU's
// PHASE_MACHINE_READY: device_add, as opposed to the command line.
func DeviceClass(name string, running bool) (Device, error) {
	d, ok := LookupDevice(name)
	if ok {
		if running && !d.Hotpluggable {
			return Device{}, newError(ErrNotPluggable, "Parameter 'driver' expects a pluggable device type")
		}
		return d, nil
	}
	t, known := lookupRec(name)
	switch {
	case !known || !IsA(name, "device"):
		return Device{}, newError(ErrInvalidType, "'%s' is not a valid device model name", name)
	case t.abstract:
		return Device{}, newError(ErrNotPluggable, "Parameter 'driver' expects a non-abstract device type")
	}
	return Device{}, newError(ErrNotPluggable, "Parameter 'driver' expects a pluggable device type")
}

// PCIIdentity is what query-pci shows of a PCI device type before firmware has run (BAR
// addresses unassigned, no interrupt routed, bridges not numbered), as QEMU 7.2 shows it.
type PCIIdentity struct {
	Vendor, Device             int64
	SubsystemVendor, Subsystem int64 // -1: absent (bridges have no subsystem ids)
	Class                      int64
	ClassDesc                  string // "" when QEMU has no description for the class
	IRQPin                     int64
	BARs                       []PCIBar
	// Bridge is query-pci's pci_bridge member (JSON) at reset; nil for a function that is
	// no bridge.
	Bridge json.RawMessage
}

// PCIBar is one region of a PCI function.
type PCIBar struct {
	N               int64
	IO              bool
	Size            int64
	Mem64, Prefetch bool
}

// pciIdent is one generated identity; bars are "N TYPE SIZE" items joined by ",", TYPE one
// of io, mem, mem64, mempref, mem64pref; a zero vendor means none.
type pciIdent struct {
	vendor, device, subVendor, sub int64
	class                          int64
	desc                           string
	pin                            int64
	bars                           string
	bridge                         string
}

type pciRec struct {
	name               string
	conventional, expr pciIdent
}

var pciIndex = sync.OnceValue(func() map[string]int {
	m := make(map[string]int, len(pciTable))
	for i, p := range pciTable {
		m[p.name] = i
	}
	return m
})

// PCIModel returns the query-pci identity of a PCI device type: on a conventional or root
// bus, or (express) behind a PCIe port, where virtio devices drop their legacy interface.
// ok is false for types QEMU cannot create without a back-end the capture did not give them
// (vhost-user, vfio, …).
func PCIModel(typename string, express bool) (PCIIdentity, bool) {
	i, ok := pciIndex()[typename]
	if !ok {
		return PCIIdentity{}, false
	}
	id := pciTable[i].conventional
	if express && pciTable[i].expr.vendor != 0 {
		id = pciTable[i].expr
	}
	out := PCIIdentity{Vendor: id.vendor, Device: id.device, SubsystemVendor: id.subVendor, Subsystem: id.sub,
		Class: id.class, ClassDesc: id.desc, IRQPin: id.pin}
	if id.bridge != "" {
		out.Bridge = json.RawMessage(id.bridge)
	}
	for _, item := range strings.Split(id.bars, ",") {
		var b PCIBar
		var typ string
		if _, err := fmt.Sscanf(item, "%d %s %d", &b.N, &typ, &b.Size); err != nil {
			continue // "" for no BARs
		}
		b.IO = typ == "io"
		b.Mem64 = strings.HasPrefix(typ, "mem64")
		b.Prefetch = strings.HasSuffix(typ, "pref")
		out.BARs = append(out.BARs, b)
	}
	return out, true
}
