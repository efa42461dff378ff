package cmds

import (
	"tlcvm/blockdev"
	"tlcvm/qmp"
)

// block-dirty-bitmap-add and block-dirty-bitmap-remove (qapi/block-core.json), also as
// transaction actions: the part of the dirty-bitmap commands the block jobs and libvirt's
// pivots need (blockdev/namedbitmap.go).

// BlockDirtyBitmapAddArgs are block-dirty-bitmap-add's arguments.
type BlockDirtyBitmapAddArgs struct {
	Node        string `json:"node"`
	Name        string `json:"name"`
	Granularity *int64 `json:"granularity,omitempty"`
	Persistent  *bool  `json:"persistent,omitempty"`
	Disabled    *bool  `json:"disabled,omitempty"`
}

// BlockDirtyBitmapArgs are block-dirty-bitmap-remove's arguments (QAPI's BlockDirtyBitmap).
type BlockDirtyBitmapArgs struct {
	Node string `json:"node"`
	Name string `json:"name"`
}

// action returns the transaction action.
func (a *BlockDirtyBitmapAddArgs) action() *blockdev.BitmapAddAction {
	return &blockdev.BitmapAddAction{Node: a.Node, Name: a.Name, Granularity: int64Or(a.Granularity),
		Persistent: a.Persistent != nil && *a.Persistent, Disabled: a.Disabled != nil && *a.Disabled}
}

// BlockDirtyInfo is one element of a node's dirty-bitmaps in the block queries.
type BlockDirtyInfo struct {
	qmp.QAPIOrder
	Name         string `json:"name,omitempty"`
	Count        int64  `json:"count"`
	Granularity  int64  `json:"granularity"`
	Recording    bool   `json:"recording"`
	Busy         bool   `json:"busy"`
	Persistent   bool   `json:"persistent"`
	Inconsistent *bool  `json:"inconsistent,omitempty"`
}

// dirtyInfo lists a node's named bitmaps (nil when it has none: the member is left out).
func dirtyInfo(n *blockdev.Node) []BlockDirtyInfo {
	var out []BlockDirtyInfo
	for _, b := range n.Bitmaps() {
		out = append(out, BlockDirtyInfo{Name: b.Name, Count: b.Count(), Granularity: b.Granularity(),
			Recording: b.Recording(), Busy: b.Busy(), Persistent: b.Persistent})
	}
	return out
}

func registerBitmaps(r *qmp.Registry, d *Deps) {
	g := d.Block
	if g == nil {
		return
	}
	r.Register(
		qmp.Command{Name: "block-dirty-bitmap-add", Args: &BlockDirtyBitmapAddArgs{}, Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*BlockDirtyBitmapAddArgs).action()
			return nil, g.AddBitmap(a.Node, a.Name, a.Granularity, a.Persistent, a.Disabled)
		}},
		qmp.Command{Name: "block-dirty-bitmap-remove", Args: &BlockDirtyBitmapArgs{}, Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*BlockDirtyBitmapArgs)
			return nil, g.RemoveBitmap(a.Node, a.Name)
		}},
	)
}
