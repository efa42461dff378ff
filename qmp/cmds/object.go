package cmds

import (
	"encoding/json"
	"slices"
	"strings"

	"tlcvm/compat"
	"tlcvm/compat/qerror"
	"tlcvm/internal/ghash"
	"tlcvm/objects"
	"tlcvm/qmp"
)

// The user-creatable objects (qapi/qom.json, qapi/machine.json): object-add, object-del,
// query-memdev, query-iothreads, through package objects.

// ObjectDelArgs is object-del's argument.
type ObjectDelArgs struct {
	ID string `json:"id"`
}

// Memdev is one element of query-memdev.
type Memdev struct {
	qmp.QAPIOrder
	ID        *string       `json:"id,omitempty"`
	Size      uint64        `json:"size"`
	Merge     bool          `json:"merge"`
	Dump      bool          `json:"dump"`
	Prealloc  bool          `json:"prealloc"`
	Share     bool          `json:"share"`
	Reserve   *bool         `json:"reserve,omitempty"`
	HostNodes []uint16      `json:"host-nodes"`
	Policy    HostMemPolicy `json:"policy"`
}

// ObjectOptsArgs is x-tlcvm-object-add-opts's argument: HMP object_add's string.
type ObjectOptsArgs struct {
	Object string `json:"object"`
}

// ObjectMembers turns an object's decoded variant into the members it was given, as JSON.
func ObjectMembers(a *ObjectOptions) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	if a.Variant == nil {
		return out, nil
	}
	v, err := qmp.ToValue(a.Variant)
	if err != nil {
		return nil, err
	}
	for _, m := range v.Members() {
		b, err := m.Value.MarshalJSON()
		if err != nil {
			return nil, err
		}
		out[m.Key] = b
	}
	return out, nil
}

// AddObject creates the object a describes.
func AddObject(reg *objects.Registry, a *ObjectOptions) error {
	members, err := ObjectMembers(a)
	if err != nil {
		return err
	}
	return reg.Add(a.ID, string(a.QomType), members)
}

func registerObjects(r *qmp.Registry, d *Deps) {
	reg := d.Objects
	if reg == nil {
		return
	}
	r.Register(
		qmp.Command{Name: "object-add", Args: &ObjectOptions{}, AllowPreconfig: true,
			Run: func(c *qmp.Call) (any, error) { return nil, AddObject(reg, c.Args.(*ObjectOptions)) }},
		qmp.Command{Name: "object-del", Args: &ObjectDelArgs{}, AllowPreconfig: true,
			Run: func(c *qmp.Call) (any, error) { return nil, reg.Del(c.Args.(*ObjectDelArgs).ID) }},
		// HMP object_add: a -object string.
		qmp.Command{Name: "x-tlcvm-object-add-opts", Internal: true, Args: &ObjectOptsArgs{},
			Run: func(c *qmp.Call) (any, error) {
				kv, err := KeyvalList(c.Args.(*ObjectOptsArgs).Object, "qom-type")
				if err != nil {
					return nil, err
				}
				a, err := ObjectFromOpts(kv, true)
				if err == nil {
					err = AddObject(reg, a)
				}
				if h := qerror.Hint(err); h != "" {
					// HMP prints the hint after the message, as QEMU's object_add does
					return nil, qmp.GenericError("%s\n%s", err, strings.TrimSuffix(h, "\n"))
				}
				return nil, err
			}},
		qmp.Command{Name: "query-memdev", Returns: []Memdev{}, AllowPreconfig: true,
			Run: func(*qmp.Call) (any, error) {
				out := []Memdev{}
				walk := objectWalk(reg)
				slices.Reverse(walk) // QEMU prepends each back-end as it walks /objects
				for _, o := range walk {
					m := o.Memory
					if m == nil {
						continue
					}
					id, reserve := o.ID, m.Reserve
					md := Memdev{ID: &id, Size: m.Size, Merge: m.Merge, Dump: m.Dump, Prealloc: m.Prealloc,
						Share: m.Share, Reserve: &reserve, HostNodes: []uint16{}, Policy: HostMemPolicy(m.Policy)}
					for _, n := range m.HostNodes {
						md.HostNodes = append(md.HostNodes, uint16(n))
					}
					out = append(out, md)
				}
				return out, nil
			}},
	)
}

// objectWalk is the objects in the order object_child_foreach walks the /objects
// container: its GHashTable's (objects deleted meanwhile are not modelled).
func objectWalk(reg *objects.Registry) []*objects.Object {
	objs := reg.List()
	byID := map[string]*objects.Object{}
	ids := make([]string, len(objs))
	for i, o := range objs {
		ids[i], byID[o.ID] = o.ID, o
	}
	out := make([]*objects.Object, 0, len(objs))
	for _, id := range ghash.Order(ids) {
		out = append(out, byID[id])
	}
	return out
}

// iothreads is query-iothreads' answer: every iothread object, as QEMU walks /objects.
func iothreads(d *Deps) []IOThreadInfo {
	out := []IOThreadInfo{}
	if d.Objects == nil {
		return out
	}
	for _, o := range objectWalk(d.Objects) {
		if t := o.IOThread; t != nil {
			p := func(name string) int64 { v, _ := t.Param(name); return v }
			out = append(out, IOThreadInfo{ID: o.ID, ThreadID: int64(t.ThreadID), PollMaxNs: p("poll-max-ns"),
				PollGrow: p("poll-grow"), PollShrink: p("poll-shrink"), AioMaxBatch: p("aio-max-batch")})
		}
	}
	return out
}

// KeyvalList parses a -object style string (keyval syntax, implied first key) into its
// pairs, in order.
func KeyvalList(s, implied string) ([]KV, error) {
	k, err := compat.ParseKeyval(s, implied)
	if err != nil {
		return nil, err
	}
	out := make([]KV, 0, len(k.Pairs))
	for _, p := range k.Pairs {
		out = append(out, KV{Key: p.Name, Value: p.Value})
	}
	return out, nil
}
