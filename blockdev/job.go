package blockdev

import (
	"errors"
	"sync"
	"time"

	"tlcvm/compat/optval"
)

// Jobs: QEMU 7.2's job.c over goroutines. A Job is a state machine (JobStatus) driven by
// verbs from the monitor (job-*, block-job-*) and by its own goroutine (the coroutine of
// QEMU), with QEMU's two tables: which transitions exist (jobTransitions, job.c's JobSTT)
// and which verb each state accepts (jobVerbs, JobVerbTable). Every status change goes
// through transition, which emits JOB_STATUS_CHANGE.
//
//	               ┌────────── pause ─────────┐              ┌─── pause ───┐
//	               ▼                          │              ▼             │
//	created ──▶ running ◀── resume ──▶ paused    ready ◀─────────▶ standby
//	   │           │ └────── transitionToReady ───┘ │
//	   │           ▼                                ▼
//	   │        waiting ───▶ pending ──(finalize)──▶ concluded ──(dismiss)──▶ null
//	   │           │            │                      ▲
//	   └──────────▶└──▶ aborting ┴──────────────────────┘
//
// The goroutine runs JobDriver.Run; it meets the monitor only at its yield points
// (PausePoint, Sleep, Yield), as a coroutine does: a verb that needs the job to react
// (pause, cancel, complete, set-speed) "enters" it — wakes it from a yield — and, where
// QEMU's coroutine would run synchronously before the command returns, waits for the
// goroutine to reach its next yield point. When Run returns the goroutine takes the
// graph's lock and completes the job (job_completed: waiting, pending, the driver's
// prepare/commit/abort/clean, BLOCK_JOB_COMPLETED or _CANCELLED, concluded, null) as
// QEMU's main loop does in job_exit.
//
// Locking: Graph.mu (the big lock: graph changes, verbs, completion) before jobList.mu
// (every Job field below marked +checklocks:l.mu). The goroutine takes only jobList.mu
// while it runs, never Graph.mu, so the monitor may hold Graph.mu while it waits for a
// job to yield.

// JobStatus is QAPI's JobStatus (qapi/job.json), in QAPI order.
type JobStatus uint8

// The job states.
const (
	JobUndefined JobStatus = iota
	JobCreated
	JobRunning
	JobPaused
	JobReady
	JobStandby
	JobWaiting
	JobPending
	JobAborting
	JobConcluded
	JobNull
	numJobStatus
)

var jobStatusNames = [numJobStatus]string{"undefined", "created", "running", "paused", "ready", "standby",
	"waiting", "pending", "aborting", "concluded", "null"}

// String is the QAPI name of the status.
func (s JobStatus) String() string {
	if s < numJobStatus {
		return jobStatusNames[s]
	}
	return "invalid"
}

// JobVerb is QAPI's JobVerb (QEMU 7.2 has no "change").
type JobVerb uint8

// The verbs.
const (
	VerbCancel JobVerb = iota
	VerbPause
	VerbResume
	VerbSetSpeed
	VerbComplete
	VerbDismiss
	VerbFinalize
	numJobVerbs
)

var jobVerbNames = [numJobVerbs]string{"cancel", "pause", "resume", "set-speed", "complete", "dismiss", "finalize"}

// String is the QAPI name of the verb.
func (v JobVerb) String() string {
	if v < numJobVerbs {
		return jobVerbNames[v]
	}
	return "invalid"
}

// JobType is QAPI's JobType.
type JobType string

// The job types tlcvm runs.
const (
	JobTypeCommit JobType = "commit"
	JobTypeStream JobType = "stream"
	JobTypeMirror JobType = "mirror"
	JobTypeBackup JobType = "backup"
	JobTypeCreate JobType = "create"
	// The internal snapshot jobs (qmp/cmds/snapshot_internal.go runs their work).
	JobTypeSnapshotSave   JobType = "snapshot-save"
	JobTypeSnapshotLoad   JobType = "snapshot-load"
	JobTypeSnapshotDelete JobType = "snapshot-delete"
)

// jobTransitions is job.c's JobSTT: jobTransitions[from][to].
var jobTransitions = [numJobStatus][numJobStatus]bool{
	//                U      C      R      P      Y      S      W      D      X      E      N
	JobUndefined: {false, true, false, false, false, false, false, false, false, false, false},
	JobCreated:   {false, false, true, false, false, false, false, false, true, false, true},
	JobRunning:   {false, false, false, true, true, false, true, false, true, false, false},
	JobPaused:    {false, false, true, false, false, false, false, false, false, false, false},
	JobReady:     {false, false, false, false, false, true, true, false, true, false, false},
	JobStandby:   {false, false, false, false, true, false, false, false, false, false, false},
	JobWaiting:   {false, false, false, false, false, false, false, true, true, false, false},
	JobPending:   {false, false, false, false, false, false, false, false, true, true, false},
	JobAborting:  {false, false, false, false, false, false, false, false, true, true, false},
	JobConcluded: {false, false, false, false, false, false, false, false, false, false, true},
	JobNull:      {},
}

// jobVerbs is job.c's JobVerbTable: jobVerbs[verb][status] (QEMU 7.2 lets a job on
// standby be completed).
var jobVerbs = [numJobVerbs][numJobStatus]bool{
	//              U      C      R      P      Y      S      W      D      X      E      N
	VerbCancel:   {false, true, true, true, true, true, true, true, false, false, false},
	VerbPause:    {false, true, true, true, true, true, false, false, false, false, false},
	VerbResume:   {false, true, true, true, true, true, false, false, false, false, false},
	VerbSetSpeed: {false, true, true, true, true, true, false, false, false, false, false},
	VerbComplete: {false, false, false, false, true, true, false, false, false, false, false},
	VerbFinalize: {false, false, false, false, false, false, false, true, false, false, false},
	VerbDismiss:  {false, false, false, false, false, false, false, false, false, true, false},
}

// JobVerbAllowed reports whether a job in status s accepts verb v (job_apply_verb).
func JobVerbAllowed(v JobVerb, s JobStatus) bool {
	return v < numJobVerbs && s < numJobStatus && jobVerbs[v][s]
}

// JobTransitionAllowed reports whether a job may go from one status to another.
func JobTransitionAllowed(from, to JobStatus) bool {
	return from < numJobStatus && to < numJobStatus && jobTransitions[from][to]
}

// errCanceled is a cancelled job's result (-ECANCELED; strerror's text).
var errCanceled = errors.New("Operation canceled")

// JobDriver is what a kind of job does (QEMU's JobDriver and BlockJobDriver). Run is
// called on the job's goroutine; the others on the goroutine that holds Graph.mu
// (the monitor's, or the job's own while it completes). Nil members do nothing.
type JobDriver struct {
	Type JobType
	// Block marks a block job: it is listed by query-block-jobs, has a speed, an I/O
	// status and emits the BLOCK_JOB_* events.
	Block bool
	// Run does the work; its error concludes the job with that error.
	Run func(j *Job) error
	// Prepare makes the job's graph changes before it is finalized; an error aborts it.
	Prepare func(j *Job) error
	// Commit or Abort runs after Prepare, then Clean.
	Commit, Abort, Clean func(j *Job)
	// Complete is job-complete; nil: the job cannot be completed.
	Complete func(j *Job) error
	// Cancel returns whether a cancel request is to be forced; nil: always.
	Cancel func(j *Job, force bool) bool
	// SetSpeed is told a new speed after the job's rate limit changed.
	SetSpeed func(j *Job, speed int64)
}

// JobOptions are the common options of a job (job_create's flags, BlockJob's speed).
type JobOptions struct {
	ID             string
	ManualFinalize bool  // auto-finalize=false
	ManualDismiss  bool  // auto-dismiss=false
	Speed          int64 // bytes/s; 0: unlimited
	Txn            *JobTxn
}

// JobTxn groups jobs that complete or fail together (a transaction with
// completion-mode grouped); every job has one, alone in it by default.
type JobTxn struct {
	aborting bool
	jobs     []*Job // newest first, as QLIST_INSERT_HEAD
}

// NewJobTxn returns an empty transaction group.
func NewJobTxn() *JobTxn { return &JobTxn{} }

func (t *JobTxn) remove(j *Job) {
	for i, x := range t.jobs {
		if x == j {
			t.jobs = append(t.jobs[:i], t.jobs[i+1:]...)
			return
		}
	}
}

// Job is one job. Its fields are private; JobInfo is a snapshot of what the queries show.
type Job struct {
	g   *Graph
	l   *jobList
	drv *JobDriver
	id  string

	status      JobStatus // +checklocks:l.mu
	pauseCount  int       // +checklocks:l.mu
	userPaused  bool      // +checklocks:l.mu
	paused      bool      // the goroutine is parked in a pause point; +checklocks:l.mu
	busy        bool      // the goroutine runs (not yielded); +checklocks:l.mu
	started     bool      // +checklocks:l.mu
	deferred    bool      // Run returned (deferred_to_main_loop); +checklocks:l.mu
	exited      bool      // job_completed has run; +checklocks:l.mu
	cancelled   bool      // +checklocks:l.mu
	forceCancel bool      // +checklocks:l.mu
	runErr      error     // what Run returned; +checklocks:l.mu
	ret         error     // job->ret/err; +checklocks:l.mu
	autoFinal   bool
	autoDismiss bool
	cur, total  int64 // progress; +checklocks:l.mu
	txn         *JobTxn
	wake        chan struct{} // closed to enter the goroutine from a yield; +checklocks:l.mu
	timer       bool          // the yield has a timer (job_timer_pending); +checklocks:l.mu
	yields      uint64        // counts the goroutine's yields; +checklocks:l.mu
	done        chan struct{} // closed when Run returned

	// Block jobs.
	speed    int64     // +checklocks:l.mu
	limit    rateLimit // +checklocks:l.mu
	ioStatus string    // "ok", "failed", "nospace"; +checklocks:l.mu

	// The graph state the job holds (a graph change under Graph.mu).
	nodes []*jobNode

	// Opaque is the driver's state.
	Opaque any
}

// jobNode is a node a block job holds (block_job_add_bdrv): its op blocker and its
// permissions as a parent of the node.
type jobNode struct {
	n   *Node
	use *tempUse
}

// jobList is a graph's jobs, newest first.
type jobList struct {
	g    *Graph
	mu   sync.Mutex
	jobs []*Job // +checklocks:mu
	wg   sync.WaitGroup
	// changed is closed (and replaced) on every change a waiter may be waiting for.
	changed chan struct{} // +checklocks:mu
}

func newJobList(g *Graph) *jobList { return &jobList{g: g, changed: make(chan struct{})} }

func (l *jobList) wait() { l.wg.Wait() }

// notify wakes everyone waiting for a change (l.mu held).
func (l *jobList) notify() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// waitFor waits, with l.mu held on entry and exit, until cond holds or the deadline
// passes; it releases l.mu while it waits.
func (l *jobList) waitFor(cond func() bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		ch := l.changed
		l.mu.Unlock()
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ch:
		case <-t.C:
		}
		t.Stop()
		l.mu.Lock()
		if time.Now().After(deadline) {
			return cond()
		}
	}
	return true
}

// syncTimeout bounds how long a verb waits for a job's goroutine to react (a job's I/O
// between yield points is short; this only keeps a stuck disk from hanging the monitor).
const syncTimeout = 10 * time.Second

// JobStatusEvent is JOB_STATUS_CHANGE's data.
type JobStatusEvent struct {
	ID     string
	Status JobStatus
}

// BlockJobEvent is the data of BLOCK_JOB_COMPLETED, BLOCK_JOB_CANCELLED and
// BLOCK_JOB_READY (Error: BLOCK_JOB_COMPLETED's message when the job failed).
type BlockJobEvent struct {
	Type             JobType
	Device           string
	Len, Offset      int64
	Speed            int64
	Error            string
	HasError         bool
	Name             string // the event's name
	PendingID        string // BLOCK_JOB_PENDING: the job id (Device is unused)
	ErrorOperation   string // BLOCK_JOB_ERROR: "read" or "write"
	ErrorAction      string // BLOCK_JOB_ERROR: "ignore", "report" or "stop"
	IsErrorEvent     bool
	IsPendingEvent   bool
	IsCompletedEvent bool
}

// Events a job emits besides JOB_STATUS_CHANGE.
const (
	EventBlockJobReady     = "BLOCK_JOB_READY"
	EventBlockJobCompleted = "BLOCK_JOB_COMPLETED"
	EventBlockJobCancelled = "BLOCK_JOB_CANCELLED"
	EventBlockJobPending   = "BLOCK_JOB_PENDING"
	EventBlockJobError     = "BLOCK_JOB_ERROR"
)

// transition is job_state_transition: the one place a job's status changes. It panics
// on an edge job.c's table does not have (a bug, never user input), and emits
// JOB_STATUS_CHANGE when the status changes. l.mu held.
func (j *Job) transition(to JobStatus) {
	from := j.status
	if !jobTransitions[from][to] {
		panic("blockdev: job '" + j.id + "': illegal transition " + from.String() + " -> " + to.String())
	}
	j.status = to
	j.l.notify()
	if from != to {
		j.g.emit("JOB_STATUS_CHANGE", JobStatusEvent{ID: j.id, Status: to})
	}
}

// applyVerb is job_apply_verb (l.mu held).
func (j *Job) applyVerb(v JobVerb) error {
	if jobVerbs[v][j.status] {
		return nil
	}
	return errf(ErrJob, "Job '%s' in state '%s' cannot accept command verb '%s'", j.id, j.status, v)
}

// ID is the job's id.
func (j *Job) ID() string { return j.id }

// Type is the job's type.
func (j *Job) Type() JobType { return j.drv.Type }

// Graph is the graph the job belongs to.
func (j *Job) Graph() *Graph { return j.g }

// isCompleted is job_is_completed (l.mu held).
func (j *Job) isCompleted() bool {
	switch j.status {
	case JobWaiting, JobPending, JobAborting, JobConcluded, JobNull:
		return true
	}
	return false
}

// isReady is job_is_ready (l.mu held).
func (j *Job) isReady() bool { return j.status == JobReady || j.status == JobStandby }

// newJob is job_create (+ block_job_create's speed): it checks the id, records the job
// (newest first) and makes it "created". Graph.mu held.
func (g *Graph) newJob(o JobOptions, drv *JobDriver) (*Job, error) {
	l := g.jobs
	l.mu.Lock()
	defer l.mu.Unlock()
	if !optval.ID(o.ID) {
		return nil, errf(ErrInvalid, "Invalid job ID '%s'", o.ID)
	}
	for _, x := range l.jobs {
		if x.id == o.ID {
			return nil, errf(ErrExists, "Job ID '%s' already in use", o.ID)
		}
	}
	j := &Job{g: g, l: l, drv: drv, id: o.ID, pauseCount: 1, paused: true, autoFinal: !o.ManualFinalize,
		autoDismiss: !o.ManualDismiss, done: make(chan struct{}), ioStatus: "ok"}
	j.transition(JobCreated)
	l.jobs = append([]*Job{j}, l.jobs...)
	txn := o.Txn
	if txn == nil {
		txn = &JobTxn{}
	}
	j.txn = txn
	txn.jobs = append([]*Job{j}, txn.jobs...)
	return j, nil
}

// newBlockJob is block_job_create: the job, its main node held with perm and shared, its
// speed. A failure after the job exists dismisses it again (job_early_fail: created, then
// null). Graph.mu held.
func (g *Graph) newBlockJob(o JobOptions, drv *JobDriver, main *Node, perm, shared Perm) (*Job, error) {
	j, err := g.newJob(o, drv)
	if err != nil {
		return nil, err
	}
	if err := j.addNode(main, "main node", perm, shared); err != nil {
		j.earlyFail()
		return nil, err
	}
	if o.Speed < 0 {
		j.earlyFail()
		return nil, errf(ErrInvalid, "Parameter 'speed' expects a non-negative value")
	}
	j.speed = o.Speed
	j.limit.setSpeed(o.Speed)
	return j, nil
}

// earlyFail is job_early_fail: a job that never started goes away (null). Graph.mu held.
func (j *Job) earlyFail() {
	j.l.mu.Lock()
	defer j.l.mu.Unlock()
	j.doDismiss()
}

// StartJob creates a job running drv and starts it (job_create + job_start). It returns
// once the job's goroutine is past its first pause point.
func (g *Graph) StartJob(o JobOptions, drv *JobDriver) (*Job, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	j, err := g.newJob(o, drv)
	if err != nil {
		return nil, err
	}
	j.start()
	return j, nil
}

// start is job_start: the goroutine runs the driver. start returns once the goroutine
// passed (or parked in) its first pause point, as QEMU's job_start enters the coroutine
// before it returns. Graph.mu held.
func (j *Job) start() {
	l := j.l
	l.mu.Lock()
	defer l.mu.Unlock()
	j.started = true
	j.pauseCount--
	j.busy = true
	j.paused = false
	j.transition(JobRunning)
	first := j.yields
	l.wg.Add(1)
	go j.main()
	l.waitFor(func() bool { return j.yields != first || j.deferred }, syncTimeout)
}

// main is the job's goroutine: job_co_entry, then job_exit under Graph.mu.
func (j *Job) main() {
	defer j.l.wg.Done()
	j.PausePoint()
	j.l.mu.Lock()
	j.yields++ // the first pause point is behind: start may return
	j.l.notify()
	j.l.mu.Unlock()
	err := j.drv.Run(j)
	l := j.l
	l.mu.Lock()
	j.runErr = err
	j.deferred = true
	j.busy = false
	l.notify()
	l.mu.Unlock()
	close(j.done)
	g := j.g
	g.mu.Lock()
	defer g.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	j.exit()
}

// exit is job_exit once the goroutine has returned (Graph.mu and l.mu held), unless it
// ran already: the metadata the job's writes changed goes to its images (a failed
// write-back leaves it dirty, for the next flush or the close), then the job completes.
func (j *Job) exit() {
	if j.exited {
		return
	}
	for _, jn := range j.nodes {
		_ = jn.n.writebackMeta()
	}
	j.completed()
}

// completed is job_completed (Graph.mu and l.mu held).
func (j *Job) completed() {
	j.exited = true
	j.ret = j.runErr
	j.updateRC()
	if j.ret != nil {
		j.txnAbort()
	} else {
		j.txnSuccess()
	}
}

// isCancelled is job_is_cancelled: a forced cancel (l.mu held).
func (j *Job) isCancelled() bool { return j.forceCancel }

// updateRC is job_update_rc (l.mu held).
func (j *Job) updateRC() {
	if j.ret == nil && j.isCancelled() {
		j.ret = errCanceled
	}
	if j.ret != nil {
		j.transition(JobAborting)
	}
}

// txnSuccess is job_completed_txn_success.
func (j *Job) txnSuccess() {
	j.transition(JobWaiting)
	for _, o := range j.txn.jobs {
		if !o.isCompleted() {
			return
		}
	}
	for _, o := range append([]*Job(nil), j.txn.jobs...) {
		o.transition(JobPending)
		if !o.autoFinal && o.drv.Block {
			o.g.emit(EventBlockJobPending, BlockJobEvent{Name: EventBlockJobPending, Type: o.drv.Type,
				PendingID: o.id, IsPendingEvent: true})
		}
	}
	for _, o := range j.txn.jobs {
		if !o.autoFinal {
			return
		}
	}
	j.doFinalize()
}

// doFinalize is job_do_finalize: every job of the transaction prepares, then each is
// finalized; a failed prepare aborts the transaction.
func (j *Job) doFinalize() {
	for _, o := range append([]*Job(nil), j.txn.jobs...) {
		if o.prepare() != nil {
			j.txnAbort()
			return
		}
	}
	for _, o := range append([]*Job(nil), j.txn.jobs...) {
		o.finalizeSingle()
	}
}

// prepare is job_prepare (the driver's Prepare runs with l.mu released).
func (j *Job) prepare() error {
	if j.ret == nil && j.drv.Prepare != nil {
		j.l.mu.Unlock()
		err := j.drv.Prepare(j)
		j.l.mu.Lock()
		j.ret = err
		j.updateRC()
	}
	return j.ret
}

// finalizeSingle is job_finalize_single: commit or abort, clean, the completion event,
// concluded (and null when auto-dismissed).
func (j *Job) finalizeSingle() {
	j.updateRC()
	ret := j.ret
	j.l.mu.Unlock()
	switch {
	case ret == nil && j.drv.Commit != nil:
		j.drv.Commit(j)
	case ret != nil && j.drv.Abort != nil:
		j.drv.Abort(j)
	}
	if j.drv.Clean != nil {
		j.drv.Clean(j)
	}
	j.releaseNodes()
	j.l.mu.Lock()
	if j.started && j.drv.Block {
		ev := BlockJobEvent{Type: j.drv.Type, Device: j.id, Len: j.total, Offset: j.cur, Speed: j.speed}
		if j.isCancelled() {
			ev.Name = EventBlockJobCancelled
		} else {
			ev.Name, ev.IsCompletedEvent = EventBlockJobCompleted, true
			if j.ret != nil {
				ev.Error, ev.HasError = j.ret.Error(), true
			}
		}
		j.g.emit(ev.Name, ev)
	}
	j.txn.remove(j)
	j.conclude()
}

// conclude is job_conclude.
func (j *Job) conclude() {
	j.transition(JobConcluded)
	if j.autoDismiss || !j.started {
		j.doDismiss()
	}
}

// doDismiss is job_do_dismiss: null, and the job is gone.
func (j *Job) doDismiss() {
	j.busy, j.paused, j.deferred = false, false, true
	j.txn.remove(j)
	j.transition(JobNull)
	l := j.l
	for i, x := range l.jobs {
		if x == j {
			l.jobs = append(l.jobs[:i], l.jobs[i+1:]...)
			break
		}
	}
	j.releaseNodes()
}

// txnAbort is job_completed_txn_abort: every other job of the transaction is cancelled
// (forced) and, once its goroutine returned, finalized with the rest.
func (j *Job) txnAbort() {
	txn := j.txn
	if txn.aborting {
		return
	}
	txn.aborting = true
	for _, o := range txn.jobs {
		if o != j {
			o.cancelAsync(true)
			o.enter(nil)
		}
	}
	for len(txn.jobs) > 0 {
		o := txn.jobs[0]
		if !o.isCompleted() {
			// job_finish_sync: wait for the goroutine, then complete it here.
			if o.started {
				j.l.mu.Unlock()
				<-o.done
				j.l.mu.Lock()
			}
			if !o.exited {
				o.exited = true
				o.ret = o.runErr
				o.updateRC()
				if o.ret == nil {
					o.ret = errCanceled
					o.transition(JobAborting)
				}
			}
		}
		o.finalizeSingle()
	}
}

// cancelAsync is job_cancel_async (l.mu held).
func (j *Job) cancelAsync(force bool) {
	if j.drv.Cancel != nil {
		j.l.mu.Unlock()
		force = j.drv.Cancel(j, force)
		j.l.mu.Lock()
	} else {
		force = true
	}
	if j.userPaused {
		j.userResumed()
		j.userPaused = false
		j.pauseCount--
	}
	if force || !j.deferred {
		j.cancelled = true
		j.forceCancel = j.forceCancel || force
	}
	j.l.notify()
}

// userResumed is the block job's user_resume: the I/O status is reset.
func (j *Job) userResumed() {
	if j.drv.Block {
		j.ioStatus = "ok"
	}
}

// enter is job_enter_cond: wake the goroutine from a yield (l.mu held). cond, when not
// nil, must hold too.
func (j *Job) enter(cond func() bool) bool {
	if !j.started || j.deferred || j.busy || j.wake == nil {
		return false
	}
	if cond != nil && !cond() {
		return false
	}
	j.busy = true
	j.timer = false
	close(j.wake)
	j.wake = nil
	return true
}

// cancel is job_cancel (l.mu held, Graph.mu held).
func (j *Job) cancel(force bool) {
	if j.status == JobConcluded {
		j.doDismiss()
		return
	}
	j.cancelAsync(force)
	switch {
	case !j.started:
		j.exited = true
		j.completed()
	case j.deferred:
		if j.exited && j.isCancelled() {
			j.txnAbort()
		}
	default:
		j.enter(nil)
	}
}

// pause is job_pause (l.mu held): the goroutine, entered, parks at its next pause point.
func (j *Job) pause() {
	j.pauseCount++
	if !j.paused {
		j.enter(nil)
	}
}

// resume is job_resume (l.mu held).
func (j *Job) resume() {
	j.pauseCount--
	if j.pauseCount > 0 {
		return
	}
	j.enter(func() bool { return !j.timer })
}

// resumeSync resumes the job and, when that enters a goroutine parked in a pause point,
// waits until it is back in its state (the coroutine runs before the command returns).
func (j *Job) resumeSync() {
	parked := j.paused && j.started
	j.resume()
	if parked && j.busy {
		j.l.waitFor(func() bool { return !j.paused || j.deferred }, syncTimeout)
	}
}

// syncEntered waits (l.mu held) until a goroutine just entered reaches its next yield
// point, as a coroutine entered from the monitor runs before the command returns.
func (j *Job) syncEntered(yields uint64) {
	j.l.waitFor(func() bool { return j.yields != yields || j.deferred || !j.started }, syncTimeout)
}

// releaseNodes drops the job's hold on its nodes (block_job_remove_all_bdrv); a node
// only the job still held (an image dropped from a chain) is closed. tlcvm does it when
// the job is finalized: QEMU 7.2 keeps them until the job is dismissed and then crashes
// in query-named-block-nodes on the dropped images of a stream. Graph.mu held.
func (j *Job) releaseNodes() {
	if len(j.nodes) == 0 {
		return
	}
	held := j.nodes
	j.nodes = nil
	for _, jn := range held {
		u := jn.use
		jn.n.removeParent(func(e edge) bool { return e.temp == u })
		jn.n.unblock(j)
	}
	_ = j.g.refresh()
	for _, jn := range held {
		if n := jn.n; !n.monitorOwned() && len(n.parents) == 0 && j.g.node(n.Name) == n {
			j.g.removeTree(n)
		}
	}
}

// JobInfo is a snapshot of a job for the queries (query-jobs, query-block-jobs).
type JobInfo struct {
	ID           string
	Type         JobType
	Status       JobStatus
	Current      int64
	Total        int64
	Err          string // "" unless the job failed (job->err)
	Block        bool
	Busy         bool
	Paused       bool // pause_count > 0
	Speed        int64
	IOStatus     string
	Ready        bool
	AutoFinalize bool
	AutoDismiss  bool
}

func (j *Job) info() JobInfo {
	ji := JobInfo{ID: j.id, Type: j.drv.Type, Status: j.status, Current: j.cur, Total: j.total,
		Block: j.drv.Block, Busy: j.busy, Paused: j.pauseCount > 0, Speed: j.speed, IOStatus: j.ioStatus,
		Ready: j.isReady(), AutoFinalize: j.autoFinal, AutoDismiss: j.autoDismiss}
	if j.ret != nil {
		ji.Err = j.ret.Error()
	}
	return ji
}

// Jobs returns a snapshot of every job, newest first (query-jobs' order).
func (g *Graph) Jobs() []JobInfo {
	l := g.jobs
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]JobInfo, 0, len(l.jobs))
	for _, j := range l.jobs {
		out = append(out, j.info())
	}
	return out
}

// BlockJobs returns the block jobs, newest first (query-block-jobs).
func (g *Graph) BlockJobs() []JobInfo {
	var out []JobInfo
	for _, j := range g.Jobs() {
		if j.Block {
			out = append(out, j)
		}
	}
	return out
}

// WaitJobs waits until no job goroutine runs (for tests and shutdown).
func (g *Graph) WaitJobs() { g.jobs.wait() }

// findJob is find_job (job-*: "Job not found") or find_block_job (block-job-*: class
// DeviceNotActive "Block job 'x' not found"). Graph.mu and l.mu held.
func (g *Graph) findJob(id string, block bool) (*Job, error) {
	for _, j := range g.jobs.jobs {
		if j.id == id && (!block || j.drv.Block) {
			return j, nil
		}
	}
	if block {
		return nil, errf(ErrJobNotActive, "Block job '%s' not found", id)
	}
	return nil, errf(ErrNotFound, "Job not found")
}

// withJob runs f on the job named id under Graph.mu and the job list's lock.
func (g *Graph) withJob(id string, block bool, f func(j *Job) error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.jobs
	l.mu.Lock()
	defer l.mu.Unlock()
	j, err := g.findJob(id, block)
	if err != nil {
		return err
	}
	return f(j)
}

// CancelJob is job-cancel (block false: always forced) and block-job-cancel (block true,
// force as given; a user-paused job is refused unless forced).
func (g *Graph) CancelJob(id string, block, force bool) error {
	return g.withJob(id, block, func(j *Job) error {
		if block && j.userPaused && !force {
			return errf(ErrInvalid, "The block job for device '%s' is currently paused", id)
		}
		if !block {
			force = true
		}
		if err := j.applyVerb(VerbCancel); err != nil {
			return err
		}
		y := j.yields
		entered := !j.busy && j.started && !j.deferred
		j.cancel(force)
		if entered {
			j.syncEntered(y)
			if j.deferred {
				// The goroutine returned at once (a sync=none backup, a job sleeping in
				// its rate limit): QEMU's job_exit runs before the command's reply, so
				// aborting, BLOCK_JOB_CANCELLED, concluded and null come before it.
				j.exit()
			}
		}
		return nil
	})
}

// PauseJob is job-pause and block-job-pause (job_user_pause).
func (g *Graph) PauseJob(id string, block bool) error {
	return g.withJob(id, block, func(j *Job) error {
		if err := j.applyVerb(VerbPause); err != nil {
			return err
		}
		if j.userPaused {
			return errf(ErrInvalid, "Job is already paused")
		}
		j.userPaused = true
		y := j.yields
		entered := !j.busy && !j.paused && j.started && !j.deferred
		j.pause()
		if entered {
			j.syncEntered(y)
		}
		return nil
	})
}

// ResumeJob is job-resume and block-job-resume (job_user_resume).
func (g *Graph) ResumeJob(id string, block bool) error {
	return g.withJob(id, block, func(j *Job) error {
		if !j.userPaused || j.pauseCount <= 0 {
			return errf(ErrInvalid, "Can't resume a job that was not paused")
		}
		if err := j.applyVerb(VerbResume); err != nil {
			return err
		}
		j.userResumed()
		j.userPaused = false
		j.resumeSync()
		return nil
	})
}

// CompleteJob is job-complete and block-job-complete.
func (g *Graph) CompleteJob(id string, block bool) error {
	return g.withJob(id, block, func(j *Job) error {
		if err := j.applyVerb(VerbComplete); err != nil {
			return err
		}
		if j.cancelled || j.drv.Complete == nil {
			return errf(ErrInvalid, "The active block job '%s' cannot be completed", id)
		}
		j.l.mu.Unlock()
		err := j.drv.Complete(j)
		j.l.mu.Lock()
		return err
	})
}

// FinalizeJob is job-finalize and block-job-finalize.
func (g *Graph) FinalizeJob(id string, block bool) error {
	return g.withJob(id, block, func(j *Job) error {
		if err := j.applyVerb(VerbFinalize); err != nil {
			return err
		}
		j.doFinalize()
		return nil
	})
}

// DismissJob is job-dismiss and block-job-dismiss.
func (g *Graph) DismissJob(id string, block bool) error {
	return g.withJob(id, block, func(j *Job) error {
		if err := j.applyVerb(VerbDismiss); err != nil {
			return err
		}
		j.doDismiss()
		return nil
	})
}

// SetJobSpeed is block-job-set-speed (block_job_set_speed).
func (g *Graph) SetJobSpeed(id string, speed int64) error {
	return g.withJob(id, true, func(j *Job) error {
		if err := j.applyVerb(VerbSetSpeed); err != nil {
			return err
		}
		if speed < 0 {
			return errf(ErrInvalid, "Parameter 'speed' expects a non-negative value")
		}
		old := j.speed
		j.limit.setSpeed(speed)
		j.speed = speed
		if j.drv.SetSpeed != nil {
			j.drv.SetSpeed(j, speed)
		}
		if speed != 0 && speed <= old {
			return nil
		}
		j.enter(func() bool { return j.timer })
		return nil
	})
}

// DrainAll is bdrv_drain_all: every block job pauses and resumes (a transaction does it
// before its actions).
func (g *Graph) DrainAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.drainAll()
}

// drainAll is bdrv_drain_all as a transaction does it before its actions: every job
// pauses (reaching its pause point: paused or standby), then resumes. Graph.mu held.
func (g *Graph) drainAll() {
	end := g.drainBegin(nil)
	end()
}

// drainBegin pauses the jobs holding any of nodes (all jobs when nodes is nil) and waits
// until they are parked, as bdrv_drained_begin pauses the jobs attached to drained
// nodes; the returned function resumes them (bdrv_drained_end). Graph.mu held.
func (g *Graph) drainBegin(nodes []*Node) func() {
	l := g.jobs
	l.mu.Lock()
	defer l.mu.Unlock()
	var paused []*Job
	for _, j := range l.jobs {
		if !j.drv.Block || j.isCompleted() || (nodes != nil && !j.holdsAny(nodes)) {
			continue
		}
		j.pause()
		paused = append(paused, j)
	}
	for _, j := range paused {
		j := j
		l.waitFor(func() bool { return !j.started || j.paused || j.deferred }, syncTimeout)
	}
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, j := range paused {
			j.resumeSync()
		}
	}
}

// holdsAny reports whether the job holds one of nodes.
func (j *Job) holdsAny(nodes []*Node) bool {
	for _, jn := range j.nodes {
		for _, n := range nodes {
			if jn.n == n {
				return true
			}
		}
	}
	return false
}
