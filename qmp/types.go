package qmp

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// The type model shared by argument decoding, reply encoding and the introspection schema:
// every Go type used as command arguments, return value or event data is classified once.
//
// Mapping (Go → QAPI):
//
//	string                         str        (a string type implementing Enum: enum)
//	bool                           bool
//	int, int8..int64, uint..uint64 int        (range checked like QEMU's intN/uintN visitors;
//	                                           uint64 accepts negative values, as QEMU does)
//	float32, float64               number
//	any, json.RawMessage, *Value   any
//	Null                           null
//	[]T                            array of T
//	struct                         object; fields by json tag, embedded structs flattened
//	struct implementing Union      flat union: base members + variants by the tag member
//	*T                             T, optional member
//
// Struct field tags: `json:"name"` (",omitempty" = optional), `json:"-"` skips; `qapi:"..."`
// holds comma-separated flags: "variant" marks the interface field that carries a union's
// variant, "any" documents an any member, "feature=NAME" (repeatable), and the shorthands
// "deprecated" and "unstable" add member features. A member is optional when it is a pointer
// or has omitempty.

// QAPIOrder, embedded in a struct, declares that its fields are in QAPI (schema) order and
// asks for QEMU's own output order: members are written in QDict order (hash bucket, later
// insertion first within a bucket) instead of field order. With it one declaration gives both
// the schema's member order and the reply's key order exactly, as in QEMU.
type QAPIOrder struct{}

// Enum is implemented by string types whose values are a QAPI enum, in QAPI order.
type Enum interface{ EnumValues() []string }

// EnumFeatures is implemented by enums some of whose values have QAPI features
// ("unstable", "deprecated"), for the schema: value → features.
type EnumFeatures interface{ EnumFeatures() map[string][]string }

// Union is implemented by struct types that are QAPI flat unions. UnionTag names the base
// member (an Enum) that selects the variant; UnionVariants maps tag values to a zero value of
// the variant's struct (values absent from the map have no extra members). The struct holds
// the decoded variant, a pointer to that struct, in its field tagged `qapi:"variant"`.
type Union interface {
	UnionTag() string
	UnionVariants() map[string]any
}

// ValueDecoder is implemented by pointers to hand-written argument types (alternates, …).
// path is QEMU's name of the member for error texts ("a.b[0].c").
type ValueDecoder interface {
	DecodeValue(v *Value, path string) error
}

// ValueEncoder is implemented by types that build their own reply value.
type ValueEncoder interface {
	EncodeValue() *Value
}

// SchemaProvider is the escape hatch for a hand-written introspection node: it returns the
// entry's members other than "name" (e.g. {"meta-type": "alternate", "members": [...]}), using
// ref to name the other types it mentions (pass a zero value of the Go type).
type SchemaProvider interface {
	QAPISchema(ref func(zero any) string) *Value
}

// QNull is the QAPI builtin null type, for use as an alternate member in a schema.
type QNull struct{}

type tkind int

const (
	tStr tkind = iota
	tBool
	tInt
	tUint
	tNumber
	tAny
	tNull
	tEnum
	tArray
	tObject
	tCustom // ValueDecoder / SchemaProvider
	tEmpty  // object with no members (q_empty)
)

type typeInfo struct {
	t      reflect.Type // without pointers
	kind   tkind
	bits   int // for tInt/tUint: 8, 16, 32, 64
	enum   []string
	elem   *typeInfo // tArray
	fields []fieldInfo
	union  *unionInfo
	qdict  bool // QAPIOrder embedded: write in QDict order
	shared bool // two fields have the same name (encoding keeps the first's place, the last's value)
}

type fieldInfo struct {
	name     string
	index    []int
	ti       *typeInfo
	ptr      bool // field is a pointer (optional; nil = absent)
	optional bool
	features []string
}

type unionInfo struct {
	tag      string
	variant  []int                // index of the variant-holder field
	cases    []string             // tag enum values in order
	variants map[string]*typeInfo // case → variant struct (nil: no members)
}

var (
	typeMu    sync.Mutex
	typeCache = map[reflect.Type]*typeInfo{}

	rawMessageType    = reflect.TypeOf(json.RawMessage(nil))
	valuePtrType      = reflect.TypeOf((*Value)(nil))
	nullType          = reflect.TypeOf(QNull{})
	qapiOrderType     = reflect.TypeOf(QAPIOrder{})
	enumIface         = reflect.TypeOf((*Enum)(nil)).Elem()
	enumFeaturesIface = reflect.TypeOf((*EnumFeatures)(nil)).Elem()
	unionIface        = reflect.TypeOf((*Union)(nil)).Elem()
	decoderIface      = reflect.TypeOf((*ValueDecoder)(nil)).Elem()
	providerIface     = reflect.TypeOf((*SchemaProvider)(nil)).Elem()
)

// infoOf returns the model of t (pointers stripped). It panics on types QAPI cannot express,
// so mistakes surface at Register time.
func infoOf(t reflect.Type) *typeInfo {
	typeMu.Lock()
	defer typeMu.Unlock()
	return infoLocked(t)
}

func infoLocked(t reflect.Type) *typeInfo {
	for t.Kind() == reflect.Pointer && t != valuePtrType {
		t = t.Elem()
	}
	if ti, ok := typeCache[t]; ok {
		return ti
	}
	ti := &typeInfo{t: t}
	typeCache[t] = ti // before recursing: QAPI types may be recursive (ImageInfo.backing-image)
	defer func() {
		// A type QAPI cannot express panics (at registration); do not leave it cached as
		// if it were valid, so that registering it again panics again.
		if p := recover(); p != nil {
			delete(typeCache, t)
			panic(p)
		}
	}()
	switch {
	case t == rawMessageType || t == valuePtrType:
		ti.kind = tAny
		return ti
	case t == nullType:
		ti.kind = tNull
		return ti
	case reflect.PointerTo(t).Implements(decoderIface) || t.Implements(providerIface) || reflect.PointerTo(t).Implements(providerIface):
		ti.kind = tCustom
		return ti
	}
	switch t.Kind() {
	case reflect.String:
		if e, ok := zeroOf(t, enumIface); ok {
			ti.kind = tEnum
			ti.enum = e.(Enum).EnumValues()
		} else {
			ti.kind = tStr
		}
	case reflect.Bool:
		ti.kind = tBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		ti.kind, ti.bits = tInt, t.Bits()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		ti.kind, ti.bits = tUint, t.Bits()
	case reflect.Float32, reflect.Float64:
		ti.kind = tNumber
	case reflect.Interface:
		ti.kind = tAny
	case reflect.Slice, reflect.Array:
		ti.kind = tArray
		ti.elem = infoLocked(t.Elem())
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			panic(fmt.Sprintf("qmp: map type %v needs string keys", t))
		}
		ti.kind = tAny
	case reflect.Struct:
		ti.kind = tObject
		ti.fields = structFields(t, nil)
		seen := make(map[string]bool, len(ti.fields))
		for _, f := range ti.fields {
			ti.shared = ti.shared || seen[f.name]
			seen[f.name] = true
		}
		for i := 0; i < t.NumField(); i++ {
			if f := t.Field(i); f.Anonymous && f.Type == qapiOrderType {
				ti.qdict = true
			}
		}
		if u, ok := zeroOf(t, unionIface); ok {
			ti.union = unionOf(t, ti, u.(Union))
		} else if len(ti.fields) == 0 {
			ti.kind = tEmpty
		}
	default:
		panic(fmt.Sprintf("qmp: type %v has no QAPI equivalent", t))
	}
	return ti
}

// zeroOf returns a zero value of t (or *t) implementing iface.
func zeroOf(t, iface reflect.Type) (any, bool) {
	if t.Implements(iface) {
		return reflect.Zero(t).Interface(), true
	}
	if reflect.PointerTo(t).Implements(iface) {
		return reflect.New(t).Interface(), true
	}
	return nil, false
}

func structFields(t reflect.Type, prefix []int) []fieldInfo {
	var out []fieldInfo
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		index := append(append([]int(nil), prefix...), i)
		tag, hasTag := sf.Tag.Lookup("json")
		name, opts, _ := strings.Cut(tag, ",")
		if tag == "-" || (!sf.IsExported() && !sf.Anonymous) {
			continue
		}
		qflags := strings.Split(sf.Tag.Get("qapi"), ",")
		if hasFlag(qflags, "variant") {
			continue // handled by unionOf
		}
		if sf.Type == qapiOrderType {
			continue
		}
		if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
			out = append(out, structFields(sf.Type, index)...)
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if !hasTag || name == "" {
			name = sf.Name
		}
		f := fieldInfo{
			name:     name,
			index:    index,
			ti:       infoLocked(sf.Type),
			ptr:      sf.Type.Kind() == reflect.Pointer && sf.Type != valuePtrType,
			optional: strings.Contains(","+opts+",", ",omitempty,"),
		}
		f.optional = f.optional || f.ptr
		for _, q := range qflags {
			switch {
			case q == "deprecated", q == "unstable":
				f.features = append(f.features, q)
			case strings.HasPrefix(q, "feature="):
				f.features = append(f.features, strings.TrimPrefix(q, "feature="))
			}
		}
		out = append(out, f)
	}
	return out
}

func hasFlag(flags []string, f string) bool {
	for _, x := range flags {
		if x == f {
			return true
		}
	}
	return false
}

func unionOf(t reflect.Type, ti *typeInfo, u Union) *unionInfo {
	ui := &unionInfo{tag: u.UnionTag(), variants: map[string]*typeInfo{}}
	for i := 0; i < t.NumField(); i++ {
		if hasFlag(strings.Split(t.Field(i).Tag.Get("qapi"), ","), "variant") {
			if t.Field(i).Type.Kind() != reflect.Interface {
				panic(fmt.Sprintf("qmp: union %v: the variant field must be an interface", t))
			}
			ui.variant = []int{i}
		}
	}
	var tagField *fieldInfo
	for i := range ti.fields {
		if ti.fields[i].name == ui.tag {
			tagField = &ti.fields[i]
		}
	}
	switch {
	case ui.variant == nil:
		panic(fmt.Sprintf("qmp: union %v has no field tagged qapi:\"variant\"", t))
	case tagField == nil || tagField.ti.kind != tEnum || tagField.optional:
		panic(fmt.Sprintf("qmp: union %v: tag %q must be a required enum member", t, ui.tag))
	}
	ui.cases = tagField.ti.enum
	for c, zero := range u.UnionVariants() {
		if !hasFlag(ui.cases, c) {
			panic(fmt.Sprintf("qmp: union %v: variant %q is not a value of the tag enum", t, c))
		}
		if zero == nil {
			continue
		}
		vt := infoLocked(reflect.TypeOf(zero))
		if vt.kind != tObject && vt.kind != tEmpty {
			panic(fmt.Sprintf("qmp: union %v: variant %q must be a struct", t, c))
		}
		ui.variants[c] = vt
	}
	return ui
}
