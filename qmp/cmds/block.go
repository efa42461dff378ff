package cmds

import (
	"encoding/json"
	"fmt"

	"tlcvm/blockdev"
	"tlcvm/qmp"
)

// The block commands: queries over the block graph (query-block, query-named-block-nodes,
// query-blockstats, query-jobs), graph changes (blockdev-add, blockdev-del, block_resize,
// blockdev-snapshot, transaction) and the create job (blockdev-create), all calling package
// blockdev (disk devices are plugged through qmp/cmds/device.go; the job commands are in
// jobs.go).

// BlockDriver is QAPI's BlockdevDriver enum.
type BlockDriver string

// EnumValues implements qmp.Enum.
func (BlockDriver) EnumValues() []string {
	return []string{"blkdebug", "blklogwrites", "blkreplay", "blkverify", "bochs", "cloop", "compress",
		"copy-before-write", "copy-on-read", "dmg", "file", "snapshot-access", "ftp", "ftps", "gluster",
		"host_cdrom", "host_device", "http", "https", "iscsi", "luks", "nbd", "nfs", "null-aio", "null-co",
		"nvme", "parallels", "preallocate", "qcow", "qcow2", "qed", "quorum", "raw", "rbd", "replication",
		"ssh", "throttle", "vdi", "vhdx", "vmdk", "vpc", "vvfat"}
}

// Discard is BlockdevDiscardOptions.
type Discard string

// EnumValues implements qmp.Enum.
func (Discard) EnumValues() []string { return []string{"ignore", "unmap"} }

// BlockdevCacheOptions is the cache member of BlockdevOptions.
type BlockdevCacheOptions struct {
	Direct  *bool `json:"direct,omitempty"`
	NoFlush *bool `json:"no-flush,omitempty"`
}

// BlockdevOptions is blockdev-add's argument (and an inline BlockdevRef): the base members
// and the variants of the drivers tlcvm opens.
type BlockdevOptions struct {
	Driver       BlockDriver           `json:"driver"`
	NodeName     *string               `json:"node-name,omitempty"`
	Discard      Discard               `json:"discard,omitempty"`
	Cache        *BlockdevCacheOptions `json:"cache,omitempty"`
	ReadOnly     *bool                 `json:"read-only,omitempty"`
	AutoReadOnly *bool                 `json:"auto-read-only,omitempty"`
	ForceShare   *bool                 `json:"force-share,omitempty"`
	DetectZeroes DetectZeroes          `json:"detect-zeroes,omitempty"`
	Variant      any                   `json:"-" qapi:"variant"`
}

// BlockdevOptionsFile is the file driver's members.
type BlockdevOptionsFile struct {
	Filename string  `json:"filename"`
	Locking  *string `json:"locking,omitempty"`
	AIO      *string `json:"aio,omitempty"`
}

// BlockdevOptionsRaw is the raw driver's members.
type BlockdevOptionsRaw struct {
	File   BlockdevRef `json:"file"`
	Offset *int64      `json:"offset,omitempty"`
	Size   *int64      `json:"size,omitempty"`
}

// BlockdevOptionsQcow2 is the qcow2 driver's members tlcvm accepts.
type BlockdevOptionsQcow2 struct {
	File          BlockdevRef        `json:"file"`
	Backing       *BlockdevRefOrNull `json:"backing,omitempty"`
	LazyRefcounts *bool              `json:"lazy-refcounts,omitempty"`
	CacheSize     *int64             `json:"cache-size,omitempty"`
}

// UnionTag implements qmp.Union.
func (BlockdevOptions) UnionTag() string { return "driver" }

// UnionVariants implements qmp.Union.
func (BlockdevOptions) UnionVariants() map[string]any {
	return map[string]any{"file": BlockdevOptionsFile{}, "host_device": BlockdevOptionsFile{},
		"raw": BlockdevOptionsRaw{}, "qcow2": BlockdevOptionsQcow2{}, "blkdebug": BlockdevOptionsBlkdebug{},
		"nbd": BlockdevOptionsNbd{}, "null-co": BlockdevOptionsNull{}, "null-aio": BlockdevOptionsNull{}}
}

// BlockdevRef is QAPI's alternate of inline BlockdevOptions or a node name.
type BlockdevRef struct {
	Node    string
	Options *BlockdevOptions
}

// DecodeValue implements qmp.ValueDecoder.
func (r *BlockdevRef) DecodeValue(v *qmp.Value, path string) error {
	switch v.Kind() {
	case qmp.KindString:
		r.Node, _ = v.AsString()
	case qmp.KindObject:
		a, err := qmp.DecodeArgs(v, &BlockdevOptions{})
		if err != nil {
			return err
		}
		r.Options = a.(*BlockdevOptions)
	default:
		return qmp.GenericError("Invalid parameter type for '%s', expected: BlockdevRef", path)
	}
	return nil
}

// QAPISchema implements qmp.SchemaProvider.
func (BlockdevRef) QAPISchema(ref func(any) string) *qmp.Value {
	return alternate(ref, BlockdevOptions{}, "")
}

// BlockdevRefOrNull adds null ("no backing file") to BlockdevRef.
type BlockdevRefOrNull struct {
	BlockdevRef
	Null bool
}

// DecodeValue implements qmp.ValueDecoder.
func (r *BlockdevRefOrNull) DecodeValue(v *qmp.Value, path string) error {
	if v.Kind() == qmp.KindNull {
		r.Null = true
		return nil
	}
	if v.Kind() != qmp.KindString && v.Kind() != qmp.KindObject {
		return qmp.GenericError("Invalid parameter type for '%s', expected: BlockdevRefOrNull", path)
	}
	return r.BlockdevRef.DecodeValue(v, path)
}

// QAPISchema implements qmp.SchemaProvider.
func (BlockdevRefOrNull) QAPISchema(ref func(any) string) *qmp.Value {
	return alternate(ref, BlockdevOptions{}, "", qmp.QNull{})
}

func alternate(ref func(any) string, members ...any) *qmp.Value {
	arr := qmp.Array()
	for _, m := range members {
		o := qmp.Object()
		o.Set("type", qmp.String(ref(m)))
		arr.Append(o)
	}
	n := qmp.Object()
	n.Set("members", arr)
	n.Set("meta-type", qmp.String("alternate"))
	return n
}

// BlockOptions converts decoded blockdev-add arguments to the block layer's options.
func BlockOptions(o *BlockdevOptions) *blockdev.Options {
	out := &blockdev.Options{Driver: string(o.Driver), Discard: string(o.Discard), ReadOnly: o.ReadOnly,
		AutoReadOnly: o.AutoReadOnly, ForceShare: o.ForceShare, DetectZeroes: string(o.DetectZeroes)}
	if o.NodeName != nil {
		out.NodeName = *o.NodeName
	}
	if o.Cache != nil {
		out.CacheDirect, out.CacheNoFlush = o.Cache.Direct, o.Cache.NoFlush
	}
	conv := func(r BlockdevRef) *blockdev.Ref {
		if r.Options != nil {
			return &blockdev.Ref{Options: BlockOptions(r.Options)}
		}
		return &blockdev.Ref{Node: r.Node}
	}
	switch v := o.Variant.(type) {
	case *BlockdevOptionsFile:
		out.Filename = v.Filename
		if v.Locking != nil {
			out.Locking = *v.Locking
		}
		if v.AIO != nil {
			out.AIO = *v.AIO
		}
	case *BlockdevOptionsRaw:
		out.File = conv(v.File)
	case *BlockdevOptionsBlkdebug:
		out.Blkdebug = blkdebugOptions(v, conv)
	case *BlockdevOptionsNbd:
		out.NBD = nbdOptions(v)
	case *BlockdevOptionsNull:
		out.Null = nullOptions(v)
	case *BlockdevOptionsQcow2:
		out.File = conv(v.File)
		if b := v.Backing; b != nil {
			if b.Null {
				out.Backing = &blockdev.Ref{Null: true}
			} else {
				out.Backing = conv(b.BlockdevRef)
			}
		}
	}
	return out
}

// NodeNameArgs is blockdev-del's argument.
type NodeNameArgs struct {
	NodeName string `json:"node-name"`
}

// QueryNodesArgs are query-named-block-nodes' arguments.
type QueryNodesArgs struct {
	Flat *bool `json:"flat,omitempty"`
}

// QueryBlockstatsArgs are query-blockstats' arguments.
type QueryBlockstatsArgs struct {
	QueryNodes *bool `json:"query-nodes,omitempty"`
}

// BlockResizeArgs are block_resize's arguments.
type BlockResizeArgs struct {
	Device   *string `json:"device,omitempty" qapi:"deprecated"`
	NodeName *string `json:"node-name,omitempty"`
	Size     int64   `json:"size"`
}

// BlockdevSnapshotArgs are blockdev-snapshot's arguments.
type BlockdevSnapshotArgs struct {
	Node    string `json:"node"`
	Overlay string `json:"overlay"`
}

// TransactionType is TransactionActionKind.
type TransactionType string

// EnumValues implements qmp.Enum.
func (TransactionType) EnumValues() []string {
	return []string{"abort", "block-dirty-bitmap-add", "block-dirty-bitmap-remove", "block-dirty-bitmap-clear",
		"block-dirty-bitmap-enable", "block-dirty-bitmap-disable", "block-dirty-bitmap-merge", "blockdev-backup",
		"blockdev-snapshot", "blockdev-snapshot-internal-sync", "blockdev-snapshot-sync", "drive-backup"}
}

// TransactionAction is one action of transaction: its type and its data.
type TransactionAction struct {
	Type TransactionType `json:"type"`
	Data *qmp.Value      `json:"data"`
}

// ActionCompletionMode is QAPI's ActionCompletionMode.
type ActionCompletionMode string

// EnumValues implements qmp.Enum.
func (ActionCompletionMode) EnumValues() []string { return []string{"individual", "grouped"} }

// TransactionProperties are transaction's optional properties.
type TransactionProperties struct {
	CompletionMode *ActionCompletionMode `json:"completion-mode,omitempty"`
}

// TransactionArgs are transaction's arguments.
type TransactionArgs struct {
	Actions    []TransactionAction    `json:"actions"`
	Properties *TransactionProperties `json:"properties,omitempty"`
}

// BlockdevCreateFile is the file driver's blockdev-create options.
type BlockdevCreateFile struct {
	Filename      string  `json:"filename"`
	Size          uint64  `json:"size"` // QAPI size: a string or float is "expects uint64"
	Preallocation *string `json:"preallocation,omitempty"`
	Nocow         *bool   `json:"nocow,omitempty"`
}

// BlockdevCreateQcow2 is qcow2's blockdev-create options.
type BlockdevCreateQcow2 struct {
	File            BlockdevRef     `json:"file"`
	DataFile        *BlockdevRef    `json:"data-file,omitempty"`
	DataFileRaw     *bool           `json:"data-file-raw,omitempty"`
	ExtendedL2      *bool           `json:"extended-l2,omitempty"`
	Size            uint64          `json:"size"`
	Version         *Qcow2Version   `json:"version,omitempty"`
	BackingFile     *string         `json:"backing-file,omitempty"`
	BackingFmt      *BlockDriver    `json:"backing-fmt,omitempty"`
	Encrypt         json.RawMessage `json:"encrypt,omitempty"`
	ClusterSize     *uint64         `json:"cluster-size,omitempty"`
	Preallocation   *string         `json:"preallocation,omitempty"`
	LazyRefcounts   *bool           `json:"lazy-refcounts,omitempty"`
	RefcountBits    *int64          `json:"refcount-bits,omitempty"`
	CompressionType *string         `json:"compression-type,omitempty"`
}

// Qcow2Version is BlockdevQcow2Version.
type Qcow2Version string

// EnumValues implements qmp.Enum.
func (Qcow2Version) EnumValues() []string { return []string{"v2", "v3"} }

// BlockdevCreateOptions is blockdev-create's options union.
type BlockdevCreateOptions struct {
	Driver  BlockDriver `json:"driver"`
	Variant any         `json:"-" qapi:"variant"`
}

// UnionTag implements qmp.Union.
func (BlockdevCreateOptions) UnionTag() string { return "driver" }

// UnionVariants implements qmp.Union.
func (BlockdevCreateOptions) UnionVariants() map[string]any {
	return map[string]any{"file": BlockdevCreateFile{}, "qcow2": BlockdevCreateQcow2{}}
}

// BlockdevCreateArgs are blockdev-create's arguments.
type BlockdevCreateArgs struct {
	JobID   string                `json:"job-id"`
	Options BlockdevCreateOptions `json:"options"`
}

// blockLister is what the block queries need of the block layer: its backends and nodes,
// read under its lock.
type blockLister interface {
	Lock()
	Unlock()
	BackendsLocked() []*blockdev.Backend
	NodesLocked() []*blockdev.Node
}

// nodeGraph is what the node graph commands need of the block layer: the queries, nodes
// added, deleted, resized and snapshotted, transactions and image creation jobs.
type nodeGraph interface {
	blockLister
	Add(o *blockdev.Options) (*blockdev.Node, error)
	Del(name string) error
	Resize(device, nodeName string, size int64) error
	Snapshot(actions ...blockdev.SnapshotAction) error
	Transaction(actions []blockdev.Action, grouped bool) error
	Create(jobID string, o *blockdev.CreateOptions) error
}

func registerBlock(r *qmp.Registry, d *Deps) {
	if d.Block == nil {
		return
	}
	blockCommands(r, d.Block)
}

// blockCommands registers the block queries and the node graph commands on g.
func blockCommands(r *qmp.Registry, g nodeGraph) {
	r.Register(
		qmp.Command{Name: "query-block", Returns: []BlockInfo{}, Run: func(*qmp.Call) (any, error) {
			return queryBlock(g), nil
		}},
		qmp.Command{Name: "query-named-block-nodes", Args: &QueryNodesArgs{}, Returns: []BlockDeviceInfo{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*QueryNodesArgs)
				return queryNodes(g, a.Flat != nil && *a.Flat), nil
			}},
		qmp.Command{Name: "query-blockstats", Args: &QueryBlockstatsArgs{}, Returns: []BlockStats{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*QueryBlockstatsArgs)
				return queryBlockstats(g, a.QueryNodes != nil && *a.QueryNodes), nil
			}},
		qmp.Command{Name: "blockdev-add", Args: &BlockdevOptions{}, AllowPreconfig: true,
			Run: func(c *qmp.Call) (any, error) {
				_, err := g.Add(BlockOptions(c.Args.(*BlockdevOptions)))
				return nil, err
			}},
		qmp.Command{Name: "blockdev-del", Args: &NodeNameArgs{}, AllowPreconfig: true,
			Run: func(c *qmp.Call) (any, error) { return nil, g.Del(c.Args.(*NodeNameArgs).NodeName) }},
		qmp.Command{Name: "block_resize", Args: &BlockResizeArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*BlockResizeArgs)
				return nil, g.Resize(deref(a.Device), deref(a.NodeName), a.Size)
			}},
		qmp.Command{Name: "blockdev-snapshot", Args: &BlockdevSnapshotArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*BlockdevSnapshotArgs)
				return nil, g.Snapshot(blockdev.SnapshotAction{Node: a.Node, Overlay: a.Overlay})
			}},
		qmp.Command{Name: "transaction", Args: &TransactionArgs{},
			Run: func(c *qmp.Call) (any, error) { return nil, transaction(g, c.Args.(*TransactionArgs)) }},
		qmp.Command{Name: "blockdev-create", Args: &BlockdevCreateArgs{}, Features: []string{},
			Run: func(c *qmp.Call) (any, error) { return nil, blockdevCreate(g, c.Args.(*BlockdevCreateArgs)) }},
	)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func queryBlock(g blockLister) []BlockInfo {
	g.Lock()
	defer g.Unlock()
	out := []BlockInfo{}
	for _, b := range g.BackendsLocked() {
		bi := BlockInfo{Device: b.Name, Type: "unknown", Removable: b.Removable(), Locked: b.Locked}
		if b.Device != nil {
			bi.Qdev = b.Device.Qdev()
		}
		if b.IOStatus() {
			bi.IOStatus = IOStatus(b.IOStatusValue())
		}
		if b.Root != nil {
			bi.Inserted = blockDeviceInfo(blockdev.SkipImplicit(b.Root), !b.WriteThrough, true)
			throttleInfo(bi.Inserted, b.Throttle())
		}
		if b.HasTray() {
			open := b.TrayOpen
			bi.TrayOpen = &open
		}
		out = append(out, bi)
	}
	return out
}

func queryNodes(g blockLister, flat bool) []BlockDeviceInfo {
	g.Lock()
	defer g.Unlock()
	out := []BlockDeviceInfo{}
	for _, n := range g.NodesLocked() {
		info := blockDeviceInfo(n, true, false)
		if flat {
			info.Image.BackingImage = nil
			info.BackingFileDepth = 0
		}
		out = append(out, *info)
	}
	return out
}

func queryBlockstats(g blockLister, nodes bool) []BlockStats {
	g.Lock()
	defer g.Unlock()
	out := []BlockStats{}
	if nodes {
		all := g.NodesLocked()
		for i := len(all) - 1; i >= 0; i-- {
			out = append(out, *nodeStats(all[i], false))
		}
		return out
	}
	for _, b := range g.BackendsLocked() {
		name := b.Name
		var wrHighest int64
		if b.Root != nil {
			wrHighest = b.Root.WrHighestOffset()
		}
		s := BlockStats{Device: &name, Stats: deviceStats(b.Stats(), wrHighest)}
		if b.Device != nil {
			s.Qdev = b.Device.Qdev()
		}
		if r := b.Root; r != nil {
			ns := nodeStats(r, true)
			s.NodeName, s.Parent, s.Backing, s.DriverSpecific = ns.NodeName, ns.Parent, ns.Backing, ns.DriverSpecific
		}
		out = append(out, s)
	}
	return out
}

// transaction is qmp_transaction: each action's data decoded as its command's arguments
// (all of them before anything runs, as QEMU's visitor does), run by blockdev.Transaction.
func transaction(g nodeGraph, a *TransactionArgs) error {
	var actions []blockdev.Action
	for i, act := range a.Actions {
		path := fmt.Sprintf("actions[%d].data", i)
		if x, ok, err := bitmapAction(act.Type, act.Data, path); ok {
			if err != nil {
				return err
			}
			actions = append(actions, x)
			continue
		}
		var x blockdev.Action
		switch act.Type {
		case "abort":
			x = blockdev.AbortAction{}
		case "blockdev-snapshot":
			v, err := qmp.DecodeArgsAt(act.Data, &BlockdevSnapshotArgs{}, path)
			if err != nil {
				return err
			}
			s := v.(*BlockdevSnapshotArgs)
			x = &blockdev.SnapshotAction{Node: s.Node, Overlay: s.Overlay}
		case "blockdev-snapshot-sync":
			v, err := qmp.DecodeArgsAt(act.Data, &BlockdevSnapshotSyncArgs{}, path)
			if err != nil {
				return err
			}
			x = v.(*BlockdevSnapshotSyncArgs).Action()
		case "blockdev-backup":
			v, err := qmp.DecodeArgsAt(act.Data, &BlockdevBackupArgs{}, path)
			if err != nil {
				return err
			}
			x = v.(*BlockdevBackupArgs).BackupAction()
		case "drive-backup":
			v, err := qmp.DecodeArgsAt(act.Data, &DriveBackupArgs{}, path)
			if err != nil {
				return err
			}
			x = v.(*DriveBackupArgs).BackupAction()
		default:
			return qmp.GenericError("tlcvm: transaction action '%s' is not supported", act.Type)
		}
		actions = append(actions, x)
	}
	if len(actions) == 0 {
		return nil
	}
	grouped := a.Properties != nil && a.Properties.CompletionMode != nil && *a.Properties.CompletionMode == "grouped"
	return g.Transaction(actions, grouped)
}

func blockdevCreate(g nodeGraph, a *BlockdevCreateArgs) error {
	o := &blockdev.CreateOptions{Driver: string(a.Options.Driver)}
	switch v := a.Options.Variant.(type) {
	case *BlockdevCreateFile:
		o.Filename, o.Size = v.Filename, int64(v.Size) // a negative size comes back as it was given
		if v.Preallocation != nil && *v.Preallocation != "off" {
			return qmp.GenericError("tlcvm: preallocation '%s' is not supported", *v.Preallocation)
		}
	case *BlockdevCreateQcow2:
		if v.File.Options != nil {
			return qmp.GenericError("tlcvm: blockdev-create needs 'file' to name an existing node")
		}
		o.File, o.Size = v.File.Node, int64(v.Size)
		q := &o.Qcow2
		if v.Version != nil {
			q.Version = string(*v.Version)
		}
		q.BackingFile = deref(v.BackingFile)
		if v.BackingFmt != nil {
			q.BackingFormat = string(*v.BackingFmt)
		}
		if v.ClusterSize != nil {
			q.ClusterSize = *v.ClusterSize
		}
		if v.RefcountBits != nil {
			q.RefcountBits = uint64(*v.RefcountBits)
		}
		q.LazyRefcounts = v.LazyRefcounts != nil && *v.LazyRefcounts
		q.ExtendedL2 = v.ExtendedL2 != nil && *v.ExtendedL2
		q.CompressionType = deref(v.CompressionType)
		q.Preallocation = deref(v.Preallocation)
		q.Encrypt = len(v.Encrypt) > 0
		q.DataFile = v.DataFile != nil
	}
	return g.Create(a.JobID, o)
}

// BlockEvents adapts the block layer's events to QMP's wire types.
func BlockEvents(emit func(name string, data any)) blockdev.Emitter { return blockEmitter(emit) }

type blockEmitter func(name string, data any)

func (e blockEmitter) Emit(name string, data any) {
	if d, ok := jobEvent(data); ok {
		e(name, d)
		return
	}
	switch v := data.(type) {
	case blockdev.TrayMovedEvent:
		e(name, DeviceTrayMovedData{Device: v.Device, ID: v.ID, TrayOpen: v.TrayOpen})
	case blockdev.IOErrorEvent:
		d := BlockIOErrorData{Device: v.Device, Operation: IoOperationType(v.Operation), Action: BlockErrorAction(v.Action),
			Reason: v.Reason}
		if v.NodeName != "" {
			d.NodeName = &v.NodeName
		}
		if v.HasNospace {
			d.Nospace = &v.Nospace
		}
		e(name, d)
	case blockdev.WriteThresholdEvent:
		e(name, BlockWriteThresholdData{NodeName: v.NodeName, AmountExceeded: uint64(v.AmountExceeded),
			WriteThreshold: uint64(v.WriteThreshold)})
	default:
		e(name, data)
	}
}
