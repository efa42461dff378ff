package blockdev

// Transactions (QEMU 7.2's qmp_transaction): every block job is paused and resumed once
// (bdrv_drain_all), then each action prepares in order; if one fails, the prepared ones
// (the failing one too) abort in reverse order, else all commit in order; then all
// clean. With completion-mode grouped the jobs the actions start share one JobTxn: they
// finish, or fail and are cancelled, together.

// Action is one action of a transaction (QEMU's BlkActionOps).
type Action interface {
	prepare(g *Graph, txn *JobTxn) error
	commit(g *Graph)
	abort(g *Graph)
	clean(g *Graph)
}

// Transaction runs actions as qmp_transaction does.
func (g *Graph) Transaction(actions []Action, grouped bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var txn *JobTxn
	if grouped {
		txn = NewJobTxn()
	}
	g.drainAll()
	var done []Action
	var err error
	for _, a := range actions {
		done = append(done, a)
		if err = a.prepare(g, txn); err != nil {
			break
		}
	}
	if err != nil {
		for i := len(done) - 1; i >= 0; i-- {
			done[i].abort(g)
		}
	} else {
		for _, a := range done {
			a.commit(g)
		}
	}
	for _, a := range done {
		a.clean(g)
	}
	return err
}

// Snapshot applies blockdev-snapshot actions as one transaction.
func (g *Graph) Snapshot(actions ...SnapshotAction) error {
	as := make([]Action, len(actions))
	for i := range actions {
		as[i] = &actions[i]
	}
	return g.Transaction(as, false)
}

// BackupAction is blockdev-backup (Drive false) or drive-backup (Drive true) in a
// transaction. The job is created in prepare and started in commit with the source
// still drained (paused at once), then resumed in clean: QEMU's created, running,
// paused, running.
type BackupAction struct {
	Options BackupOptions
	Drive   bool
	job     *Job
	drained func()
}

func (a *BackupAction) prepare(g *Graph, txn *JobTxn) error {
	var bs, target *Node
	var err error
	o := a.Options
	if a.Drive {
		if bs, target, err = g.driveBackupTarget(&o); err != nil {
			return err
		}
	} else {
		if bs, err = g.lookup(o.Device, o.Device); err != nil {
			return err
		}
		if target, err = g.lookup(o.Target, o.Target); err != nil {
			return err
		}
	}
	a.drained = g.drainBegin([]*Node{bs})
	a.job, err = g.backupCommon(o, bs, target, txn)
	if err != nil && a.Drive && target != nil && len(target.parents) == 0 {
		g.removeTree(target)
	}
	return err
}

func (a *BackupAction) commit(g *Graph) {
	j := a.job
	j.l.mu.Lock()
	j.pauseCount++ // the source's drain, which the new job is under too
	j.l.mu.Unlock()
	j.start()
}

func (a *BackupAction) abort(g *Graph) {
	if a.job != nil {
		a.job.earlyFail()
		a.job = nil
	}
}

func (a *BackupAction) clean(g *Graph) {
	if a.job != nil {
		j := a.job
		j.l.mu.Lock()
		j.resumeSync()
		j.l.mu.Unlock()
	}
	if a.drained != nil {
		a.drained()
	}
}

// StepAction is a dirty-bitmap action of a transaction (bitmap_ops.go's prepare steps):
// prepared under the graph lock, then committed or aborted with the others. None of them
// takes part in completion-mode grouped (action_check_completion_mode).
type StepAction struct {
	typ  string
	prep func(g *Graph) (*TxnStep, error)
	step *TxnStep
}

// Type is the action's QAPI TransactionAction type ("block-dirty-bitmap-add", ...).
func (a *StepAction) Type() string { return a.typ }

// BitmapAddStep is block-dirty-bitmap-add as a transaction action.
func BitmapAddStep(o BitmapAddOptions) *StepAction {
	return &StepAction{"block-dirty-bitmap-add", func(g *Graph) (*TxnStep, error) { return g.prepareBitmapAdd(o) }, nil}
}

// BitmapRemoveStep is block-dirty-bitmap-remove as a transaction action.
func BitmapRemoveStep(node, name string) *StepAction {
	return &StepAction{"block-dirty-bitmap-remove", func(g *Graph) (*TxnStep, error) { return g.prepareBitmapRemove(node, name) }, nil}
}

// BitmapClearStep is block-dirty-bitmap-clear as a transaction action.
func BitmapClearStep(node, name string) *StepAction {
	return &StepAction{"block-dirty-bitmap-clear", func(g *Graph) (*TxnStep, error) { return g.prepareBitmapClear(node, name) }, nil}
}

// BitmapEnableStep is block-dirty-bitmap-enable (or -disable) as a transaction action.
func BitmapEnableStep(node, name string, enable bool) *StepAction {
	typ := "block-dirty-bitmap-enable"
	if !enable {
		typ = "block-dirty-bitmap-disable"
	}
	return &StepAction{typ, func(g *Graph) (*TxnStep, error) { return g.prepareBitmapEnable(node, name, enable) }, nil}
}

// BitmapMergeStep is block-dirty-bitmap-merge as a transaction action.
func BitmapMergeStep(node, target string, sources []MergeSource) *StepAction {
	return &StepAction{"block-dirty-bitmap-merge", func(g *Graph) (*TxnStep, error) {
		return g.prepareBitmapMerge(node, target, sources)
	}, nil}
}

// RunStep runs one step action on its own (the command outside a transaction): prepared
// and committed under the graph lock, without a drain.
func (g *Graph) RunStep(a *StepAction) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := a.prepare(g, nil); err != nil {
		return err
	}
	a.commit(g)
	return nil
}

func (a *StepAction) prepare(g *Graph, txn *JobTxn) error {
	if txn != nil {
		return errf(ErrInvalid, "Action '%s' does not support Transaction property completion-mode = grouped", a.typ)
	}
	s, err := a.prep(g)
	a.step = s
	return err
}

func (a *StepAction) commit(g *Graph) { a.step.commit() }

func (a *StepAction) abort(g *Graph) {
	if a.step != nil && a.step.Abort != nil {
		a.step.Abort()
	}
}

func (a *StepAction) clean(g *Graph) {}

// AbortAction is the transaction action "abort": it always fails.
type AbortAction struct{}

func (AbortAction) prepare(g *Graph, txn *JobTxn) error {
	return errf(ErrInvalid, "Transaction aborted using Abort action")
}
func (AbortAction) commit(g *Graph) {}
func (AbortAction) abort(g *Graph)  {}
func (AbortAction) clean(g *Graph)  {}

// BlockdevBackup is blockdev-backup: a transaction of one action.
func (g *Graph) BlockdevBackup(o BackupOptions) error {
	return g.Transaction([]Action{&BackupAction{Options: o}}, false)
}

// DriveBackup is drive-backup: a transaction of one action.
func (g *Graph) DriveBackup(o BackupOptions) error {
	return g.Transaction([]Action{&BackupAction{Options: o, Drive: true}}, false)
}

// driveBackupTarget is drive_backup_prepare's part before the job: the source, and the
// target image created (or found) and opened (its backing: the source's for sync=top as
// the image names it, the source itself for sync=none). Graph.mu held.
func (g *Graph) driveBackupTarget(o *BackupOptions) (*Node, *Node, error) {
	if o.Mode == "" {
		o.Mode = "absolute-paths"
	}
	bs, err := g.lookup(o.Device, o.Device)
	if err != nil {
		return nil, nil, err
	}
	format := ""
	if o.Format != nil {
		format = *o.Format
	} else if o.Mode != "existing" {
		format = skipFilters(bs).Driver
	}
	if err := bs.opBlocked(opBackupSource); err != nil {
		return nil, nil, err
	}
	var source *Node
	if o.Sync == "top" {
		if source = skipFilters(bs).Backing; source == nil {
			o.Sync = "full"
		}
	}
	if o.Sync == "none" {
		source = bs
	}
	size := bs.Size()
	if o.Mode != "existing" {
		name, bfmt := "", ""
		if source != nil {
			s := SkipImplicit(source)
			name, bfmt = s.Filename(), skipFilters(s).Driver
		}
		if err := g.imgCreate(o.Target, format, name, bfmt, size); err != nil {
			return nil, nil, err
		}
	}
	target, err := g.openTarget(o.Target, format, "", bs, o.Sync == "none", true)
	if err != nil {
		return nil, nil, err
	}
	if o.Sync == "none" {
		if err := g.setBackingNode(target, source); err != nil {
			g.removeTree(target)
			return nil, nil, err
		}
	}
	return bs, target, nil
}
