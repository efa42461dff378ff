package cmds

import (
	"math"
	"strings"

	"tlcvm/machine"
	"tlcvm/machine/catalog"
	"tlcvm/qmp"
)

// CPU hotplug through device_add and device_del (machine/cpuhotplug.go): a device of an
// x86 CPU type is a vCPU in one of the machine's topology slots, not a device model of the
// catalogue. libvirt's setvcpus --live sends
//
//	device_add {"driver":"qemu64-x86_64-cpu","id":"vcpu1","core-id":0,"thread-id":0,"socket-id":1}
//
// then reads query-cpus-fast for the new vCPU's thread, and device_del {"id":"vcpu1"} to
// unplug it (DEVICE_DELETED once the guest has ejected it).

// CPUHotplug is what these handlers need of the VM.
type CPUHotplug interface {
	CPUType() string
	CPUs() []machine.CPUInfo
	CPUSlot(machine.CPUAddress) (int, error)
	PlugCPU(index int, qomPath string, hotplugged bool) error
	UnplugCPU(index int, done func()) error
}

// isCPUDriver reports whether a device_add driver is an x86 CPU type.
func isCPUDriver(driver string) bool { return catalog.IsA(driver, "x86_64-cpu") }

// cpuDeviceAdd is device_add of a CPU, after device_add's common checks (driver, id);
// path and name place it under /machine/peripheral or peripheral-anon. QEMU's order:
// properties (unknown ones, their types), then x86_cpu_pre_plug (the type, the slot).
func cpuDeviceAdd(d *Deps, h CPUHotplug, args *qmp.Value, driver string, parent *Object, name, path string) error {
	addr := machine.CPUAddress{SocketID: -1, DieID: -1, CoreID: -1, ThreadID: -1}
	fields := map[string]*int{"socket-id": &addr.SocketID, "die-id": &addr.DieID, "core-id": &addr.CoreID,
		"thread-id": &addr.ThreadID}
	known := map[string]bool{}
	if props, err := catalog.ObjectProperties(driver); err == nil {
		for _, p := range props {
			known[p.Name] = true
		}
	}
	for _, m := range args.Members() {
		switch m.Key {
		case "driver", "id", "bus":
			continue
		}
		if !known[m.Key] {
			return qmp.GenericError("Property '%s.%s' not found", driver, m.Key)
		}
		f, ok := fields[m.Key]
		if !ok {
			continue // a CPU model property: the model is the machine's, fixed at start
		}
		v, isInt := m.Value.AsInt64()
		if !isInt || v < math.MinInt32 || v > math.MaxInt32 {
			return qmp.GenericError("Parameter '%s' expects integer", m.Key)
		}
		*f = int(v) // negative: not set, as QEMU's -1 default
	}
	if driver != h.CPUType() {
		return qmp.GenericError("Invalid CPU type, expected cpu type: '%s'", h.CPUType())
	}
	slot, err := h.CPUSlot(addr)
	if err != nil {
		return err
	}
	if err := h.PlugCPU(slot, path, true); err != nil {
		return err
	}
	o := NewObject(driver)
	o.AddRaw("realized", "bool", []byte("true"))
	tree := d.QOM()
	tree.mu.Lock()
	parent.AddChild(name, o)
	tree.mu.Unlock()
	return nil
}

// cpuDeviceDel is device_del of a CPU named by its id or its QOM path (the boot CPUs have
// no id: /machine/unattached/device[N]); ok is false when id names no CPU. The CPU leaves
// once the guest has ejected it: then its QOM object goes and DEVICE_DELETED is emitted.
func cpuDeviceDel(d *Deps, h CPUHotplug, id string, emit func(DeviceDeletedData)) (ok bool, err error) {
	path := id
	if !strings.HasPrefix(id, "/") {
		path = "/machine/peripheral/" + id
	}
	var cpu *machine.CPUInfo
	for _, c := range h.CPUs() {
		if c.Plugged && c.QOMPath == path {
			cpu = &c
			break
		}
	}
	if cpu == nil {
		return false, nil
	}
	devID := ""
	if p, ok := strings.CutPrefix(path, "/machine/peripheral/"); ok {
		devID = p
	}
	err = h.UnplugCPU(cpu.Index, func() {
		tree := d.QOM()
		tree.mu.Lock()
		if parent, name, ok := cpuParent(tree, path); ok {
			parent.RemoveChild(name)
		}
		tree.mu.Unlock()
		emit(DeviceDeletedData{Device: devID, Path: path})
	})
	return true, err
}

// cpuParent finds the container holding the object at path and the object's name.
func cpuParent(t *Tree, path string) (*Object, string, bool) {
	dir, name, ok := strings.Cut(strings.TrimPrefix(path, "/machine/"), "/")
	if !ok {
		return nil, "", false
	}
	parent := t.Root().Child("machine").Child(dir)
	return parent, name, parent != nil
}

// cpuHotplugOf returns the machine's CPU hotplug interface, when it has one.
func cpuHotplugOf(d *Deps) (CPUHotplug, bool) {
	h, ok := d.Machine.(CPUHotplug)
	return h, ok
}
