package qmp

import (
	"math"
	"sort"

	"tlcvm/compat/qdict"
)

// Kind is the type of a Value: QEMU's QType, with QNum split by representation.
type Kind uint8

// Value kinds.
const (
	KindNull   Kind = iota
	KindBool        // true, false
	KindInt         // integer that fits int64 (QNum I64)
	KindUint        // integer above math.MaxInt64 that fits uint64 (QNum U64)
	KindFloat       // any other number (QNum DOUBLE)
	KindString      // string, always valid modified UTF-8 when parsed
	KindObject      // members in insertion order; written in QDict order
	KindArray       // elements in order
)

var kindNames = [...]string{"null", "bool", "int", "uint", "float", "string", "object", "array"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "invalid"
}

// Value is a parsed JSON value, the Go twin of QEMU's QObject. Objects keep their members in
// insertion order (which QEMU's QDict uses to break ties between keys of the same hash bucket);
// the writer emits them in QDict iteration order, exactly as QEMU does for anything it parsed
// (e.g. the echoed "id"). A Value built from a Go struct is marked ordered and is written in
// field order instead. The zero Value is null.
type Value struct {
	kind    Kind
	ordered bool   // write members in insertion order (built from a Go struct), not QDict order
	n       uint64 // a bool (0, 1), an int64, a uint64 or a float64's bits, as kind says
	s       string
	members []Member
	index   map[string]int // key → position in members, built once an object grows past 8 members
	elems   []*Value
}

func (v *Value) i() int64   { return int64(v.n) }
func (v *Value) f() float64 { return math.Float64frombits(v.n) }

// Member is one key/value pair of an object.
type Member struct {
	Key   string
	Value *Value
}

// Scalars that need no allocation of their own: a Value has no method that changes a null or
// a boolean, so every one can be the same.
var (
	null      = &Value{}
	trueValue = &Value{kind: KindBool, n: 1}
	falseVal  = &Value{kind: KindBool}
)

// Null returns a null value.
func Null() *Value { return null }

// Bool returns a boolean value.
func Bool(b bool) *Value {
	if b {
		return trueValue
	}
	return falseVal
}

// Int returns an integer value.
func Int(i int64) *Value { return &Value{kind: KindInt, n: uint64(i)} }

// Uint returns an integer value; values up to math.MaxInt64 are stored as KindInt, like qnum_from_uint.
func Uint(u uint64) *Value {
	if u <= math.MaxInt64 {
		return &Value{kind: KindInt, n: u}
	}
	return &Value{kind: KindUint, n: u}
}

// Float returns a floating-point number value.
func Float(f float64) *Value { return &Value{kind: KindFloat, n: math.Float64bits(f)} }

// String returns a string value.
func String(s string) *Value { return &Value{kind: KindString, s: s} }

// Object returns an empty object.
func Object() *Value { return &Value{kind: KindObject} }

// Array returns an array of the given elements.
func Array(elems ...*Value) *Value { return &Value{kind: KindArray, elems: elems} }

// Kind returns the value's kind; a nil *Value is null.
func (v *Value) Kind() Kind {
	if v == nil {
		return KindNull
	}
	return v.kind
}

// AsBool returns the boolean and whether v is one.
func (v *Value) AsBool() (bool, bool) {
	if v.Kind() != KindBool {
		return false, false
	}
	return v.n != 0, true
}

// AsString returns the string and whether v is one.
func (v *Value) AsString() (string, bool) {
	if v.Kind() != KindString {
		return "", false
	}
	return v.s, true
}

// AsInt64 returns the number as int64 if it is an integer in range (qnum_get_try_int).
func (v *Value) AsInt64() (int64, bool) {
	if v.Kind() == KindInt {
		return v.i(), true
	}
	return 0, false
}

// AsUint64 returns the number as uint64 if it is a non-negative integer (qnum_get_try_uint).
func (v *Value) AsUint64() (uint64, bool) {
	switch v.Kind() {
	case KindInt:
		if v.i() >= 0 {
			return v.n, true
		}
	case KindUint:
		return v.n, true
	}
	return 0, false
}

// AsFloat64 returns any number as float64 (qnum_get_double).
func (v *Value) AsFloat64() (float64, bool) {
	switch v.Kind() {
	case KindInt:
		return float64(v.i()), true
	case KindUint:
		return float64(v.n), true
	case KindFloat:
		return v.f(), true
	}
	return 0, false
}

// Len returns the number of members of an object or elements of an array.
func (v *Value) Len() int {
	switch v.Kind() {
	case KindObject:
		return len(v.members)
	case KindArray:
		return len(v.elems)
	}
	return 0
}

// Members returns an object's members in insertion order. The slice must not be modified.
func (v *Value) Members() []Member {
	if v.Kind() != KindObject {
		return nil
	}
	return v.members
}

// Elems returns an array's elements. The slice must not be modified.
func (v *Value) Elems() []*Value {
	if v.Kind() != KindArray {
		return nil
	}
	return v.elems
}

// Get returns the member named key of an object, or nil.
func (v *Value) Get(key string) *Value {
	if i := v.find(key); i >= 0 {
		return v.members[i].Value
	}
	return nil
}

// Has reports whether an object has a member named key.
func (v *Value) Has(key string) bool { return v.find(key) >= 0 }

func (v *Value) find(key string) int {
	if v.Kind() != KindObject {
		return -1
	}
	if v.index != nil {
		if i, ok := v.index[key]; ok {
			return i
		}
		return -1
	}
	for i := range v.members {
		if v.members[i].Key == key {
			return i
		}
	}
	return -1
}

// Set adds or replaces a member of an object (qdict_put_obj: a replaced member keeps its place).
// On anything but an object it does nothing (a member there could never be read or written).
func (v *Value) Set(key string, val *Value) {
	if v.Kind() != KindObject {
		return
	}
	if val == nil {
		val = Null()
	}
	if i := v.find(key); i >= 0 {
		v.members[i].Value = val
		return
	}
	v.members = append(v.members, Member{key, val})
	if v.index != nil {
		v.index[key] = len(v.members) - 1
	} else if len(v.members) > 8 {
		v.index = make(map[string]int, 2*len(v.members))
		for i, m := range v.members {
			v.index[m.Key] = i
		}
	}
}

// Append adds an element to an array; on anything else it does nothing.
func (v *Value) Append(elem *Value) {
	if v.Kind() == KindArray {
		v.elems = append(v.elems, elem)
	}
}

// QDictHash is QEMU's tdb_hash of a key modulo QDICT_BUCKET_MAX (qobject/qdict.c): the bucket
// that decides where the key appears when QEMU writes the dict.
func QDictHash(key string) uint32 { return qdict.Bucket(key) }

// QDictOrder returns keys, given in insertion (QAPI member) order, in the order QEMU's writer
// emits them: by hash bucket, and within a bucket the last inserted first. Use it to lay out the
// fields of a reply struct, whose fields are written in declaration order.
func QDictOrder(keys ...string) []string {
	idx := qdictOrder(keys)
	out := make([]string, len(keys))
	for i, j := range idx {
		out[i] = keys[j]
	}
	return out
}

func qdictOrder(keys []string) []int {
	idx := make([]int, len(keys))
	h := make([]uint32, len(keys))
	for i, k := range keys {
		idx[i] = i
		h[i] = QDictHash(k)
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ia, ib := idx[a], idx[b]
		if h[ia] != h[ib] {
			return h[ia] < h[ib]
		}
		return ia > ib
	})
	return idx
}

// writeOrder returns the member indices of an object in output order.
func (v *Value) writeOrder() []int {
	if v.ordered {
		idx := make([]int, len(v.members))
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	keys := make([]string, len(v.members))
	for i, m := range v.members {
		keys[i] = m.Key
	}
	return qdictOrder(keys)
}
