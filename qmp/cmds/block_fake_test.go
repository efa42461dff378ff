package cmds

import (
	"fmt"
	"io"

	"tlcvm/blockdev"
)

// fakeBlock stands in for the block layer (*blockdev.Graph) behind every small interface
// the block handlers declare: it records each call and fails with err.
type fakeBlock struct{ recorder }

func newFakeBlock(err error) (*fakeBlock, *recorder) {
	f := &fakeBlock{recorder{err: err}}
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
