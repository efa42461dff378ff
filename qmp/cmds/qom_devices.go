package cmds

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync/atomic"

	"tlcvm/machine/catalog"
	"tlcvm/qdev"
	"tlcvm/qmp"
)

// The QOM view of the device tree: /machine/peripheral and /machine/peripheral-anon list the
// tree's devices (which come and go at run time), each an object of its type with the
// catalogue's properties (the values it was given, else the defaults), QEMU's device
// properties (parent_bus, realized, hotplugged, hotpluggable), its buses and its virtio
// back-end as children. Objects are made once per device and kept while it lives.

// SetDevices makes the peripheral containers list the device tree's devices.
func (t *Tree) SetDevices(devs *qdev.Tree) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.devices = devs
	t.devObjs = map[*qdev.Device]*Object{}
}

// refreshDevices rebuilds the peripheral containers from the device tree; mu held.
func (t *Tree) refreshDevices() {
	m := t.root.Child("machine")
	if t.devices == nil || m == nil {
		return
	}
	periph, anon := m.Child("peripheral"), m.Child("peripheral-anon")
	if periph == nil || anon == nil {
		return
	}
	periph.children, anon.children = nil, nil
	live := map[*qdev.Device]*Object{}
	t.devices.Locked(func(devs []*qdev.Device) {
		for _, d := range devs {
			o := t.devObjs[d]
			if o == nil {
				o = deviceObject(d)
			}
			live[d] = o
			parent, name := periph, d.ID
			if d.ID == "" {
				parent, name = anon, strings.TrimPrefix(d.Path, "/machine/peripheral-anon/")
			}
			parent.AddChild(name, o)
		}
	})
	t.devObjs = live
}

// deviceObject is the QOM object of a device; the tree's lock is held.
func deviceObject(d *qdev.Device) *Object {
	o := NewObject(d.Type)
	parentBus := ""
	if d.Bus != nil {
		parentBus = d.Bus.Path()
	}
	o.AddValue("parent_bus", "link<bus>", parentBus, false)
	o.AddProp(&Prop{Name: "realized", Type: "bool", Get: func() any { return true },
		Set: func(json.RawMessage) error { return nil }})
	hotpluggable := true
	if c, ok := catalog.LookupDevice(d.Type); ok {
		hotpluggable = c.Hotpluggable
	}
	// In QEMU's order (device_class_init adds hotplugged before hotpluggable's getter is
	// listed): a map's order would vary from one qom-list to the next.
	for _, f := range []struct {
		name string
		v    bool
	}{{"hotplugged", d.Hotplugged}, {"hotpluggable", hotpluggable}} {
		name, v := f.name, f.v
		o.AddProp(&Prop{Name: name, Type: "bool", Get: func() any { return v },
			Set: func(json.RawMessage) error {
				return qmp.GenericError("Property '%s.%s' is not writable", d.Type, name)
			}})
	}
	vals := map[string]json.RawMessage{}
	for k, v := range d.Props {
		vals[k] = v
	}
	AddCatalogProps(o, d.Type, vals)
	// Properties of a realized device are fixed: QEMU's qdev setters refuse.
	owner := fmt.Sprintf("device '%s'", d.ID)
	if d.ID == "" {
		owner = "anonymous device"
	}
	for _, p := range o.props {
		if p.Set == nil || p.Name == "realized" || p.Name == "hotplugged" || p.Name == "hotpluggable" {
			continue
		}
		name, typ, who := p.Name, d.Type, owner
		if be := d.Backend; be != nil && hasProp(be.Type, name) {
			typ, who = be.Type, "anonymous device" // aliased to the back-end
		}
		p.Set = func(json.RawMessage) error {
			return qmp.GenericError("Attempt to set property '%s' on %s (type '%s') after it was realized", name, who, typ)
		}
	}
	if isBalloon(d.Type) {
		// virtio-balloon-pci aliases its back-end's property.
		o.AddProp(&Prop{Name: "guest-stats", Type: "guest statistics",
			Get: func() any { return balloonGuestStats },
			Set: func(json.RawMessage) error {
				return qmp.GenericError("Property 'virtio-balloon-device.guest-stats' is not writable")
			}})
	}
	for _, b := range d.Buses {
		o.AddChild(b.Name, busObject(b))
	}
	if d.Backend != nil {
		be := deviceObject(d.Backend)
		o.AddChild("virtio-backend", be)
		if isBalloon(d.Backend.Type) {
			balloonPollInterval(d, o, be)
		}
	}
	return o
}

// balloonPollInterval gives a virtio-balloon (its proxy o and back-end be, which aliases
// it) the guest-stats-polling-interval QEMU's balloon adds at instance_init: a dynamic
// property, settable once realized (libvirt's dommemstat --period and the <stats period>
// of <memballoon> set it), with balloon_stats_set_poll_interval's checks. tlcvm's guest has
// no balloon driver, so no statistics come at any interval (guest-stats stays unset).
func balloonPollInterval(d *qdev.Device, o, be *Object) {
	const name = "guest-stats-polling-interval"
	var v atomic.Int64
	for _, dev := range []*qdev.Device{d, d.Backend} {
		if raw, ok := dev.Props[name]; ok {
			var n int64
			if json.Unmarshal(raw, &n) == nil {
				v.Store(n)
			}
		}
	}
	p := &Prop{Name: name, Type: "int", Get: func() any { return v.Load() },
		Set: func(raw json.RawMessage) error {
			var n int64
			if err := json.Unmarshal(raw, &n); err != nil {
				return qmp.GenericError("Invalid parameter type for '%s', expected: integer", name)
			}
			switch {
			case n < 0:
				return qmp.GenericError("timer value must be greater than zero")
			case n > math.MaxUint32:
				return qmp.GenericError("timer value is too big")
			}
			v.Store(n)
			return nil
		}}
	o.AddProp(p)
	be.AddProp(p)
}

func isBalloon(typ string) bool {
	return catalog.IsA(typ, "virtio-balloon-pci-base") || catalog.IsA(typ, "virtio-balloon-device")
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

func busObject(b *qdev.Bus) *Object {
	o := NewObject(b.Type)
	o.AddValue("realized", "bool", true, false)
	for i, d := range b.Devices() {
		o.AddValue(fmt.Sprintf("child[%d]", i), "link<"+d.Type+">", d.Path, false)
	}
	return o
}

func hasProp(typename, name string) bool {
	props, err := catalog.DeviceProperties(typename)
	if err != nil {
		return false
	}
	for _, p := range props {
		if p.Name == name {
			return true
		}
	}
	return false
}

// AddCatalogProps gives o the properties the catalogue lists for typename, with values from
// vals (JSON text) or the catalogue's default. Properties are writable (qom-set) when their
// value is a plain JSON scalar.
func AddCatalogProps(o *Object, typename string, vals map[string]json.RawMessage) {
	props, err := catalog.ObjectProperties(typename)
	if err != nil {
		return
	}
	for _, pr := range props {
		// "type" is every object's own; children are added to the tree as objects; the
		// device properties above are the device's own.
		if pr.Name == "type" || strings.HasPrefix(pr.Type, "child<") || o.prop(pr.Name) != nil {
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
