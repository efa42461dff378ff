package cmds

import (
	"tlcvm/blockdev"
	"tlcvm/qmp"
)

// BlockdevReopenArgs is blockdev-reopen's argument: the full options of each node to
// reopen (qapi/block-core.json).
type BlockdevReopenArgs struct {
	Options []BlockdevOptions `json:"options"`
}

// registerReopen registers blockdev-reopen (Graph.Reopen). An empty list does nothing;
// QEMU 7.2 fails an assertion on it.
func registerReopen(r *qmp.Registry, d *Deps) {
	if d.Block == nil {
		return
	}
	reopenCommand(r, d.Block)
}

// reopener is what blockdev-reopen needs of the block layer.
type reopener interface {
	Reopen(list []*blockdev.Options) error
}

func reopenCommand(r *qmp.Registry, g reopener) {
	r.Register(qmp.Command{Name: "blockdev-reopen", Args: &BlockdevReopenArgs{}, AllowPreconfig: true,
		Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*BlockdevReopenArgs)
			list := make([]*blockdev.Options, len(a.Options))
			for i := range a.Options {
				list[i] = BlockOptions(&a.Options[i])
			}
			return nil, g.Reopen(list)
		}})
}
