package qmp

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"sync"
)

// Encoding Go values into QEMU's JSON. Structs are written in field order (declare reply
// fields in the order QEMU prints them; QDictOrder computes it from QAPI order), except
// structs embedding QAPIOrder and unions, whose members are written in QDict order with
// insertion = field order (base fields then variant fields): declare those in QAPI order. Maps and parsed Values are written
// in QDict order. Optional members (omitempty, nil pointers) are left out when empty.

// Marshal encodes v as QEMU prints it, compact, without a trailing newline: what
// AppendJSON(ToValue(v)) gives, without building the Value where it need not.
func Marshal(v any) ([]byte, error) { return marshal(v, false) }

// MarshalPretty is Marshal in QEMU's pretty form (-qmp-pretty), with "\n" line ends.
func MarshalPretty(v any) ([]byte, error) { return marshal(v, true) }

func marshal(v any, pretty bool) ([]byte, error) {
	w := jsonWriter{pretty: pretty}
	if err := w.goValue(reflect.ValueOf(v)); err != nil {
		return nil, err
	}
	return w.buf, nil
}

// MarshalJSON makes a *Value usable with encoding/json; the output is QEMU's compact form.
func (v *Value) MarshalJSON() ([]byte, error) { return AppendJSON(nil, v, false), nil }

// ToValue converts a Go value to a Value (see the package's type mapping). A nil interface or
// pointer is null.
func ToValue(v any) (out *Value, err error) {
	if v == nil {
		return Null(), nil
	}
	if val, ok := v.(*Value); ok {
		if val == nil {
			return Null(), nil
		}
		return val, nil
	}
	return toValue(reflect.ValueOf(v))
}

var (
	textMarshaler = reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem()
	jsonMarshaler = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	encoderIface  = reflect.TypeOf((*ValueEncoder)(nil)).Elem()
)

// How a type is encoded, before its kind decides: found once per type (Implements is slow).
type special uint8

const (
	encPlain special = iota
	encValuePtr
	encEncoder
	encRaw
	encJSON
	encText
)

var specials sync.Map // reflect.Type → special

func specialOf(t reflect.Type) special {
	if sp, ok := specials.Load(t); ok {
		return sp.(special)
	}
	sp := encPlain
	switch {
	case t == valuePtrType:
		sp = encValuePtr
	case t.Implements(encoderIface):
		sp = encEncoder
	case t == rawMessageType:
		sp = encRaw
	case t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface && t.Implements(jsonMarshaler):
		sp = encJSON
	case t.Kind() != reflect.String && t.Kind() != reflect.Pointer && t.Implements(textMarshaler):
		sp = encText
	}
	specials.Store(t, sp)
	return sp
}

func toValue(rv reflect.Value) (*Value, error) {
	if !rv.IsValid() {
		return Null(), nil
	}
	t := rv.Type()
	switch specialOf(t) {
	case encValuePtr:
		if rv.IsNil() {
			return Null(), nil
		}
		return rv.Interface().(*Value), nil
	case encEncoder:
		if (t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface) && rv.IsNil() {
			return Null(), nil
		}
		return rv.Interface().(ValueEncoder).EncodeValue(), nil
	case encRaw:
		if rv.Len() == 0 {
			return Null(), nil
		}
		return ParseValue(rv.Bytes())
	case encJSON:
		b, err := rv.Interface().(json.Marshaler).MarshalJSON()
		if err != nil {
			return nil, err
		}
		return ParseValue(b)
	case encText:
		b, err := rv.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return nil, err
		}
		return String(string(b)), nil
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return Null(), nil
		}
		return toValue(rv.Elem())
	case reflect.String:
		return String(rv.String()), nil
	case reflect.Bool:
		return Bool(rv.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return Int(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return Uint(rv.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return Float(rv.Float()), nil
	case reflect.Slice, reflect.Array:
		arr := Array()
		arr.elems = make([]*Value, 0, rv.Len())
		for i := 0; i < rv.Len(); i++ {
			e, err := toValue(rv.Index(i))
			if err != nil {
				return nil, err
			}
			arr.Append(e)
		}
		return arr, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("qmp: cannot encode map with %v keys", t.Key())
		}
		keys := make([]string, 0, rv.Len())
		for _, k := range rv.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		obj := Object()
		for _, k := range keys {
			e, err := toValue(rv.MapIndex(reflect.ValueOf(k).Convert(t.Key())))
			if err != nil {
				return nil, err
			}
			obj.Set(k, e)
		}
		return obj, nil
	case reflect.Struct:
		return structValue(rv)
	}
	return nil, fmt.Errorf("qmp: cannot encode %v", t)
}

func structValue(rv reflect.Value) (*Value, error) {
	ti := infoOf(rv.Type())
	obj := Object()
	obj.members = make([]Member, 0, len(ti.fields))
	obj.ordered = ti.union == nil && !ti.qdict
	if err := addFields(obj, rv, ti.fields); err != nil {
		return nil, err
	}
	if ti.union != nil {
		vv := rv.FieldByIndex(ti.union.variant)
		for vv.Kind() == reflect.Interface || vv.Kind() == reflect.Pointer {
			if vv.IsNil() {
				return obj, nil
			}
			vv = vv.Elem()
		}
		if vv.Kind() == reflect.Struct {
			if err := addFields(obj, vv, infoOf(vv.Type()).fields); err != nil {
				return nil, err
			}
		}
	}
	return obj, nil
}

func addFields(obj *Value, rv reflect.Value, fields []fieldInfo) error {
	for _, f := range fields {
		fv := rv.FieldByIndex(f.index)
		if f.optional && isEmpty(fv) {
			continue
		}
		e, err := toValue(fv)
		if err != nil {
			return err
		}
		obj.Set(f.name, e)
	}
	return nil
}

// isEmpty is encoding/json's omitempty test.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	case reflect.Interface, reflect.Pointer:
		return v.IsNil()
	}
	return false
}

// goValue writes rv as AppendJSON(toValue(rv)) would, without building the Value: structs
// written in field order, slices and arrays, scalars, pointers and interfaces. What needs a
// Value to be ordered or made (maps, unions, structs embedding QAPIOrder, fields sharing a
// name, and the special types: *Value, ValueEncoder, json.RawMessage, marshalers) goes
// through toValue.
func (w *jsonWriter) goValue(rv reflect.Value) error {
	if !rv.IsValid() {
		w.buf = append(w.buf, "null"...)
		return nil
	}
	t := rv.Type()
	if specialOf(t) != encPlain {
		return w.viaValue(rv)
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			w.buf = append(w.buf, "null"...)
			return nil
		}
		return w.goValue(rv.Elem())
	case reflect.String:
		w.quoted(rv.String())
	case reflect.Bool:
		w.buf = strconv.AppendBool(w.buf, rv.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		w.buf = strconv.AppendInt(w.buf, rv.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		w.buf = strconv.AppendUint(w.buf, rv.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		w.buf = appendFloat(w.buf, rv.Float())
	case reflect.Slice, reflect.Array:
		w.buf = append(w.buf, '[')
		w.depth++
		for i := 0; i < rv.Len(); i++ {
			w.item(i)
			if err := w.goValue(rv.Index(i)); err != nil {
				return err
			}
			w.spill()
		}
		w.end(']')
	case reflect.Struct:
		ti := infoOf(t)
		if ti.union != nil || ti.qdict || ti.shared {
			return w.viaValue(rv)
		}
		w.buf = append(w.buf, '{')
		w.depth++
		n := 0
		for _, f := range ti.fields {
			fv := rv.FieldByIndex(f.index)
			if f.optional && isEmpty(fv) {
				continue
			}
			w.member(n, f.name)
			n++
			if err := w.goValue(fv); err != nil {
				return err
			}
			w.spill()
		}
		w.end('}')
	default:
		return w.viaValue(rv)
	}
	return nil
}

func (w *jsonWriter) viaValue(rv reflect.Value) error {
	v, err := toValue(rv)
	if err != nil {
		return err
	}
	w.value(v)
	return nil
}
