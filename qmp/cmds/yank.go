package cmds

import (
	"tlcvm/chardev"
	"tlcvm/qmp"
)

// query-yank and yank (util/yank.c): the instances that can be yanked, and yanking them.
// tlcvm's instances are its socket chardevs (chardev.Chardev.YankID); it has no NBD client
// block driver, so no "block-node" instance ever exists. The "migration" instance QEMU
// registers while a migration runs is not offered yet (docs/compatibility.md).

// YankInstanceType is QAPI's YankInstanceType.
type YankInstanceType string

// EnumValues implements qmp.Enum.
func (YankInstanceType) EnumValues() []string { return []string{"block-node", "chardev", "migration"} }

// YankInstance is QAPI's YankInstance union.
type YankInstance struct {
	Type    YankInstanceType `json:"type"`
	Variant any              `json:"-" qapi:"variant"`
}

// UnionTag implements qmp.Union.
func (YankInstance) UnionTag() string { return "type" }

// UnionVariants implements qmp.Union.
func (YankInstance) UnionVariants() map[string]any {
	return map[string]any{"block-node": YankInstanceBlockNode{}, "chardev": YankInstanceChardev{}}
}

// YankInstanceBlockNode is QAPI's YankInstanceBlockNode.
type YankInstanceBlockNode struct {
	NodeName string `json:"node-name"`
}

// YankInstanceChardev is QAPI's YankInstanceChardev.
type YankInstanceChardev struct {
	ID string `json:"id"`
}

// YankArgs is yank's arguments.
type YankArgs struct {
	Instances []YankInstance `json:"instances"`
}

// yankChardevReply is a chardev instance as query-yank writes it.
type yankChardevReply struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// yankChardevs returns the socket chardevs by yank id, and the ids in registration order.
func yankChardevs(d *Deps) (map[string]*chardev.Chardev, []string) {
	byID := map[string]*chardev.Chardev{}
	var order []string
	for _, info := range d.Chardevs() {
		c, ok := d.ChardevHotplug.Lookup(info.Label)
		if !ok {
			continue // a mux's "-base" part: listed through the mux
		}
		if id := c.YankID(); id != "" && byID[id] == nil {
			byID[id] = c
			order = append(order, id)
		}
	}
	return byID, order
}

func registerYank(r *qmp.Registry, d *Deps) {
	if d.ChardevHotplug == nil || d.Chardevs == nil {
		return
	}
	r.Register(
		qmp.Command{Name: "query-yank", Returns: []YankInstance{}, AllowOOB: true,
			Run: func(*qmp.Call) (any, error) {
				_, order := yankChardevs(d)
				out := make([]yankChardevReply, len(order))
				for i, id := range order {
					out[i] = yankChardevReply{Type: "chardev", ID: id}
				}
				return out, nil
			}},
		// yank_instance: every instance must exist before any is yanked.
		qmp.Command{Name: "yank", Args: &YankArgs{}, AllowOOB: true,
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*YankArgs)
				byID, _ := yankChardevs(d)
				var todo []*chardev.Chardev
				for _, in := range a.Instances {
					v, ok := in.Variant.(*YankInstanceChardev)
					if in.Type != "chardev" || !ok || byID[v.ID] == nil {
						return nil, qmp.Errorf(qmp.ClassDeviceNotFound, "Instance not found")
					}
					todo = append(todo, byID[v.ID])
				}
				for _, ch := range todo {
					ch.Yank()
				}
				return nil, nil
			}},
	)
}
