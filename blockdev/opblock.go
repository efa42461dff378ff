package blockdev

// Op blockers (QEMU's bdrv_op_block / bdrv_op_is_blocked): operations a node refuses
// while something holds it. Two holders exist: a block job blocks every operation on the
// nodes it works on ("block device is in use by block job: mirror"), and a backing link
// blocks most operations on the backing node ("node is used as backing hd of 'top'"),
// except committing into it, streaming, and backing up from or to it (bdrv_backing_attach).

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
