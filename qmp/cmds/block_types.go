package cmds

import (
	"time"

	"tlcvm/blockdev"
	"tlcvm/qmp"
)

// Wire types of the block commands (qapi/block-core.json, qapi/block.json, qapi/job.json),
// fields in QAPI schema order so that QAPIOrder gives QEMU's key order.

// ImageInfoSpecificQCow2 is qcow2's format-specific image information.
type ImageInfoSpecificQCow2 struct {
	qmp.QAPIOrder
	Compat          string             `json:"compat"`
	ExtendedL2      *bool              `json:"extended-l2,omitempty"`
	LazyRefcounts   *bool              `json:"lazy-refcounts,omitempty"`
	Corrupt         *bool              `json:"corrupt,omitempty"`
	RefcountBits    int64              `json:"refcount-bits"`
	Bitmaps         *[]Qcow2BitmapInfo `json:"bitmaps,omitempty"`
	CompressionType string             `json:"compression-type"`
}

// ImageInfoSpecific is the format-specific union (only qcow2 here).
type ImageInfoSpecific struct {
	qmp.QAPIOrder
	Type string                  `json:"type"`
	Data *ImageInfoSpecificQCow2 `json:"data"`
}

// ImageInfo describes an image.
type ImageInfo struct {
	qmp.QAPIOrder
	Filename              string             `json:"filename"`
	Format                string             `json:"format"`
	DirtyFlag             *bool              `json:"dirty-flag,omitempty"`
	ActualSize            *int64             `json:"actual-size,omitempty"`
	VirtualSize           int64              `json:"virtual-size"`
	ClusterSize           *int64             `json:"cluster-size,omitempty"`
	Encrypted             *bool              `json:"encrypted,omitempty"`
	Compressed            *bool              `json:"compressed,omitempty"`
	BackingFilename       string             `json:"backing-filename,omitempty"`
	FullBackingFilename   string             `json:"full-backing-filename,omitempty"`
	BackingFilenameFormat string             `json:"backing-filename-format,omitempty"`
	Snapshots             []SnapshotInfo     `json:"snapshots,omitempty"`
	BackingImage          *ImageInfo         `json:"backing-image,omitempty"`
	FormatSpecific        *ImageInfoSpecific `json:"format-specific,omitempty"`
}

// BlockdevCacheInfo is a node's cache mode.
type BlockdevCacheInfo struct {
	qmp.QAPIOrder
	Writeback bool `json:"writeback"`
	Direct    bool `json:"direct"`
	NoFlush   bool `json:"no-flush"`
}

// BlockDeviceInfo describes a node (query-named-block-nodes, query-block's inserted).
type BlockDeviceInfo struct {
	qmp.QAPIOrder
	File             string       `json:"file"`
	NodeName         string       `json:"node-name,omitempty"`
	RO               bool         `json:"ro"`
	Drv              string       `json:"drv"`
	BackingFile      string       `json:"backing_file,omitempty"`
	BackingFileDepth int64        `json:"backing_file_depth"`
	Encrypted        bool         `json:"encrypted"`
	DetectZeroes     DetectZeroes `json:"detect_zeroes"`
	Bps              int64        `json:"bps"`
	BpsRd            int64        `json:"bps_rd"`
	BpsWr            int64        `json:"bps_wr"`
	Iops             int64        `json:"iops"`
	IopsRd           int64        `json:"iops_rd"`
	IopsWr           int64        `json:"iops_wr"`
	Image            ImageInfo    `json:"image"`
	ThrottleBursts
	Cache          BlockdevCacheInfo `json:"cache"`
	WriteThreshold int64             `json:"write_threshold"`
	DirtyBitmaps   []BlockDirtyInfo  `json:"dirty-bitmaps,omitempty"`
}

// DetectZeroes is BlockdevDetectZeroesOptions.
type DetectZeroes string

// EnumValues implements qmp.Enum.
func (DetectZeroes) EnumValues() []string { return []string{"off", "on", "unmap"} }

// IOStatus is BlockDeviceIoStatus.
type IOStatus string

// EnumValues implements qmp.Enum.
func (IOStatus) EnumValues() []string { return []string{"ok", "failed", "nospace"} }

// BlockInfo is one backend of query-block.
type BlockInfo struct {
	qmp.QAPIOrder
	Device    string           `json:"device"`
	Qdev      string           `json:"qdev,omitempty"`
	Type      string           `json:"type" qapi:"deprecated"`
	Removable bool             `json:"removable"`
	Locked    bool             `json:"locked"`
	Inserted  *BlockDeviceInfo `json:"inserted,omitempty"`
	TrayOpen  *bool            `json:"tray_open,omitempty"`
	IOStatus  IOStatus         `json:"io-status,omitempty"`
}

// BlockDeviceTimedStats is one interval of timed statistics (never any: none configured).
type BlockDeviceTimedStats struct {
	qmp.QAPIOrder
	IntervalLength int64 `json:"interval_length"`
}

// BlockDeviceStats are a backend's or node's I/O statistics.
type BlockDeviceStats struct {
	qmp.QAPIOrder
	RdBytes                int64                      `json:"rd_bytes"`
	WrBytes                int64                      `json:"wr_bytes"`
	UnmapBytes             int64                      `json:"unmap_bytes"`
	RdOperations           int64                      `json:"rd_operations"`
	WrOperations           int64                      `json:"wr_operations"`
	FlushOperations        int64                      `json:"flush_operations"`
	UnmapOperations        int64                      `json:"unmap_operations"`
	RdTotalTimeNs          int64                      `json:"rd_total_time_ns"`
	WrTotalTimeNs          int64                      `json:"wr_total_time_ns"`
	FlushTotalTimeNs       int64                      `json:"flush_total_time_ns"`
	UnmapTotalTimeNs       int64                      `json:"unmap_total_time_ns"`
	WrHighestOffset        int64                      `json:"wr_highest_offset"`
	RdMerged               int64                      `json:"rd_merged"`
	WrMerged               int64                      `json:"wr_merged"`
	UnmapMerged            int64                      `json:"unmap_merged"`
	IdleTimeNs             *int64                     `json:"idle_time_ns,omitempty"`
	FailedRdOperations     int64                      `json:"failed_rd_operations"`
	FailedWrOperations     int64                      `json:"failed_wr_operations"`
	FailedFlushOperations  int64                      `json:"failed_flush_operations"`
	FailedUnmapOperations  int64                      `json:"failed_unmap_operations"`
	InvalidRdOperations    int64                      `json:"invalid_rd_operations"`
	InvalidWrOperations    int64                      `json:"invalid_wr_operations"`
	InvalidFlushOperations int64                      `json:"invalid_flush_operations"`
	InvalidUnmapOperations int64                      `json:"invalid_unmap_operations"`
	AccountInvalid         bool                       `json:"account_invalid"`
	AccountFailed          bool                       `json:"account_failed"`
	TimedStats             []BlockDeviceTimedStats    `json:"timed_stats"`
	RdLatencyHistogram     *BlockLatencyHistogramInfo `json:"rd_latency_histogram,omitempty"`
	WrLatencyHistogram     *BlockLatencyHistogramInfo `json:"wr_latency_histogram,omitempty"`
	FlushLatencyHistogram  *BlockLatencyHistogramInfo `json:"flush_latency_histogram,omitempty"`
}

// BlockStatsSpecificFile is the file driver's statistics.
type BlockStatsSpecificFile struct {
	qmp.QAPIOrder
	DiscardNbOk     int64 `json:"discard-nb-ok"`
	DiscardNbFailed int64 `json:"discard-nb-failed"`
	DiscardBytesOk  int64 `json:"discard-bytes-ok"`
}

// BlockStatsSpecific is the driver-specific union: file nodes only.
type BlockStatsSpecific struct {
	qmp.QAPIOrder
	Driver string `json:"driver"`
	BlockStatsSpecificFile
}

// BlockStats is one element of query-blockstats.
type BlockStats struct {
	qmp.QAPIOrder
	Device         *string             `json:"device,omitempty"`
	Qdev           string              `json:"qdev,omitempty"`
	NodeName       string              `json:"node-name,omitempty"`
	Stats          BlockDeviceStats    `json:"stats"`
	Parent         *BlockStats         `json:"parent,omitempty"`
	Backing        *BlockStats         `json:"backing,omitempty"`
	DriverSpecific *BlockStatsSpecific `json:"driver-specific,omitempty"`
}

// imageInfo is bdrv_query_image_info with the chain below: the backing image of a format
// node, the filtered node of a filter (implicit filters skipped for query-block).
func imageInfo(n *blockdev.Node, skipImplicit bool) ImageInfo {
	actual := n.ActualSize()
	dirty := false
	info := ImageInfo{Filename: n.Filename(), Format: n.Driver, DirtyFlag: &dirty, ActualSize: &actual, VirtualSize: n.Size()}
	if !n.ActualSizeKnown() {
		// Over nbd QEMU has neither an allocated file size nor bdrv_get_info.
		info.ActualSize, info.DirtyFlag = nil, nil
	}
	if !n.InfoKnown() {
		info.DirtyFlag = nil // no bdrv_get_info down the file chain (null-co, null-aio)
	}
	if cs, ok := n.ClusterSize(); ok {
		info.ClusterSize = &cs
	}
	if h := n.Header(); h != nil {
		dirty = h.Dirty()
		q := &ImageInfoSpecificQCow2{Compat: h.Compat(), RefcountBits: 1 << h.RefcountOrder, CompressionType: h.Compression()}
		if h.Version >= 3 {
			lazy, corrupt, ext := h.LazyRefcounts(), h.Corrupt(), h.ExtendedL2()
			q.LazyRefcounts, q.Corrupt, q.ExtendedL2 = &lazy, &corrupt, &ext
		}
		q.Bitmaps = imageBitmaps(n)
		info.FormatSpecific = &ImageInfoSpecific{Type: "qcow2", Data: q}
		info.BackingFilename = n.BackingFile
		info.FullBackingFilename = n.FullBackingFilename()
		info.BackingFilenameFormat = n.BackingFormat
	}
	info.Snapshots = imageSnapshots(n)
	b := n.FilteredOrBacking()
	if skipImplicit {
		b = blockdev.SkipImplicit(b)
	}
	if b != nil {
		bi := imageInfo(b, skipImplicit)
		info.BackingImage = &bi
	}
	return info
}

// blockDeviceInfo is bdrv_block_device_info: query-block (skipImplicit: the chain without
// the jobs' implicit filters) and query-named-block-nodes.
func blockDeviceInfo(n *blockdev.Node, writeback, skipImplicit bool) *BlockDeviceInfo {
	return &BlockDeviceInfo{
		File: n.Filename(), NodeName: n.Name, RO: n.ReadOnly, Drv: n.Driver,
		BackingFile: n.BackingName(), BackingFileDepth: int64(n.BackingDepth(skipImplicit)),
		DetectZeroes: DetectZeroes(n.DetectZeroes), Image: imageInfo(n, skipImplicit),
		Cache:          BlockdevCacheInfo{Writeback: writeback, Direct: n.Direct, NoFlush: n.NoFlush},
		WriteThreshold: n.WriteThreshold(),
		DirtyBitmaps:   dirtyInfo(n),
	}
}

// deviceStats is bdrv_query_blk_stats: a backend's counters (idle_time_ns once a request
// completed) and, as for every node, the root node's wr_highest_offset.
func deviceStats(s blockdev.Stats, wrHighest int64) BlockDeviceStats {
	d := BlockDeviceStats{
		RdBytes: s.RdBytes, WrBytes: s.WrBytes, UnmapBytes: s.UnmapBytes,
		RdOperations: s.RdOps, WrOperations: s.WrOps, FlushOperations: s.FlushOps, UnmapOperations: s.UnmapOps,
		RdTotalTimeNs: s.RdTotalNs, WrTotalTimeNs: s.WrTotalNs, FlushTotalTimeNs: s.FlushTotalNs,
		UnmapTotalTimeNs: s.UnmapTotalNs, WrHighestOffset: wrHighest,
		FailedRdOperations: s.FailedRdOps, FailedWrOperations: s.FailedWrOps,
		FailedFlushOperations: s.FailedFlushOps, FailedUnmapOperations: s.FailedUnmapOps,
		InvalidRdOperations: s.InvalidRdOps, InvalidWrOperations: s.InvalidWrOps,
		InvalidFlushOperations: s.InvalidFlushOps, InvalidUnmapOperations: s.InvalidUnmapOps,
		// Devices account invalid and failed requests (stats-account-* default on).
		AccountInvalid: true, AccountFailed: true,
		TimedStats:         []BlockDeviceTimedStats{},
		RdLatencyHistogram: latencyHistogramInfo(s.RdHist), WrLatencyHistogram: latencyHistogramInfo(s.WrHist),
		FlushLatencyHistogram: latencyHistogramInfo(s.FlushHist),
	}
	if !s.LastAccess.IsZero() {
		idle := time.Since(s.LastAccess).Nanoseconds()
		d.IdleTimeNs = &idle
	}
	return d
}

// nodeStats is bdrv_query_bds_stats: a node's statistics with its file child as "parent"
// and (when blockdev is true) its backing as "backing".
func nodeStats(n *blockdev.Node, backing bool) *BlockStats {
	s := &BlockStats{NodeName: n.Name, Stats: BlockDeviceStats{WrHighestOffset: n.WrHighestOffset(),
		TimedStats: []BlockDeviceTimedStats{}}}
	if n.Driver == blockdev.DriverFile || n.Driver == blockdev.DriverHostDevice {
		// bdrv_get_specific_stats: file-posix's alone
		f := n.FileStats()
		s.DriverSpecific = &BlockStatsSpecific{Driver: n.Driver, BlockStatsSpecificFile: BlockStatsSpecificFile{
			DiscardNbOk: f.DiscardNbOK, DiscardNbFailed: f.DiscardNbFailed, DiscardBytesOk: f.DiscardBytesOK}}
	}
	if n.File != nil {
		s.Parent = nodeStats(n.File, backing)
	}
	if backing && n.Backing != nil {
		s.Backing = nodeStats(n.Backing, backing)
	}
	return s
}
