package cmds

import (
	"reflect"
	"strings"

	"tlcvm/compat"
	"tlcvm/qmp"
)

// KV is one key=value of a QemuOpts or keyval string, in written order.
type KV struct{ Key, Value string }

// NetdevFromOpts reads the key=value form of -netdev and HMP netdev_add as QEMU 7.2 does:
// the opts visitor over QemuOpts for most types (strings typed by the member they set,
// repeated keys for lists, unknown keys refused), keyval's dotted keys for stream and dgram
// (netdev_is_modern). The result is what netdev_add would have decoded.
func NetdevFromOpts(kvs []KV) (*Netdev, error) {
	root := qmp.Object()
	var typ string
	for _, kv := range kvs {
		if kv.Key == "type" {
			typ = kv.Value
		}
	}
	if typ == "" {
		return nil, qmp.GenericError("Parameter 'type' is missing")
	}
	root.Set("type", qmp.String(typ))
	zero, ok := Netdev{}.UnionVariants()[typ]
	if !ok {
		return nil, qmp.GenericError("Parameter 'type' does not accept value '%s'", typ)
	}
	vt := reflect.TypeOf(zero)
	for _, kv := range kvs {
		switch kv.Key {
		case "type":
			continue
		case "id":
			root.Set("id", qmp.String(kv.Value))
			continue
		}
		parts := strings.Split(kv.Key, ".")
		obj, types := root, []reflect.Type{vt}
		for i, p := range parts {
			f, ok := memberField(types, p)
			if !ok {
				return nil, qmp.GenericError("Invalid parameter '%s'", kv.Key)
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if i == len(parts)-1 {
				v, err := optsScalar(kv.Key, ft, kv.Value)
				if err != nil {
					return nil, err
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
	a, err := qmp.DecodeArgs(root, &Netdev{})
	if err != nil {
		return nil, err
	}
	return a.(*Netdev), nil
}

func optsValue(kvs []KV, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value
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
			if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name && tag != "-" {
				return f, true
			}
		}
	}
	return reflect.StructField{}, false
}

// optsScalar types one string as the opts visitor does for a member of Go type t.
func optsScalar(key string, t reflect.Type, s string) (*qmp.Value, error) {
	switch t.Kind() {
	case reflect.Bool:
		b, ok := compat.ParseBool(s)
		if !ok {
			return nil, qmp.GenericError("Parameter '%s' expects 'on' or 'off'", key)
		}
		return qmp.Bool(b), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := compat.ParseInt(s)
		if !ok {
			return nil, qmp.GenericError("Parameter '%s' expects an int64 value", key)
		}
		return qmp.Int(n), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := compat.ParseUint(s)
		if !ok {
			return nil, qmp.GenericError("Parameter '%s' expects a uint64 value", key)
		}
		return qmp.Uint(n), nil
	case reflect.Slice: // a list of String: repeated keys
		o := qmp.Object()
		o.Set("str", qmp.String(s))
		return o, nil
	}
	return qmp.String(s), nil
}
