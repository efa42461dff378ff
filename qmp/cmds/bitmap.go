package cmds

import (
	"crypto/sha256"
	"encoding/hex"

	"tlcvm/blockdev"
	"tlcvm/qmp"
)

// The dirty-bitmap commands (qapi/block-core.json): block-dirty-bitmap-add, -remove,
// -clear, -enable, -disable, -merge, x-debug-block-dirty-bitmap-sha256, and the same
// actions inside transaction, calling blockdev's prepare steps. query-block and
// query-named-block-nodes show a node's bitmaps (BlockDeviceInfo's dirty-bitmaps), and
// qcow2 image information the bitmaps its image stores (ImageInfoSpecificQCow2's bitmaps).

// BlockDirtyBitmapAdd is block-dirty-bitmap-add's argument.
type BlockDirtyBitmapAdd struct {
	Node        string  `json:"node"`
	Name        string  `json:"name"`
	Granularity *uint32 `json:"granularity,omitempty"`
	Persistent  *bool   `json:"persistent,omitempty"`
	Disabled    *bool   `json:"disabled,omitempty"`
}

// BlockDirtyBitmap names a bitmap (remove, clear, enable, disable, sha256).
type BlockDirtyBitmap struct {
	Node string `json:"node"`
	Name string `json:"name"`
}

// BlockDirtyBitmapOrStr is QAPI's alternate of a bitmap of the target's node (its name)
// or a BlockDirtyBitmap.
type BlockDirtyBitmapOrStr struct {
	Local    string
	External *BlockDirtyBitmap
}

// DecodeValue implements qmp.ValueDecoder.
func (b *BlockDirtyBitmapOrStr) DecodeValue(v *qmp.Value, path string) error {
	switch v.Kind() {
	case qmp.KindString:
		b.Local, _ = v.AsString()
	case qmp.KindObject:
		a, err := qmp.DecodeArgsAt(v, &BlockDirtyBitmap{}, path)
		if err != nil {
			return err
		}
		b.External = a.(*BlockDirtyBitmap)
	default:
		return qmp.GenericError("Invalid parameter type for '%s', expected: BlockDirtyBitmapOrStr", qmp.PlainName(path))
	}
	return nil
}

// QAPISchema implements qmp.SchemaProvider.
func (BlockDirtyBitmapOrStr) QAPISchema(ref func(any) string) *qmp.Value {
	return alternate(ref, "", BlockDirtyBitmap{})
}

// Source converts to blockdev's merge source.
func (b BlockDirtyBitmapOrStr) Source() blockdev.MergeSource {
	if b.External != nil {
		return blockdev.MergeSource{Node: b.External.Node, Name: b.External.Name}
	}
	return blockdev.MergeSource{Name: b.Local}
}

// BlockDirtyBitmapMerge is block-dirty-bitmap-merge's argument.
type BlockDirtyBitmapMerge struct {
	Node    string                  `json:"node"`
	Target  string                  `json:"target"`
	Bitmaps []BlockDirtyBitmapOrStr `json:"bitmaps"`
}

// BlockDirtyBitmapSha256 is x-debug-block-dirty-bitmap-sha256's reply.
type BlockDirtyBitmapSha256 struct {
	Sha256 string `json:"sha256"`
}

// BlockDirtyInfo is one element of BlockDeviceInfo's dirty-bitmaps.
type BlockDirtyInfo struct {
	qmp.QAPIOrder
	Name         string `json:"name,omitempty"`
	Count        int64  `json:"count"`
	Granularity  uint32 `json:"granularity"`
	Recording    bool   `json:"recording"`
	Busy         bool   `json:"busy"`
	Persistent   bool   `json:"persistent"`
	Inconsistent *bool  `json:"inconsistent,omitempty"`
}

// Qcow2BitmapInfoFlags is the enum of a stored bitmap's flags.
type Qcow2BitmapInfoFlags string

// EnumValues implements qmp.Enum.
func (Qcow2BitmapInfoFlags) EnumValues() []string { return []string{"in-use", "auto"} }

// Qcow2BitmapInfo is one bitmap a qcow2 image stores.
type Qcow2BitmapInfo struct {
	qmp.QAPIOrder
	Name        string                 `json:"name"`
	Granularity uint32                 `json:"granularity"`
	Flags       []Qcow2BitmapInfoFlags `json:"flags"`
}

// namedBitmapActions make the commands (and transaction actions) that name one bitmap.
var namedBitmapActions = []struct {
	name   TransactionType
	action func(a *BlockDirtyBitmap) *blockdev.StepAction
}{
	{"block-dirty-bitmap-remove", func(a *BlockDirtyBitmap) *blockdev.StepAction {
		return blockdev.BitmapRemoveStep(a.Node, a.Name)
	}},
	{"block-dirty-bitmap-clear", func(a *BlockDirtyBitmap) *blockdev.StepAction {
		return blockdev.BitmapClearStep(a.Node, a.Name)
	}},
	{"block-dirty-bitmap-enable", func(a *BlockDirtyBitmap) *blockdev.StepAction {
		return blockdev.BitmapEnableStep(a.Node, a.Name, true)
	}},
	{"block-dirty-bitmap-disable", func(a *BlockDirtyBitmap) *blockdev.StepAction {
		return blockdev.BitmapEnableStep(a.Node, a.Name, false)
	}},
}

// bitmapAction decodes one of this file's transaction actions (at path, for error texts);
// ok is false for a type that is not a bitmap action.
func bitmapAction(typ TransactionType, data *qmp.Value, path string) (act blockdev.Action, ok bool, err error) {
	switch typ {
	case "block-dirty-bitmap-add":
		v, err := qmp.DecodeArgsAt(data, &BlockDirtyBitmapAdd{}, path)
		if err != nil {
			return nil, true, err
		}
		return blockdev.BitmapAddStep(bitmapAddOptions(v.(*BlockDirtyBitmapAdd))), true, nil
	case "block-dirty-bitmap-merge":
		v, err := qmp.DecodeArgsAt(data, &BlockDirtyBitmapMerge{}, path)
		if err != nil {
			return nil, true, err
		}
		return bitmapMerge(v.(*BlockDirtyBitmapMerge)), true, nil
	}
	for _, p := range namedBitmapActions {
		if p.name == typ {
			v, err := qmp.DecodeArgsAt(data, &BlockDirtyBitmap{}, path)
			if err != nil {
				return nil, true, err
			}
			return p.action(v.(*BlockDirtyBitmap)), true, nil
		}
	}
	return nil, false, nil
}

func bitmapAddOptions(a *BlockDirtyBitmapAdd) blockdev.BitmapAddOptions {
	o := blockdev.BitmapAddOptions{Node: a.Node, Name: a.Name,
		Persistent: a.Persistent != nil && *a.Persistent, Disabled: a.Disabled != nil && *a.Disabled}
	if a.Granularity != nil {
		o.Granularity = int64(*a.Granularity)
		if o.Granularity == 0 {
			o.Granularity = 1 // 0 is given, not absent: QEMU refuses it
		}
	}
	return o
}

func bitmapMerge(a *BlockDirtyBitmapMerge) *blockdev.StepAction {
	src := make([]blockdev.MergeSource, 0, len(a.Bitmaps))
	for _, b := range a.Bitmaps {
		src = append(src, b.Source())
	}
	return blockdev.BitmapMergeStep(a.Node, a.Target, src)
}

// bitmapStore is what the dirty bitmap commands need of the block layer: a bitmap action
// run on its own (as a one-action transaction) and a bitmap looked up by node and name.
type bitmapStore interface {
	RunStep(a *blockdev.StepAction) error
	LookupBitmap(node, name string) (*blockdev.Bitmap, error)
}

func registerBitmaps(r *qmp.Registry, d *Deps) {
	if d.Block == nil {
		return
	}
	bitmapCommands(r, d.Block)
}

// bitmapCommands registers the block-dirty-bitmap-* commands on g.
func bitmapCommands(r *qmp.Registry, g bitmapStore) {
	r.Register(
		qmp.Command{Name: "block-dirty-bitmap-add", Args: &BlockDirtyBitmapAdd{}, AllowPreconfig: true,
			Run: func(c *qmp.Call) (any, error) {
				return nil, g.RunStep(blockdev.BitmapAddStep(bitmapAddOptions(c.Args.(*BlockDirtyBitmapAdd))))
			}},
		qmp.Command{Name: "block-dirty-bitmap-merge", Args: &BlockDirtyBitmapMerge{}, AllowPreconfig: true,
			Run: func(c *qmp.Call) (any, error) {
				return nil, g.RunStep(bitmapMerge(c.Args.(*BlockDirtyBitmapMerge)))
			}},
		qmp.Command{Name: "x-debug-block-dirty-bitmap-sha256", Args: &BlockDirtyBitmap{}, AllowPreconfig: true,
			Returns: BlockDirtyBitmapSha256{}, Features: []string{"unstable"},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*BlockDirtyBitmap)
				b, err := g.LookupBitmap(a.Node, a.Name)
				if err != nil {
					return nil, err
				}
				// hbitmap_sha256: the last level's words as the host stores them.
				sum := sha256.Sum256(b.Serialize(0, (b.Size()+b.Granularity()-1)/b.Granularity()))
				return BlockDirtyBitmapSha256{Sha256: hex.EncodeToString(sum[:])}, nil
			}},
	)
	for _, p := range namedBitmapActions {
		action := p.action
		r.Register(qmp.Command{Name: string(p.name), Args: &BlockDirtyBitmap{}, AllowPreconfig: true,
			Run: func(c *qmp.Call) (any, error) {
				return nil, g.RunStep(action(c.Args.(*BlockDirtyBitmap)))
			}})
	}
}

// dirtyInfo is bdrv_query_dirty_bitmaps: nil when the node has no named bitmap.
func dirtyInfo(n *blockdev.Node) []BlockDirtyInfo {
	var out []BlockDirtyInfo
	for _, b := range n.BitmapInfos() {
		i := BlockDirtyInfo{Name: b.Name, Count: b.Count, Granularity: uint32(b.Granularity),
			Recording: b.Recording, Busy: b.Busy, Persistent: b.Persistent}
		if b.Inconsistent {
			t := true
			i.Inconsistent = &t
		}
		out = append(out, i)
	}
	return out
}

// imageBitmaps is qcow2_get_bitmap_info_list: nil when the image stores none.
func imageBitmaps(n *blockdev.Node) *[]Qcow2BitmapInfo {
	list, err := n.ImageBitmaps()
	if err != nil || len(list) == 0 {
		return nil
	}
	out := make([]Qcow2BitmapInfo, 0, len(list))
	for _, b := range list {
		flags := []Qcow2BitmapInfoFlags{}
		for _, f := range b.Flags() {
			flags = append(flags, Qcow2BitmapInfoFlags(f))
		}
		out = append(out, Qcow2BitmapInfo{Name: b.Name, Granularity: uint32(b.Granularity), Flags: flags})
	}
	return &out
}
