package migration

// The engine's view of a virtual machine. The composition root adapts *machine.Machine to
// these interfaces (migration never imports machine); tests use fakes.

// RAMBlock is one region of guest RAM with its two bitmaps (see machine.RAMBlock): the
// written-ever bitmap (pages that can be non-zero) and the dirty log. Bit p of word p/64 is
// page p. The guest stores data first and then sets the dirty bit atomically, so a reader
// that takes a dirty word (SyncDirtyLog) and then copies the page never loses a write.
type RAMBlock interface {
	Name() string
	Size() uint64
	// Host is the block's memory; reading a never-written page faults it in (costly):
	// consult Written / WrittenBitmap first.
	Host() []byte
	BitmapWords() int
	Written(page uint64) bool
	WrittenBitmap(dst []uint64) uint64
	StartDirtyLog()
	// ResumeDirtyLog turns logging on without clearing: the next SyncDirtyLog takes every
	// page written since the last one (an incremental checkpoint's pages).
	ResumeDirtyLog()
	StopDirtyLog()
	SyncDirtyLog(dst []uint64) uint64
	// WritePage stores a page loaded from a stream (marks it written, not dirty).
	WritePage(page uint64, data []byte)
}

// MappableRAM is a RAMBlock that a checkpoint file can back (restore by mapping; see
// machine.RAMBlock.MapFile): the file's pages are mapped privately, and check verifies a
// chunk of them before anything reads it.
type MappableRAM interface {
	MapFile(fd int, off int64, present []uint64, check func(first uint64, mem []byte) error) error
	// Populate checks every page not yet checked now (stop: give up early).
	Populate(stop <-chan struct{}) error
	// PopulateStats: present pages populated eagerly, lazily, and not yet.
	PopulateStats() (eager, lazy, left uint64)
}

// Populater is a Machine that populates its mapped RAM in the background once the guest
// runs (a check failure then stops the guest).
type Populater interface {
	StartPopulate()
}

// Section is one piece of device or vCPU state (machine.Snapshotter). SaveState and
// LoadState require the vCPUs to be parked.
type Section interface {
	SectionID() string
	StateVersion() (cur, min uint32)
	SaveState() (any, error)
	LoadState(raw []byte, version uint32) error
}

// Machine is what the engine drives.
type Machine interface {
	// MachineType is the resolved machine type name, written in the configuration section.
	MachineType() string
	RAMBlocks() []RAMBlock
	// Sections lists the device sections in their stable save order.
	Sections() []Section
	// RunState is QEMU's run-state name ("running", "paused", "postmigrate", …).
	RunState() string
	// EnterFinishMigrate stops a running VM (STOP) and parks every vCPU.
	EnterFinishMigrate() (wasRunning bool, err error)
	// LeaveFinishMigrate resumes the VM (RESUME) or moves it to postmigrate.
	LeaveFinishMigrate(resume bool) error
	// ReturnFromFinishMigrate puts the VM back in the state it had before
	// EnterFinishMigrate (running, paused or prelaunch): a checkpoint (x-tlc) keeps the VM.
	ReturnFromFinishMigrate() error
	// IncomingDone ends an incoming migration; src is the source's run state ("" unknown).
	// run=false keeps the guest paused whatever autostart says (its images could not be
	// activated).
	IncomingDone(src string, run bool) error
	// Autostart reports whether an incoming migration will start the guest (no -S, no
	// stop during inmigrate, or a cont).
	Autostart() bool
	// VCPUThreads lists the OS thread ids of the vCPUs (to keep them off the checkpoint
	// thread's CPU).
	VCPUThreads() []int
}

// Events receives the QMP events the engine emits (MIGRATION, MIGRATION_PASS).
type Events interface {
	Emit(name string, data any)
}

// EventsFunc adapts a function to Events.
type EventsFunc func(name string, data any)

// Emit calls f.
func (f EventsFunc) Emit(name string, data any) { f(name, data) }

// MigrationEvent is MIGRATION's data.
type MigrationEvent struct {
	Status Status `json:"status"`
}

// PassEvent is MIGRATION_PASS's data.
type PassEvent struct {
	Pass int64 `json:"pass"`
}
