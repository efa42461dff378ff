package main

import (
	"encoding/json"

	"tlcvm/compat/qerror"
	"tlcvm/machine"
	"tlcvm/machine/catalog"
	"tlcvm/qdev"
)

// cpuModel is the device tree's model of the machine's x86 CPU type (machine/cpuhotplug.go):
// a -device or device_add of it is a vCPU in the topology slot its socket-id, die-id,
// core-id and thread-id name. libvirt starts a domain whose vCPUs were hot-plugged, and
// restores one, with -smp for the boot CPUs and one -device per other vCPU; setvcpus
// --live sends device_add and device_del.
type cpuModel struct{ m *machine.Machine }

func isCPU(typ string) bool { return catalog.IsA(typ, "x86_64-cpu") }

// Check is x86_cpu_pre_plug: the machine's CPU type, then the slot, with QEMU's texts.
func (c cpuModel) Check(d *qdev.Device) error {
	if d.Type != c.m.CPUType() {
		return qerror.Errorf(nil, "Invalid CPU type, expected cpu type: '%s'", c.m.CPUType())
	}
	_, err := c.m.CPUSlot(cpuAddress(d))
	return err
}

// Realize creates the vCPU with a thread of its own; a hot-plugged one is announced to
// the guest.
func (c cpuModel) Realize(d *qdev.Device) error {
	slot, err := c.m.CPUSlot(cpuAddress(d))
	if err != nil {
		return err
	}
	if err := c.m.PlugCPU(slot, d.Path, d.Hotplugged); err != nil {
		return err
	}
	d.State = slot
	return nil
}

// Unrealize runs once the guest has ejected the vCPU (UnplugRequest): it has left already.
func (cpuModel) Unrealize(*qdev.Device) {}

// UnplugRequest is pc_cpu_unplug_request_cb: the guest ejects the vCPU (or QEMU's refusal).
func (c cpuModel) UnplugRequest(d *qdev.Device, done func()) error {
	slot, _ := d.State.(int)
	return c.m.UnplugCPU(slot, done)
}

// cpuAddress reads a CPU device's topology properties (-1 when absent; the tree has
// checked their types).
func cpuAddress(d *qdev.Device) machine.CPUAddress {
	a := machine.CPUAddress{SocketID: -1, DieID: -1, CoreID: -1, ThreadID: -1}
	for name, f := range map[string]*int{"socket-id": &a.SocketID, "die-id": &a.DieID, "core-id": &a.CoreID,
		"thread-id": &a.ThreadID} {
		if raw, ok := d.Props[name]; ok {
			var n int64
			if json.Unmarshal(raw, &n) == nil {
				*f = int(n)
			}
		}
	}
	return a
}
