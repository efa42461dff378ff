package migration

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"tlcvm/migration/transport"
)

// job is one outgoing migration: its status, figures and the checkpoint thread's state.
type job struct {
	e        *Engine
	addr     transport.Address // the migrate URI, parsed once (Migrate)
	out      io.WriteCloser    // the destination, opened by Migrate
	tlc      bool              // x-tlc when it started
	mapped   bool              // mapped-ram when it started: out is the file (io.WriterAt)
	base     uint64            // mapped-ram: the stream's offset in the file
	file     *fileTarget       // mapped-ram: the file and how it is written
	channels int               // multifd: page writers of a mapped-ram checkpoint, or channels (0: off)
	multifd  bool              // multifd over sockets (multifd.go)
	// autoConverge is the auto-converge capability when it started (throttle.go).
	autoConverge bool
	xbSize       uint64   // xbzrle-cache-size when xbzrle was on at the start, else 0
	xb           *xbCache // the XBZRLE cache (xbzrle.go), set in setup
	// compressLevel is compress-level when compress was on at the start, else -1.
	compressLevel int
	comp          *compressor // compress.go, set in setup
	streamed      bool        // a streamed checkpoint to file:
	fileInfo      *FileInfo   // +checklocks:mu; x-tlc-file, once the thread knows it
	wantCPU       int         // x-checkpoint-cpu when it started (-1 auto)
	cpu           int         // the CPU chosen (-1: not pinned)

	cancelReq  atomic.Bool
	cancelCh   chan struct{} // closed by requestCancel
	cancelOnce sync.Once
	done       chan struct{} // closed when the thread has finished
	abort      func()        // +checklocks:mu; unblocks the transport, when it can

	pause  bool          // pause-before-switchover when it started
	resume chan struct{} // migrate-continue (cap 1)
	useRP  bool          // return-path (or postcopy-ram) when it started
	rp     *rpSource     // the return path, once open (setup)
	disks  Disks
	pc     *pcSource // postcopy (postcopy.go)
	// inactive is set while the source's disks are inactivated (stage 3, QEMU mode):
	// a failure activates them again.
	inactive bool

	// Figures, written by the thread, read by query-migrate.
	transferred, remaining, duplicate, normal atomic.Int64
	dirtySync, dirtyRate, pps                 atomic.Int64
	precopy, downtimeBytes, multifdBytes      atomic.Int64
	total                                     int64 // immutable after newJob

	// mu guards the fields marked so. Lock order: Engine.mu, then mu; nothing holding mu
	// takes Engine.mu (emitStatus and report run after it is released).
	mu      sync.Mutex
	st      Status // +checklocks:mu
	start   time.Time
	setupMS int64   // +checklocks:mu
	totalMS int64   // +checklocks:mu; once finished
	downMS  int64   // +checklocks:mu; once completed
	mbps    float64 // +checklocks:mu
	errDesc string  // +checklocks:mu
	stages  []Stage // +checklocks:mu
}

func newJob(e *Engine, addr transport.Address) *job {
	j := &job{e: e, addr: addr, done: make(chan struct{}), st: StatusSetup, start: time.Now(), cpu: -1, compressLevel: -1,
		cancelCh: make(chan struct{}), resume: make(chan struct{}, 1), disks: e.disks,
		pc: newPCSource(e.capLocked(CapPostcopyRAM))}
	for _, b := range e.m.RAMBlocks() {
		j.total += int64(b.Size())
	}
	return j
}

func (j *job) status() Status {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.st
}

// setStatus moves from one of froms to to and emits MIGRATION; false when the status was
// not one of froms (QEMU's migrate_set_state compare-and-swap).
func (j *job) setStatus(to Status, froms ...Status) bool {
	j.mu.Lock()
	ok := false
	for _, f := range froms {
		if j.st == f {
			ok = true
		}
	}
	if ok {
		j.st = to
		if to.finished() {
			j.totalMS = since(j.start)
		}
	}
	j.mu.Unlock()
	if ok {
		j.e.emitStatus(to)
	}
	return ok
}

// fail records err and moves to failed (from setup, active or cancelling: a cancelled
// migration that then fails stays cancelled, as QEMU's is).
func (j *job) fail(err error, report bool) {
	j.mu.Lock()
	if j.st == StatusCancelling {
		j.mu.Unlock()
		j.setStatus(StatusCancelled, StatusCancelling)
		return
	}
	quiet := errors.Is(err, errNoDesc)
	if j.errDesc == "" && !quiet {
		j.errDesc = errText(err)
	}
	j.mu.Unlock()
	report = report && !quiet
	if j.setStatus(StatusFailed, StatusSetup, StatusActive, StatusPreSwitchover, StatusDevice,
		StatusPostcopyActive, StatusPostcopyPaused, StatusPostcopyRecover) && report {
		j.e.report("%s", errText(err))
	}
}

// failSync is fail for a migrate refused before its thread started.
func (j *job) failSync(err error) {
	j.fail(err, false)
	close(j.done)
}

func (j *job) requestCancel() {
	if !j.setStatus(StatusCancelling, StatusSetup, StatusActive, StatusPreSwitchover, StatusDevice,
		StatusPostcopyActive, StatusPostcopyPaused, StatusPostcopyRecover) {
		return
	}
	j.cancelReq.Store(true)
	j.cancelOnce.Do(func() { close(j.cancelCh) })
	j.mu.Lock()
	abort := j.abort
	j.mu.Unlock()
	if abort != nil {
		abort()
	}
}

func (j *job) cancelled() bool { return j.cancelReq.Load() }

func (j *job) addStage(s Stage) {
	j.mu.Lock()
	j.stages = append(j.stages, s)
	j.mu.Unlock()
}

func i64(v int64) *int64 { return &v }

// info builds query-migrate's content as QEMU 7.2 does for the source: failed and
// cancelled and setup carry only the status (and error-desc); active, cancelling and
// completed the times and RAM figures (fill_source_migration_info).
func (j *job) info() Info {
	// Lock order: Engine.mu before job.mu (Migrate and SetCapabilities ask the job its
	// status under Engine.mu), so the limit is read before job.mu is taken, never under it.
	_, down := j.e.limits()
	j.mu.Lock()
	defer j.mu.Unlock()
	in := Info{Status: j.st, HasStatus: true, Stages: append([]Stage(nil), j.stages...)}
	if j.fileInfo != nil {
		fi := *j.fileInfo
		in.File = &fi
	}
	switch {
	case j.st == StatusFailed:
		if j.errDesc != "" {
			in.ErrorDesc = &j.errDesc
		}
		return in
	case !j.st.reportsFigures():
		return in // QEMU 7.2: setup and cancelled show only the status
	}
	in.SetupTime = i64(j.setupMS)
	if j.st == StatusCompleted {
		in.TotalTime = i64(j.totalMS)
		in.Downtime = i64(j.downMS)
	} else {
		in.TotalTime = i64(since(j.start))
		in.ExpectedDowntime = i64(int64(down))
	}
	normal := j.normal.Load()
	in.RAM = &RAMStats{
		Transferred: j.transferred.Load(), Remaining: j.remaining.Load(), Total: j.total,
		Duplicate: j.duplicate.Load(), Normal: normal, NormalBytes: normal * pageSize,
		DirtyPagesRate: j.dirtyRate.Load(), Mbps: j.mbps, DirtySyncCount: j.dirtySync.Load(),
		PageSize: pageSize, PagesPerSecond: j.pps.Load(), PrecopyBytes: j.precopy.Load(),
		DowntimeBytes: j.downtimeBytes.Load(), PostcopyRequests: j.pc.requests.Load(),
		PostcopyBytes: j.pc.bytes.Load(), MultifdBytes: j.multifdBytes.Load(),
	}
	if j.xb != nil {
		in.XBZRLE = j.xb.info(j.xbSize)
	}
	if j.comp != nil {
		in.Compression = j.comp.info()
	}
	if pct := j.e.throttlePercentage(); pct > 0 {
		in.CPUThrottlePercentage = i64(int64(pct))
	}
	return in
}
