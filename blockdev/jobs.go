package blockdev

import (
	"sync"

	"tlcvm/compat/optval"
)

// JobStatus is QAPI's JobStatus.
type JobStatus string

// The job states a create job passes through (qapi/job.json).
const (
	JobCreated   JobStatus = "created"
	JobRunning   JobStatus = "running"
	JobPaused    JobStatus = "paused"
	JobReady     JobStatus = "ready"
	JobStandby   JobStatus = "standby"
	JobWaiting   JobStatus = "waiting"
	JobPending   JobStatus = "pending"
	JobAborting  JobStatus = "aborting"
	JobConcluded JobStatus = "concluded"
	JobUndefined JobStatus = "undefined"
	JobNull      JobStatus = "null"
)

// JobStatusEvent is JOB_STATUS_CHANGE's data.
type JobStatusEvent struct {
	ID     string
	Status JobStatus
}

// Job is a background block operation (blockdev-create today; mirror, commit, stream and
// backup will be Jobs too: a Run function that reports progress, driven through the same
// state machine and events).
type Job struct {
	ID   string
	Type string // JobType: "create", later "mirror", "commit", "stream", "backup"
	// Status, Current, Total and Err are guarded by the graph's job list lock.
	Status         JobStatus
	Current, Total int64
	Err            string
}

// JobRunner is a job's work. It runs on its own goroutine; progress reports (current,
// total). A returned error concludes the job with that error.
type JobRunner func(progress func(current, total int64)) error

type jobList struct {
	g    *Graph
	mu   sync.Mutex
	jobs []*Job
	wg   sync.WaitGroup
}

func newJobList(g *Graph) *jobList { return &jobList{g: g} }

func (l *jobList) wait() { l.wg.Wait() }

// setStatus changes a job's state and emits JOB_STATUS_CHANGE (callers hold l.mu).
func (l *jobList) setStatus(j *Job, s JobStatus) {
	j.Status = s
	l.g.emit("JOB_STATUS_CHANGE", JobStatusEvent{ID: j.ID, Status: s})
}

// StartJob creates and starts a job: JOB_STATUS_CHANGE created and running are emitted
// before StartJob returns, the rest (waiting, pending, concluded — or aborting, concluded)
// from the job's goroutine. The job stays until job-dismiss.
func (g *Graph) StartJob(id, typ string, run JobRunner) error {
	l := g.jobs
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, j := range l.jobs {
		if j.ID == id {
			return errf(ErrExists, "Job ID '%s' already in use", id)
		}
	}
	if !optval.ID(id) {
		return errf(ErrInvalid, "Invalid job ID '%s'", id)
	}
	j := &Job{ID: id, Type: typ, Total: 1}
	l.jobs = append(l.jobs, j)
	l.setStatus(j, JobCreated)
	l.setStatus(j, JobRunning)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		err := run(func(cur, total int64) {
			l.mu.Lock()
			j.Current, j.Total = cur, total
			l.mu.Unlock()
		})
		l.mu.Lock()
		defer l.mu.Unlock()
		if err != nil {
			j.Err = err.Error()
			l.setStatus(j, JobAborting)
		} else {
			j.Current = j.Total
			l.setStatus(j, JobWaiting)
			l.setStatus(j, JobPending)
		}
		l.setStatus(j, JobConcluded)
	}()
	return nil
}

// Jobs returns copies of the jobs in creation order.
func (g *Graph) Jobs() []Job {
	l := g.jobs
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Job, 0, len(l.jobs))
	for _, j := range l.jobs {
		out = append(out, *j)
	}
	return out
}

// DismissJob is job-dismiss: a concluded job goes to null and disappears.
func (g *Graph) DismissJob(id string) error {
	l := g.jobs
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, j := range l.jobs {
		if j.ID != id {
			continue
		}
		if j.Status != JobConcluded {
			return errf(ErrJob, "Job '%s' in state '%s' cannot accept command verb 'dismiss'", id, j.Status)
		}
		l.setStatus(j, JobNull)
		l.jobs = append(l.jobs[:i], l.jobs[i+1:]...)
		return nil
	}
	return errf(ErrNotFound, "Job not found")
}

// WaitJobs waits until no job goroutine runs (for tests and shutdown).
func (g *Graph) WaitJobs() { g.jobs.wait() }
