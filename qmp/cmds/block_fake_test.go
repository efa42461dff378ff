package cmds

import (
	"fmt"
	"io"

	"tlcvm/blockdev"
)

// fakeBlock stands in for the block layer (*blockdev.Graph) behind every small interface
// the block handlers declare: it records each call and fails with err.
type fakeBlock struct {
	recorder
	jobs   []blockdev.JobInfo      // what Jobs and BlockJobs return
	bitmap *blockdev.Bitmap        // what LookupBitmap finds
	report blockdev.SnapshotReport // what SnapshotReport reports
	locked int                     // Lock calls not yet undone by Unlock
}

func newFakeBlock(err error) (*fakeBlock, *recorder) {
	f := &fakeBlock{recorder: recorder{err: err}}
	return f, &f.recorder
}

func (f *fakeBlock) OpenTray(device, id string, force bool) error {
	return f.rec("OpenTray %q %q %v", device, id, force)
}

func (f *fakeBlock) CloseTray(device, id string) error { return f.rec("CloseTray %q %q", device, id) }

func (f *fakeBlock) RemoveMedium(id string) error { return f.rec("RemoveMedium %q", id) }

func (f *fakeBlock) InsertMedium(id, nodeName string) error {
	return f.rec("InsertMedium %q %q", id, nodeName)
}

func (f *fakeBlock) ChangeMedium(device, id string, o blockdev.ChangeOptions) error {
	return f.rec("ChangeMedium %q %q %+v", device, id, o)
}

func (f *fakeBlock) Eject(device, id string, force bool) error {
	return f.rec("Eject %q %q %v", device, id, force)
}

func (f *fakeBlock) SetIOThrottle(a blockdev.ThrottleArgs) error {
	var avg, max, length []uint64
	for _, b := range a.Config.Buckets {
		avg, max, length = append(avg, b.Avg), append(max, b.Max), append(length, b.BurstLength)
	}
	group := "<nil>"
	if a.Group != nil {
		group = *a.Group
	}
	return f.rec("SetIOThrottle %q %q avg=%v max=%v len=%v size=%d group=%s", a.Device, a.ID, avg, max, length,
		a.Config.OpSize, group)
}

func (f *fakeBlock) SetWriteThreshold(nodeName string, v uint64) error {
	return f.rec("SetWriteThreshold %q %d", nodeName, v)
}

func (f *fakeBlock) QemuIO(device string, qdev bool, command string, out io.Writer) (string, error) {
	fmt.Fprintf(out, "output of %s\n", command)
	return "monitor text", f.rec("QemuIO %q %v %q", device, qdev, command)
}

func (f *fakeBlock) Jobs() []blockdev.JobInfo {
	f.rec("Jobs")
	return f.jobs
}

func (f *fakeBlock) BlockJobs() []blockdev.JobInfo {
	f.rec("BlockJobs")
	return f.jobs
}

func (f *fakeBlock) CancelJob(id string, block, force bool) error {
	return f.rec("CancelJob %q block=%v force=%v", id, block, force)
}

func (f *fakeBlock) SetJobSpeed(id string, speed int64) error {
	return f.rec("SetJobSpeed %q %d", id, speed)
}

func (f *fakeBlock) PauseJob(id string, block bool) error {
	return f.rec("PauseJob %q block=%v", id, block)
}

func (f *fakeBlock) ResumeJob(id string, block bool) error {
	return f.rec("ResumeJob %q block=%v", id, block)
}

func (f *fakeBlock) CompleteJob(id string, block bool) error {
	return f.rec("CompleteJob %q block=%v", id, block)
}

func (f *fakeBlock) DismissJob(id string, block bool) error {
	return f.rec("DismissJob %q block=%v", id, block)
}

func (f *fakeBlock) FinalizeJob(id string, block bool) error {
	return f.rec("FinalizeJob %q block=%v", id, block)
}

func (f *fakeBlock) Stream(o blockdev.StreamOptions) error { return f.rec("Stream %s", show(o)) }

func (f *fakeBlock) Commit(o blockdev.CommitOptions) error { return f.rec("Commit %s", show(o)) }

func (f *fakeBlock) BlockdevMirror(o blockdev.MirrorOptions) error {
	return f.rec("BlockdevMirror %s", show(o))
}

func (f *fakeBlock) DriveMirror(o blockdev.MirrorOptions) error {
	return f.rec("DriveMirror %s", show(o))
}

func (f *fakeBlock) CommitImage(device string) error { return f.rec("CommitImage %q", device) }

func (f *fakeBlock) Transaction(actions []blockdev.Action, grouped bool) error {
	return f.rec("Transaction %s grouped=%v", show(actions), grouped)
}

func (f *fakeBlock) RunStep(a *blockdev.StepAction) error { return f.rec("RunStep %s", a.Type()) }

func (f *fakeBlock) LookupBitmap(node, name string) (*blockdev.Bitmap, error) {
	if err := f.rec("LookupBitmap %q %q", node, name); err != nil {
		return nil, err
	}
	return f.bitmap, nil
}

func (f *fakeBlock) Lock()   { f.locked++ }
func (f *fakeBlock) Unlock() { f.locked-- }

func (f *fakeBlock) BackendsLocked() []*blockdev.Backend {
	f.rec("BackendsLocked locked=%d", f.locked)
	return nil
}

func (f *fakeBlock) NodesLocked() []*blockdev.Node {
	f.rec("NodesLocked locked=%d", f.locked)
	return nil
}

func (f *fakeBlock) Add(o *blockdev.Options) (*blockdev.Node, error) {
	return nil, f.rec("Add %s", show(o))
}

func (f *fakeBlock) Del(name string) error { return f.rec("Del %q", name) }

func (f *fakeBlock) Resize(device, nodeName string, size int64) error {
	return f.rec("Resize %q %q %d", device, nodeName, size)
}

func (f *fakeBlock) Snapshot(actions ...blockdev.SnapshotAction) error {
	return f.rec("Snapshot %s", show(actions))
}

func (f *fakeBlock) Create(jobID string, o *blockdev.CreateOptions) error {
	return f.rec("Create %q %s", jobID, show(o))
}

func (f *fakeBlock) ChangeBackingFile(device, imageNode, backingFile string) error {
	return f.rec("ChangeBackingFile %q %q %q", device, imageNode, backingFile)
}

func (f *fakeBlock) Reopen(list []*blockdev.Options) error { return f.rec("Reopen %s", show(list)) }

func (f *fakeBlock) SnapshotReport() blockdev.SnapshotReport {
	f.rec("SnapshotReport")
	return f.report
}
