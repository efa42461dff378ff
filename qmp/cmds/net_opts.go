package cmds

import (
	"reflect"
	"strings"

	"tlcvm/compat/optval"
	"tlcvm/qmp"
)

// KV is one key=value of a QemuOpts or keyval string, in written order.
type KV struct{ Key, Value string }

// NetdevFromOpts reads the key=value form of -netdev and HMP netdev_add as QEMU 7.2 does:
// the opts visitor over QemuOpts for most types (strings typed by the member they set,
// repeated keys for lists, unknown keys refused), keyval's dotted keys for stream and dgram
// (netdev_is_modern). The result is what netdev_add would have decoded.
func NetdevFromOpts(kvs []KV) (*Netdev, error) {
	typ := optsValue(kvs, "type")
	if typ == "" {
		return nil, qmp.GenericError("Parameter 'type' is missing")
	}
	zero, ok := Netdev{}.UnionVariants()[typ]
	if !ok {
		return nil, qmp.GenericError("Parameter 'type' does not accept value '%s'", typ)
	}
	root := qmp.Object()
	root.Set("type", qmp.String(typ))
	if err := fillMembers(root, kvs, "type", reflect.TypeOf(zero), optsVisitor, true); err != nil {
		return nil, err
	}
	a, err := qmp.DecodeArgs(root, &Netdev{})
	if err != nil {
		return nil, err
	}
	return a.(*Netdev), nil
}

// ObjectFromOpts reads the key=value form of -object (keyval false: the opts visitor's
// texts, no dotted keys) and of HMP object_add (keyval: the keyval visitor's texts, dotted
// keys, unknown members reported by the decoder), as QEMU 7.2 does.
func ObjectFromOpts(kvs []KV, keyval bool) (*ObjectOptions, error) {
	typ := optsValue(kvs, "qom-type")
	if typ == "" {
		return nil, qmp.GenericError("Parameter 'qom-type' is missing")
	}
	zero, ok := ObjectOptions{}.UnionVariants()[typ]
	if !ok {
		return nil, qmp.GenericError("Parameter 'qom-type' does not accept value '%s'", typ)
	}
	root := qmp.Object()
	root.Set("qom-type", qmp.String(typ))
	v := optsVisitor
	if keyval {
		v = keyvalVisitor
	}
	if err := fillMembers(root, kvs, "qom-type", reflect.TypeOf(zero), v, keyval); err != nil {
		return nil, err
	}
	a, err := qmp.DecodeArgs(root, &ObjectOptions{})
	if err != nil {
		return nil, err
	}
	return a.(*ObjectOptions), nil
}

// visitor is which of QEMU's string visitors reads the values: their texts differ.
type visitor int

const (
	optsVisitor   visitor = iota // QemuOpts' opts visitor: -netdev, -object, netdev_add
	keyvalVisitor                // keyval's QObject visitor: HMP object_add
)

// fillMembers sets root's members from kvs (id and the union tag apart), each typed by the
// variant vt's field it names; nested allows keyval's dotted keys.
func fillMembers(root *qmp.Value, kvs []KV, tag string, vt reflect.Type, vis visitor, nested bool) error {
	for _, kv := range kvs {
		switch kv.Key {
		case tag:
			continue
		case "id":
			root.Set("id", qmp.String(kv.Value))
			continue
		}
		parts := strings.Split(kv.Key, ".")
		if !nested && len(parts) > 1 {
			return qmp.GenericError("Invalid parameter '%s'", kv.Key)
		}
		obj, types := root, []reflect.Type{vt}
		for i, p := range parts {
			f, ok := memberField(types, p)
			if !ok && vis == keyvalVisitor {
				obj.Set(p, qmp.String(kv.Value)) // the decoder says "Parameter 'x' is unexpected"
				break
			}
			if !ok {
				return qmp.GenericError("Invalid parameter '%s'", kv.Key)
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if i == len(parts)-1 {
				v, err := optsScalar(kv.Key, ft, kv.Value, vis)
				if err != nil {
					return err
				}
				if ft.Kind() == reflect.Slice {
					l := obj.Get(p)
					if l == nil {
						l = qmp.Array()
						obj.Set(p, l)
					}
					l.Append(v)
				} else {
					obj.Set(p, v)
				}
				break
			}
			next := obj.Get(p)
			if next == nil {
				next = qmp.Object()
				obj.Set(p, next)
			}
			obj, types = next, []reflect.Type{ft}
			// A nested union (SocketAddress): its members are the base's and the variant's
			// that its tag (written as another key) selects.
			if u, ok := reflect.New(ft).Elem().Interface().(qmp.Union); ok {
				tag := optsValue(kvs, strings.Join(parts[:i+1], ".")+"."+u.UnionTag())
				if vz, ok := u.UnionVariants()[tag]; ok {
					types = append(types, reflect.TypeOf(vz))
				}
			}
		}
	}
	return nil
}

func optsValue(kvs []KV, key string) string {
	for i := len(kvs) - 1; i >= 0; i-- {
		if kvs[i].Key == key {
			return kvs[i].Value
		}
	}
	return ""
}

// memberField finds the field whose JSON name is name in the first of the struct types
// that has one.
func memberField(types []reflect.Type, name string) (reflect.StructField, bool) {
	for _, t := range types {
		if t.Kind() != reflect.Struct {
			continue
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.Anonymous && tag == "" { // an embedded base: its members are the struct's
				if g, ok := memberField([]reflect.Type{f.Type}, name); ok {
					return g, true
				}
				continue
			}
			if tag == name && tag != "-" {
				return f, true
			}
		}
	}
	return reflect.StructField{}, false
}

// sizeMembers are the members QAPI types 'size' (suffixes allowed: 1G).
var sizeMembers = map[string]bool{"size": true, "align": true, "hugetlbsize": true, "sndbuf": true}

// optsScalar types one string as the visitor does for a member of Go type t.
func optsScalar(key string, t reflect.Type, s string, vis visitor) (*qmp.Value, error) {
	expects := func(opts, keyval string) error {
		if vis == keyvalVisitor {
			return qmp.GenericError("Parameter '%s' expects %s", key, keyval)
		}
		return qmp.GenericError("Parameter '%s' expects %s", key, opts)
	}
	last := key[strings.LastIndex(key, ".")+1:]
	if sizeMembers[last] {
		n, err := optval.Size(s)
		if err != nil {
			return nil, expects("a size value", "size")
		}
		return qmp.Uint(n), nil
	}
	switch t.Kind() {
	case reflect.Bool:
		b, ok := optval.Bool(s, optval.QAPIWords)
		if !ok {
			return nil, qmp.GenericError("Parameter '%s' expects 'on' or 'off'", key)
		}
		return qmp.Bool(b), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := optval.Int64(s)
		if err != nil {
			return nil, expects("an int64 value", "integer")
		}
		return qmp.Int(n), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := optval.Uint64(s)
		if err != nil {
			return nil, expects("a uint64 value", "integer")
		}
		return qmp.Uint(n), nil
	case reflect.Slice: // a list of String: repeated keys
		o := qmp.Object()
		o.Set("str", qmp.String(s))
		return o, nil
	}
	return qmp.String(s), nil
}
