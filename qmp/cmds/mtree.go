package cmds

import (
	"tlcvm/machine/memtree"
	"tlcvm/qmp"
)

// HMP info mtree prints QEMU's memory region tree (softmmu/memory.c mtree_info); qmp has
// no twin. tlcvm's HMP gets package memtree's rendering of the board through this internal
// command.

// MtreeArgs are info mtree's flags: -f, -d, -o, -D.
type MtreeArgs struct {
	FlatView     bool `json:"flatview,omitempty"`
	DispatchTree bool `json:"dispatch_tree,omitempty"`
	Owner        bool `json:"owner,omitempty"`
	Disabled     bool `json:"disabled,omitempty"`
}

func registerMtree(r *qmp.Registry, d *Deps) {
	if d.MemoryTree == nil {
		return
	}
	r.Register(qmp.Command{Name: "x-tlcvm-info-mtree", Internal: true, Args: &MtreeArgs{}, Returns: TextInfo{},
		Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*MtreeArgs)
			return TextInfo{Text: d.MemoryTree().Print(memtree.Options{FlatView: a.FlatView, Disabled: a.Disabled, Owner: a.Owner})}, nil
		}})
}
