package cmds

import (
	"tlcvm/blockdev"
	"tlcvm/qmp"
)

// blockdev-snapshot-sync (blockdev.c qmp_blockdev_snapshot_sync, external_snapshot_action):
// the legacy external snapshot that creates its overlay file itself; package blockdev's
// SnapshotSyncAction, also a transaction action.

// BlockdevSnapshotSyncArgs is QAPI's BlockdevSnapshotSync.
type BlockdevSnapshotSyncArgs struct {
	Device           *string       `json:"device,omitempty"`
	NodeName         *string       `json:"node-name,omitempty"`
	SnapshotFile     string        `json:"snapshot-file"`
	SnapshotNodeName *string       `json:"snapshot-node-name,omitempty"`
	Format           *string       `json:"format,omitempty"`
	Mode             *NewImageMode `json:"mode,omitempty"`
}

// Action is the blockdev action of these arguments.
func (a *BlockdevSnapshotSyncArgs) Action() *blockdev.SnapshotSyncAction {
	x := &blockdev.SnapshotSyncAction{Device: deref(a.Device), NodeName: deref(a.NodeName), File: a.SnapshotFile,
		OverlayName: deref(a.SnapshotNodeName), Format: deref(a.Format)}
	if a.Mode != nil {
		x.Mode = string(*a.Mode)
	}
	return x
}

// snapshotSyncer is what blockdev-snapshot-sync needs of the block layer.
type snapshotSyncer interface {
	SnapshotSync(a blockdev.SnapshotSyncAction) error
}

func registerSnapshotSync(r *qmp.Registry, d *Deps) {
	if d.Block == nil {
		return
	}
	r.Register(qmp.Command{Name: "blockdev-snapshot-sync", Args: &BlockdevSnapshotSyncArgs{},
		Run: func(c *qmp.Call) (any, error) {
			return nil, d.Block.SnapshotSync(*c.Args.(*BlockdevSnapshotSyncArgs).Action())
		}})
}
