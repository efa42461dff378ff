package cmds

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"tlcvm/blockdev"
	"tlcvm/compat/qerror"
	"tlcvm/machine"
)

// fakeSnapshots is the block layer, the migration engine and the machine of an internal
// snapshot, recording the calls in order; errs makes the named call fail.
type fakeSnapshots struct {
	calls   []string
	errs    map[string]error
	has     bool
	running bool
}

func (f *fakeSnapshots) call(name string) error {
	f.calls = append(f.calls, name)
	return f.errs[strings.Fields(name)[0]]
}

func (f *fakeSnapshots) CheckCanSnapshot([]string) error { return f.call("can") }
func (f *fakeSnapshots) HasSnapshot(name string, _ []string) (bool, error) {
	return f.has, f.call("has " + name)
}
func (f *fakeSnapshots) VMStateNode(vmstate string, _ []string) (*blockdev.Node, error) {
	return &blockdev.Node{}, f.call("vmstate " + vmstate)
}
func (f *fakeSnapshots) CreateSnapshot(sn blockdev.Snapshot, _ *blockdev.Node, size uint64, _ []string) error {
	return f.call("create " + sn.Name)
}
func (f *fakeSnapshots) GotoSnapshot(name string, _ []string) error { return f.call("goto " + name) }
func (f *fakeSnapshots) DeleteSnapshot(name string, _ []string) error {
	return f.call("delete " + name)
}
func (f *fakeSnapshots) SnapshotDevice(string, blockdev.Snapshot) error {
	return f.call("device")
}
func (f *fakeSnapshots) DeleteDeviceSnapshot(string, string, string) (blockdev.Snapshot, error) {
	return blockdev.Snapshot{}, f.call("device-delete")
}
func (f *fakeSnapshots) StartJob(blockdev.JobOptions, *blockdev.JobDriver) (*blockdev.Job, error) {
	return nil, f.call("job")
}
func (f *fakeSnapshots) SaveVM(_ io.Writer, st string) (int64, error) {
	return 100, f.call("savevm " + st)
}
func (f *fakeSnapshots) LoadVM(io.Reader) error { return f.call("loadvm") }
func (f *fakeSnapshots) Status() (machine.RunState, bool) {
	if f.running {
		return machine.StateRunning, true
	}
	return machine.StatePaused, false
}
func (f *fakeSnapshots) GuestClock() uint64 { return 7 }
func (f *fakeSnapshots) StopForSnapshot(load bool) func() {
	f.calls = append(f.calls, "stop")
	if !f.running {
		return nil
	}
	return func() { f.calls = append(f.calls, "resume") }
}

// TestVMSnapshotOperations: save_snapshot, load_snapshot and delete_snapshot's order of
// checks and steps, their errors, the guest stopped and resumed around them.
func TestVMSnapshotOperations(t *testing.T) {
	boom := qerror.Errorf(nil, "boom")
	name := func(s string) *string { return &s }
	for _, c := range []struct {
		name    string
		running bool
		has     bool
		errs    map[string]error
		op      func(s *vmSnapshots) error
		want    string // calls
		wantErr string
	}{
		{name: "HMP savevm over an old one", running: true,
			op:   func(s *vmSnapshots) error { return s.save(name("s1"), true, "", nil) },
			want: "can, delete s1, vmstate , stop, savevm running, create s1, resume"},
		{name: "HMP savevm unnamed, paused",
			op:   func(s *vmSnapshots) error { return s.save(nil, true, "", nil) },
			want: "can, vmstate , stop, savevm paused, create vm-20260102030405"},
		{name: "snapshot-save of an existing tag", has: true,
			op:   func(s *vmSnapshots) error { return s.save(name("s1"), false, "q0", []string{"q0"}) },
			want: "can, has s1", wantErr: "Snapshot 's1' already exists in one or more devices"},
		{name: "a failed create deletes the snapshot again", running: true, errs: map[string]error{"create": boom},
			op:   func(s *vmSnapshots) error { return s.save(name("s1"), false, "q0", []string{"q0"}) },
			want: "can, has s1, vmstate q0, stop, savevm running, create s1, delete s1, resume", wantErr: "boom"},
		{name: "cannot snapshot", errs: map[string]error{"can": boom},
			op:   func(s *vmSnapshots) error { return s.save(name("s1"), true, "", nil) },
			want: "can", wantErr: "boom"},
		{name: "loadvm of a missing snapshot leaves the guest stopped", running: true,
			op:   func(s *vmSnapshots) error { return s.load("s9", "", nil) },
			want: "stop, can, has s9", wantErr: "Snapshot 's9' does not exist in one or more devices"},
		{name: "loadvm without a vmstate node", running: true, has: true, errs: map[string]error{"vmstate": boom},
			op:   func(s *vmSnapshots) error { return s.load("s1", "", nil) },
			want: "stop, can, has s1, vmstate ", wantErr: "boom"},
		{name: "snapshot-delete checks the devices first", errs: map[string]error{"can": boom},
			op:   func(s *vmSnapshots) error { return s.del("s1", true, []string{"q0"}) },
			want: "can", wantErr: "boom"},
		{name: "delvm does not",
			op:   func(s *vmSnapshots) error { return s.del("s1", false, nil) },
			want: "delete s1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeSnapshots{errs: c.errs, has: c.has, running: c.running}
			s := &vmSnapshots{g: f, mig: f, vm: f, m: f,
				now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local) }}
			err := c.op(s)
			if got := strings.Join(f.calls, ", "); got != c.want {
				t.Errorf("calls: %s\nwant:  %s", got, c.want)
			}
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != c.wantErr || (err != nil && !errors.As(err, new(*qerror.Error))) {
				t.Errorf("error %q (%T), want %q", got, err, c.wantErr)
			}
		})
	}
}
