package main

import (
	"encoding/json"
	"strings"

	"tlcvm/chardev"
	"tlcvm/machine"
	"tlcvm/machine/catalog"
	"tlcvm/objects"
	"tlcvm/qdev"
	"tlcvm/qmp/cmds"
)

// buildQOM assembles the QOM composition tree qom-list/qom-get/qom-set see: the machine with
// its catalogue properties, the vCPUs under /machine/unattached with the property values of
// their CPU model's full expansion, the device tree's devices under /machine/peripheral(-anon),
// -object instances under /objects and the chardevs under /chardevs.
func buildQOM(p *plan, m *machine.Machine, chardevs *chardev.Registry, devices *qdev.Tree, objs *objects.Registry) *cmds.Tree {
	t := cmds.NewTree()
	root := t.Root()
	// Children in QEMU's creation order: the machine, /chardevs, then /objects with the first
	// object (the board's RAM back-end "pc.ram", an -object, an object-add).
	mach := root.AddChild("machine", cmds.NewObject(p.machine.TypeName()))
	cmds.AddCatalogProps(mach, p.machine.TypeName(), machineValues(p))
	root.AddChild("chardevs", cmds.NewObject("container"))
	unattached := mach.AddChild("unattached", cmds.NewObject("container"))
	mach.AddChild("peripheral", cmds.NewObject("container"))
	mach.AddChild("peripheral-anon", cmds.NewObject("container"))

	var cpuVals map[string]json.RawMessage
	if exp, err := catalog.ExpandCPU(catalog.ExpansionFull, p.mcfg.CPUModel, nil); err == nil && exp.Model.Props != nil {
		cpuVals = map[string]json.RawMessage{}
		for _, n := range exp.Model.Props.Names() {
			v, _ := exp.Model.Props.Get(n)
			cpuVals[n] = v
		}
	}
	for _, c := range m.CPUs() {
		if !c.Plugged || !strings.HasPrefix(c.QOMPath, "/machine/unattached/") {
			continue // a free slot, or a CPU of -device or device_add (the device tree's)
		}
		o := cmds.NewObject(c.Type)
		cmds.AddCatalogProps(o, c.Type, cpuVals)
		realize(o)
		name := strings.TrimPrefix(c.QOMPath, "/machine/unattached/")
		unattached.AddChild(name, o)
	}
	if devices != nil {
		t.SetDevices(devices)
	}
	if objs != nil {
		t.SetObjects(objs)
	}
	t.SetChardevs(func() []cmds.QOMChild {
		var out []cmds.QOMChild
		for _, i := range chardevs.List() {
			typ := "chardev-null"
			if c, ok := chardevs.Get(i.Label); ok {
				typ = "chardev-" + c.Spec().Backend
			}
			out = append(out, cmds.QOMChild{Name: i.Label, Type: typ})
		}
		return out
	})
	return t
}

func machineValues(p *plan) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for _, kv := range p.cfg.Machine.Props {
		out[kv.Name] = scalarJSON(kv.Value)
	}
	return out
}

// scalarJSON turns a command-line value into the JSON QEMU's qom-get would give for it.
func scalarJSON(s string) json.RawMessage {
	switch s {
	case "on", "yes", "true":
		return json.RawMessage("true")
	case "off", "no", "false":
		return json.RawMessage("false")
	}
	b, _ := json.Marshal(s)
	return b
}

// realize marks a device as QEMU's qdev does once it is created from the command line.
func realize(o *cmds.Object) {
	o.AddRaw("realized", "bool", json.RawMessage("true"))
}
