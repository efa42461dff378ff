package cmds

import (
	"strconv"

	"tlcvm/machine/catalog"
	"tlcvm/qdev"
	"tlcvm/qmp"
)

// device_add and device_del, through the device tree (package qdev): any device model of
// the catalogue by name or alias, placed on its bus as QEMU places it, given its behaviour
// by the model the composition root registered for its type (disks, NICs, serial ports,
// DIMMs). DEVICE_DELETED is emitted by the tree's Deleted callback: at once for devices on
// SCSI, USB and virtio-serial buses, once the guest has ejected them for PCI devices and
// DIMMs.

// DeviceAddArgs describes device_add's declared members (it takes any property besides).
type DeviceAddArgs struct {
	Driver string  `json:"driver"`
	Bus    *string `json:"bus,omitempty"`
	ID     *string `json:"id,omitempty"`
}

// DeviceHelpArgs is x-tlcvm-device-help's argument.
type DeviceHelpArgs struct {
	Driver string `json:"driver"`
}

// TextInfo is the reply of the internal commands that give HMP a text to print.
type TextInfo struct {
	Text string `json:"text"`
}

// DeviceDelArgs is device_del's argument.
type DeviceDelArgs struct {
	ID string `json:"id"`
}

// DeviceDeletedData is DEVICE_DELETED's data.
type DeviceDeletedData struct {
	qmp.QAPIOrder
	Device string `json:"device,omitempty"` // "" for an anonymous device
	Path   string `json:"path"`
}

func registerDevices(r *qmp.Registry, d *Deps) {
	if d.Devices == nil {
		return
	}
	r.RegisterEvent("DEVICE_DELETED", DeviceDeletedData{})
	r.Register(
		qmp.Command{Name: "device_add", Args: &DeviceAddArgs{}, OpenArgs: true, Features: []string{"json-cli", "json-cli-hotplug"},
			Run: func(c *qmp.Call) (any, error) {
				s, err := DeviceSpec(c.Args.(*qmp.Value))
				if err != nil {
					return nil, err
				}
				s.Hotplug = true
				_, err = d.Devices.Add(s)
				return nil, err
			}},
		qmp.Command{Name: "device_del", Args: &DeviceDelArgs{},
			Run: func(c *qmp.Call) (any, error) {
				id := c.Args.(*DeviceDelArgs).ID
				if h, ok := cpuHotplugOf(d); ok {
					if isCPU, err := cpuDeviceDel(d, h, id, func(data DeviceDeletedData) {
						c.Server().Emit("DEVICE_DELETED", data)
					}); isCPU {
						return nil, err
					}
				}
				return nil, d.Devices.Del(id)
			}},
		// HMP device_add help and device_add DRIVER,help (qdev_device_help).
		qmp.Command{Name: "x-tlcvm-device-help", Internal: true, Args: &DeviceHelpArgs{}, Returns: TextInfo{},
			Run: func(c *qmp.Call) (any, error) {
				drv := c.Args.(*DeviceHelpArgs).Driver
				if drv == "help" || drv == "?" {
					return TextInfo{Text: catalog.DeviceHelp()}, nil
				}
				text, err := catalog.DeviceOptionsHelp(catalog.ResolveDeviceName(drv))
				return TextInfo{Text: text}, err
			}},
	)
}

// DeviceSpec reads device_add's arguments as QEMU 7.2's qemu_opts_from_qdict does: driver,
// id and bus are strings; every other member becomes a property string (numbers as their
// text, booleans as on/off); nested objects and arrays are dropped.
func DeviceSpec(args *qmp.Value) (qdev.Spec, error) {
	var s qdev.Spec
	str := func(k string) (string, bool, error) {
		v := args.Get(k)
		if v == nil {
			return "", false, nil
		}
		x, ok := v.AsString()
		if !ok {
			return "", false, qmp.GenericError("Invalid parameter type for '%s', expected: string", k)
		}
		return x, true, nil
	}
	var ok bool
	var err error
	if s.Driver, ok, err = str("driver"); err != nil {
		return s, err
	} else if !ok {
		return s, qmp.GenericError("Parameter 'driver' is missing")
	}
	if s.ID, _, err = str("id"); err != nil {
		return s, err
	}
	if s.Bus, _, err = str("bus"); err != nil {
		return s, err
	}
	for _, m := range args.Members() {
		switch m.Key {
		case "driver", "id", "bus":
			continue
		}
		var v string
		switch m.Value.Kind() {
		case qmp.KindString:
			v, _ = m.Value.AsString()
		case qmp.KindBool:
			b, _ := m.Value.AsBool()
			v = "off"
			if b {
				v = "on"
			}
		case qmp.KindInt:
			i, _ := m.Value.AsInt64()
			v = strconv.FormatInt(i, 10)
		case qmp.KindUint:
			u, _ := m.Value.AsUint64()
			v = strconv.FormatUint(u, 10)
		case qmp.KindFloat:
			f, _ := m.Value.AsFloat64()
			v = strconv.FormatFloat(f, 'g', 17, 64)
		default:
			continue
		}
		s.Props = append(s.Props, qdev.Prop{Name: m.Key, Str: v})
	}
	return s, nil
}
