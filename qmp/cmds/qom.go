package cmds

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"tlcvm/internal/ghash"
	"tlcvm/objects"
	"tlcvm/qdev"
	"tlcvm/qmp"
)

// Tree is tlcvm's QOM composition tree as qom-list, qom-get and qom-set see it:
//
//	/                      container
//	├── machine            <machine-type>-machine   (properties from the catalogue)
//	│   ├── unattached     container: device[N] = vCPUs, numbered as QEMU numbers them
//	│   ├── peripheral     container: -device/device_add with id=
//	│   └── peripheral-anon container: devices without id
//	├── objects            container: -object / object-add
//	└── chardevs           container: one child per chardev
//
// Every object has the read-only "type" property. Values of other properties are held in
// the tree (set from the command line, the catalogue's defaults, or a live getter).
type Tree struct {
	mu       sync.Mutex
	root     *Object
	chardevs func() []QOMChild        // live children of /chardevs; nil: none
	devices  *qdev.Tree               // live children of the peripheral containers; nil: none
	devObjs  map[*qdev.Device]*Object // +checklocks:mu; the objects made for live devices
	objects  *objects.Registry        // the children of /objects; nil: static
	objObjs  map[*objects.Object]*Object
}

// QOMChild names a child object and its type.
type QOMChild struct{ Name, Type string }

// SetChardevs makes /chardevs list the process's chardevs, which change at run time
// (chardev-add/remove), through fn.
func (t *Tree) SetChardevs(fn func() []QOMChild) { t.chardevs = fn }

// Object is one QOM object.
type Object struct {
	Type     string
	props    []*Prop
	children []*child
}

type child struct {
	name string
	obj  *Object
}

// Prop is one property. Get returns the value to encode; Set, when non-nil, makes the
// property writable through qom-set.
type Prop struct {
	Name string
	Type string // QOM's property type string, e.g. "bool", "int", "string", "link<bus>"
	Get  func() any
	Set  func(raw json.RawMessage) error
}

// NewTree returns a tree with the root container.
func NewTree() *Tree { return &Tree{root: NewObject("container")} }

// NewObject returns an object of the given QOM type.
func NewObject(typ string) *Object { return &Object{Type: typ} }

// Root is the "/" container.
func (t *Tree) Root() *Object { return t.root }

// AddChild adds obj under o as name and returns obj.
func (o *Object) AddChild(name string, obj *Object) *Object {
	o.children = append(o.children, &child{name: name, obj: obj})
	return obj
}

// Child returns the named child, or nil.
func (o *Object) Child(name string) *Object {
	for _, c := range o.children {
		if c.name == name {
			return c.obj
		}
	}
	return nil
}

// RemoveChild removes the named child.
func (o *Object) RemoveChild(name string) {
	for i, c := range o.children {
		if c.name == name {
			o.children = append(o.children[:i], o.children[i+1:]...)
			return
		}
	}
}

// AddProp adds (or replaces) a property.
func (o *Object) AddProp(p *Prop) {
	for i, q := range o.props {
		if q.Name == p.Name {
			o.props[i] = p
			return
		}
	}
	o.props = append(o.props, p)
}

// AddRaw adds a property holding the JSON text raw (null when empty), writable with qom-set
// when raw is a scalar (a JSON bool, number or string).
func (o *Object) AddRaw(name, typ string, raw json.RawMessage) {
	if len(raw) == 0 {
		o.AddProp(&Prop{Name: name, Type: typ, Get: func() any { return nil }})
		return
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return
	}
	switch x := v.(type) {
	case bool, string:
		o.AddValue(name, typ, x, true)
	case float64:
		var n json.Number
		json.Unmarshal(raw, &n)
		if i, err := n.Int64(); err == nil {
			o.AddValue(name, typ, i, true)
			return
		}
		o.AddValue(name, typ, x, true)
	default:
		r := raw
		o.AddProp(&Prop{Name: name, Type: typ, Get: func() any { return r }})
	}
}

// AddValue adds a property holding v, writable when settable.
func (o *Object) AddValue(name, typ string, v any, settable bool) {
	p := &Prop{Name: name, Type: typ}
	val := v
	p.Get = func() any { return val }
	if settable {
		p.Set = func(raw json.RawMessage) error {
			nv, err := decodeLike(val, raw, name)
			if err != nil {
				return err
			}
			val = nv
			return nil
		}
	}
	o.AddProp(p)
}

func (o *Object) prop(name string) *Prop {
	for _, p := range o.props {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Resolve finds an object by absolute path ("/machine/peripheral/disk0") or by a partial
// path that matches exactly one object (QEMU's object_resolve_path semantics).
func (t *Tree) Resolve(path string) *Object {
	if strings.HasPrefix(path, "/") {
		o := t.root
		for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
			if part == "" {
				continue
			}
			if o = o.Child(part); o == nil {
				return nil
			}
		}
		return o
	}
	parts := strings.Split(path, "/")
	var found *Object
	n := 0
	var walk func(o *Object)
	walk = func(o *Object) {
		if n > 1 {
			return
		}
		if m := o.follow(parts); m != nil {
			found, n = m, n+1
		}
		for _, c := range o.children {
			walk(c.obj)
		}
	}
	walk(t.root)
	if n == 1 {
		return found
	}
	return nil
}

// ambiguous reports whether a partial path matches more than one object.
func (t *Tree) ambiguous(path string) bool {
	if path == "" {
		return true // QEMU: an empty partial path matches every object
	}
	if strings.HasPrefix(path, "/") {
		return false
	}
	parts := strings.Split(path, "/")
	n := 0
	var walk func(o *Object)
	walk = func(o *Object) {
		if n > 1 {
			return
		}
		if o.follow(parts) != nil {
			n++
		}
		for _, c := range o.children {
			walk(c.obj)
		}
	}
	walk(t.root)
	return n > 1
}

// resolve is Resolve with QEMU's errors.
func (t *Tree) resolve(path string) (*Object, error) {
	if o := t.Resolve(path); o != nil {
		return o, nil
	}
	if t.ambiguous(path) {
		return nil, qmp.Errorf("GenericError", "Path '%s' is ambiguous", path)
	}
	return nil, qmp.Errorf("DeviceNotFound", "Device '%s' not found", path)
}

func (o *Object) follow(parts []string) *Object {
	cur := o
	for _, p := range parts {
		if cur = cur.Child(p); cur == nil {
			return nil
		}
	}
	return cur
}

// ObjectPropertyInfo is one element of qom-list.
type ObjectPropertyInfo struct {
	qmp.QAPIOrder
	Name string `json:"name"`
	Type string `json:"type"`
}

// QomListArgs, QomGetArgs and QomSetArgs are the qom-* arguments.
type QomListArgs struct {
	Path string `json:"path"`
}

type QomGetArgs struct {
	Path     string `json:"path"`
	Property string `json:"property"`
}

type QomSetArgs struct {
	Path     string          `json:"path"`
	Property string          `json:"property"`
	Value    json.RawMessage `json:"value" qapi:"any"`
}

// refresh rebuilds the live containers (/chardevs, the peripheral ones); mu held.
func (t *Tree) refresh() {
	t.refreshDevices()
	t.refreshObjects()
	if t.chardevs == nil {
		return
	}
	c := t.root.Child("chardevs")
	if c == nil {
		return
	}
	c.children = nil
	for _, ch := range t.chardevs() {
		c.AddChild(ch.Name, NewObject(ch.Type))
	}
}

func (t *Tree) list(path string) ([]ObjectPropertyInfo, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refresh()
	o, err := t.resolve(path)
	if err != nil {
		return nil, err
	}
	out := []ObjectPropertyInfo{{Name: "type", Type: "string"}}
	for _, p := range o.props {
		out = append(out, ObjectPropertyInfo{Name: p.Name, Type: p.Type})
	}
	// QEMU walks the object's property hash table and prepends each entry: children come
	// out in reverse GHashTable order.
	names := make([]string, len(o.children))
	for i, c := range o.children {
		names[i] = c.name
	}
	walk := ghash.Order(names)
	for i := len(walk) - 1; i >= 0; i-- {
		c := o.Child(walk[i])
		out = append(out, ObjectPropertyInfo{Name: walk[i], Type: "child<" + c.Type + ">"})
	}
	return out, nil
}

func (t *Tree) get(path, prop string) (any, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refresh()
	o, err := t.resolve(path)
	if err != nil {
		return nil, err
	}
	if prop == "type" {
		return o.Type, nil
	}
	if p := o.prop(prop); p != nil {
		return p.Get(), nil
	}
	if c := o.Child(prop); c != nil {
		return t.pathOf(c), nil
	}
	return nil, qmp.Errorf("GenericError", "Property '%s.%s' not found", o.Type, prop)
}

func (t *Tree) set(path, prop string, raw json.RawMessage) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refresh()
	o, err := t.resolve(path)
	if err != nil {
		return err
	}
	p := o.prop(prop)
	if p == nil {
		if prop == "type" || o.Child(prop) != nil {
			return qmp.Errorf("GenericError", "Insufficient permission to perform this operation")
		}
		return qmp.Errorf("GenericError", "Property '%s.%s' not found", o.Type, prop)
	}
	if p.Set == nil {
		return qmp.Errorf("GenericError", "Insufficient permission to perform this operation")
	}
	return p.Set(raw)
}

// pathOf returns the canonical path of o ("" when it is not in the tree).
func (t *Tree) pathOf(target *Object) string {
	var walk func(o *Object, prefix string) string
	walk = func(o *Object, prefix string) string {
		if o == target {
			if prefix == "" {
				return "/"
			}
			return prefix
		}
		for _, c := range o.children {
			if p := walk(c.obj, prefix+"/"+c.name); p != "" {
				return p
			}
		}
		return ""
	}
	return walk(t.root, "")
}

// decodeLike decodes raw into a value of the same kind as old, with QEMU's visitor texts.
func decodeLike(old any, raw json.RawMessage, name string) (any, error) {
	switch old.(type) {
	case bool:
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return nil, qmp.Errorf("GenericError", "Invalid parameter type for '%s', expected: boolean", name)
		}
		return b, nil
	case string:
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, qmp.Errorf("GenericError", "Invalid parameter type for '%s', expected: string", name)
		}
		return s, nil
	case int64, int, uint64:
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return nil, qmp.Errorf("GenericError", "Invalid parameter type for '%s', expected: integer", name)
		}
		if i, err := n.Int64(); err == nil {
			return i, nil
		}
		return nil, qmp.Errorf("GenericError", "Invalid parameter type for '%s', expected: integer", name)
	default:
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("invalid value for '%s'", name)
		}
		return v, nil
	}
}

func registerQOM(r *qmp.Registry, d *Deps) {
	t := d.QOM
	r.Register(
		qmp.Command{Name: "qom-list", Args: &QomListArgs{}, Returns: []ObjectPropertyInfo{}, AllowPreconfig: true,
			Run: func(c *qmp.Call) (any, error) { return t().list(c.Args.(*QomListArgs).Path) }},
		qmp.Command{Name: "qom-get", Args: &QomGetArgs{}, Returns: json.RawMessage(nil), AllowPreconfig: true,
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*QomGetArgs)
				return t().get(a.Path, a.Property)
			}},
		qmp.Command{Name: "qom-set", Args: &QomSetArgs{}, AllowPreconfig: true,
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*QomSetArgs)
				return nil, t().set(a.Path, a.Property, a.Value)
			}},
	)
}
