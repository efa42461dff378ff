package cmds

import (
	"strings"

	"tlcvm/machine"
)

// CPU hotplug (machine/cpuhotplug.go): a device of the machine's x86 CPU type is a vCPU
// in one of its topology slots. libvirt's setvcpus --live sends
//
//	device_add {"driver":"qemu64-x86_64-cpu","id":"vcpu1","core-id":0,"thread-id":0,"socket-id":1}
//
// then reads query-cpus-fast for the new vCPU's thread, and device_del {"id":"vcpu1"} to
// unplug it (DEVICE_DELETED once the guest has ejected it). Such CPUs are devices of the
// device tree (the composition root registers their model with it); the CPUs of -smp are
// not, and device_del names them by their QOM path (/machine/unattached/device[N]): those
// are handled here.

// CPUHotplug is what device_del of a -smp CPU needs of the VM.
type CPUHotplug interface {
	CPUs() []machine.CPUInfo
	UnplugCPU(index int, done func()) error
}

// cpuDeviceDel is device_del of a -smp CPU, named by its QOM path
// (/machine/unattached/device[N]); ok is false when id names no such CPU. The CPU leaves
// once the guest has ejected it: then its QOM object goes and DEVICE_DELETED is emitted.
func cpuDeviceDel(d *Deps, h CPUHotplug, id string, emit func(DeviceDeletedData)) (ok bool, err error) {
	path := id
	if !strings.HasPrefix(id, "/machine/unattached/") {
		return false, nil
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
	err = h.UnplugCPU(cpu.Index, func() {
		tree := d.QOM()
		tree.mu.Lock()
		if parent, name, ok := cpuParent(tree, path); ok {
			parent.RemoveChild(name)
		}
		tree.mu.Unlock()
		emit(DeviceDeletedData{Path: path})
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
