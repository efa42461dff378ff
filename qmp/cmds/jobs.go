package cmds

import (
	"tlcvm/blockdev"
	"tlcvm/qmp"
)

// The job commands of qapi/job.json (job-cancel, -pause, -resume, -complete, -dismiss,
// -finalize, query-jobs) and their block-job-* twins of qapi/block-core.json (which look
// jobs up as block jobs: "Block job 'x' not found", class DeviceNotActive), with the
// events jobs emit. The work is in package blockdev (job.go).

// JobType is QAPI's JobType.
type JobType string

// EnumValues implements qmp.Enum.
func (JobType) EnumValues() []string {
	return []string{"commit", "stream", "mirror", "backup", "create", "amend", "snapshot-load",
		"snapshot-save", "snapshot-delete"}
}

// JobStatus is QAPI's JobStatus.
type JobStatus string

// EnumValues implements qmp.Enum.
func (JobStatus) EnumValues() []string {
	return []string{"undefined", "created", "running", "paused", "ready", "standby", "waiting", "pending",
		"aborting", "concluded", "null"}
}

// JobInfo is one element of query-jobs.
type JobInfo struct {
	qmp.QAPIOrder
	ID              string    `json:"id"`
	Type            JobType   `json:"type"`
	Status          JobStatus `json:"status"`
	CurrentProgress int64     `json:"current-progress"`
	TotalProgress   int64     `json:"total-progress"`
	Error           string    `json:"error,omitempty"`
}

// BlockJobInfo is one element of query-block-jobs.
type BlockJobInfo struct {
	qmp.QAPIOrder
	Type         string    `json:"type"`
	Device       string    `json:"device"`
	Len          int64     `json:"len"`
	Offset       int64     `json:"offset"`
	Busy         bool      `json:"busy"`
	Paused       bool      `json:"paused"`
	Speed        int64     `json:"speed"`
	IOStatus     IOStatus  `json:"io-status"`
	Ready        bool      `json:"ready"`
	Status       JobStatus `json:"status"`
	AutoFinalize bool      `json:"auto-finalize"`
	AutoDismiss  bool      `json:"auto-dismiss"`
	Error        string    `json:"error,omitempty"`
}

// JobStatusChangeData is JOB_STATUS_CHANGE's data.
type JobStatusChangeData struct {
	qmp.QAPIOrder
	ID     string    `json:"id"`
	Status JobStatus `json:"status"`
}

// BlockJobCompletedData is BLOCK_JOB_COMPLETED's data.
type BlockJobCompletedData struct {
	qmp.QAPIOrder
	Type   JobType `json:"type"`
	Device string  `json:"device"`
	Len    int64   `json:"len"`
	Offset int64   `json:"offset"`
	Speed  int64   `json:"speed"`
	Error  *string `json:"error,omitempty"`
}

// BlockJobCancelledData is BLOCK_JOB_CANCELLED's (and BLOCK_JOB_READY's) data.
type BlockJobCancelledData struct {
	qmp.QAPIOrder
	Type   JobType `json:"type"`
	Device string  `json:"device"`
	Len    int64   `json:"len"`
	Offset int64   `json:"offset"`
	Speed  int64   `json:"speed"`
}

// BlockJobReadyData is BLOCK_JOB_READY's data.
type BlockJobReadyData BlockJobCancelledData

// BlockJobPendingData is BLOCK_JOB_PENDING's data.
type BlockJobPendingData struct {
	qmp.QAPIOrder
	Type JobType `json:"type"`
	ID   string  `json:"id"`
}

// IoOperationType is QAPI's IoOperationType.
type IoOperationType string

// EnumValues implements qmp.Enum.
func (IoOperationType) EnumValues() []string { return []string{"read", "write"} }

// BlockErrorAction is QAPI's BlockErrorAction.
type BlockErrorAction string

// EnumValues implements qmp.Enum.
func (BlockErrorAction) EnumValues() []string { return []string{"ignore", "report", "stop"} }

// BlockJobErrorData is BLOCK_JOB_ERROR's data.
type BlockJobErrorData struct {
	qmp.QAPIOrder
	Device    string           `json:"device"`
	Operation IoOperationType  `json:"operation"`
	Action    BlockErrorAction `json:"action"`
}

// JobIDArgs is the argument of job-* and block-job-dismiss/-finalize.
type JobIDArgs struct {
	ID string `json:"id"`
}

// BlockJobDeviceArgs is the argument of block-job-pause, -resume and -complete.
type BlockJobDeviceArgs struct {
	Device string `json:"device"`
}

// BlockJobCancelArgs are block-job-cancel's arguments.
type BlockJobCancelArgs struct {
	Device string `json:"device"`
	Force  *bool  `json:"force,omitempty"`
}

// BlockJobSetSpeedArgs are block-job-set-speed's arguments.
type BlockJobSetSpeedArgs struct {
	Device string `json:"device"`
	Speed  int64  `json:"speed"`
}

// jobControl is what the job commands need of the block layer: the jobs' states and the
// verbs on one job, named by id (block false) or by its block-job device name (block true).
type jobControl interface {
	Jobs() []blockdev.JobInfo
	BlockJobs() []blockdev.JobInfo
	CancelJob(id string, block, force bool) error
	SetJobSpeed(id string, speed int64) error
	PauseJob(id string, block bool) error
	ResumeJob(id string, block bool) error
	CompleteJob(id string, block bool) error
	DismissJob(id string, block bool) error
	FinalizeJob(id string, block bool) error
}

func registerJobs(r *qmp.Registry, d *Deps) {
	if d.Block == nil {
		return
	}
	jobCommands(r, d.Block)
}

// jobCommands registers the job commands and events on g.
func jobCommands(r *qmp.Registry, g jobControl) {
	r.RegisterEvent("JOB_STATUS_CHANGE", JobStatusChangeData{})
	r.RegisterEvent(blockdev.EventBlockJobCompleted, BlockJobCompletedData{})
	r.RegisterEvent(blockdev.EventBlockJobCancelled, BlockJobCancelledData{})
	r.RegisterEvent(blockdev.EventBlockJobError, BlockJobErrorData{})
	r.RegisterEvent(blockdev.EventBlockJobReady, BlockJobReadyData{})
	r.RegisterEvent(blockdev.EventBlockJobPending, BlockJobPendingData{})
	id := func(c *qmp.Call) string { return c.Args.(*JobIDArgs).ID }
	dev := func(c *qmp.Call) string { return c.Args.(*BlockJobDeviceArgs).Device }
	r.Register(
		qmp.Command{Name: "query-jobs", Returns: []JobInfo{}, Run: func(*qmp.Call) (any, error) {
			out := []JobInfo{}
			for _, j := range g.Jobs() {
				out = append(out, JobInfo{ID: j.ID, Type: JobType(j.Type), Status: JobStatus(j.Status.String()),
					CurrentProgress: j.Current, TotalProgress: j.Total, Error: j.Err})
			}
			return out, nil
		}},
		qmp.Command{Name: "query-block-jobs", Returns: []BlockJobInfo{}, Run: func(*qmp.Call) (any, error) {
			out := []BlockJobInfo{}
			for _, j := range g.BlockJobs() {
				out = append(out, BlockJobInfo{Type: string(j.Type), Device: j.ID, Len: j.Total, Offset: j.Current,
					Busy: j.Busy, Paused: j.Paused, Speed: j.Speed, IOStatus: IOStatus(j.IOStatus), Ready: j.Ready,
					Status: JobStatus(j.Status.String()), AutoFinalize: j.AutoFinalize, AutoDismiss: j.AutoDismiss,
					Error: j.Err})
			}
			return out, nil
		}},
		qmp.Command{Name: "job-cancel", Args: &JobIDArgs{},
			Run: func(c *qmp.Call) (any, error) { return nil, g.CancelJob(id(c), false, true) }},
		qmp.Command{Name: "block-job-set-speed", Args: &BlockJobSetSpeedArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*BlockJobSetSpeedArgs)
				return nil, g.SetJobSpeed(a.Device, a.Speed)
			}},
		qmp.Command{Name: "block-job-cancel", Args: &BlockJobCancelArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*BlockJobCancelArgs)
				return nil, g.CancelJob(a.Device, true, a.Force != nil && *a.Force)
			}},
	)
	// The verbs that exist as job-X {id} and block-job-X {device} (pause, resume,
	// complete) or block-job-X {id} (dismiss, finalize).
	for _, v := range []struct {
		name     string
		verb     func(id string, block bool) error
		deviceID bool
	}{
		{"pause", g.PauseJob, true}, {"resume", g.ResumeJob, true}, {"complete", g.CompleteJob, true},
		{"dismiss", g.DismissJob, false}, {"finalize", g.FinalizeJob, false},
	} {
		verb := v.verb
		r.Register(qmp.Command{Name: "job-" + v.name, Args: &JobIDArgs{},
			Run: func(c *qmp.Call) (any, error) { return nil, verb(id(c), false) }})
		if v.deviceID {
			r.Register(qmp.Command{Name: "block-job-" + v.name, Args: &BlockJobDeviceArgs{},
				Run: func(c *qmp.Call) (any, error) { return nil, verb(dev(c), true) }})
		} else {
			r.Register(qmp.Command{Name: "block-job-" + v.name, Args: &JobIDArgs{},
				Run: func(c *qmp.Call) (any, error) { return nil, verb(id(c), true) }})
		}
	}
}

// jobEvent converts the block layer's job events to QMP's wire types (false: not a job
// event).
func jobEvent(data any) (any, bool) {
	switch v := data.(type) {
	case blockdev.JobStatusEvent:
		return JobStatusChangeData{ID: v.ID, Status: JobStatus(v.Status.String())}, true
	case blockdev.BlockJobEvent:
		switch v.Name {
		case blockdev.EventBlockJobCompleted:
			d := BlockJobCompletedData{Type: JobType(v.Type), Device: v.Device, Len: v.Len, Offset: v.Offset, Speed: v.Speed}
			if v.HasError {
				msg := v.Error
				d.Error = &msg
			}
			return d, true
		case blockdev.EventBlockJobCancelled:
			return BlockJobCancelledData{Type: JobType(v.Type), Device: v.Device, Len: v.Len, Offset: v.Offset, Speed: v.Speed}, true
		case blockdev.EventBlockJobReady:
			return BlockJobReadyData{Type: JobType(v.Type), Device: v.Device, Len: v.Len, Offset: v.Offset, Speed: v.Speed}, true
		case blockdev.EventBlockJobPending:
			return BlockJobPendingData{Type: JobType(v.Type), ID: v.PendingID}, true
		case blockdev.EventBlockJobError:
			return BlockJobErrorData{Device: v.Device, Operation: IoOperationType(v.ErrorOperation),
				Action: BlockErrorAction(v.ErrorAction)}, true
		}
	}
	return nil, false
}
