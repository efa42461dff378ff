package cmds

import (
	"tlcvm/migration"
	"tlcvm/migration/transport"
	"tlcvm/qmp"
)

// The migration commands (qapi/migration.json): migrate, migrate_cancel, query-migrate,
// migrate-set-capabilities, query-migrate-capabilities, migrate-set-parameters,
// query-migrate-parameters, migrate-incoming; events MIGRATION and MIGRATION_PASS. They
// call migration.Engine; the types here give the wire its QAPI member order and QEMU's
// key order (QAPIOrder).

// MigrateArgs are migrate's arguments.
type MigrateArgs struct {
	URI    string `json:"uri"`
	Blk    *bool  `json:"blk,omitempty"`
	Inc    *bool  `json:"inc,omitempty"`
	Detach *bool  `json:"detach,omitempty"`
	Resume *bool  `json:"resume,omitempty"`
}

// MigrateIncomingArgs are migrate-incoming's arguments.
type MigrateIncomingArgs struct {
	URI string `json:"uri"`
}

// MigrationCapabilityStatus is one capability and its state.
type MigrationCapabilityStatus struct {
	qmp.QAPIOrder
	Capability migration.Capability `json:"capability"`
	State      bool                 `json:"state"`
}

// MigrateSetCapabilitiesArgs are migrate-set-capabilities' arguments.
type MigrateSetCapabilitiesArgs struct {
	Capabilities []MigrationCapabilityStatus `json:"capabilities"`
}

// MigrationParameters is query-migrate-parameters' reply.
type MigrationParameters struct {
	qmp.QAPIOrder
	migration.Params
}

// MigrateSetParameters are migrate-set-parameters' arguments: MigrationParameters with
// the TLS members as StrOrNull (null resets to "").
type MigrateSetParameters struct {
	AnnounceInitial          *uint64                               `json:"announce-initial,omitempty"`
	AnnounceMax              *uint64                               `json:"announce-max,omitempty"`
	AnnounceRounds           *uint64                               `json:"announce-rounds,omitempty"`
	AnnounceStep             *uint64                               `json:"announce-step,omitempty"`
	CompressLevel            *uint8                                `json:"compress-level,omitempty"`
	CompressThreads          *uint8                                `json:"compress-threads,omitempty"`
	CompressWaitThread       *bool                                 `json:"compress-wait-thread,omitempty"`
	DecompressThreads        *uint8                                `json:"decompress-threads,omitempty"`
	ThrottleTriggerThreshold *uint8                                `json:"throttle-trigger-threshold,omitempty"`
	CPUThrottleInitial       *uint8                                `json:"cpu-throttle-initial,omitempty"`
	CPUThrottleIncrement     *uint8                                `json:"cpu-throttle-increment,omitempty"`
	CPUThrottleTailslow      *bool                                 `json:"cpu-throttle-tailslow,omitempty"`
	TLSCreds                 *qmp.StrOrNull                        `json:"tls-creds,omitempty"`
	TLSHostname              *qmp.StrOrNull                        `json:"tls-hostname,omitempty"`
	TLSAuthz                 *qmp.StrOrNull                        `json:"tls-authz,omitempty"`
	MaxBandwidth             *uint64                               `json:"max-bandwidth,omitempty"`
	DowntimeLimit            *uint64                               `json:"downtime-limit,omitempty"`
	XCheckpointDelay         *uint32                               `json:"x-checkpoint-delay,omitempty" qapi:"unstable"`
	BlockIncremental         *bool                                 `json:"block-incremental,omitempty"`
	MultifdChannels          *uint8                                `json:"multifd-channels,omitempty"`
	XbzrleCacheSize          *uint64                               `json:"xbzrle-cache-size,omitempty"`
	MaxPostcopyBandwidth     *uint64                               `json:"max-postcopy-bandwidth,omitempty"`
	MaxCPUThrottle           *uint8                                `json:"max-cpu-throttle,omitempty"`
	MultifdCompression       *migration.Compression                `json:"multifd-compression,omitempty"`
	MultifdZlibLevel         *uint8                                `json:"multifd-zlib-level,omitempty"`
	MultifdZstdLevel         *uint8                                `json:"multifd-zstd-level,omitempty"`
	BlockBitmapMapping       *[]migration.BitmapMigrationNodeAlias `json:"block-bitmap-mapping,omitempty"`
	XCheckpointCPU           *int64                                `json:"x-checkpoint-cpu,omitempty"`
	XRestorePopulate         *migration.PopulateMode               `json:"x-restore-populate,omitempty"`
}

func strOrNull(s *qmp.StrOrNull) *string {
	if s == nil {
		return nil
	}
	v := s.S
	if s.Null {
		v = ""
	}
	return &v
}

func (a *MigrateSetParameters) params() migration.Params {
	return migration.Params{
		AnnounceInitial: a.AnnounceInitial, AnnounceMax: a.AnnounceMax, AnnounceRounds: a.AnnounceRounds,
		AnnounceStep: a.AnnounceStep, CompressLevel: a.CompressLevel, CompressThreads: a.CompressThreads,
		CompressWaitThread: a.CompressWaitThread, DecompressThreads: a.DecompressThreads,
		ThrottleTriggerThreshold: a.ThrottleTriggerThreshold, CPUThrottleInitial: a.CPUThrottleInitial,
		CPUThrottleIncrement: a.CPUThrottleIncrement, CPUThrottleTailslow: a.CPUThrottleTailslow,
		TLSCreds: strOrNull(a.TLSCreds), TLSHostname: strOrNull(a.TLSHostname), TLSAuthz: strOrNull(a.TLSAuthz),
		MaxBandwidth: a.MaxBandwidth, DowntimeLimit: a.DowntimeLimit, XCheckpointDelay: a.XCheckpointDelay,
		BlockIncremental: a.BlockIncremental, MultifdChannels: a.MultifdChannels,
		XbzrleCacheSize: a.XbzrleCacheSize, MaxPostcopyBandwidth: a.MaxPostcopyBandwidth,
		MaxCPUThrottle: a.MaxCPUThrottle, MultifdCompression: a.MultifdCompression,
		MultifdZlibLevel: a.MultifdZlibLevel, MultifdZstdLevel: a.MultifdZstdLevel,
		BlockBitmapMapping: a.BlockBitmapMapping, XCheckpointCPU: a.XCheckpointCPU,
		XRestorePopulate: a.XRestorePopulate,
	}
}

// MigrationStats is QAPI's MigrationStats (query-migrate's "ram").
type MigrationStats struct {
	qmp.QAPIOrder
	Transferred             int64   `json:"transferred"`
	Remaining               int64   `json:"remaining"`
	Total                   int64   `json:"total"`
	Duplicate               int64   `json:"duplicate"`
	Skipped                 int64   `json:"skipped" qapi:"deprecated"`
	Normal                  int64   `json:"normal"`
	NormalBytes             int64   `json:"normal-bytes"`
	DirtyPagesRate          int64   `json:"dirty-pages-rate"`
	Mbps                    float64 `json:"mbps"`
	DirtySyncCount          int64   `json:"dirty-sync-count"`
	PostcopyRequests        int64   `json:"postcopy-requests"`
	PageSize                int64   `json:"page-size"`
	MultifdBytes            int64   `json:"multifd-bytes"`
	PagesPerSecond          int64   `json:"pages-per-second"`
	PrecopyBytes            int64   `json:"precopy-bytes"`
	DowntimeBytes           int64   `json:"downtime-bytes"`
	PostcopyBytes           int64   `json:"postcopy-bytes"`
	DirtySyncMissedZeroCopy int64   `json:"dirty-sync-missed-zero-copy"`
}

// XBZRLECacheStats is QAPI's XBZRLECacheStats (query-migrate's xbzrle-cache).
type XBZRLECacheStats struct {
	qmp.QAPIOrder
	CacheSize     int64   `json:"cache-size"`
	Bytes         int64   `json:"bytes"`
	Pages         int64   `json:"pages"`
	CacheMiss     int64   `json:"cache-miss"`
	CacheMissRate float64 `json:"cache-miss-rate"`
	EncodingRate  float64 `json:"encoding-rate"`
	Overflow      int64   `json:"overflow"`
}

// CompressionStats is QAPI's CompressionStats (query-migrate's compression).
type CompressionStats struct {
	qmp.QAPIOrder
	Pages           int64   `json:"pages"`
	Busy            int64   `json:"busy"`
	BusyRate        float64 `json:"busy-rate"`
	CompressedSize  int64   `json:"compressed-size"`
	CompressionRate float64 `json:"compression-rate"`
}

// VfioStats is QAPI's VfioStats (never reported: tlcvm has no VFIO).
type VfioStats struct {
	qmp.QAPIOrder
	Transferred int64 `json:"transferred"`
}

// TLCStage is one element of query-migrate's x-tlc-stages: the seed's per-stage figures.
type TLCStage struct {
	qmp.QAPIOrder
	Stage      string `json:"stage"`
	ElapsedMS  int64  `json:"elapsed-ms"`
	Bytes      int64  `json:"bytes"`
	Iterations int64  `json:"iterations"`
	ThreadID   int64  `json:"thread-id"`
	CPU        int64  `json:"cpu"`
}

// MigrationInfo is query-migrate's reply (QEMU's members that tlcvm reports, plus
// x-tlc-stages once a checkpoint has passed its setup).
type MigrationInfo struct {
	qmp.QAPIOrder
	Status                *migration.Status          `json:"status,omitempty"`
	RAM                   *MigrationStats            `json:"ram,omitempty"`
	Disk                  *MigrationStats            `json:"disk,omitempty"`
	VFIO                  *VfioStats                 `json:"vfio,omitempty"`
	XBZRLECache           *XBZRLECacheStats          `json:"xbzrle-cache,omitempty"`
	TotalTime             *int64                     `json:"total-time,omitempty"`
	ExpectedDowntime      *int64                     `json:"expected-downtime,omitempty"`
	Downtime              *int64                     `json:"downtime,omitempty"`
	SetupTime             *int64                     `json:"setup-time,omitempty"`
	CPUThrottlePercentage *int64                     `json:"cpu-throttle-percentage,omitempty"`
	ErrorDesc             *string                    `json:"error-desc,omitempty"`
	BlockedReasons        *[]string                  `json:"blocked-reasons,omitempty"`
	Compression           *CompressionStats          `json:"compression,omitempty"`
	SocketAddress         *[]transport.SocketAddress `json:"socket-address,omitempty"`
	XTLCStages            *[]TLCStage                `json:"x-tlc-stages,omitempty"`
	XTLCFile              *TLCFile                   `json:"x-tlc-file,omitempty"`
}

// TLCFile is query-migrate's x-tlc-file: how a checkpoint to file: was written (mode
// "mapped" or "streamed", incremental or not and why, bytes written to the file), or how a
// restore from one reads its pages (populate mode; pages populated eagerly by the
// background thread or before the guest ran, lazily on first touch, and not yet).
type TLCFile struct {
	qmp.QAPIOrder
	Mode         string  `json:"mode"`
	Incremental  *bool   `json:"incremental,omitempty"`
	Reason       *string `json:"reason,omitempty"`
	WrittenBytes *int64  `json:"written-bytes,omitempty"`
	Populate     *string `json:"populate,omitempty"`
	PagesEager   *int64  `json:"pages-eager,omitempty"`
	PagesLazy    *int64  `json:"pages-lazy,omitempty"`
	PagesLeft    *int64  `json:"pages-left,omitempty"`
}

func tlcFileOf(f *migration.FileInfo) *TLCFile {
	if f == nil {
		return nil
	}
	out := &TLCFile{Mode: f.Mode}
	if f.Populate != "" {
		p := string(f.Populate)
		out.Populate = &p
		out.PagesEager, out.PagesLazy, out.PagesLeft = &f.PagesEager, &f.PagesLazy, &f.PagesLeft
		return out
	}
	out.Incremental, out.WrittenBytes = &f.Incremental, &f.WrittenBytes
	if f.Reason != "" && f.Mode == "mapped" {
		out.Reason = &f.Reason
	}
	return out
}

// MigrationInfoOf converts the engine's Info to the wire type.
func MigrationInfoOf(in migration.Info) MigrationInfo {
	var out MigrationInfo
	if !in.HasStatus {
		return out
	}
	st := in.Status
	out.Status = &st
	out.TotalTime, out.ExpectedDowntime, out.Downtime, out.SetupTime = in.TotalTime, in.ExpectedDowntime, in.Downtime, in.SetupTime
	out.ErrorDesc = in.ErrorDesc
	out.CPUThrottlePercentage = in.CPUThrottlePercentage
	if c := in.Compression; c != nil {
		out.Compression = &CompressionStats{Pages: c.Pages, Busy: c.Busy, BusyRate: c.BusyRate,
			CompressedSize: c.CompressedSize, CompressionRate: c.CompressionRate}
	}
	if x := in.XBZRLE; x != nil {
		out.XBZRLECache = &XBZRLECacheStats{CacheSize: x.CacheSize, Bytes: x.Bytes, Pages: x.Pages,
			CacheMiss: x.CacheMiss, CacheMissRate: x.CacheMissRate, EncodingRate: x.EncodingRate, Overflow: x.Overflow}
	}
	if len(in.SocketAddresses) > 0 {
		out.SocketAddress = &in.SocketAddresses
	}
	if r := in.RAM; r != nil {
		out.RAM = &MigrationStats{Transferred: r.Transferred, Remaining: r.Remaining, Total: r.Total,
			Duplicate: r.Duplicate, Skipped: r.Skipped, Normal: r.Normal, NormalBytes: r.NormalBytes,
			DirtyPagesRate: r.DirtyPagesRate, Mbps: r.Mbps, DirtySyncCount: r.DirtySyncCount,
			PostcopyRequests: r.PostcopyRequests, PageSize: r.PageSize, MultifdBytes: r.MultifdBytes,
			PagesPerSecond: r.PagesPerSecond, PrecopyBytes: r.PrecopyBytes, DowntimeBytes: r.DowntimeBytes,
			PostcopyBytes: r.PostcopyBytes, DirtySyncMissedZeroCopy: r.DirtySyncMissedZeroCopy}
	}
	if len(in.Stages) > 0 {
		stages := make([]TLCStage, len(in.Stages))
		for i, s := range in.Stages {
			stages[i] = TLCStage{Stage: s.Name, ElapsedMS: s.ElapsedMS, Bytes: s.Bytes,
				Iterations: s.Iterations, ThreadID: int64(s.ThreadID), CPU: int64(s.CPU)}
		}
		out.XTLCStages = &stages
	}
	out.XTLCFile = tlcFileOf(in.File)
	return out
}

// MigrationEventData is MIGRATION's data.
type MigrationEventData struct {
	qmp.QAPIOrder
	Status migration.Status `json:"status"`
}

// MigrationPassEventData is MIGRATION_PASS's data.
type MigrationPassEventData struct {
	qmp.QAPIOrder
	Pass int64 `json:"pass"`
}

// RegisterMigrationEvents declares MIGRATION and MIGRATION_PASS for the schema.
func RegisterMigrationEvents(r *qmp.Registry) {
	r.RegisterEvent("MIGRATION", MigrationEventData{})
	r.RegisterEvent("MIGRATION_PASS", MigrationPassEventData{})
}

// migrator is what the migration commands need of the migration engine: start, cancel
// and report an outgoing migration, its capabilities and parameters, and an incoming one.
type migrator interface {
	Migrate(uri string, o migration.MigrateOptions) error
	Cancel()
	Info() migration.Info
	SetCapabilities(list []migration.CapabilityStatus) error
	Capabilities() []migration.CapabilityStatus
	SetParams(u migration.Params) error
	Params() migration.Params
	Incoming(uri string, o migration.IncomingOptions) error
}

func registerMigration(r *qmp.Registry, d *Deps) {
	if d.Migration == nil {
		return
	}
	var dumping func() bool
	if d.Dumper != nil {
		dumping = d.Dumper.InProgress
	}
	migrationCommands(r, d.Migration, dumping)
}

// migrationCommands registers the migration commands on e; dumping (nil: never) reports a
// dump-guest-memory in progress, which blocks migrate.
func migrationCommands(r *qmp.Registry, e migrator, dumping func() bool) {
	r.Register(
		qmp.Command{Name: "migrate", Args: &MigrateArgs{}, Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*MigrateArgs)
			o := migration.MigrateOptions{Blk: isTrue(a.Blk), Inc: isTrue(a.Inc), Resume: isTrue(a.Resume)}
			if c.Session != nil {
				o.LookupFD = c.Session.TakeFD
			}
			if dumping != nil {
				o.Blocked = func() error {
					if dumping() {
						return qmp.GenericError("Live migration disabled: dump-guest-memory in progress")
					}
					return nil
				}
			}
			return nil, e.Migrate(a.URI, o)
		}},
		qmp.Command{Name: "migrate_cancel", Run: func(*qmp.Call) (any, error) {
			e.Cancel()
			return nil, nil
		}},
		qmp.Command{Name: "query-migrate", Returns: MigrationInfo{}, Run: func(*qmp.Call) (any, error) {
			return MigrationInfoOf(e.Info()), nil
		}},
		qmp.Command{Name: "migrate-set-capabilities", Args: &MigrateSetCapabilitiesArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*MigrateSetCapabilitiesArgs)
				list := make([]migration.CapabilityStatus, len(a.Capabilities))
				for i, cs := range a.Capabilities {
					list[i] = migration.CapabilityStatus{Capability: cs.Capability, State: cs.State}
				}
				return nil, e.SetCapabilities(list)
			}},
		qmp.Command{Name: "query-migrate-capabilities", Returns: []MigrationCapabilityStatus{},
			Run: func(*qmp.Call) (any, error) {
				caps := e.Capabilities()
				out := make([]MigrationCapabilityStatus, len(caps))
				for i, cs := range caps {
					out[i] = MigrationCapabilityStatus{Capability: cs.Capability, State: cs.State}
				}
				return out, nil
			}},
		qmp.Command{Name: "migrate-set-parameters", Args: &MigrateSetParameters{},
			Run: func(c *qmp.Call) (any, error) {
				return nil, e.SetParams(c.Args.(*MigrateSetParameters).params())
			}},
		qmp.Command{Name: "query-migrate-parameters", Returns: MigrationParameters{},
			Run: func(*qmp.Call) (any, error) {
				return MigrationParameters{Params: e.Params()}, nil
			}},
		qmp.Command{Name: "migrate-incoming", Args: &MigrateIncomingArgs{},
			Run: func(c *qmp.Call) (any, error) {
				var o migration.IncomingOptions
				if c.Session != nil {
					o.LookupFD = c.Session.FDParam
				}
				return nil, e.Incoming(c.Args.(*MigrateIncomingArgs).URI, o)
			}},
	)
}

func isTrue(b *bool) bool { return b != nil && *b }
