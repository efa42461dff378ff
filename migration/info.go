package migration

import "tlcvm/migration/transport"

// Info is query-migrate's content for the last outgoing or the incoming migration.
// Members are nil/zero when QEMU leaves them out (see Engine.Info for which appear when).
type Info struct {
	Status           Status
	HasStatus        bool
	RAM              *RAMStats
	TotalTime        *int64 // ms
	ExpectedDowntime *int64 // ms, while active
	Downtime         *int64 // ms, once completed
	SetupTime        *int64 // ms
	ErrorDesc        *string
	// XBZRLE is xbzrle-cache: the cache's figures when xbzrle is on.
	XBZRLE *XBZRLEInfo
	// Compression is compression: the compressed pages' figures when compress is on.
	Compression *CompressionInfo
	// CPUThrottlePercentage is auto-converge's throttle while it is on.
	CPUThrottlePercentage *int64
	// Stages are tlcvm's per-stage figures (x-tlc-stages), in order.
	Stages []Stage
	// File is tlcvm's report on a checkpoint to or restore from file: (x-tlc-file).
	File *FileInfo
	// SocketAddresses are the addresses an incoming migration listens on (tcp:, unix:;
	// migrate-recover's), until it completes.
	SocketAddresses []transport.SocketAddress
}

// RAMStats is QAPI's MigrationStats.
type RAMStats struct {
	Transferred, Remaining, Total, Duplicate, Skipped, Normal, NormalBytes int64
	DirtyPagesRate                                                         int64
	Mbps                                                                   float64
	DirtySyncCount, PostcopyRequests, PageSize, MultifdBytes               int64
	PagesPerSecond, PrecopyBytes, DowntimeBytes, PostcopyBytes             int64
	DirtySyncMissedZeroCopy                                                int64
}

// Stage is one stage of a checkpoint as the seed reports it.
type Stage struct {
	Name       string // "setup", "stage 1", "stage 2", then "stage 3" or "postcopy"
	ElapsedMS  int64
	Bytes      int64 // stream bytes written during the stage
	Iterations int64 // dirty-log passes (stage 2)
	ThreadID   int   // OS thread of the checkpoint thread
	CPU        int   // CPU it ran on at the end of the stage (-1 unknown)
}
