package cmds

import (
	"tlcvm/blockdev"
	"tlcvm/migration"
	"tlcvm/nbd"
)

// The subsystems the handlers reach, as the composition root hands them over in Deps: each
// is the union of the small interfaces that one group of handlers declares beside itself
// (doc.go lists them). *blockdev.Graph, *migration.Engine and *nbd.Server are the real ones;
// the tests drive each group through its own small interface with a fake.

// BlockLayer is what the block, job, bitmap, media, I/O control, NBD export and snapshot
// handlers need of the block layer (*blockdev.Graph).
type BlockLayer interface {
	nodeGraph
	backingFileChanger
	reopener
	snapshotReporter
	mediaDrives
	ioControls
	bitmapStore
	jobControl
	jobStarter
	exportNodes
	ioStatusResetter
	vmSnapshotter
	snapshotSyncer
	legacyDrives
	debugGrapher
	latencyHistograms
}

// MigrationEngine is what the migration and switchover handlers need of the migration
// engine (*migration.Engine).
type MigrationEngine interface {
	migrator
	switchover
	vmStateStore
}

// NBDServer is what the NBD server and block export handlers need of the NBD server
// (*nbd.Server).
type NBDServer interface {
	nbdExports
}

// The real subsystems are what the handlers need.
var (
	_ BlockLayer      = (*blockdev.Graph)(nil)
	_ MigrationEngine = (*migration.Engine)(nil)
	_ NBDServer       = (*nbd.Server)(nil)
)
