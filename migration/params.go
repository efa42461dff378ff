package migration

import "tlcvm/compat/qerror"

// Params are the migration parameters (QAPI MigrationParameters), fields in QAPI order.
// query-migrate-parameters returns every member except block-bitmap-mapping (present once
// set) and tlcvm's x-checkpoint-cpu (present once set); an update (migrate-set-parameters)
// sets the non-nil members.
//
// Behaviour in tlcvm: max-bandwidth limits the stream's rate (bytes/s; lifted in stage 3
// and postcopy, as QEMU's); max-postcopy-bandwidth paces postcopy's background pages;
// downtime-limit is the budget stage 2 converges to (ms); multifd-channels is the number of
// multifd channels (multifd.go); xbzrle-cache-size the XBZRLE cache (xbzrle.go);
// compress-level the deflate level (compress.go); cpu-throttle-initial, -increment,
// -tailslow, throttle-trigger-threshold and max-cpu-throttle drive auto-converge
// (throttle.go); x-checkpoint-cpu chooses the CPU the checkpoint thread is pinned to (-1:
// one that runs no vCPU, when the host has one). The others are accepted, checked and
// reported as QEMU does, without effect (compress-threads, decompress-threads,
// compress-wait-thread, TLS, multifd compression, announcements); block-bitmap-mapping
// names the dirty bitmaps the dirty-bitmaps capability migrates (bitmaps.go).
type Params struct {
	AnnounceInitial          *uint64                     `json:"announce-initial,omitempty"`
	AnnounceMax              *uint64                     `json:"announce-max,omitempty"`
	AnnounceRounds           *uint64                     `json:"announce-rounds,omitempty"`
	AnnounceStep             *uint64                     `json:"announce-step,omitempty"`
	CompressLevel            *uint8                      `json:"compress-level,omitempty"`
	CompressThreads          *uint8                      `json:"compress-threads,omitempty"`
	CompressWaitThread       *bool                       `json:"compress-wait-thread,omitempty"`
	DecompressThreads        *uint8                      `json:"decompress-threads,omitempty"`
	ThrottleTriggerThreshold *uint8                      `json:"throttle-trigger-threshold,omitempty"`
	CPUThrottleInitial       *uint8                      `json:"cpu-throttle-initial,omitempty"`
	CPUThrottleIncrement     *uint8                      `json:"cpu-throttle-increment,omitempty"`
	CPUThrottleTailslow      *bool                       `json:"cpu-throttle-tailslow,omitempty"`
	TLSCreds                 *string                     `json:"tls-creds,omitempty"`
	TLSHostname              *string                     `json:"tls-hostname,omitempty"`
	TLSAuthz                 *string                     `json:"tls-authz,omitempty"`
	MaxBandwidth             *uint64                     `json:"max-bandwidth,omitempty"`
	DowntimeLimit            *uint64                     `json:"downtime-limit,omitempty"`
	XCheckpointDelay         *uint32                     `json:"x-checkpoint-delay,omitempty" qapi:"unstable"`
	BlockIncremental         *bool                       `json:"block-incremental,omitempty"`
	MultifdChannels          *uint8                      `json:"multifd-channels,omitempty"`
	XbzrleCacheSize          *uint64                     `json:"xbzrle-cache-size,omitempty"`
	MaxPostcopyBandwidth     *uint64                     `json:"max-postcopy-bandwidth,omitempty"`
	MaxCPUThrottle           *uint8                      `json:"max-cpu-throttle,omitempty"`
	MultifdCompression       *Compression                `json:"multifd-compression,omitempty"`
	MultifdZlibLevel         *uint8                      `json:"multifd-zlib-level,omitempty"`
	MultifdZstdLevel         *uint8                      `json:"multifd-zstd-level,omitempty"`
	BlockBitmapMapping       *[]BitmapMigrationNodeAlias `json:"block-bitmap-mapping,omitempty"`
	// XCheckpointCPU is tlcvm's: the host CPU of the checkpoint thread, -1 for automatic.
	XCheckpointCPU *int64 `json:"x-checkpoint-cpu,omitempty"`
	// XRestorePopulate is tlcvm's: how a restore by mapping reads the file (filecp.go).
	XRestorePopulate *PopulateMode `json:"x-restore-populate,omitempty"`
}

// Compression is QAPI's MultiFDCompression (satisfies qmp.Enum).
type Compression string

// EnumValues lists QAPI's values.
func (Compression) EnumValues() []string { return []string{"none", "zlib", "zstd"} }

// BitmapMigrationNodeAlias is QAPI's type of block-bitmap-mapping's elements.
type BitmapMigrationNodeAlias struct {
	NodeName string                       `json:"node-name"`
	Alias    string                       `json:"alias"`
	Bitmaps  []BitmapMigrationBitmapAlias `json:"bitmaps"`
}

// BitmapMigrationBitmapAlias is one bitmap of a BitmapMigrationNodeAlias.
type BitmapMigrationBitmapAlias struct {
	Name      string                               `json:"name"`
	Alias     string                               `json:"alias"`
	Transform *BitmapMigrationBitmapAliasTransform `json:"transform,omitempty"`
}

// BitmapMigrationBitmapAliasTransform is a bitmap alias's transform.
type BitmapMigrationBitmapAliasTransform struct {
	Persistent *bool `json:"persistent,omitempty"`
}

func ptr[T any](v T) *T { return &v }

// DefaultParams returns QEMU 7.2's defaults, as query-migrate-parameters shows them.
func DefaultParams() Params {
	return Params{
		AnnounceInitial: ptr[uint64](50), AnnounceMax: ptr[uint64](550), AnnounceRounds: ptr[uint64](5),
		AnnounceStep: ptr[uint64](100), CompressLevel: ptr[uint8](1), CompressThreads: ptr[uint8](8),
		CompressWaitThread: ptr(true), DecompressThreads: ptr[uint8](2),
		ThrottleTriggerThreshold: ptr[uint8](50), CPUThrottleInitial: ptr[uint8](20),
		CPUThrottleIncrement: ptr[uint8](10), CPUThrottleTailslow: ptr(false),
		TLSCreds: ptr(""), TLSHostname: ptr(""), TLSAuthz: ptr(""),
		MaxBandwidth: ptr[uint64](128 << 20), DowntimeLimit: ptr[uint64](300),
		XCheckpointDelay: ptr[uint32](20000), BlockIncremental: ptr(false),
		MultifdChannels: ptr[uint8](2), XbzrleCacheSize: ptr[uint64](64 << 20),
		MaxPostcopyBandwidth: ptr[uint64](0), MaxCPUThrottle: ptr[uint8](99),
		MultifdCompression: ptr(Compression("none")), MultifdZlibLevel: ptr[uint8](1),
		MultifdZstdLevel: ptr[uint8](1),
	}
}

// clone returns a deep copy.
func (p Params) clone() Params {
	c := p
	if p.BlockBitmapMapping != nil {
		c.BlockBitmapMapping = ptr(append([]BitmapMigrationNodeAlias{}, *p.BlockBitmapMapping...))
	}
	return c
}

// maxDowntimeMS is QEMU's MAX_MIGRATE_DOWNTIME (2000 s in ms).
const maxDowntimeMS = 2000 * 1000

func invalidParam(name, expects string) error {
	return errorf(ErrInvalid, "Parameter '%s' expects %s", name, expects)
}

// check is QEMU 7.2's migrate_params_check, run (as QEMU does) on the current parameters
// with the update applied: the same order and texts (QEMU names the parameters with
// underscores here).
func (u *Params) check() error {
	switch {
	case u.CompressLevel != nil && *u.CompressLevel > 9:
		return invalidParam("compress_level", "a value between 0 and 9")
	case u.CompressThreads != nil && *u.CompressThreads < 1:
		return invalidParam("compress_threads", "a value between 1 and 255")
	case u.DecompressThreads != nil && *u.DecompressThreads < 1:
		return invalidParam("decompress_threads", "a value between 1 and 255")
	case u.ThrottleTriggerThreshold != nil && (*u.ThrottleTriggerThreshold < 1 || *u.ThrottleTriggerThreshold > 100):
		return invalidParam("throttle_trigger_threshold", "an integer in the range of 1 to 100")
	case u.CPUThrottleInitial != nil && (*u.CPUThrottleInitial < 1 || *u.CPUThrottleInitial > 99):
		return invalidParam("cpu_throttle_initial", "an integer in the range of 1 to 99")
	case u.CPUThrottleIncrement != nil && (*u.CPUThrottleIncrement < 1 || *u.CPUThrottleIncrement > 99):
		return invalidParam("cpu_throttle_increment", "an integer in the range of 1 to 99")
	case u.DowntimeLimit != nil && *u.DowntimeLimit > maxDowntimeMS:
		return invalidParam("downtime_limit", "an integer in the range of 0 to (2000 * 1000) ms")
	case u.MultifdChannels != nil && *u.MultifdChannels < 1:
		return invalidParam("multifd_channels", "a value between 1 and 255")
	case u.MultifdZlibLevel != nil && *u.MultifdZlibLevel > 9:
		return invalidParam("multifd_zlib_level", "a value between 0 and 9")
	case u.MultifdZstdLevel != nil && *u.MultifdZstdLevel > 20:
		return invalidParam("multifd_zstd_level", "a value between 0 and 20")
	case u.XbzrleCacheSize != nil && (*u.XbzrleCacheSize < 4096 || *u.XbzrleCacheSize&(*u.XbzrleCacheSize-1) != 0):
		return invalidParam("xbzrle_cache_size", "a power of two no less than the target page size")
	}
	if u.MaxCPUThrottle != nil {
		initial := uint8(0)
		if u.CPUThrottleInitial != nil {
			initial = *u.CPUThrottleInitial
		}
		if *u.MaxCPUThrottle < initial || *u.MaxCPUThrottle > 99 {
			return invalidParam("max_cpu_throttle", "an integer in the range of cpu_throttle_initial to 99")
		}
	}
	switch {
	case u.AnnounceInitial != nil && *u.AnnounceInitial > 100000:
		return invalidParam("announce_initial", "a value between 0 and 100000")
	case u.AnnounceMax != nil && *u.AnnounceMax > 100000:
		return invalidParam("announce_max", "a value between 0 and 100000")
	case u.AnnounceRounds != nil && *u.AnnounceRounds > 1000:
		return invalidParam("announce_rounds", "a value between 0 and 1000")
	case u.AnnounceStep != nil && (*u.AnnounceStep < 1 || *u.AnnounceStep > 10000):
		return invalidParam("announce_step", "a value between 0 and 10000")
	case u.XCheckpointCPU != nil && *u.XCheckpointCPU < -1:
		return invalidParam("x-checkpoint-cpu", "-1 (automatic) or a host CPU number")
	}
	if u.BlockBitmapMapping != nil {
		if err := checkBitmapMapping(*u.BlockBitmapMapping); err != nil {
			return qerror.Prepend(err, "Invalid mapping given for block-bitmap-mapping: ")
		}
	}
	return nil
}

// apply sets the members of u that are non-nil over p (QEMU's migrate_params_apply).
func (p *Params) apply(u *Params) {
	set := func(dst **uint64, src *uint64) {
		if src != nil {
			*dst = ptr(*src)
		}
	}
	set8 := func(dst **uint8, src *uint8) {
		if src != nil {
			*dst = ptr(*src)
		}
	}
	setb := func(dst **bool, src *bool) {
		if src != nil {
			*dst = ptr(*src)
		}
	}
	sets := func(dst **string, src *string) {
		if src != nil {
			*dst = ptr(*src)
		}
	}
	set(&p.AnnounceInitial, u.AnnounceInitial)
	set(&p.AnnounceMax, u.AnnounceMax)
	set(&p.AnnounceRounds, u.AnnounceRounds)
	set(&p.AnnounceStep, u.AnnounceStep)
	set8(&p.CompressLevel, u.CompressLevel)
	set8(&p.CompressThreads, u.CompressThreads)
	setb(&p.CompressWaitThread, u.CompressWaitThread)
	set8(&p.DecompressThreads, u.DecompressThreads)
	set8(&p.ThrottleTriggerThreshold, u.ThrottleTriggerThreshold)
	set8(&p.CPUThrottleInitial, u.CPUThrottleInitial)
	set8(&p.CPUThrottleIncrement, u.CPUThrottleIncrement)
	setb(&p.CPUThrottleTailslow, u.CPUThrottleTailslow)
	sets(&p.TLSCreds, u.TLSCreds)
	sets(&p.TLSHostname, u.TLSHostname)
	sets(&p.TLSAuthz, u.TLSAuthz)
	set(&p.MaxBandwidth, u.MaxBandwidth)
	set(&p.DowntimeLimit, u.DowntimeLimit)
	if u.XCheckpointDelay != nil {
		p.XCheckpointDelay = ptr(*u.XCheckpointDelay)
	}
	setb(&p.BlockIncremental, u.BlockIncremental)
	set8(&p.MultifdChannels, u.MultifdChannels)
	set(&p.XbzrleCacheSize, u.XbzrleCacheSize)
	set(&p.MaxPostcopyBandwidth, u.MaxPostcopyBandwidth)
	set8(&p.MaxCPUThrottle, u.MaxCPUThrottle)
	if u.MultifdCompression != nil {
		p.MultifdCompression = ptr(*u.MultifdCompression)
	}
	set8(&p.MultifdZlibLevel, u.MultifdZlibLevel)
	set8(&p.MultifdZstdLevel, u.MultifdZstdLevel)
	if u.BlockBitmapMapping != nil {
		p.BlockBitmapMapping = ptr(append([]BitmapMigrationNodeAlias{}, *u.BlockBitmapMapping...))
	}
	if u.XCheckpointCPU != nil {
		p.XCheckpointCPU = ptr(*u.XCheckpointCPU)
	}
	if u.XRestorePopulate != nil {
		p.XRestorePopulate = ptr(*u.XRestorePopulate)
	}
}
