package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"tlcvm/chardev"
	"tlcvm/compat"
	"tlcvm/machine"
	"tlcvm/machine/catalog"
	"tlcvm/qmp"
	"tlcvm/qmp/cmds"
)

// buildQOM assembles the QOM composition tree qom-list/qom-get/qom-set see: the machine with
// its catalogue properties, the vCPUs under /machine/unattached with the property values of
// their CPU model's full expansion, -device instances under /machine/peripheral(-anon),
// -object instances under /objects and the chardevs under /chardevs.
func buildQOM(p *plan, m *machine.Machine, chardevs *chardev.Registry) *cmds.Tree {
	t := cmds.NewTree()
	root := t.Root()
	// Children in QEMU's creation order: the machine, /chardevs, then /objects when the
	// board creates its RAM backend ("pc.ram") or the command line has -object.
	mach := root.AddChild("machine", cmds.NewObject(p.machine.TypeName()))
	addCatalogProps(mach, p.machine.TypeName(), machineValues(p))
	root.AddChild("chardevs", cmds.NewObject("container"))
	var objects *cmds.Object
	boardRAM := p.machine.DefaultRAMID != "" && p.mcfg.RAMSize > 0 && !hasObject(p.cfg, p.machine.DefaultRAMID)
	if boardRAM || len(p.cfg.Objects) > 0 {
		objects = root.AddChild("objects", cmds.NewObject("container"))
	}
	if boardRAM {
		ram := objects.AddChild(p.machine.DefaultRAMID, cmds.NewObject("memory-backend-ram"))
		addCatalogProps(ram, "memory-backend-ram", map[string]json.RawMessage{
			"size": json.RawMessage(fmt.Sprint(p.mcfg.RAMSize))})
	}
	unattached := mach.AddChild("unattached", cmds.NewObject("container"))
	peripheral := mach.AddChild("peripheral", cmds.NewObject("container"))
	anon := mach.AddChild("peripheral-anon", cmds.NewObject("container"))

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
		addCatalogProps(o, c.Type, cpuVals)
		realize(o)
		name := strings.TrimPrefix(c.QOMPath, "/machine/unattached/")
		unattached.AddChild(name, o)
	}
	for i, d := range p.cfg.Devices {
		o := cmds.NewObject(d.Driver)
		addCatalogProps(o, d.Driver, deviceValues(d))
		if isBalloon(d.Driver) {
			o.AddProp(&cmds.Prop{Name: "guest-stats", Type: "guest statistics",
				Get: func() any { return balloonGuestStats },
				Set: func(json.RawMessage) error {
					return qmp.GenericError("Property 'virtio-balloon-device.guest-stats' is not writable")
				}})
		}
		realize(o)
		if d.ID != "" {
			peripheral.AddChild(d.ID, o)
		} else {
			anon.AddChild(fmt.Sprintf("device[%d]", anonIndex(p.cfg, i)), o)
		}
	}
	for _, ob := range p.cfg.Objects {
		o := cmds.NewObject(ob.QomType)
		addCatalogProps(o, ob.QomType, nil)
		objects.AddChild(ob.ID, o)
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

// addCatalogProps gives o the properties the catalogue lists for typename, with values from
// vals (JSON text) or the catalogue's default. Properties are writable (qom-set) when their
// value is a plain JSON scalar.
func addCatalogProps(o *cmds.Object, typename string, vals map[string]json.RawMessage) {
	props, err := catalog.ObjectProperties(typename)
	if err != nil {
		return
	}
	for _, pr := range props {
		// "type" is every object's own; children are added to the tree as objects.
		if pr.Name == "type" || strings.HasPrefix(pr.Type, "child<") {
			continue
		}
		raw, ok := vals[pr.Name]
		if !ok {
			raw = pr.DefaultValue
		}
		if len(raw) == 0 {
			raw = zeroValue(pr.Type)
		}
		o.AddRaw(pr.Name, pr.Type, raw)
	}
}

func machineValues(p *plan) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for _, kv := range p.cfg.Machine.Props {
		out[kv.Name] = scalarJSON(kv.Value)
	}
	return out
}

// deviceValues are the properties a -device line set, as JSON.
func deviceValues(d compat.Device) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	if d.Opts != nil {
		for _, kv := range d.Opts.List {
			out[kv.Name] = scalarJSON(kv.Value)
		}
	}
	if d.JSON != nil {
		for _, k := range d.JSON.Keys() {
			out[k] = json.RawMessage(d.JSON.Get(k).Raw)
		}
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

// anonIndex is the "device[N]" number QEMU gives the i-th -device when it has no id: N
// counts only the anonymous devices before it.
func anonIndex(cfg *compat.Config, i int) int {
	n := 0
	for _, d := range cfg.Devices[:i] {
		if d.ID == "" {
			n++
		}
	}
	return n
}

// zeroValue is what qom-get answers for a property the catalogue gives no value for: the
// zero of its type (links and strings read as "", as an unset link does in QEMU).
func zeroValue(typ string) json.RawMessage {
	switch {
	case typ == "bool":
		return json.RawMessage("false")
	case typ == "int" || strings.HasPrefix(typ, "int") || strings.HasPrefix(typ, "uint") || typ == "size":
		return json.RawMessage("0")
	case typ == "str" || typ == "string" || strings.HasPrefix(typ, "link<"):
		return json.RawMessage(`""`)
	case strings.HasSuffix(typ, "List") || typ == "X86CPUFeatureWordInfo":
		// X86CPUFeatureWordInfo is how QEMU names the type of the feature-words lists.
		return json.RawMessage("[]")
	}
	return nil
}

// balloonGuestStats is a virtio-balloon's "guest-stats" while the guest has sent no
// statistics (tlcvm's guest has no balloon driver): every statistic -1 as a u64, never
// updated (QEMU's balloon_stats_get_all). The keys are in QEMU's insertion order
// (balloon_stat_names): the reply is written in QDict order from it, as QEMU writes it.
// libvirt's domstats reads last-update from it (balloon.last-update).
var balloonGuestStats = func() json.RawMessage {
	var b strings.Builder
	b.WriteString(`{"last-update": 0, "stats": {`)
	for i, n := range []string{"swap-in", "swap-out", "major-faults", "minor-faults", "free-memory",
		"total-memory", "available-memory", "disk-caches", "htlb-pgalloc", "htlb-pgfail"} {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `"stat-%s": 18446744073709551615`, n)
	}
	b.WriteString("}}")
	return json.RawMessage(b.String())
}()

// realize marks a device as QEMU's qdev does once it is created from the command line.
func realize(o *cmds.Object) {
	o.AddRaw("realized", "bool", json.RawMessage("true"))
}
