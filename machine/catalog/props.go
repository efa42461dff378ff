package catalog

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"tlcvm/machine/catalog/internal/pack"
)

// Property is one entry of device-list-properties or qom-list-properties
// (QAPI ObjectPropertyInfo), fields in the order QEMU 7.2 emits them.
// DefaultValue is QEMU's JSON text of the default, absent when QEMU gives none.
type Property struct {
	DefaultValue json.RawMessage `json:"default-value,omitempty"`
	Name         string          `json:"name"`
	Description  string          `json:"description,omitempty"`
	Type         string          `json:"type"`
}

// propRec is one generated row of propTable; def is raw JSON or "".
type propRec struct {
	name, typ, desc, def string
}

// propErr is how QEMU answered a property listing for a type.
type propErr uint8

const (
	propOK          propErr = iota // a list
	propNotDevice                  // "Parameter 'typename' expects a non-abstract device type"
	propNotQOM                     // "Parameter 'typename' expects a QOM type" (interfaces)
	propNotFound                   // listed by qom-list-types, but its module does not load
	propUnavailable                // QEMU aborts introspecting it
)

var propCache sync.Map // "d:" or "q:" + typename -> []Property

// DeviceProperties answers device-list-properties, in QEMU's order.
// Unknown types give ErrNotFound "Device 'x' not found"; abstract and
// non-device types give ErrInvalidType.
func DeviceProperties(typename string) ([]Property, error) {
	t, ok := lookupRec(typename)
	if !ok || t.devErr == propNotFound {
		return nil, newError(ErrNotFound, "Device '%s' not found", typename)
	}
	return t.props("d:", t.devErr, t.dev)
}

// ObjectProperties answers qom-list-properties, in QEMU's order. Unknown
// types give ErrNotFound "Class 'x' not found"; interfaces give
// ErrInvalidType.
func ObjectProperties(typename string) ([]Property, error) {
	t, ok := lookupRec(typename)
	if !ok || t.qomErr == propNotFound {
		return nil, newError(ErrNotFound, "Class '%s' not found", typename)
	}
	return t.props("q:", t.qomErr, t.qom)
}

func (t *typeRec) props(kind string, state propErr, packed string) ([]Property, error) {
	switch state {
	case propNotDevice:
		return nil, newError(ErrInvalidType, "Parameter 'typename' expects a non-abstract device type")
	case propNotQOM:
		return nil, newError(ErrInvalidType, "Parameter 'typename' expects a QOM type")
	case propUnavailable:
		return nil, newError(ErrUnavailable, "Type '%s' cannot be introspected", t.name)
	}
	if v, ok := propCache.Load(kind + t.name); ok {
		return slices.Clone(v.([]Property)), nil
	}
	idx, err := pack.Decode(packed)
	if err != nil {
		panic(fmt.Sprintf("catalog: generated property list of %s: %v", t.name, err))
	}
	out := make([]Property, len(idx))
	for i, j := range idx {
		r := &propTable[j]
		out[i] = Property{Name: r.name, Type: r.typ, Description: r.desc}
		if r.def != "" {
			out[i].DefaultValue = json.RawMessage(r.def)
		}
	}
	propCache.Store(kind+t.name, out)
	return slices.Clone(out), nil
}

// DeviceOptionsHelp is the text of `-device typename,help` (and HMP
// `device_add typename,help`): "<typename> options:" and one line per
// property, sorted, as qdev_device_help and object_property_help print them.
// Errors are DeviceProperties'.
func DeviceOptionsHelp(typename string) (string, error) {
	props, err := DeviceProperties(typename)
	if err != nil {
		return "", err
	}
	return optionsHelp(typename, props), nil
}

func optionsHelp(typename string, props []Property) string {
	var b strings.Builder
	if len(props) == 0 {
		fmt.Fprintf(&b, "There are no options for %s.\n", typename)
		return b.String()
	}
	fmt.Fprintf(&b, "%s options:\n", typename)
	lines := make([]string, len(props))
	for i, p := range props {
		lines[i] = propertyHelp(p)
	}
	slices.Sort(lines) // qemu_pstrcmp0: plain byte order
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// propertyHelp is qom/object_interfaces.c object_property_help.
func propertyHelp(p Property) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %s=<%s>", p.Name, p.Type)
	if p.Description != "" || len(p.DefaultValue) > 0 {
		if b.Len() < 24 {
			b.WriteString(strings.Repeat(" ", 24-b.Len()))
		}
		b.WriteString(" - ")
	}
	b.WriteString(p.Description)
	if len(p.DefaultValue) > 0 {
		fmt.Fprintf(&b, " (default: %s)", p.DefaultValue)
	}
	return b.String()
}
