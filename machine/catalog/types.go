package catalog

import (
	"slices"
	"sync"
)

// Type is one entry of qom-list-types (QAPI ObjectTypeInfo), fields in the
// order QEMU 7.2 emits them. Abstract is present only when true; Parent is
// absent only for the roots "object" and "interface".
type Type struct {
	Abstract bool   `json:"abstract,omitempty"`
	Name     string `json:"name"`
	Parent   string `json:"parent,omitempty"`
}

// typeRec is one generated row of typeTable.
type typeRec struct {
	name, parent string
	abstract     bool
	ifaces       []string // interfaces the type adds itself
	devErr       propErr  // device-list-properties outcome
	dev          string   // packed propTable indexes when devErr == propOK
	qomErr       propErr  // qom-list-properties outcome
	qom          string
}

var typeIndex = sync.OnceValue(func() map[string]int {
	m := make(map[string]int, len(typeTable))
	for i, t := range typeTable {
		m[t.name] = i
	}
	return m
})

func lookupRec(name string) (*typeRec, bool) {
	i, ok := typeIndex()[name]
	if !ok {
		return nil, false
	}
	return &typeTable[i], true
}

func (t *typeRec) info() Type { return Type{Abstract: t.abstract, Name: t.name, Parent: t.parent} }

// Types returns every QOM type, abstract ones included, in QEMU's order.
func Types() []Type {
	out := make([]Type, len(typeTable))
	for i := range typeTable {
		out[i] = typeTable[i].info()
	}
	return out
}

// LookupType finds a type by its QOM name.
func LookupType(name string) (Type, bool) {
	t, ok := lookupRec(name)
	if !ok {
		return Type{}, false
	}
	return t.info(), true
}

// ListTypes answers qom-list-types: the types that are implements or have
// it as an ancestor or interface (all types when implements is ""), without
// abstract types unless abstract is set. An unknown implements gives an
// empty list, as in QEMU. The order is QEMU's.
func ListTypes(implements string, abstract bool) []Type {
	out := []Type{}
	for i := range typeTable {
		t := &typeTable[i]
		if t.abstract && !abstract {
			continue
		}
		if implements != "" && !Implements(t.name, implements) {
			continue
		}
		out = append(out, t.info())
	}
	return out
}

// Ancestors returns name and its parents up to the root, nearest first
// ("isa-serial", "isa-device", "device", "object"); nil if name is unknown.
func Ancestors(name string) []string {
	var out []string
	for t, ok := lookupRec(name); ok; t, ok = lookupRec(t.parent) {
		out = append(out, t.name)
	}
	return out
}

// IsA reports whether name is target or descends from it (parents only).
func IsA(name, target string) bool { return slices.Contains(Ancestors(name), target) }

// Implements reports whether an object of type name can be cast to target,
// as QEMU's object_class_dynamic_cast decides (and so qom-list-types
// implements=): target is the type itself or an ancestor; or, when target is
// an interface and the type has interfaces, exactly one of the type's
// interfaces (own or inherited) is or extends target. A type with two
// interfaces is therefore not listed for implements=interface, as in QEMU.
func Implements(name, target string) bool {
	if _, ok := lookupRec(name); !ok {
		return false
	}
	if name == target {
		return true
	}
	if entries := Interfaces(name); len(entries) > 0 && IsA(target, "interface") {
		n := 0
		for _, e := range entries {
			if IsA(e, target) {
				n++
			}
		}
		return n == 1
	}
	return IsA(name, target)
}

// Interfaces lists the interfaces name implements, its own and inherited,
// sorted. (In QEMU 7.2 every interface extends "interface" directly.)
func Interfaces(name string) []string {
	var out []string
	for t, ok := lookupRec(name); ok; t, ok = lookupRec(t.parent) {
		for _, i := range t.ifaces {
			if !slices.Contains(out, i) {
				out = append(out, i)
			}
		}
	}
	slices.Sort(out)
	return out
}
