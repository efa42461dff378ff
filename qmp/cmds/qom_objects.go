package cmds

import (
	"encoding/json"

	"tlcvm/objects"
	"tlcvm/qmp"
)

// The QOM view of the user-creatable objects: /objects lists the registry's objects, each
// with its type's properties (the values it was given, else the catalogue's defaults). The
// container appears with the first object, as QEMU's object_get_objects_root makes it, and
// stays.

// SetObjects makes /objects list the registry's objects.
func (t *Tree) SetObjects(reg *objects.Registry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.objects = reg
	t.objObjs = map[*objects.Object]*Object{}
}

// memoryRegion is a memory back-end's RAM region, its child "ID[0]" (the QOM properties
// of a memory-region; tlcvm does not say which container maps it: "").
func memoryRegion(size uint64) *Object {
	mr := NewObject("memory-region")
	mr.AddValue("container", "link<memory-region>", "", false)
	mr.AddValue("addr", "uint64", uint64(0), false)
	mr.AddValue("size", "uint64", size, false)
	mr.AddValue("priority", "uint32", uint32(0), false)
	return mr
}

// refreshObjects rebuilds /objects from the registry; mu held.
func (t *Tree) refreshObjects() {
	if t.objects == nil {
		return
	}
	objs := t.objects.List()
	c := t.root.Child("objects")
	if c == nil {
		if len(objs) == 0 {
			return
		}
		c = t.root.AddChild("objects", NewObject("container"))
	}
	c.children = nil
	live := map[*objects.Object]*Object{}
	for _, o := range objs {
		qo := t.objObjs[o]
		if qo == nil {
			qo = NewObject(o.Type)
			vals := map[string]json.RawMessage{}
			for k, v := range o.Props {
				vals[k] = v
			}
			AddCatalogProps(qo, o.Type, vals)
			if o.Memory != nil {
				qo.AddChild(o.ID+"[0]", memoryRegion(o.Memory.Size))
			}
			if o.IOThread != nil {
				iothreadProps(qo, o.IOThread)
			}
		}
		live[o] = qo
		c.AddChild(o.ID, qo)
	}
	t.objObjs = live
}

// iothreadProps makes an iothread's parameters live QOM properties: qom-get reads what the
// thread uses, qom-set changes it (query-iothreads follows; libvirt's iothreadset).
func iothreadProps(qo *Object, t *objects.IOThread) {
	for _, name := range objects.IOThreadParams {
		qo.AddProp(&Prop{Name: name, Type: "int",
			Get: func() any { v, _ := t.Param(name); return v },
			Set: func(raw json.RawMessage) error {
				var v int64
				if err := json.Unmarshal(raw, &v); err != nil {
					return qmp.GenericError("Invalid parameter type for '%s', expected: integer", name)
				}
				return t.SetParam(name, v)
			}})
	}
}
