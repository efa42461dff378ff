package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"tlcvm/chardev"
	"tlcvm/compat"
	"tlcvm/machine"
	"tlcvm/machine/catalog"
	"tlcvm/qdev"
	"tlcvm/qmp/cmds"
)

// buildQOM assembles the QOM composition tree qom-list/qom-get/qom-set see: the machine with
// its catalogue properties, the vCPUs under /machine/unattached with the property values of
// their CPU model's full expansion, the device tree's devices under /machine/peripheral(-anon),
// -object instances under /objects and the chardevs under /chardevs.
func buildQOM(p *plan, m *machine.Machine, chardevs *chardev.Registry, devices *qdev.Tree) *cmds.Tree {
	t := cmds.NewTree()
	root := t.Root()
	// Children in QEMU's creation order: the machine, /chardevs, then /objects when the
	// board creates its RAM backend ("pc.ram") or the command line has -object.
	mach := root.AddChild("machine", cmds.NewObject(p.machine.TypeName()))
	cmds.AddCatalogProps(mach, p.machine.TypeName(), machineValues(p))
	root.AddChild("chardevs", cmds.NewObject("container"))
	var objects *cmds.Object
	boardRAM := p.machine.DefaultRAMID != "" && p.mcfg.RAMSize > 0 && !hasObject(p.cfg, p.machine.DefaultRAMID)
	if boardRAM || len(p.cfg.Objects) > 0 {
		objects = root.AddChild("objects", cmds.NewObject("container"))
	}
	if boardRAM {
		ram := objects.AddChild(p.machine.DefaultRAMID, cmds.NewObject("memory-backend-ram"))
		cmds.AddCatalogProps(ram, "memory-backend-ram", map[string]json.RawMessage{
			"size": json.RawMessage(fmt.Sprint(p.mcfg.RAMSize))})
	}
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
		if !c.Plugged {
			continue
		}
		o := cmds.NewObject(c.Type)
		cmds.AddCatalogProps(o, c.Type, cpuVals)
		realize(o)
		name := strings.TrimPrefix(c.QOMPath, "/machine/unattached/")
		unattached.AddChild(name, o)
	}
	for _, ob := range p.cfg.Objects {
		o := cmds.NewObject(ob.QomType)
		cmds.AddCatalogProps(o, ob.QomType, nil)
		objects.AddChild(ob.ID, o)
	}
	if devices != nil {
		t.SetDevices(devices)
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

func hasObject(cfg *compat.Config, id string) bool {
	for _, o := range cfg.Objects {
		if o.ID == id {
			return true
		}
	}
	return false
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
