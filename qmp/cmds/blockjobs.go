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
func (BlockdevOnError) EnumValues() []string {
	return []string{"report", "ignore", "enospc", "stop", "auto"}
}

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

// BlockCommitArgs are block-commit's arguments.
type BlockCommitArgs struct {
	JobID          *string          `json:"job-id,omitempty"`
	Device         string           `json:"device"`
	BaseNode       *string          `json:"base-node,omitempty"`
	Base           *string          `json:"base,omitempty" qapi:"deprecated"`
	TopNode        *string          `json:"top-node,omitempty"`
	Top            *string          `json:"top,omitempty" qapi:"deprecated"`
	BackingFile    *string          `json:"backing-file,omitempty"`
	Speed          *int64           `json:"speed,omitempty"`
	OnError        *BlockdevOnError `json:"on-error,omitempty"`
	FilterNodeName *string          `json:"filter-node-name,omitempty"`
	AutoFinalize   *bool            `json:"auto-finalize,omitempty"`
	AutoDismiss    *bool            `json:"auto-dismiss,omitempty"`
}

// MirrorSyncMode is QAPI's MirrorSyncMode.
type MirrorSyncMode string

// EnumValues implements qmp.Enum.
func (MirrorSyncMode) EnumValues() []string {
	return []string{"top", "full", "none", "incremental", "bitmap"}
}

// NewImageMode is QAPI's NewImageMode.
type NewImageMode string

// EnumValues implements qmp.Enum.
func (NewImageMode) EnumValues() []string { return []string{"existing", "absolute-paths"} }

// MirrorCopyMode is QAPI's MirrorCopyMode.
type MirrorCopyMode string

// EnumValues implements qmp.Enum.
func (MirrorCopyMode) EnumValues() []string { return []string{"background", "write-blocking"} }

// DriveMirrorArgs are drive-mirror's arguments (QAPI's DriveMirror).
type DriveMirrorArgs struct {
	JobID         *string          `json:"job-id,omitempty"`
	Device        string           `json:"device"`
	Target        string           `json:"target"`
	Format        *string          `json:"format,omitempty"`
	NodeName      *string          `json:"node-name,omitempty"`
	Replaces      *string          `json:"replaces,omitempty"`
	Sync          MirrorSyncMode   `json:"sync"`
	Mode          *NewImageMode    `json:"mode,omitempty"`
	Speed         *int64           `json:"speed,omitempty"`
	Granularity   *uint32          `json:"granularity,omitempty"`
	BufSize       *int64           `json:"buf-size,omitempty"`
	OnSourceError *BlockdevOnError `json:"on-source-error,omitempty"`
	OnTargetError *BlockdevOnError `json:"on-target-error,omitempty"`
	Unmap         *bool            `json:"unmap,omitempty"`
	CopyMode      *MirrorCopyMode  `json:"copy-mode,omitempty"`
	AutoFinalize  *bool            `json:"auto-finalize,omitempty"`
	AutoDismiss   *bool            `json:"auto-dismiss,omitempty"`
}

// BlockdevMirrorArgs are blockdev-mirror's arguments.
type BlockdevMirrorArgs struct {
	JobID          *string          `json:"job-id,omitempty"`
	Device         string           `json:"device"`
	Target         string           `json:"target"`
	Replaces       *string          `json:"replaces,omitempty"`
	Sync           MirrorSyncMode   `json:"sync"`
	Speed          *int64           `json:"speed,omitempty"`
	Granularity    *uint32          `json:"granularity,omitempty"`
	BufSize        *int64           `json:"buf-size,omitempty"`
	OnSourceError  *BlockdevOnError `json:"on-source-error,omitempty"`
	OnTargetError  *BlockdevOnError `json:"on-target-error,omitempty"`
	FilterNodeName *string          `json:"filter-node-name,omitempty"`
	CopyMode       *MirrorCopyMode  `json:"copy-mode,omitempty"`
	AutoFinalize   *bool            `json:"auto-finalize,omitempty"`
	AutoDismiss    *bool            `json:"auto-dismiss,omitempty"`
}

// BitmapSyncMode is QAPI's BitmapSyncMode.
type BitmapSyncMode string

// EnumValues implements qmp.Enum.
func (BitmapSyncMode) EnumValues() []string { return []string{"on-success", "never", "always"} }

// BackupPerf is QAPI's BackupPerf (x-perf): accepted, without effect in tlcvm.
type BackupPerf struct {
	UseCopyRange *bool  `json:"use-copy-range,omitempty"`
	MaxWorkers   *int64 `json:"max-workers,omitempty"`
	MaxChunk     *int64 `json:"max-chunk,omitempty"`
}

// BackupCommon is QAPI's BackupCommon, the base of BlockdevBackup and DriveBackup.
type BackupCommon struct {
	JobID          *string          `json:"job-id,omitempty"`
	Device         string           `json:"device"`
	Sync           MirrorSyncMode   `json:"sync"`
	Speed          *int64           `json:"speed,omitempty"`
	Bitmap         *string          `json:"bitmap,omitempty"`
	BitmapMode     *BitmapSyncMode  `json:"bitmap-mode,omitempty"`
	Compress       *bool            `json:"compress,omitempty"`
	OnSourceError  *BlockdevOnError `json:"on-source-error,omitempty"`
	OnTargetError  *BlockdevOnError `json:"on-target-error,omitempty"`
	AutoFinalize   *bool            `json:"auto-finalize,omitempty"`
	AutoDismiss    *bool            `json:"auto-dismiss,omitempty"`
	FilterNodeName *string          `json:"filter-node-name,omitempty"`
	XPerf          *BackupPerf      `json:"x-perf,omitempty" qapi:"unstable"`
}

// BlockdevBackupArgs are blockdev-backup's arguments (QAPI's BlockdevBackup).
type BlockdevBackupArgs struct {
	BackupCommon
	Target string `json:"target"`
}

// DriveBackupArgs are drive-backup's arguments (QAPI's DriveBackup).
type DriveBackupArgs struct {
	BackupCommon
	Target string        `json:"target"`
	Format *string       `json:"format,omitempty"`
	Mode   *NewImageMode `json:"mode,omitempty"`
}

// options converts the common backup arguments.
func (a *BackupCommon) options(target string) blockdev.BackupOptions {
	o := blockdev.BackupOptions{JobID: a.JobID, Device: a.Device, Target: target, Sync: string(a.Sync),
		Speed: int64Or(a.Speed), Bitmap: a.Bitmap, Compress: a.Compress != nil && *a.Compress,
		OnSourceError: onError(a.OnSourceError), OnTargetError: onError(a.OnTargetError),
		FilterNodeName: deref(a.FilterNodeName), ManualFinalize: isFalse(a.AutoFinalize),
		ManualDismiss: isFalse(a.AutoDismiss)}
	if a.BitmapMode != nil {
		m := string(*a.BitmapMode)
		o.BitmapMode = &m
	}
	return o
}

// BackupAction returns blockdev-backup's transaction action.
func (a *BlockdevBackupArgs) BackupAction() *blockdev.BackupAction {
	return &blockdev.BackupAction{Options: a.options(a.Target)}
}

// BackupAction returns drive-backup's transaction action.
func (a *DriveBackupArgs) BackupAction() *blockdev.BackupAction {
	o := a.options(a.Target)
	o.Format = a.Format
	if a.Mode != nil {
		o.Mode = string(*a.Mode)
	}
	return &blockdev.BackupAction{Options: o, Drive: true}
}

func copyMode(p *MirrorCopyMode) string {
	if p == nil {
		return "background"
	}
	return string(*p)
}

func onError(p *BlockdevOnError) blockdev.OnError {
	if p == nil {
		return blockdev.OnErrorReport
	}
	return blockdev.OnError(*p)
}

// granularity is a mirror's granularity (QAPI uint32); 0: the target's default.
func granularity(p *uint32) int64 {
	if p == nil {
		return 0
	}
	return int64(*p)
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

// jobStarter is what the commands that start block jobs need of the block layer.
type jobStarter interface {
	Stream(o blockdev.StreamOptions) error
	Commit(o blockdev.CommitOptions) error
	BlockdevMirror(o blockdev.MirrorOptions) error
	DriveMirror(o blockdev.MirrorOptions) error
	CommitImage(device string) error
	Transaction(actions []blockdev.Action, grouped bool) error
}

func registerBlockJobs(r *qmp.Registry, d *Deps) {
	if d.Block == nil {
		return
	}
	blockJobCommands(r, d.Block)
}

// blockJobCommands registers block-stream, block-commit, the mirrors and the backups on g.
func blockJobCommands(r *qmp.Registry, g jobStarter) {
	r.Register(
		qmp.Command{Name: "block-stream", Args: &BlockStreamArgs{}, Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*BlockStreamArgs)
			return nil, g.Stream(blockdev.StreamOptions{JobID: a.JobID, Device: a.Device, Base: a.Base,
				BaseNode: a.BaseNode, BackingFile: a.BackingFile, Bottom: a.Bottom, Speed: int64Or(a.Speed),
				OnError: onError(a.OnError), FilterNodeName: deref(a.FilterNodeName),
				ManualFinalize: isFalse(a.AutoFinalize), ManualDismiss: isFalse(a.AutoDismiss)})
		}},
		qmp.Command{Name: "block-commit", Args: &BlockCommitArgs{}, Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*BlockCommitArgs)
			return nil, g.Commit(blockdev.CommitOptions{JobID: a.JobID, Device: a.Device, BaseNode: a.BaseNode,
				Base: a.Base, TopNode: a.TopNode, Top: a.Top, BackingFile: a.BackingFile, Speed: int64Or(a.Speed),
				OnError: onError(a.OnError), FilterNodeName: deref(a.FilterNodeName),
				ManualFinalize: isFalse(a.AutoFinalize), ManualDismiss: isFalse(a.AutoDismiss)})
		}},
		qmp.Command{Name: "blockdev-mirror", Args: &BlockdevMirrorArgs{}, Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*BlockdevMirrorArgs)
			return nil, g.BlockdevMirror(blockdev.MirrorOptions{JobID: a.JobID, Device: a.Device, Target: a.Target,
				Replaces: a.Replaces, Sync: string(a.Sync), Speed: int64Or(a.Speed), Granularity: granularity(a.Granularity),
				BufSize: int64Or(a.BufSize), OnSourceError: onError(a.OnSourceError), OnTargetError: onError(a.OnTargetError),
				FilterNodeName: deref(a.FilterNodeName), CopyMode: copyMode(a.CopyMode),
				ManualFinalize: isFalse(a.AutoFinalize), ManualDismiss: isFalse(a.AutoDismiss)})
		}},
		qmp.Command{Name: "drive-mirror", Args: &DriveMirrorArgs{}, Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*DriveMirrorArgs)
			o := blockdev.MirrorOptions{JobID: a.JobID, Device: a.Device, Target: a.Target, Format: a.Format,
				NodeName: a.NodeName, Replaces: a.Replaces, Sync: string(a.Sync), Speed: int64Or(a.Speed),
				Granularity: granularity(a.Granularity), BufSize: int64Or(a.BufSize), OnSourceError: onError(a.OnSourceError),
				OnTargetError: onError(a.OnTargetError), Unmap: a.Unmap, CopyMode: copyMode(a.CopyMode),
				ManualFinalize: isFalse(a.AutoFinalize), ManualDismiss: isFalse(a.AutoDismiss)}
			if a.Mode != nil {
				o.Mode = string(*a.Mode)
			}
			return nil, g.DriveMirror(o)
		}},
		// HMP's commit (bdrv_commit has no QMP command in QEMU): the error is HMP's line.
		qmp.Command{Name: "x-tlcvm-commit", Internal: true, Args: &BlockJobDeviceArgs{},
			Run: func(c *qmp.Call) (any, error) { return nil, g.CommitImage(c.Args.(*BlockJobDeviceArgs).Device) }},
		qmp.Command{Name: "blockdev-backup", Args: &BlockdevBackupArgs{}, Run: func(c *qmp.Call) (any, error) {
			return nil, g.Transaction([]blockdev.Action{c.Args.(*BlockdevBackupArgs).BackupAction()}, false)
		}},
		qmp.Command{Name: "drive-backup", Args: &DriveBackupArgs{}, Features: []string{"deprecated"},
			Run: func(c *qmp.Call) (any, error) {
				return nil, g.Transaction([]blockdev.Action{c.Args.(*DriveBackupArgs).BackupAction()}, false)
			}},
	)
}
