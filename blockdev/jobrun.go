package blockdev

import (
	"errors"
	"syscall"
	"time"
)

// The job goroutine's side of job.c: what a JobDriver's Run calls. Each method takes the
// job list's lock for a moment; none takes Graph.mu, so Run may call them while the
// monitor holds the graph.

// PausePoint is job_pause_point: when the job is asked to pause (by a user or a drain)
// and not cancelled, it goes paused (standby when ready), parks until resumed, and goes
// back.
func (j *Job) PausePoint() {
	j.l.mu.Lock()
	defer j.l.mu.Unlock()
	j.pausePoint()
}

func (j *Job) pausePoint() {
	if j.pauseCount == 0 || j.isCancelled() {
		return
	}
	st := j.status
	to := JobPaused
	if st == JobReady {
		to = JobStandby
	}
	j.transition(to)
	j.paused = true
	j.yield(-1)
	j.paused = false
	j.transition(st)
	j.l.notify()
}

// yield is job_do_yield: the goroutine parks until entered (enter) or, for d >= 0, until
// d has passed. l.mu is held on entry and exit and released while parked.
func (j *Job) yield(d time.Duration) {
	wake := make(chan struct{})
	j.wake = wake
	j.busy = false
	j.timer = d >= 0
	j.yields++
	j.l.notify()
	j.l.mu.Unlock()
	if d >= 0 {
		t := time.NewTimer(d)
		select {
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	} else {
		<-wake
	}
	j.l.mu.Lock()
	if j.wake == wake { // the timer, not enter, woke it (job_sleep_timer_cb)
		j.wake = nil
		j.busy = true
		j.timer = false
	}
}

// Sleep is job_sleep_ns: the goroutine yields for d unless a pause is asked (or until
// entered earlier), then passes a pause point. A forced cancel returns at once.
func (j *Job) Sleep(d time.Duration) {
	j.l.mu.Lock()
	defer j.l.mu.Unlock()
	if j.isCancelled() {
		return
	}
	if j.pauseCount == 0 {
		j.yield(d)
	}
	j.pausePoint()
}

// Yield is job_yield: the goroutine parks until entered, then passes a pause point.
func (j *Job) Yield() {
	j.l.mu.Lock()
	defer j.l.mu.Unlock()
	if j.isCancelled() {
		return
	}
	if j.pauseCount == 0 {
		j.yield(-1)
	}
	j.pausePoint()
}

// Kick enters the goroutine if it yields (from another goroutine: a guest write that
// gives a ready mirror new work).
func (j *Job) Kick() {
	j.l.mu.Lock()
	defer j.l.mu.Unlock()
	j.enter(nil)
}

// Cancelled is job_is_cancelled: a forced cancel was asked.
func (j *Job) Cancelled() bool {
	j.l.mu.Lock()
	defer j.l.mu.Unlock()
	return j.isCancelled()
}

// CancelRequested is job_cancel_requested: any cancel was asked (a soft one too).
func (j *Job) CancelRequested() bool {
	j.l.mu.Lock()
	defer j.l.mu.Unlock()
	return j.cancelled
}

// pauseRequested reports whether a pause (a user's, a drain's, an error's stop) waits
// for the job's next pause point: a job with I/O in flight ends it first.
func (j *Job) pauseRequested() bool {
	j.l.mu.Lock()
	defer j.l.mu.Unlock()
	return j.pauseCount > 0 && !j.isCancelled()
}

// IsReady is job_is_ready.
func (j *Job) IsReady() bool {
	j.l.mu.Lock()
	defer j.l.mu.Unlock()
	return j.isReady()
}

// ProgressUpdate adds done to the progress (job_progress_update).
func (j *Job) ProgressUpdate(done int64) {
	j.l.mu.Lock()
	j.cur += done
	j.l.mu.Unlock()
}

// ProgressSetRemaining sets the total to what is done plus remaining.
func (j *Job) ProgressSetRemaining(remaining int64) {
	j.l.mu.Lock()
	j.total = j.cur + remaining
	j.l.mu.Unlock()
}

// ProgressIncreaseRemaining adds delta to the total.
func (j *Job) ProgressIncreaseRemaining(delta int64) {
	j.l.mu.Lock()
	j.total += delta
	j.l.mu.Unlock()
}

// Progress returns the progress (current, total).
func (j *Job) Progress() (int64, int64) {
	j.l.mu.Lock()
	defer j.l.mu.Unlock()
	return j.cur, j.total
}

// TransitionToReady is job_transition_to_ready: ready, then BLOCK_JOB_READY.
func (j *Job) TransitionToReady() {
	j.l.mu.Lock()
	defer j.l.mu.Unlock()
	j.transition(JobReady)
	j.g.emit(EventBlockJobReady, BlockJobEvent{Name: EventBlockJobReady, Type: j.drv.Type, Device: j.id,
		Len: j.total, Offset: j.cur, Speed: j.speed})
}

// RateLimitProcessed records n bytes the job copied (block_job_ratelimit_processed_bytes).
func (j *Job) RateLimitProcessed(n int64) {
	j.l.mu.Lock()
	j.limit.delay(uint64(n), time.Now())
	j.l.mu.Unlock()
}

// rateLimited reports whether the job's speed asks it to wait before copying more.
func (j *Job) rateLimited() bool {
	j.l.mu.Lock()
	defer j.l.mu.Unlock()
	return j.limit.delay(0, time.Now()) > 0
}

// hasSpeed reports whether the job has a speed limit.
func (j *Job) hasSpeed() bool {
	j.l.mu.Lock()
	defer j.l.mu.Unlock()
	return j.limit.quota != 0
}

// RateLimitSleep is block_job_ratelimit_sleep: sleep at least once, as long as the speed
// (which may change meanwhile) asks.
func (j *Job) RateLimitSleep() {
	for {
		j.l.mu.Lock()
		d := j.limit.delay(0, time.Now())
		j.l.mu.Unlock()
		j.Sleep(d)
		if d == 0 || j.Cancelled() {
			return
		}
	}
}

// OnError is BlockdevOnError: what a block job does when its I/O fails.
type OnError string

// The policies.
const (
	OnErrorReport OnError = "report"
	OnErrorIgnore OnError = "ignore"
	OnErrorEnospc OnError = "enospc"
	OnErrorStop   OnError = "stop"
	OnErrorAuto   OnError = "auto"
)

// ErrorAction is BlockErrorAction.
type ErrorAction string

// The actions.
const (
	ActionIgnore ErrorAction = "ignore"
	ActionReport ErrorAction = "report"
	ActionStop   ErrorAction = "stop"
)

// ErrorAction is block_job_error_action: the action policy asks for err, announced by
// BLOCK_JOB_ERROR; "stop" pauses the job as a user pause (block-job-resume retries) and
// sets its I/O status.
func (j *Job) ErrorAction(policy OnError, isRead bool, err error) ErrorAction {
	nospace := errors.Is(err, syscall.ENOSPC)
	a := actionFor(policy, nospace)
	op := "write"
	if isRead {
		op = "read"
	}
	j.l.mu.Lock()
	defer j.l.mu.Unlock()
	j.g.emit(EventBlockJobError, BlockJobEvent{Name: EventBlockJobError, Device: j.id, ErrorOperation: op,
		ErrorAction: string(a), IsErrorEvent: true})
	if a == ActionStop {
		if !j.userPaused {
			j.pauseCount++
			j.userPaused = true
		}
		if j.ioStatus == "ok" {
			j.ioStatus = "failed"
			if nospace {
				j.ioStatus = "nospace"
			}
		}
	}
	return a
}

// rateLimit is QEMU's RateLimit (include/qemu/ratelimit.h) with the block jobs' slice of
// 100 ms: a slice's quota is speed*slice; past it, the delay stretches the slice by the
// excess.
type rateLimit struct {
	sliceStart, sliceEnd time.Time
	quota                uint64
	sliceNs              uint64
	dispatched           uint64
}

// jobSlice is BLOCK_JOB_SLICE_TIME.
const jobSlice = 100 * time.Millisecond

func (r *rateLimit) setSpeed(speed int64) {
	r.sliceNs = uint64(jobSlice)
	if speed <= 0 {
		r.quota = 0
		return
	}
	r.quota = max(uint64(float64(speed)*float64(r.sliceNs)/1e9), 1)
}

// delay records n units sent and returns how long to wait before the next
// (ratelimit_calculate_delay).
func (r *rateLimit) delay(n uint64, now time.Time) time.Duration {
	if r.quota == 0 {
		return 0
	}
	if r.sliceEnd.Before(now) {
		r.sliceStart = now
		r.sliceEnd = now.Add(time.Duration(r.sliceNs))
		r.dispatched = 0
	}
	r.dispatched += n
	if r.dispatched < r.quota {
		return 0
	}
	slices := float64(r.dispatched) / float64(r.quota)
	r.sliceEnd = r.sliceStart.Add(time.Duration(slices * float64(r.sliceNs)))
	return r.sliceEnd.Sub(now)
}
