package qdev

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"tlcvm/compat/optval"
	"tlcvm/machine/catalog"
	"tlcvm/netdev"
)

// Prop is one property as the command line or device_add gives it. With JSON set (the JSON
// form of -device) the value is typed and checked as QEMU's QObject input visitor does;
// otherwise Str is a string read as QEMU's string input visitor reads QemuOpts values (what
// device_add and -device key=value come to: QEMU 7.2's device_add turns numbers into their
// text and booleans into on/off, and drops nested objects and arrays).
type Prop struct {
	Name string
	Str  string
	JSON json.RawMessage
}

// setProps checks each property against the type's properties and stores its value as
// QEMU's qom-get would give it. typ names the device in "Property 'T.P' …" errors; virtio
// proxies name their back-end for the properties that belong to it (QEMU aliases them).
func (d *Device) setProps(props []Prop) error {
	known, err := catalog.DeviceProperties(d.Type)
	if err != nil {
		return err
	}
	byName := map[string]catalog.Property{}
	for _, p := range known {
		byName[p.Name] = p
	}
	for _, p := range props {
		if p.Name == "driver" || p.Name == "bus" || p.Name == "id" {
			continue
		}
		kp, ok := byName[p.Name]
		if !ok || strings.HasPrefix(kp.Type, "child<") {
			return errf(ErrProperty, "Property '%s.%s' not found", d.Type, p.Name)
		}
		v, err := parseValue(d.PropOwner(p.Name), kp, p)
		if err != nil {
			return err
		}
		d.Props[p.Name] = v
	}
	return nil
}

// PropOwner is the type QEMU names in a property's errors: the back-end's for a virtio
// proxy's aliased properties (virtio-net-pci's mac and netdev are virtio-net-device's).
func (d *Device) PropOwner(name string) string {
	if be := backendType(d.Type); be != "" {
		if props, err := catalog.DeviceProperties(be); err == nil {
			for _, p := range props {
				if p.Name == name {
					return be
				}
			}
		}
	}
	return d.Type
}

// parseValue is the property setter: the value as JSON, or QEMU's error.
func parseValue(owner string, kp catalog.Property, p Prop) (json.RawMessage, error) {
	if p.JSON != nil {
		return parseJSONValue(owner, kp, p)
	}
	s := p.Str
	bad := func() error {
		return errf(ErrProperty, "Property '%s.%s' doesn't take value '%s'", owner, p.Name, s)
	}
	switch {
	case p.Name == "addr" && kp.Type == "int32":
		devfn, ok := parseDevfn(s)
		if !ok {
			return nil, bad()
		}
		return json.RawMessage(strconv.Itoa(devfn)), nil
	case p.Name == "mac" && kp.Type == "str":
		if _, ok := netdev.ParseMAC(s); !ok {
			return nil, bad()
		}
		return quote(s), nil
	}
	switch kp.Type {
	case "bool":
		b, ok := optval.Bool(s, optval.QAPIWords)
		if !ok {
			return nil, errf(ErrProperty, "Parameter '%s' expects 'on' or 'off'", p.Name)
		}
		return json.RawMessage(strconv.FormatBool(b)), nil
	case "int", "int8", "int16", "int32", "int64":
		v, err := optval.Int64(s)
		if err != nil {
			return nil, errf(ErrProperty, "Parameter '%s' expects integer", p.Name)
		}
		if lo, hi := intRange(kp.Type); v < lo || v > hi {
			return nil, errf(ErrProperty, "Parameter '%s' expects %s_t", p.Name, kp.Type)
		}
		return json.RawMessage(strconv.FormatInt(v, 10)), nil
	case "uint8", "uint16", "uint32", "uint64", "uint4":
		v, err := optval.Uint64(s)
		if err != nil {
			return nil, errf(ErrProperty, "Parameter '%s' expects integer", p.Name)
		}
		if hi := uintMax(kp.Type); v > hi {
			return nil, errf(ErrProperty, "Parameter '%s' expects %s_t", p.Name, kp.Type)
		}
		return json.RawMessage(strconv.FormatUint(v, 10)), nil
	case "size":
		v, err := optval.Size(s)
		if err != nil {
			return nil, errf(ErrProperty, "Parameter '%s' expects size", p.Name)
		}
		return json.RawMessage(strconv.FormatUint(v, 10)), nil
	case "OnOffAuto":
		if s != "on" && s != "off" && s != "auto" {
			return nil, errf(ErrProperty, "Parameter '%s' does not accept value '%s'", p.Name, s)
		}
	}
	return quote(s), nil
}

// parseJSONValue is the QObject input visitor of -device's JSON form.
func parseJSONValue(owner string, kp catalog.Property, p Prop) (json.RawMessage, error) {
	var v any
	d := json.NewDecoder(strings.NewReader(string(p.JSON)))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil, errf(ErrProperty, "Invalid parameter type for '%s', expected: %s", p.Name, jsonKind(kp.Type))
	}
	want := jsonKind(kp.Type)
	switch x := v.(type) {
	case bool:
		if want == "boolean" {
			return json.RawMessage(strconv.FormatBool(x)), nil
		}
	case json.Number:
		if want == "integer" || (p.Name == "addr" && kp.Type == "int32") {
			i, err := x.Int64()
			if err != nil {
				if kp.Type == "uint64" || kp.Type == "size" {
					if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
						return json.RawMessage(strconv.FormatUint(u, 10)), nil
					}
				}
				return nil, errf(ErrProperty, "Invalid parameter type for '%s', expected: %s", p.Name, want)
			}
			if p.Name == "addr" && kp.Type == "int32" {
				if i < -1 || i > 255 {
					return nil, errf(ErrProperty, "Property '%s.%s' doesn't take value '%d'", owner, p.Name, i)
				}
				return json.RawMessage(strconv.FormatInt(i, 10)), nil
			}
			if strings.HasPrefix(kp.Type, "uint") {
				if i < 0 || uint64(i) > uintMax(kp.Type) {
					return nil, errf(ErrProperty, "Parameter '%s' expects %s_t", p.Name, kp.Type)
				}
			} else if lo, hi := intRange(kp.Type); kp.Type != "size" && (i < lo || i > hi) {
				return nil, errf(ErrProperty, "Parameter '%s' expects %s_t", p.Name, kp.Type)
			}
			return json.RawMessage(strconv.FormatInt(i, 10)), nil
		}
	case string:
		if want == "string" || (p.Name == "addr" && kp.Type == "int32") {
			return parseValue(owner, kp, Prop{Name: p.Name, Str: x})
		}
	}
	return nil, errf(ErrProperty, "Invalid parameter type for '%s', expected: %s", p.Name, want)
}

// jsonKind is the JSON type the QObject input visitor wants for a property type.
func jsonKind(typ string) string {
	switch {
	case typ == "bool":
		return "boolean"
	case typ == "int", typ == "size", strings.HasPrefix(typ, "int"), strings.HasPrefix(typ, "uint"):
		return "integer"
	}
	return "string"
}

func intRange(typ string) (int64, int64) {
	switch typ {
	case "int8":
		return math.MinInt8, math.MaxInt8
	case "int16":
		return math.MinInt16, math.MaxInt16
	case "int32":
		return math.MinInt32, math.MaxInt32
	}
	return math.MinInt64, math.MaxInt64
}

func uintMax(typ string) uint64 {
	switch typ {
	case "uint4":
		return 15
	case "uint8":
		return math.MaxUint8
	case "uint16":
		return math.MaxUint16
	case "uint32":
		return math.MaxUint32
	}
	return math.MaxUint64
}

func quote(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// parseDevfn is the PCI "addr" property: "slot[.function]", each hex (QEMU's
// set_pci_devfn: slot < 32, function < 8); the devfn (slot*8+function).
func parseDevfn(s string) (int, bool) {
	slot, fn, hasFn := strings.Cut(s, ".")
	parse := func(x string, max uint64) (int, bool) {
		x = strings.TrimPrefix(strings.TrimPrefix(x, "0x"), "0X")
		if x == "" || len(x) > 8 {
			return 0, false
		}
		v, err := strconv.ParseUint(x, 16, 32)
		if err != nil || v > max {
			return 0, false
		}
		return int(v), true
	}
	sl, ok := parse(slot, 31)
	if !ok {
		return 0, false
	}
	f := 0
	if hasFn {
		if f, ok = parse(fn, 7); !ok {
			return 0, false
		}
	}
	return sl<<3 | f, true
}
