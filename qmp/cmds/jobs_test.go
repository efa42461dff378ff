package cmds

import (
	"testing"

	"tlcvm/blockdev"
	"tlcvm/compat/qerror"
	"tlcvm/qmp"
)

// TestJobCommands: the job verbs reach the block layer by id (job-*, block-job-dismiss and
// -finalize) or by device (the other block-job-*), QEMU 7.2's classes for a job that is not
// there (GenericError "Job not found", DeviceNotActive "Block job 'x' not found"), and the
// queries built from what the block layer reports.
func TestJobCommands(t *testing.T) {
	noJob := qerror.New(blockdev.ErrNotFound, "Job not found")
	noBlockJob := qerror.Errorf(blockdev.ErrJobNotActive, "Block job '%s' not found", "j9")
	notReady := qerror.Errorf(blockdev.ErrJob, "Job 'j' in state 'running' cannot accept command verb 'finalize'")
	cases := []handlerCase{
		{cmd: `{"execute":"job-cancel","arguments":{"id":"j"}}`, calls: `CancelJob "j" block=false force=true`, want: `{}`},
		{cmd: `{"execute":"job-cancel","arguments":{"id":"j9"}}`, err: noJob,
			calls: `CancelJob "j9" block=false force=true`, want: `GenericError: Job not found`},
		{cmd: `{"execute":"job-cancel"}`, want: `GenericError: Parameter 'id' is missing`},
		{cmd: `{"execute":"block-job-cancel","arguments":{"device":"j"}}`, calls: `CancelJob "j" block=true force=false`, want: `{}`},
		{cmd: `{"execute":"block-job-cancel","arguments":{"device":"j","force":true}}`,
			calls: `CancelJob "j" block=true force=true`, want: `{}`},
		{cmd: `{"execute":"block-job-cancel","arguments":{"device":"j9"}}`, err: noBlockJob,
			calls: `CancelJob "j9" block=true force=false`, want: `DeviceNotActive: Block job 'j9' not found`},
		{cmd: `{"execute":"block-job-set-speed","arguments":{"device":"j","speed":1024}}`,
			calls: `SetJobSpeed "j" 1024`, want: `{}`},
		{cmd: `{"execute":"block-job-set-speed","arguments":{"device":"j","speed":"x"}}`,
			want: `GenericError: Invalid parameter type for 'speed', expected: integer`},
		{cmd: `{"execute":"block-job-set-speed","arguments":{"device":"j9","speed":1}}`, err: noBlockJob,
			calls: `SetJobSpeed "j9" 1`, want: `DeviceNotActive: Block job 'j9' not found`},
		{cmd: `{"execute":"job-pause","arguments":{"id":"j"}}`, calls: `PauseJob "j" block=false`, want: `{}`},
		{cmd: `{"execute":"block-job-pause","arguments":{"device":"j"}}`, calls: `PauseJob "j" block=true`, want: `{}`},
		{cmd: `{"execute":"block-job-pause","arguments":{"id":"j"}}`, want: `GenericError: Parameter 'device' is missing`},
		{cmd: `{"execute":"job-resume","arguments":{"id":"j"}}`, calls: `ResumeJob "j" block=false`, want: `{}`},
		{cmd: `{"execute":"block-job-resume","arguments":{"device":"j9"}}`, err: noBlockJob,
			calls: `ResumeJob "j9" block=true`, want: `DeviceNotActive: Block job 'j9' not found`},
		{cmd: `{"execute":"job-complete","arguments":{"id":"j"}}`, calls: `CompleteJob "j" block=false`, want: `{}`},
		{cmd: `{"execute":"block-job-complete","arguments":{"device":"j"}}`, calls: `CompleteJob "j" block=true`, want: `{}`},
		{cmd: `{"execute":"job-dismiss","arguments":{"id":"j"}}`, calls: `DismissJob "j" block=false`, want: `{}`},
		{cmd: `{"execute":"block-job-dismiss","arguments":{"id":"j"}}`, calls: `DismissJob "j" block=true`, want: `{}`},
		{cmd: `{"execute":"block-job-dismiss","arguments":{"device":"j"}}`, want: `GenericError: Parameter 'id' is missing`},
		{cmd: `{"execute":"job-finalize","arguments":{"id":"j"}}`, err: notReady,
			calls: `FinalizeJob "j" block=false`, want: `GenericError: ` + notReady.Error()},
		{cmd: `{"execute":"block-job-finalize","arguments":{"id":"j"}}`, calls: `FinalizeJob "j" block=true`, want: `{}`},
		{cmd: `{"execute":"query-jobs"}`, calls: `Jobs`, want: `[]`},
		{cmd: `{"execute":"query-block-jobs"}`, calls: `BlockJobs`, want: `[]`},
		{cmd: `{"execute":"query-jobs","arguments":{"x":1}}`, want: `GenericError: Parameter 'x' is unexpected`},
	}
	runHandlerCases(t, cases, newFakeBlock, func(r *qmp.Registry, f *fakeBlock) { jobCommands(r, f) })
}

// TestJobQueries: query-jobs and query-block-jobs in QEMU's key order, from the block
// layer's job states (the error only when the job failed).
func TestJobQueries(t *testing.T) {
	f := &fakeBlock{jobs: []blockdev.JobInfo{
		{ID: "m", Type: blockdev.JobTypeMirror, Status: blockdev.JobReady, Current: 10, Total: 20, Block: true,
			Speed: 5, IOStatus: "ok", Ready: true, AutoFinalize: true, AutoDismiss: true},
		{ID: "c", Type: blockdev.JobTypeCreate, Status: blockdev.JobConcluded, Current: 1, Total: 1, Err: "No space left on device",
			IOStatus: "ok", Paused: true, Busy: true},
	}}
	w := newWire(t, func(r *qmp.Registry) { jobCommands(r, f) })
	for _, tc := range []struct{ cmd, want string }{
		{`{"execute":"query-jobs"}`, `[{"current-progress":10,"status":"ready","total-progress":20,"type":"mirror","id":"m"},` +
			`{"current-progress":1,"status":"concluded","total-progress":1,"type":"create","id":"c","error":"No space left on device"}]`},
		{`{"execute":"query-block-jobs"}`, `[{"auto-finalize":true,"io-status":"ok","device":"m","auto-dismiss":true,"busy":false,` +
			`"len":20,"offset":10,"status":"ready","paused":false,"speed":5,"ready":true,"type":"mirror"},` +
			`{"auto-finalize":false,"io-status":"ok","device":"c","auto-dismiss":false,"busy":true,"len":1,"offset":1,` +
			`"status":"concluded","paused":true,"speed":0,"ready":false,"type":"create","error":"No space left on device"}]`},
	} {
		if got := w.do(tc.cmd); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.cmd, got, tc.want)
		}
	}
}
