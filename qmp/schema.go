package qmp

import (
	"fmt"
	"reflect"
	"strconv"
)

// The introspection schema, generated like QEMU's scripts/qapi/introspect.py: commands and
// events in registration order, then every type they use, in order of first use, breadth
// first. Type names are masked as decimal numbers assigned on first use; builtins keep their
// names ("str", "int", "number", "bool", "null", "any"); every integer type is "int"; arrays
// are "[element]". A command without arguments or return value, and an event without data,
// refer to the empty object. Optional members carry "default": null. Entry objects are built
// in introspect.py's insertion order and written in QDict order, so keys appear as QEMU's do.

type schemaGen struct {
	names map[*typeInfo]string
	used  []usedType
	seen  map[string]bool
	empty *typeInfo
	next  int
}

type usedType struct {
	ti      *typeInfo // nil for a builtin
	builtin string
	array   *typeInfo // element type, for arrays
}

var builtinJSON = map[string]string{
	"str": "string", "int": "int", "number": "number", "bool": "boolean", "null": "null", "any": "value",
}

func genSchema(entities []any) *Value {
	g := &schemaGen{names: map[*typeInfo]string{}, seen: map[string]bool{}, empty: &typeInfo{kind: tEmpty}}
	out := Array()
	for _, e := range entities {
		switch e := e.(type) {
		case *command:
			n := Object()
			n.Set("arg-type", String(g.use(implicit(e.argInfo()))))
			var ret *typeInfo
			if e.Returns != nil {
				ret = infoOf(reflect.TypeOf(e.Returns))
			}
			n.Set("ret-type", String(g.use(ret)))
			if e.AllowOOB {
				n.Set("allow-oob", Bool(true))
			}
			out.Append(g.entry(n, e.Name, "command", e.Features))
		case *event:
			n := Object()
			var data *typeInfo
			if e.data != nil {
				data = infoOf(reflect.TypeOf(e.data))
			}
			n.Set("arg-type", String(g.use(implicit(data))))
			out.Append(g.entry(n, e.name, "event", e.features))
		}
	}
	for i := 0; i < len(g.used); i++ { // g.used grows while types are visited
		out.Append(g.visit(g.used[i]))
	}
	return out
}

// implicit gives a command's arguments or an event's data its own schema type, as QEMU's
// implicit q_obj_NAME-arg types are, even when Go types are shared between commands.
func implicit(ti *typeInfo) *typeInfo {
	if ti == nil || ti.kind != tObject {
		return ti
	}
	c := *ti
	return &c
}

func (g *schemaGen) entry(n *Value, name, meta string, features []string) *Value {
	n.Set("name", String(name))
	n.Set("meta-type", String(meta))
	if len(features) > 0 {
		n.Set("features", strArray(features))
	}
	return n
}

func strArray(ss []string) *Value {
	a := Array()
	for _, s := range ss {
		a.Append(String(s))
	}
	return a
}

func builtinName(ti *typeInfo) string {
	switch ti.kind {
	case tStr:
		return "str"
	case tBool:
		return "bool"
	case tInt, tUint:
		return "int"
	case tNumber:
		return "number"
	case tAny:
		return "any"
	case tNull:
		return "null"
	}
	return ""
}

// key identifies a type in the used list without naming it.
func (g *schemaGen) key(ti *typeInfo) string {
	if b := builtinName(ti); b != "" {
		return b
	}
	if ti.kind == tArray {
		return "[" + g.key(ti.elem) + "]"
	}
	return fmt.Sprintf("%p", ti)
}

// use is introspect.py _use_type: queue the type, return its (masked) name.
func (g *schemaGen) use(ti *typeInfo) string {
	if ti == nil || ti.kind == tEmpty {
		ti = g.empty
	}
	k := g.key(ti)
	if !g.seen[k] {
		g.seen[k] = true
		switch {
		case builtinName(ti) != "":
			g.used = append(g.used, usedType{builtin: k})
		case ti.kind == tArray:
			g.used = append(g.used, usedType{array: ti.elem})
		default:
			g.used = append(g.used, usedType{ti: ti})
		}
	}
	if b := builtinName(ti); b != "" {
		return b
	}
	if ti.kind == tArray {
		return "[" + g.use(ti.elem) + "]"
	}
	name, ok := g.names[ti]
	if !ok {
		name = strconv.Itoa(g.next)
		g.next++
		g.names[ti] = name
	}
	return name
}

func (g *schemaGen) visit(u usedType) *Value {
	n := Object()
	switch {
	case u.builtin != "":
		n.Set("json-type", String(builtinJSON[u.builtin]))
		return g.entry(n, u.builtin, "builtin", nil)
	case u.array != nil:
		elem := g.use(u.array)
		n.Set("element-type", String(elem))
		return g.entry(n, "["+elem+"]", "array", nil)
	}
	ti := u.ti
	name := g.names[ti]
	switch ti.kind {
	case tEnum:
		var feats map[string][]string
		if z, ok := zeroOf(ti.t, enumFeaturesIface); ok {
			feats = z.(EnumFeatures).EnumFeatures()
		}
		members := Array()
		for _, v := range ti.enum {
			m := Object()
			m.Set("name", String(v))
			if f := feats[v]; len(f) > 0 {
				m.Set("features", strArray(f))
			}
			members.Append(m)
		}
		n.Set("members", members)
		n.Set("values", strArray(ti.enum))
		return g.entry(n, name, "enum", nil)
	case tCustom:
		var p SchemaProvider
		if z, ok := zeroOf(ti.t, providerIface); ok {
			p = z.(SchemaProvider)
		} else {
			panic(fmt.Sprintf("qmp: %v decodes itself but does not implement SchemaProvider", ti.t))
		}
		node := p.QAPISchema(func(zero any) string { return g.use(infoOf(reflect.TypeOf(zero))) })
		out := Object()
		for _, m := range node.Members() {
			out.Set(m.Key, m.Value)
		}
		out.Set("name", String(name))
		return out
	}
	// Objects, including the empty one.
	members := Array()
	for _, f := range ti.fields {
		m := Object()
		m.Set("name", String(f.name))
		m.Set("type", String(g.use(f.ti)))
		if f.optional {
			m.Set("default", Null())
		}
		if len(f.features) > 0 {
			m.Set("features", strArray(f.features))
		}
		members.Append(m)
	}
	n.Set("members", members)
	if u := ti.union; u != nil {
		n.Set("tag", String(u.tag))
		// The variants the union declares come first, in the tag enum's order; the tag values
		// it leaves implicit (empty branches) follow, as QAPI's introspection lists them
		// (netdev_add's "none" is last).
		variants := Array()
		for _, declared := range []bool{true, false} {
			for _, c := range u.cases {
				if (u.variants[c] != nil) != declared {
					continue
				}
				v := Object()
				v.Set("case", String(c))
				v.Set("type", String(g.use(u.variants[c])))
				variants.Append(v)
			}
		}
		n.Set("variants", variants)
	}
	return g.entry(n, name, "object", nil)
}
