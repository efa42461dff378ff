package blockdev_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"tlcvm/blockdev"
)

// jobEvents records every event a graph emits, in order, as "NAME:detail" strings.
type jobEvents struct {
	mu  sync.Mutex
	got []string
	ch  chan struct{}
}

func newJobEvents() *jobEvents { return &jobEvents{ch: make(chan struct{}, 1000)} }

func (e *jobEvents) Emit(name string, data any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := name
	switch v := data.(type) {
	case blockdev.JobStatusEvent:
		s = v.Status.String()
	case blockdev.BlockJobEvent:
		switch {
		case v.IsErrorEvent:
			s += ":" + v.ErrorOperation + ":" + v.ErrorAction
		case v.IsPendingEvent:
		default:
			s += fmt.Sprintf(":%d/%d", v.Offset, v.Len)
			if v.HasError {
				s += ":" + v.Error
			}
		}
	}
	e.got = append(e.got, s)
	select {
	case e.ch <- struct{}{}:
	default:
	}
}

// take returns the events so far and forgets them.
func (e *jobEvents) take() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := strings.Join(e.got, " ")
	e.got = nil
	return s
}

// waitFor waits until the recorded events end with last.
func (e *jobEvents) waitFor(t *testing.T, last string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.mu.Lock()
		n := len(e.got)
		ok := n > 0 && e.got[n-1] == last
		e.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s; events: %s", last, e.take())
		}
		select {
		case <-e.ch:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

var errNoSpace error = syscall.ENOSPC

// testJob is a job driver the tests steer: it works in steps of one unit (sleeping long
// between them, so that a verb finds it yielded), can go ready and wait for
// job-complete, fail, or stop on a soft cancel once ready, as a mirror does.
type testJob struct {
	steps    int
	mirror   bool
	fail     error
	ioErr    error
	policy   blockdev.OnError
	complete chan struct{}
	done     chan struct{} // closed: the remaining steps may run
}

func (tj *testJob) driver() *blockdev.JobDriver {
	d := &blockdev.JobDriver{Type: blockdev.JobTypeStream, Block: true, Run: tj.run}
	if tj.mirror {
		d.Type = blockdev.JobTypeMirror
		d.Complete = func(j *blockdev.Job) error {
			if !j.IsReady() {
				return errors.New("not ready")
			}
			close(tj.complete)
			j.Kick()
			return nil
		}
		d.Cancel = func(j *blockdev.Job, force bool) bool { return force || !j.IsReady() }
	}
	return d
}

func (tj *testJob) run(j *blockdev.Job) error {
	j.ProgressSetRemaining(int64(tj.steps))
	for i := 0; i < tj.steps; i++ {
		if j.Cancelled() {
			return nil
		}
		if tj.ioErr != nil {
			switch j.ErrorAction(tj.policy, true, tj.ioErr) {
			case blockdev.ActionStop:
				tj.ioErr = nil // fixed by the time the job resumes
				i--
				j.PausePoint()
				continue
			case blockdev.ActionReport:
				return tj.ioErr
			}
			tj.ioErr = nil
		}
		select {
		case <-tj.done:
		default:
			j.Sleep(time.Hour) // yielded, as a rate-limited job; verbs enter it
		}
		if j.Cancelled() {
			return nil
		}
		j.ProgressUpdate(1)
	}
	if !tj.mirror {
		return tj.fail
	}
	j.TransitionToReady()
	for {
		select {
		case <-tj.complete:
			return nil
		default:
		}
		if j.CancelRequested() {
			return nil
		}
		j.Sleep(time.Hour)
	}
}

func newTestJob(steps int) *testJob {
	return &testJob{steps: steps, complete: make(chan struct{}), done: make(chan struct{})}
}

func startTestJob(t *testing.T, g *blockdev.Graph, id string, tj *testJob, o blockdev.JobOptions) {
	t.Helper()
	o.ID = id
	if _, err := g.StartJob(o, tj.driver()); err != nil {
		t.Fatal(err)
	}
}

func jobStatus(t *testing.T, g *blockdev.Graph, id string) blockdev.JobInfo {
	t.Helper()
	for _, j := range g.Jobs() {
		if j.ID == id {
			return j
		}
	}
	t.Fatalf("no job %s in %+v", id, g.Jobs())
	return blockdev.JobInfo{}
}

// awaitJobStatus waits (deadline 30 s) until job id is in status want: a pause takes
// effect at the job's next pause point (job_pause_point), not when the verb returns.
func awaitJobStatus(t *testing.T, g *blockdev.Graph, id string, want blockdev.JobStatus) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := jobStatus(t, g, id).Status
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: %s after 30 s, want %s", id, got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// qemuVerbTable is job.c's JobVerbTable as QEMU 7.2 prints it, transcribed independently
// of the package's table (U C R P Y S W D X E N).
var qemuVerbTable = map[string]string{
	"cancel":    "0 1 1 1 1 1 1 1 0 0 0",
	"pause":     "0 1 1 1 1 1 0 0 0 0 0",
	"resume":    "0 1 1 1 1 1 0 0 0 0 0",
	"set-speed": "0 1 1 1 1 1 0 0 0 0 0",
	"complete":  "0 0 0 0 1 1 0 0 0 0 0",
	"finalize":  "0 0 0 0 0 0 0 1 0 0 0",
	"dismiss":   "0 0 0 0 0 0 0 0 0 1 0",
}

// qemuSTT is job.c's JobSTT (from row to column).
var qemuSTT = []string{
	"0 1 0 0 0 0 0 0 0 0 0", // undefined
	"0 0 1 0 0 0 0 0 1 0 1", // created
	"0 0 0 1 1 0 1 0 1 0 0", // running
	"0 0 1 0 0 0 0 0 0 0 0", // paused
	"0 0 0 0 0 1 1 0 1 0 0", // ready
	"0 0 0 0 1 0 0 0 0 0 0", // standby
	"0 0 0 0 0 0 0 1 1 0 0", // waiting
	"0 0 0 0 0 0 0 0 1 1 0", // pending
	"0 0 0 0 0 0 0 0 1 1 0", // aborting
	"0 0 0 0 0 0 0 0 0 0 1", // concluded
	"0 0 0 0 0 0 0 0 0 0 0", // null
}

func TestJobTablesAreQEMUs(t *testing.T) {
	for verb := blockdev.VerbCancel; verb <= blockdev.VerbFinalize; verb++ {
		var row []string
		for s := blockdev.JobUndefined; s <= blockdev.JobNull; s++ {
			row = append(row, map[bool]string{true: "1", false: "0"}[blockdev.JobVerbAllowed(verb, s)])
		}
		if got, want := strings.Join(row, " "), qemuVerbTable[verb.String()]; got != want {
			t.Errorf("verb %s: %s, job.c has %s", verb, got, want)
		}
	}
	for from := blockdev.JobUndefined; from <= blockdev.JobNull; from++ {
		var row []string
		for to := blockdev.JobUndefined; to <= blockdev.JobNull; to++ {
			row = append(row, map[bool]string{true: "1", false: "0"}[blockdev.JobTransitionAllowed(from, to)])
		}
		if got := strings.Join(row, " "); got != qemuSTT[from] {
			t.Errorf("transitions from %s: %s, job.c has %s", from, got, qemuSTT[from])
		}
	}
}

// verbCall applies a verb to a job the way the monitor does (job-* commands).
func verbCall(g *blockdev.Graph, v blockdev.JobVerb, id string) error {
	switch v {
	case blockdev.VerbCancel:
		return g.CancelJob(id, false, true)
	case blockdev.VerbPause:
		return g.PauseJob(id, false)
	case blockdev.VerbResume:
		return g.ResumeJob(id, false)
	case blockdev.VerbSetSpeed:
		return g.SetJobSpeed(id, 0)
	case blockdev.VerbComplete:
		return g.CompleteJob(id, false)
	case blockdev.VerbDismiss:
		return g.DismissJob(id, false)
	}
	return g.FinalizeJob(id, false)
}

// TestJobVerbsInEveryState drives real jobs into each state a monitor can see (running,
// paused, ready, standby, pending, concluded) and applies every verb: the refused ones
// fail with QEMU's text and leave the state alone; the accepted ones do what job.c does.
func TestJobVerbsInEveryState(t *testing.T) {
	type setup func(t *testing.T, g *blockdev.Graph, ev *jobEvents) *testJob
	states := []struct {
		status blockdev.JobStatus
		setup  setup
	}{
		{blockdev.JobRunning, func(t *testing.T, g *blockdev.Graph, ev *jobEvents) *testJob {
			tj := newTestJob(3)
			startTestJob(t, g, "j", tj, blockdev.JobOptions{ManualDismiss: true})
			return tj
		}},
		{blockdev.JobPaused, func(t *testing.T, g *blockdev.Graph, ev *jobEvents) *testJob {
			tj := newTestJob(3)
			startTestJob(t, g, "j", tj, blockdev.JobOptions{ManualDismiss: true})
			if err := g.PauseJob("j", true); err != nil {
				t.Fatal(err)
			}
			awaitJobStatus(t, g, "j", blockdev.JobPaused)
			return tj
		}},
		{blockdev.JobReady, func(t *testing.T, g *blockdev.Graph, ev *jobEvents) *testJob {
			tj := newTestJob(0)
			tj.mirror = true
			startTestJob(t, g, "j", tj, blockdev.JobOptions{ManualDismiss: true})
			ev.waitFor(t, "BLOCK_JOB_READY:0/0")
			return tj
		}},
		{blockdev.JobStandby, func(t *testing.T, g *blockdev.Graph, ev *jobEvents) *testJob {
			tj := newTestJob(0)
			tj.mirror = true
			startTestJob(t, g, "j", tj, blockdev.JobOptions{ManualDismiss: true})
			ev.waitFor(t, "BLOCK_JOB_READY:0/0")
			if err := g.PauseJob("j", true); err != nil {
				t.Fatal(err)
			}
			awaitJobStatus(t, g, "j", blockdev.JobStandby)
			return tj
		}},
		{blockdev.JobPending, func(t *testing.T, g *blockdev.Graph, ev *jobEvents) *testJob {
			tj := newTestJob(0)
			startTestJob(t, g, "j", tj, blockdev.JobOptions{ManualDismiss: true, ManualFinalize: true})
			ev.waitFor(t, "BLOCK_JOB_PENDING")
			return tj
		}},
		{blockdev.JobConcluded, func(t *testing.T, g *blockdev.Graph, ev *jobEvents) *testJob {
			tj := newTestJob(0)
			startTestJob(t, g, "j", tj, blockdev.JobOptions{ManualDismiss: true})
			ev.waitFor(t, "concluded")
			return tj
		}},
	}
	for _, st := range states {
		for v := blockdev.VerbCancel; v <= blockdev.VerbFinalize; v++ {
			t.Run(st.status.String()+"/"+v.String(), func(t *testing.T) {
				ev := newJobEvents()
				g := newGraph(ev)
				defer g.Close()
				st.setup(t, g, ev)
				if got := jobStatus(t, g, "j").Status; got != st.status {
					t.Fatalf("set up %s, got %s", st.status, got)
				}
				ev.take()
				err := verbCall(g, v, "j")
				allowed := blockdev.JobVerbAllowed(v, st.status)
				if v == blockdev.VerbResume && st.status != blockdev.JobPaused && st.status != blockdev.JobStandby {
					// job_user_resume checks user_paused before the table.
					if err == nil || err.Error() != "Can't resume a job that was not paused" {
						t.Fatalf("resume in %s: %v", st.status, err)
					}
					return
				}
				if !allowed {
					want := fmt.Sprintf("Job 'j' in state '%s' cannot accept command verb '%s'", st.status, v)
					if err == nil || err.Error() != want {
						t.Fatalf("got %v, want %q", err, want)
					}
					if got := jobStatus(t, g, "j").Status; got != st.status {
						t.Fatalf("a refused verb moved the job to %s", got)
					}
					return
				}
				if v == blockdev.VerbPause && (st.status == blockdev.JobPaused || st.status == blockdev.JobStandby) {
					if err == nil || err.Error() != "Job is already paused" {
						t.Fatalf("second pause: %v", err)
					}
					return
				}
				if v == blockdev.VerbComplete && st.status == blockdev.JobReady || v == blockdev.VerbComplete && st.status == blockdev.JobStandby {
					if err != nil {
						t.Fatal(err)
					}
					if st.status == blockdev.JobStandby {
						if err := g.ResumeJob("j", true); err != nil {
							t.Fatal(err)
						}
					}
					ev.waitFor(t, "concluded")
					return
				}
				if err != nil {
					t.Fatalf("%s in %s: %v", v, st.status, err)
				}
			})
		}
	}
}

// TestJobLifecycleEvents: the event sequences of job.c for each way a job ends, as
// QEMU 7.2 emits them (recorded from the real binary: tests/testdata/qmp/jobs.txt).
func TestJobLifecycleEvents(t *testing.T) {
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ready := func() *testJob { tj := newTestJob(0); tj.mirror = true; return tj }
	quick := func(steps int) *testJob { tj := newTestJob(steps); close(tj.done); return tj }
	cases := []struct {
		name string
		job  *testJob
		opt  blockdev.JobOptions
		// steer drives the job after it started (ev: the events so far).
		steer func(t *testing.T, g *blockdev.Graph, ev *jobEvents)
		last  string // the event that ends the case
		want  string
	}{
		{name: "auto", job: quick(2), last: "null",
			want: "created running waiting pending BLOCK_JOB_COMPLETED:2/2 concluded null"},
		{name: "manual finalize and dismiss", job: quick(1), opt: blockdev.JobOptions{ManualFinalize: true, ManualDismiss: true},
			steer: func(t *testing.T, g *blockdev.Graph, ev *jobEvents) {
				ev.waitFor(t, "BLOCK_JOB_PENDING")
				if err := g.DismissJob("j", true); err == nil || err.Error() != "Job 'j' in state 'pending' cannot accept command verb 'dismiss'" {
					t.Fatalf("dismiss in pending: %v", err)
				}
				must(t, g.FinalizeJob("j", true))
				must(t, g.DismissJob("j", true))
			}, last: "null",
			want: "created running waiting pending BLOCK_JOB_PENDING BLOCK_JOB_COMPLETED:1/1 concluded null"},
		{name: "cancel running", job: newTestJob(5), opt: blockdev.JobOptions{ManualDismiss: true},
			steer: func(t *testing.T, g *blockdev.Graph, ev *jobEvents) {
				must(t, g.CancelJob("j", true, false))
				ev.waitFor(t, "concluded")
				if j := jobStatus(t, g, "j"); j.Err != "Operation canceled" {
					t.Fatalf("error %q", j.Err)
				}
			}, last: "concluded",
			want: "created running aborting BLOCK_JOB_CANCELLED:0/5 concluded"},
		{name: "cancel paused", job: newTestJob(5),
			steer: func(t *testing.T, g *blockdev.Graph, ev *jobEvents) {
				must(t, g.PauseJob("j", true))
				if err := g.CancelJob("j", true, false); err == nil || err.Error() != "The block job for device 'j' is currently paused" {
					t.Fatalf("soft cancel of a paused job: %v", err)
				}
				must(t, g.CancelJob("j", true, true))
			}, last: "null",
			want: "created running paused running aborting BLOCK_JOB_CANCELLED:0/5 concluded null"},
		{name: "failure", job: &testJob{steps: 1, done: closed(), fail: errors.New("Input/output error")}, last: "null",
			want: "created running aborting BLOCK_JOB_COMPLETED:1/1:Input/output error concluded null"},
		{name: "ready complete", job: ready(),
			steer: func(t *testing.T, g *blockdev.Graph, ev *jobEvents) {
				ev.waitFor(t, "BLOCK_JOB_READY:0/0")
				must(t, g.PauseJob("j", true))
				must(t, g.ResumeJob("j", true))
				must(t, g.CompleteJob("j", true))
			}, last: "null",
			want: "created running ready BLOCK_JOB_READY:0/0 standby ready waiting pending BLOCK_JOB_COMPLETED:0/0 concluded null"},
		{name: "soft cancel when ready completes", job: ready(),
			steer: func(t *testing.T, g *blockdev.Graph, ev *jobEvents) {
				ev.waitFor(t, "BLOCK_JOB_READY:0/0")
				must(t, g.CancelJob("j", true, false))
			}, last: "null",
			want: "created running ready BLOCK_JOB_READY:0/0 waiting pending BLOCK_JOB_COMPLETED:0/0 concluded null"},
		{name: "error stop then resume", opt: blockdev.JobOptions{ManualDismiss: true},
			job: &testJob{steps: 1, done: closed(), ioErr: fmt.Errorf("read: %w", errNoSpace), policy: blockdev.OnErrorEnospc},
			steer: func(t *testing.T, g *blockdev.Graph, ev *jobEvents) {
				ev.waitFor(t, "paused")
				if j := jobStatus(t, g, "j"); j.IOStatus != "nospace" || !j.Paused {
					t.Fatalf("after the error: %+v", j)
				}
				must(t, g.ResumeJob("j", true))
				ev.waitFor(t, "concluded")
				if j := jobStatus(t, g, "j"); j.IOStatus != "ok" || j.Err != "" {
					t.Fatalf("after the resume: %+v", j)
				}
			}, last: "concluded",
			want: "created running BLOCK_JOB_ERROR:read:stop paused running waiting pending BLOCK_JOB_COMPLETED:1/1 concluded"},
		{name: "error report", job: &testJob{steps: 1, ioErr: errors.New("Input/output error"), policy: blockdev.OnErrorEnospc},
			last: "null",
			want: "created running BLOCK_JOB_ERROR:read:report aborting BLOCK_JOB_COMPLETED:0/1:Input/output error concluded null"},
		{name: "drain", job: newTestJob(3),
			steer: func(t *testing.T, g *blockdev.Graph, ev *jobEvents) { g.DrainAll() },
			want:  "created running paused running"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := newJobEvents()
			g := newGraph(ev)
			defer g.Close()
			if c.job.complete == nil {
				c.job.complete = make(chan struct{})
			}
			if c.job.done == nil {
				c.job.done = make(chan struct{})
			}
			startTestJob(t, g, "j", c.job, c.opt)
			if c.steer != nil {
				c.steer(t, g, ev)
			}
			if c.last != "" {
				ev.waitFor(t, c.last)
			}
			if got := ev.take(); got != c.want {
				t.Fatalf("events %q, want %q", got, c.want)
			}
		})
	}
}

func closed() chan struct{} { c := make(chan struct{}); close(c); return c }

func TestJobSetSpeed(t *testing.T) {
	g := newGraph(newJobEvents())
	defer g.Close()
	startTestJob(t, g, "s", newTestJob(2), blockdev.JobOptions{Speed: 1 << 20})
	if err := g.SetJobSpeed("s", -1); err == nil || err.Error() != "Parameter 'speed' expects a non-negative value" {
		t.Fatalf("negative speed: %v", err)
	}
	if err := g.SetJobSpeed("s", 4<<20); err != nil {
		t.Fatal(err)
	}
	if j := jobStatus(t, g, "s"); j.Speed != 4<<20 {
		t.Fatalf("speed %d", j.Speed)
	}
	if err := g.SetJobSpeed("nope", 1); err == nil || err.Error() != "Block job 'nope' not found" || !errors.Is(err, blockdev.ErrJobNotActive) {
		t.Fatalf("unknown job: %v", err)
	}
}

func TestJobErrors(t *testing.T) {
	ev := newJobEvents()
	g := newGraph(ev)
	defer g.Close()
	startTestJob(t, g, "x", newTestJob(2), blockdev.JobOptions{})
	for _, c := range []struct {
		err  error
		want string
	}{
		{func() error { _, err := g.StartJob(blockdev.JobOptions{ID: "x"}, newTestJob(1).driver()); return err }(), "Job ID 'x' already in use"},
		{func() error { _, err := g.StartJob(blockdev.JobOptions{ID: "#x"}, newTestJob(1).driver()); return err }(), "Invalid job ID '#x'"},
		{func() error { _, err := g.StartJob(blockdev.JobOptions{ID: ""}, newTestJob(1).driver()); return err }(), "Invalid job ID ''"},
		{g.CancelJob("nope", false, true), "Job not found"},
		{g.CancelJob("nope", true, false), "Block job 'nope' not found"},
		{g.ResumeJob("x", true), "Can't resume a job that was not paused"},
		{g.CompleteJob("x", true), "Job 'x' in state 'running' cannot accept command verb 'complete'"},
		{g.FinalizeJob("x", false), "Job 'x' in state 'running' cannot accept command verb 'finalize'"},
	} {
		if c.err == nil || c.err.Error() != c.want {
			t.Errorf("got %v, want %q", c.err, c.want)
		}
	}
}
