package qmp

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Strict argument decoding, a port of qapi/qobject-input-visitor.c and the intN/uintN/enum
// checks of qapi/qapi-visit-core.c, with QEMU's texts (all GenericError):
//
//	Parameter 'a.b' is missing
//	Parameter 'a.x' is unexpected
//	Invalid parameter type for 'a.b[0]', expected: string|integer|boolean|number|object|array|null
//	Parameter 'a.n' expects uint64                     (uint64/size: not a non-negative... number)
//	Parameter 'n' expects int32_t|uint8_t|…            (out of range; plain member name)
//	Parameter 'c' does not accept value 'x'            (enum; plain member name, 'null' in a list)
//
// Paths are QEMU's full_name(): members joined by '.', list elements as "[i]".

// DecodeArgs decodes args (an object, or nil for none) into a fresh value of the type ptr
// points to and returns the new pointer. ptr must be a pointer to a struct.
func DecodeArgs(args *Value, ptr any) (any, error) { return decodeArgs(args, ptr, nil) }

// DecodeArgsAt is DecodeArgs for an object nested at path in the arguments (a
// ValueDecoder decoding one of its variants, a transaction action's data): error texts
// name its members from there ("a.b[0].c").
func DecodeArgsAt(args *Value, ptr any, path string) (any, error) {
	return decodeArgs(args, ptr, []string{"." + path})
}

func decodeArgs(args *Value, ptr any, path []string) (any, error) {
	t := reflect.TypeOf(ptr)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("qmp: DecodeArgs needs a pointer to a struct, not %v", t)
	}
	out := reflect.New(t.Elem())
	if args == nil {
		args = Object()
	}
	d := decoder{path: path}
	if err := d.object(args, out.Elem(), infoOf(t.Elem())); err != nil {
		return nil, err
	}
	return out.Interface(), nil
}

// PlainName is the member name a generated QAPI visitor uses in an alternate's type error:
// the last member of path, or "null" for a list element (name ? name : "null").
func PlainName(path string) string {
	if strings.HasSuffix(path, "]") {
		return "null"
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

type decoder struct {
	path []string // ".name" or "[i]" segments of the containers being visited
}

// full is QEMU's full_name() of member seg ("" for a list element at the top of the path).
func (d *decoder) full(seg string) string {
	s := strings.Join(d.path, "") + seg
	return strings.TrimPrefix(s, ".")
}

func typeErr(path, expected string) error {
	return GenericError("Invalid parameter type for '%s', expected: %s", path, expected)
}

// member decodes v into rv (of the field's type) for the member named name ("" inside a list,
// where the path already ends in "[i]").
func (d *decoder) member(v *Value, rv reflect.Value, ti *typeInfo, name string) error {
	seg, plain := "", "null"
	if name != "" {
		seg, plain = "."+name, name
	}
	full := d.full(seg)
	if rv.Kind() == reflect.Pointer && rv.Type() != valuePtrType {
		p := reflect.New(rv.Type().Elem())
		if err := d.member(v, p.Elem(), ti, name); err != nil {
			return err
		}
		rv.Set(p)
		return nil
	}
	switch ti.kind {
	case tStr:
		s, ok := v.AsString()
		if !ok {
			return typeErr(full, "string")
		}
		rv.SetString(s)
	case tEnum:
		s, ok := v.AsString()
		if !ok {
			return typeErr(full, "string")
		}
		if !hasFlag(ti.enum, s) {
			return GenericError("Parameter '%s' does not accept value '%s'", plain, s)
		}
		rv.SetString(s)
	case tBool:
		b, ok := v.AsBool()
		if !ok {
			return typeErr(full, "boolean")
		}
		rv.SetBool(b)
	case tInt:
		i, ok := v.AsInt64()
		if !ok {
			return typeErr(full, "integer")
		}
		if ti.bits < 64 {
			lim := int64(1) << (ti.bits - 1)
			if i < -lim || i >= lim {
				return GenericError("Parameter '%s' expects int%d_t", plain, ti.bits)
			}
		}
		rv.SetInt(i)
	case tUint:
		var u uint64
		switch v.Kind() {
		case KindInt:
			u = v.n // negative values wrap, for backward compatibility (QEMU)
		case KindUint:
			u = v.n
		default:
			return GenericError("Parameter '%s' expects uint64", full)
		}
		if ti.bits < 64 && u > uint64(1)<<ti.bits-1 {
			return GenericError("Parameter '%s' expects uint%d_t", plain, ti.bits)
		}
		rv.SetUint(u)
	case tNumber:
		f, ok := v.AsFloat64()
		if !ok {
			return typeErr(full, "number")
		}
		rv.SetFloat(f)
	case tNull:
		if v.Kind() != KindNull {
			return typeErr(full, "null")
		}
	case tAny:
		return setAny(v, rv)
	case tCustom:
		return rv.Addr().Interface().(ValueDecoder).DecodeValue(v, full)
	case tArray:
		if v.Kind() != KindArray {
			return typeErr(full, "array")
		}
		if rv.Kind() == reflect.Array {
			return fmt.Errorf("qmp: fixed-size array %v cannot be decoded", rv.Type())
		}
		out := reflect.MakeSlice(rv.Type(), len(v.elems), len(v.elems))
		d.path = append(d.path, seg)
		for i, e := range v.elems {
			d.path = append(d.path, "["+strconv.Itoa(i)+"]")
			err := d.member(e, out.Index(i), ti.elem, "")
			d.path = d.path[:len(d.path)-1]
			if err != nil {
				return err
			}
		}
		d.path = d.path[:len(d.path)-1]
		rv.Set(out)
	case tObject, tEmpty:
		if v.Kind() != KindObject {
			return typeErr(full, "object")
		}
		d.path = append(d.path, seg)
		err := d.object(v, rv, ti)
		d.path = d.path[:len(d.path)-1]
		return err
	}
	return nil
}

func setAny(v *Value, rv reflect.Value) error {
	switch {
	case rv.Type() == valuePtrType:
		rv.Set(reflect.ValueOf(v))
	case rv.Type() == rawMessageType:
		rv.SetBytes(AppendJSON(nil, v, false))
	case rv.Kind() == reflect.Interface:
		rv.Set(reflect.ValueOf(v))
	default: // map[string]T
		p := reflect.New(rv.Type())
		if err := json.Unmarshal(AppendJSON(nil, v, false), p.Interface()); err != nil {
			return GenericError("Invalid parameter value: %v", err)
		}
		rv.Set(p.Elem())
	}
	return nil
}

// object decodes the members of obj into the struct rv, then rejects leftovers.
func (d *decoder) object(obj *Value, rv reflect.Value, ti *typeInfo) error {
	visited := make(map[string]bool, len(obj.members))
	if err := d.fields(obj, rv, ti.fields, visited); err != nil {
		return err
	}
	if u := ti.union; u != nil {
		tag, _ := obj.Get(u.tag).AsString()
		if vt := u.variants[tag]; vt != nil {
			p := reflect.New(vt.t)
			if err := d.fields(obj, p.Elem(), vt.fields, visited); err != nil {
				return err
			}
			rv.FieldByIndex(u.variant).Set(p)
		}
	}
	if len(visited) == len(obj.members) {
		return nil
	}
	return GenericError("Parameter '%s' is unexpected", d.full("."+firstUnvisited(obj, visited)))
}

func (d *decoder) fields(obj *Value, rv reflect.Value, fields []fieldInfo, visited map[string]bool) error {
	for _, f := range fields {
		i := obj.find(f.name)
		if i < 0 {
			if !f.optional {
				return GenericError("Parameter '%s' is missing", d.full("."+f.name))
			}
			continue
		}
		visited[f.name] = true
		if err := d.member(obj.members[i].Value, rv.FieldByIndex(f.index), f.ti, f.name); err != nil {
			return err
		}
	}
	return nil
}

// firstUnvisited picks the leftover key QEMU reports. QEMU keeps the keys in a GLib hash table
// filled in QDict order and reports the first one its iterator meets; for the small objects of
// real commands (under 8 keys, table size 8) that order is reproduced here exactly, beyond
// that QDict order stands in.
func firstUnvisited(obj *Value, visited map[string]bool) string {
	keys := make([]string, len(obj.members))
	for n, i := range obj.writeOrderQDict() {
		keys[n] = obj.members[i].Key
	}
	if len(keys) < 8 {
		var slots [8]string
		var used [8]bool
		for _, k := range keys {
			h := gStrHash(k)
			if h < 2 {
				h = 2
			}
			idx, step := (h*11)%7, uint32(0)
			for used[idx] {
				step++
				idx = (idx + step) & 7
			}
			used[idx], slots[idx] = true, k
		}
		for i := range slots {
			if used[i] && !visited[slots[i]] {
				return slots[i]
			}
		}
	}
	for _, k := range keys {
		if !visited[k] {
			return k
		}
	}
	return ""
}

// gStrHash is GLib's g_str_hash (djb2 over signed chars).
func gStrHash(s string) uint32 {
	h := uint32(5381)
	for i := 0; i < len(s); i++ {
		h = h<<5 + h + uint32(int32(int8(s[i])))
	}
	return h
}

// writeOrderQDict is the QDict iteration order regardless of how the object was built.
func (v *Value) writeOrderQDict() []int {
	keys := make([]string, len(v.members))
	for i, m := range v.members {
		keys[i] = m.Key
	}
	return qdictOrder(keys)
}
