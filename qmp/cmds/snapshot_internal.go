package cmds

import (
	"io"
	"sync"
	"time"

	"tlcvm/blockdev"
	"tlcvm/compat/qerror"
	"tlcvm/machine"
	"tlcvm/qmp"
)

// Internal snapshots of the whole VM (qapi/migration.json snapshot-save, snapshot-load,
// snapshot-delete, as jobs; HMP savevm, loadvm and delvm through the internal commands
// below), as QEMU 7.2's migration/savevm.c save_snapshot, load_snapshot and
// delete_snapshot compose them: the block layer's checks and operations (package
// blockdev, bdrv_all_*), the guest stopped around them, and the VM state written into and
// read out of the vmstate node's image by the migration engine (SaveVM, LoadVM).
//
//	savevm:  can snapshot ─ old one deleted (HMP) or "already exists" (QMP) ─ vmstate node
//	         ─ STOP (save-vm) ─ VM state into the image ─ snapshot on every image ─ RESUME
//	loadvm:  can snapshot ─ has it everywhere ─ vmstate node ─ not disk-only ─ STOP
//	         (restore-vm) ─ goto on every image ─ VM state loaded ─ RESUME when it was running

// vmSnapshotter is what the internal snapshot handlers need of the block layer: the
// bdrv_all_* operations, the one-device snapshots and a job to run them in.
type vmSnapshotter interface {
	CheckCanSnapshot(devices []string) error
	HasSnapshot(name string, devices []string) (bool, error)
	VMStateNode(vmstate string, devices []string) (*blockdev.Node, error)
	CreateSnapshot(sn blockdev.Snapshot, vmstate *blockdev.Node, vmStateSize uint64, devices []string) error
	GotoSnapshot(name string, devices []string) error
	DeleteSnapshot(name string, devices []string) error
	SnapshotDevice(device string, sn blockdev.Snapshot) error
	DeleteDeviceSnapshot(device, id, name string) (blockdev.Snapshot, error)
	StartJob(o blockdev.JobOptions, drv *blockdev.JobDriver) (*blockdev.Job, error)
}

// vmStateStore is what they need of the migration engine: the VM state written and read.
type vmStateStore interface {
	SaveVM(w io.Writer, runState string) (int64, error)
	LoadVM(r io.Reader) error
}

// runStater is the machine's run state (query-status).
type runStater interface {
	Status() (machine.RunState, bool)
}

// SnapshotVM is what internal snapshots need of the machine (d.Machine provides it).
type SnapshotVM interface {
	// StopForSnapshot is vm_stop(RUN_STATE_SAVE_VM or RESTORE_VM); resume is vm_start, nil
	// when the VM was not running.
	StopForSnapshot(load bool) (resume func())
	// GuestClock is QEMU_CLOCK_VIRTUAL in nanoseconds.
	GuestClock() uint64
}

// SnapshotSaveArgs are snapshot-save's arguments.
type SnapshotSaveArgs struct {
	JobID   string   `json:"job-id"`
	Tag     string   `json:"tag"`
	VMState string   `json:"vmstate"`
	Devices []string `json:"devices"`
}

// SnapshotLoadArgs are snapshot-load's arguments.
type SnapshotLoadArgs SnapshotSaveArgs

// SnapshotDeleteArgs are snapshot-delete's arguments.
type SnapshotDeleteArgs struct {
	JobID   string   `json:"job-id"`
	Tag     string   `json:"tag"`
	Devices []string `json:"devices"`
}

// savevmArgs is x-tlcvm-savevm's (HMP savevm [tag]).
type savevmArgs struct {
	Name *string `json:"name,omitempty"`
}

// loadvmArgs is x-tlcvm-loadvm's and x-tlcvm-delvm's (HMP loadvm tag, delvm tag).
type loadvmArgs struct {
	Name string `json:"name"`
}

// vmSnapshots runs the operations.
type vmSnapshots struct {
	g   vmSnapshotter
	mig vmStateStore
	vm  SnapshotVM
	m   runStater // its run state goes into the global state section
	now func() time.Time
	q   turns // one operation at a time, in the order asked (QEMU's main loop runs them)
}

// turns runs operations one at a time in the order their tickets were taken, as QEMU's
// main loop runs the snapshot jobs' bottom halves and the HMP commands.
type turns struct {
	mu            sync.Mutex
	cond          *sync.Cond
	next, serving uint64
	dropped       map[uint64]bool // tickets that will never run
}

// take returns the next ticket.
func (t *turns) take() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.next
	t.next++
	return n
}

// run waits for ticket n's turn, runs f, and passes the turn on.
func (t *turns) run(n uint64, f func() error) error {
	t.mu.Lock()
	for t.serving != n {
		t.cond.Wait()
	}
	t.mu.Unlock()
	defer t.drop(n)
	return f()
}

// drop ends ticket n (run, or never to run).
func (t *turns) drop(n uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropped[n] = true
	for t.dropped[t.serving] {
		delete(t.dropped, t.serving)
		t.serving++
	}
	t.cond.Broadcast()
}

// now runs f in the next turn.
func (t *turns) now(f func() error) error { return t.run(t.take(), f) }

// save is save_snapshot (name nil: auto-named; overwrite: HMP's deletion of a snapshot
// of that name first). devices nil: every image that takes part.
func (s *vmSnapshots) save(name *string, overwrite bool, vmstate string, devices []string) error {
	g := s.g
	if err := g.CheckCanSnapshot(devices); err != nil {
		return err
	}
	if name != nil {
		if overwrite {
			if err := g.DeleteSnapshot(*name, devices); err != nil {
				return err
			}
		} else if has, err := g.HasSnapshot(*name, devices); err != nil {
			return err
		} else if has {
			return qerror.Errorf(nil, "Snapshot '%s' already exists in one or more devices", *name)
		}
	}
	vmNode, err := g.VMStateNode(vmstate, devices)
	if err != nil {
		return err
	}
	st, _ := s.m.Status()
	if resume := s.vm.StopForSnapshot(false); resume != nil {
		defer resume()
	}
	now := s.now()
	sn := blockdev.Snapshot{DateSec: now.Unix(), DateNsec: int64(now.Nanosecond()) / 1000 * 1000,
		VMClockNsec: s.vm.GuestClock(), ICount: -1}
	if name != nil {
		sn.Name = *name
	} else {
		sn.Name = now.Format("vm-20060102150405")
	}
	if len(sn.Name) > 255 { // pstrcpy into char name[256]
		sn.Name = sn.Name[:255]
	}
	size, err := s.mig.SaveVM(vmNode.VMStateWriter(), st.String())
	if err != nil {
		return err
	}
	if err := g.CreateSnapshot(sn, vmNode, uint64(size), devices); err != nil {
		_ = g.DeleteSnapshot(sn.Name, devices)
		return err
	}
	return nil
}

// load is hmp_loadvm / snapshot_load_job_bh over load_snapshot: the guest stops
// (restore-vm) and runs again only when it ran before and the load succeeded.
func (s *vmSnapshots) load(name, vmstate string, devices []string) error {
	resume := s.vm.StopForSnapshot(true)
	if err := s.loadSnapshot(name, vmstate, devices); err != nil {
		return err
	}
	if resume != nil {
		resume()
	}
	return nil
}

// loadSnapshot is load_snapshot.
func (s *vmSnapshots) loadSnapshot(name, vmstate string, devices []string) error {
	g := s.g
	if err := g.CheckCanSnapshot(devices); err != nil {
		return err
	}
	if has, err := g.HasSnapshot(name, devices); err != nil {
		return err
	} else if !has {
		return qerror.Errorf(nil, "Snapshot '%s' does not exist in one or more devices", name)
	}
	vmNode, err := g.VMStateNode(vmstate, devices)
	if err != nil {
		return err
	}
	sn, ok := vmNode.FindSnapshot(name)
	if !ok {
		return qerror.Errorf(nil, "Snapshot '%s' does not exist in one or more devices", name)
	}
	if sn.VMStateSize == 0 {
		return qerror.New(nil, "This is a disk-only snapshot. Revert to it  offline using qemu-img")
	}
	if err := g.GotoSnapshot(name, devices); err != nil {
		return err
	}
	if err := s.mig.LoadVM(vmNode.VMStateReader(int64(sn.VMStateSize))); err != nil {
		return qerror.New(nil, "Error -22 while loading VM state")
	}
	return nil
}

// del is delete_snapshot (QMP: the images must take snapshots) or, check false, HMP's
// delvm (bdrv_all_delete_snapshot alone).
func (s *vmSnapshots) del(name string, check bool, devices []string) error {
	if check {
		if err := s.g.CheckCanSnapshot(devices); err != nil {
			return err
		}
	}
	return s.g.DeleteSnapshot(name, devices)
}

// job runs op as a snapshot job of type typ (QEMU's snapshot_job_driver: manual dismiss,
// progress 0/1 then 1/1, the operation's error the job's).
func (s *vmSnapshots) job(id string, typ blockdev.JobType, op func() error) error {
	turn := s.q.take()
	drv := &blockdev.JobDriver{Type: typ, Run: func(j *blockdev.Job) error {
		j.ProgressSetRemaining(1)
		err := s.q.run(turn, op)
		j.ProgressUpdate(1)
		return err
	}}
	if _, err := s.g.StartJob(blockdev.JobOptions{ID: id, ManualDismiss: true}, drv); err != nil {
		s.q.drop(turn)
		return err
	}
	return nil
}

// newVMSnapshots returns the operations over d; nil without a block layer, a migration
// engine or a machine that stops for them.
func newVMSnapshots(d *Deps) *vmSnapshots {
	vm, ok := d.Machine.(SnapshotVM)
	if d.Block == nil || d.Migration == nil || !ok {
		return nil
	}
	s := &vmSnapshots{g: d.Block, mig: d.Migration, vm: vm, m: d.Machine, now: time.Now}
	s.q.cond = sync.NewCond(&s.q.mu)
	s.q.dropped = map[uint64]bool{}
	return s
}

// LoadSnapshot is -loadvm's load_snapshot of the snapshot named name, with HMP loadvm's
// errors.
func LoadSnapshot(d *Deps, name string) error {
	s := newVMSnapshots(d)
	if s == nil {
		return qerror.Errorf(nil, "no block device can store vmstate for snapshot")
	}
	return s.q.now(func() error { return s.load(name, "", nil) })
}

func internalSnapshotCommands(d *Deps) []qmp.Command {
	s := newVMSnapshots(d)
	if s == nil {
		return nil
	}
	return []qmp.Command{
		{Name: "snapshot-save", Args: &SnapshotSaveArgs{}, Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*SnapshotSaveArgs)
			return nil, s.job(a.JobID, blockdev.JobTypeSnapshotSave, func() error {
				return s.save(&a.Tag, false, a.VMState, nonNil(a.Devices))
			})
		}},
		{Name: "snapshot-load", Args: &SnapshotLoadArgs{}, Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*SnapshotLoadArgs)
			return nil, s.job(a.JobID, blockdev.JobTypeSnapshotLoad, func() error {
				return s.load(a.Tag, a.VMState, nonNil(a.Devices))
			})
		}},
		{Name: "snapshot-delete", Args: &SnapshotDeleteArgs{}, Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*SnapshotDeleteArgs)
			return nil, s.job(a.JobID, blockdev.JobTypeSnapshotDelete, func() error {
				return s.del(a.Tag, true, nonNil(a.Devices))
			})
		}},
		{Name: "blockdev-snapshot-internal-sync", Args: &BlockdevSnapshotInternalArgs{},
			Run: func(c *qmp.Call) (any, error) {
				return nil, s.q.now(func() error { return s.snapshotDevice(c.Args.(*BlockdevSnapshotInternalArgs)) })
			}},
		{Name: "blockdev-snapshot-delete-internal-sync", Args: &BlockdevSnapshotDeleteInternalArgs{}, Returns: SnapshotInfo{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*BlockdevSnapshotDeleteInternalArgs)
				var sn blockdev.Snapshot
				err := s.q.now(func() (err error) {
					sn, err = s.g.DeleteDeviceSnapshot(a.Device, deref(a.ID), deref(a.Name))
					return err
				})
				if err != nil {
					return nil, err
				}
				return snapshotInfos([]blockdev.Snapshot{sn})[0], nil
			}},
		{Name: "x-tlcvm-savevm", Internal: true, Args: &savevmArgs{}, Run: func(c *qmp.Call) (any, error) {
			return nil, s.q.now(func() error { return s.save(c.Args.(*savevmArgs).Name, true, "", nil) })
		}},
		{Name: "x-tlcvm-loadvm", Internal: true, Args: &loadvmArgs{}, Run: func(c *qmp.Call) (any, error) {
			return nil, s.q.now(func() error { return s.load(c.Args.(*loadvmArgs).Name, "", nil) })
		}},
		{Name: "x-tlcvm-delvm", Internal: true, Args: &loadvmArgs{}, Run: func(c *qmp.Call) (any, error) {
			return nil, s.q.now(func() error { return s.del(c.Args.(*loadvmArgs).Name, false, nil) })
		}},
	}
}

// BlockdevSnapshotInternalArgs are blockdev-snapshot-internal-sync's arguments.
type BlockdevSnapshotInternalArgs struct {
	Device string `json:"device"`
	Name   string `json:"name"`
}

// BlockdevSnapshotDeleteInternalArgs are blockdev-snapshot-delete-internal-sync's.
type BlockdevSnapshotDeleteInternalArgs struct {
	Device string  `json:"device"`
	ID     *string `json:"id,omitempty"`
	Name   *string `json:"name,omitempty"`
}

// snapshotDevice is internal_snapshot_prepare's snapshot: no VM state, the time and the
// guest clock of now.
func (s *vmSnapshots) snapshotDevice(a *BlockdevSnapshotInternalArgs) error {
	now := s.now()
	return s.g.SnapshotDevice(a.Device, blockdev.Snapshot{Name: a.Name, DateSec: now.Unix(),
		DateNsec: int64(now.Nanosecond()) / 1000 * 1000, VMClockNsec: s.vm.GuestClock(), ICount: -1})
}

// nonNil makes an empty device list a list (has_devices: QMP always gives one).
func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
