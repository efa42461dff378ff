package blockdev

// Op blockers (QEMU's bdrv_op_block / bdrv_op_is_blocked): operations a node refuses
// while something holds it. Two holders exist: a block job blocks every operation on the
// nodes it works on ("block device is in use by block job: mirror"), and a backing link
// blocks most operations on the backing node ("node is used as backing hd of 'top'"),
// except committing into it, streaming, and backing up from or to it (bdrv_backing_attach).

// blockOp is BlockOpType.
type blockOp uint8

const (
	opBackupSource blockOp = iota
	opBackupTarget
	opChange
	opCommitSource
	opCommitTarget
	opDataplane
	opDriveDel
	opEject
	opExternalSnapshot
	opMirrorSource
	opMirrorTarget
	opResize
	opStream
	opReplace
)

// backingAllows are the operations a backing link leaves open on the backing node.
func backingAllows(op blockOp) bool {
	switch op {
	case opCommitTarget, opStream, opBackupSource, opBackupTarget:
		return true
	}
	return false
}

// opBlocked is bdrv_op_is_blocked: the first holder that blocks op, in QEMU's words.
func (n *Node) opBlocked(op blockOp) error {
	if op != opDataplane {
		for _, j := range n.jobBlockers {
			return errf(ErrInUse, "Node '%s' is busy: block device is in use by block job: %s", n.deviceOrNodeName(), j.drv.Type)
		}
	}
	if backingAllows(op) {
		return nil
	}
	for i := len(n.parents) - 1; i >= 0; i-- { // the newest blocker first, as QEMU lists them
		if e := n.parents[i]; e.node != nil && e.role == "backing" {
			return errf(ErrInUse, "Node '%s' is busy: node is used as backing hd of '%s'", n.deviceOrNodeName(), e.node.Name)
		}
	}
	return nil
}

// unblock removes j's blocker from n.
func (n *Node) unblock(j *Job) {
	out := n.jobBlockers[:0]
	for _, x := range n.jobBlockers {
		if x != j {
			out = append(out, x)
		}
	}
	n.jobBlockers = out
}

// addNode is block_job_add_bdrv: the job holds n as its role child, taking perm and
// sharing shared, and blocks every operation on it. Graph.mu held.
func (j *Job) addNode(n *Node, role string, perm, shared Perm) error {
	u := &tempUse{perm: perm, shared: shared, job: j}
	n.addParent(edge{temp: u, role: role})
	if err := j.g.refresh(); err != nil {
		n.removeParent(func(e edge) bool { return e.temp == u })
		return err
	}
	j.nodes = append(j.nodes, &jobNode{n: n, use: u})
	n.jobBlockers = append([]*Job{j}, n.jobBlockers...)
	return nil
}

// isRoot is bdrv_is_root_node: only backends (and short-lived users such as a resize)
// use n, no node and no job.
func (n *Node) isRoot() bool {
	for _, e := range n.parents {
		if e.node != nil || (e.temp != nil && e.temp.job != nil) {
			return false
		}
	}
	return true
}
