package cmds

import (
	"tlcvm/blockdev"
	"tlcvm/qmp"
)

// The commands that start block jobs (qapi/block-core.json): block-stream, block-commit,
// blockdev-mirror, drive-mirror, blockdev-backup, drive-backup. Each converts its
// arguments and calls package blockdev, which checks them in QEMU's order and with its
// texts.

// BlockdevOnError is QAPI's BlockdevOnError.
type BlockdevOnError string

// EnumValues implements qmp.Enum.
func (BlockdevOnError) EnumValues() []string { return []string{"report", "ignore", "enospc", "stop", "auto"} }

// BlockStreamArgs are block-stream's arguments.
type BlockStreamArgs struct {
	JobID          *string          `json:"job-id,omitempty"`
	Device         string           `json:"device"`
	Base           *string          `json:"base,omitempty"`
	BaseNode       *string          `json:"base-node,omitempty"`
	BackingFile    *string          `json:"backing-file,omitempty"`
	Bottom         *string          `json:"bottom,omitempty"`
	Speed          *int64           `json:"speed,omitempty"`
	OnError        *BlockdevOnError `json:"on-error,omitempty"`
	FilterNodeName *string          `json:"filter-node-name,omitempty"`
	AutoFinalize   *bool            `json:"auto-finalize,omitempty"`
	AutoDismiss    *bool            `json:"auto-dismiss,omitempty"`
}

func onError(p *BlockdevOnError) blockdev.OnError {
	if p == nil {
		return blockdev.OnErrorReport
	}
	return blockdev.OnError(*p)
}

func int64Or(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// isFalse reports whether an optional boolean was given as false (auto-finalize and
// auto-dismiss: JOB_MANUAL_FINALIZE, JOB_MANUAL_DISMISS).
func isFalse(p *bool) bool { return p != nil && !*p }

func registerBlockJobs(r *qmp.Registry, d *Deps) {
	g := d.Block
	if g == nil {
		return
	}
	r.Register(
		qmp.Command{Name: "block-stream", Args: &BlockStreamArgs{}, Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*BlockStreamArgs)
			return nil, g.Stream(blockdev.StreamOptions{JobID: a.JobID, Device: a.Device, Base: a.Base,
				BaseNode: a.BaseNode, BackingFile: a.BackingFile, Bottom: a.Bottom, Speed: int64Or(a.Speed),
				OnError: onError(a.OnError), FilterNodeName: deref(a.FilterNodeName),
				ManualFinalize: isFalse(a.AutoFinalize), ManualDismiss: isFalse(a.AutoDismiss)})
		}},
	)
}
