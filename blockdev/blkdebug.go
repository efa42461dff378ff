package blockdev

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"syscall"

	"tlcvm/compat/qerror"
)

// The blkdebug driver (QEMU 7.2 block/blkdebug.c): a filter over its "image" child that
// injects errors and suspends requests when the nodes above it raise debug events.
//
//	qcow2/raw node ──file──> blkdebug node ──image──> file node ──> host file
//	     │ raises events                │ rules: inject-error, set-state, breakpoints
//	     └──────────────── debugEvent ──┘ (the first blkdebug node down the primary children)
//
// An event runs the rules registered for it whose state is 0 or the node's state (1 at
// open): inject-error rules become the active ones (the first such rule of an event
// replaces the previous set), set-state rules move the state after the event, breakpoints
// ("break EVENT TAG" in qemu-io) suspend the request that raised the event until "resume
// TAG" (or remove_break). A request on the node (read, write, write-zeroes, discard,
// flush) fails with the errno of the first active rule that matches its type (iotype; all
// but block-status by default) and covers its sector (any without one); a once rule is
// then deleted.
//
// Events tlcvm raises (the rest of QEMU's BlkdebugEvent are accepted and never raised):
//
//	read_aio, write_aio   a raw or qcow2 node reading or writing guest data on its file
//	                      (block-stream's copy-up included)
//	read_backing_aio      a qcow2 node reading unallocated clusters from its backing chain
//	l2_load               a qcow2 node loading an L2 table
//	l2_update             a qcow2 node writing an L2 entry
//	cluster_alloc         a qcow2 node allocating data clusters for a write
//	flush_to_os, flush_to_disk   a flush passing through a format node to its file
//	pwritev, pwritev_done a write to any node (QEMU's generic write path), before and after
//	none                  the blkdebug node's open (bdrv_debug_event(bs, BLKDBG_NONE))

// DriverBlkdebug is the blkdebug filter driver.
const DriverBlkdebug = "blkdebug"

// BlkdebugEvents are QEMU 7.2's BlkdebugEvent values, in the enum's order.
var BlkdebugEvents = []string{"l1_update", "l1_grow_alloc_table", "l1_grow_write_table",
	"l1_grow_activate_table", "l2_load", "l2_update", "l2_update_compressed", "l2_alloc_cow_read",
	"l2_alloc_write", "read_aio", "read_backing_aio", "read_compressed", "write_aio",
	"write_compressed", "vmstate_load", "vmstate_save", "cow_read", "cow_write", "reftable_load",
	"reftable_grow", "reftable_update", "refblock_load", "refblock_update", "refblock_update_part",
	"refblock_alloc", "refblock_alloc_hookup", "refblock_alloc_write", "refblock_alloc_write_blocks",
	"refblock_alloc_write_table", "refblock_alloc_switch_table", "cluster_alloc",
	"cluster_alloc_bytes", "cluster_free", "flush_to_os", "flush_to_disk", "pwritev_rmw_head",
	"pwritev_rmw_after_head", "pwritev_rmw_tail", "pwritev_rmw_after_tail", "pwritev",
	"pwritev_zero", "pwritev_done", "empty_image_prepare", "l1_shrink_write_table",
	"l1_shrink_free_l2_clusters", "cor_write", "cluster_alloc_space", "none"}

// BlkdebugIOTypes are QEMU 7.2's BlkdebugIOType values.
var BlkdebugIOTypes = []string{"read", "write", "write-zeroes", "discard", "flush", "block-status"}

// The events and I/O types tlcvm raises and checks.
var (
	evL2Load         = blkdebugEvent("l2_load")
	evL2Update       = blkdebugEvent("l2_update")
	evReadAIO        = blkdebugEvent("read_aio")
	evReadBackingAIO = blkdebugEvent("read_backing_aio")
	evWriteAIO       = blkdebugEvent("write_aio")
	evClusterAlloc   = blkdebugEvent("cluster_alloc")
	evFlushToOS      = blkdebugEvent("flush_to_os")
	evFlushToDisk    = blkdebugEvent("flush_to_disk")
	evPwritev        = blkdebugEvent("pwritev")
	evPwritevDone    = blkdebugEvent("pwritev_done")
	evNone           = blkdebugEvent("none")
)

const (
	ioRead = iota
	ioWrite
	ioWriteZeroes
	ioDiscard
	ioFlush
)

func blkdebugEvent(name string) int {
	i := slices.Index(BlkdebugEvents, name)
	if i < 0 {
		panic("blkdebug: unknown event " + name)
	}
	return i
}

// BlkdebugOptions are BlockdevOptionsBlkdebug's members tlcvm uses.
type BlkdebugOptions struct {
	Image       *Ref
	Config      string // a config file whose rules come first (blkdebug_config.go); "": none
	Align       int64  // 0: the image's
	InjectError []BlkdebugInjectError
	SetState    []BlkdebugSetState
}

// BlkdebugInjectError is BlkdebugInjectErrorOptions.
type BlkdebugInjectError struct {
	Event       string
	State       int64
	IOType      string // "": read, write, write-zeroes, discard and flush
	Errno       *int64 // nil: EIO
	Sector      *int64 // nil: any
	Once        bool
	Immediately bool // QEMU returns the error without yielding first; no difference here
}

// BlkdebugSetState is BlkdebugSetStateOptions.
type BlkdebugSetState struct {
	Event    string
	State    int64
	NewState int64
}

const (
	actInject = iota
	actSetState
	actSuspend
)

// bdRule is a BlkdebugRule.
type bdRule struct {
	event, action int
	state         int64
	errno         int64
	once          bool
	offset        int64 // -1: any
	iomask        uint
	newState      int64
	tag           string
	out           io.Writer // suspend: where "blkdebug: Suspended request" goes
}

// bdSuspended is a request stopped at a breakpoint.
type bdSuspended struct {
	tag    string
	resume chan struct{}
	out    io.Writer
}

// blkdebug is a blkdebug node's state. mu guards every field; a suspended request waits
// on its own channel outside mu, and changed is broadcast when the suspended list grows.
type blkdebug struct {
	mu        sync.Mutex
	changed   *sync.Cond
	state     int64
	rules     [][]*bdRule // per event, the newest first (QLIST_INSERT_HEAD)
	active    []*bdRule   // the active inject-error rules, the newest first
	suspended []*bdSuspended
}

// newBlkdebug checks the rules of o and builds the node's state.
func newBlkdebug(o *BlkdebugOptions) (*blkdebug, error) {
	d := &blkdebug{state: 1, rules: make([][]*bdRule, len(BlkdebugEvents))}
	d.changed = sync.NewCond(&d.mu)
	for _, ie := range o.InjectError {
		r := &bdRule{event: slices.Index(BlkdebugEvents, ie.Event), action: actInject, state: ie.State,
			errno: int64(syscall.EIO), once: ie.Once, offset: -1, iomask: 1<<ioRead | 1<<ioWrite | 1<<ioWriteZeroes | 1<<ioDiscard | 1<<ioFlush}
		if r.event < 0 {
			return nil, errf(ErrInvalid, "Parameter 'event' does not accept value '%s'", ie.Event)
		}
		if ie.Errno != nil {
			r.errno = *ie.Errno
		}
		if ie.Sector != nil && *ie.Sector != -1 {
			r.offset = *ie.Sector * 512
		}
		if ie.IOType != "" {
			t := slices.Index(BlkdebugIOTypes, ie.IOType)
			if t < 0 {
				return nil, errf(ErrInvalid, "Parameter 'iotype' does not accept value '%s'", ie.IOType)
			}
			r.iomask = 1 << t
		}
		d.rules[r.event] = append([]*bdRule{r}, d.rules[r.event]...)
	}
	for _, ss := range o.SetState {
		r := &bdRule{event: slices.Index(BlkdebugEvents, ss.Event), action: actSetState, state: ss.State, newState: ss.NewState}
		if r.event < 0 {
			return nil, errf(ErrInvalid, "Parameter 'event' does not accept value '%s'", ss.Event)
		}
		d.rules[r.event] = append([]*bdRule{r}, d.rules[r.event]...)
	}
	if a := o.Align; a != 0 && (a < 0 || a >= 1<<31-1 || a&(a-1) != 0) {
		return nil, errf(ErrInvalid, "Cannot meet constraints with align %d", a)
	}
	return d, nil
}

// openBlkdebug opens a blkdebug node's image child (open.go's hook).
func (g *Graph) openBlkdebug(n *Node, o *Options, child inherited, opened *[]*Node) (*Node, error) {
	bo := o.Blkdebug
	if bo == nil || bo.Image == nil {
		return nil, errf(ErrInvalid, "A block device must be specified for \"image\"")
	}
	if bo.Config != "" {
		all := &BlkdebugOptions{}
		if err := readBlkdebugConfig(bo.Config, all); err != nil {
			return nil, err
		}
		all.InjectError = append(all.InjectError, bo.InjectError...)
		all.SetState = append(all.SetState, bo.SetState...)
		all.Image, all.Config, all.Align = bo.Image, bo.Config, bo.Align
		bo = all
	}
	d, err := newBlkdebug(bo)
	if err != nil {
		return nil, err
	}
	image, err := g.ref(bo.Image, child, opened)
	if err != nil {
		return nil, err
	}
	n.dbg = d
	// QEMU's exact filename "blkdebug:CONFIG:IMAGE" (no config file here); with rules given
	// as options QEMU reports a json: filename instead, which tlcvm does not build.
	n.File, n.filename = image, "blkdebug:"+o.Blkdebug.Config+":"+image.filename
	g.name(n, o.NodeName, opened)
	image.addParent(edge{node: n, role: "image"})
	if err := g.refresh(); err != nil {
		return nil, err
	}
	d.event(evNone)
	return n, nil
}

// imageReader is how a format driver reads its image file outside requests (the header,
// the snapshot table): the host file of a file node, else through the node's data path,
// so that a blkdebug node in between sees the reads (as QEMU's bdrv_pread does).
func imageReader(n *Node) io.ReaderAt {
	if n.f != nil {
		return n.f
	}
	return nodeReader{n}
}

// nodeReader reads a node as a format driver reads its file (pread: zeroes past the end).
type nodeReader struct{ n *Node }

func (r nodeReader) ReadAt(p []byte, off int64) (int, error) {
	if err := r.n.pread(p, off); err != nil {
		return 0, err
	}
	return len(p), nil
}

// debugNode is where n's debug events and breakpoints go: the first blkdebug node down
// n's primary children (bdrv_debug_event's walk), nil when there is none.
func (n *Node) debugNode() *blkdebug {
	for ; n != nil; n = n.File {
		if n.dbg != nil {
			return n.dbg
		}
	}
	return nil
}

// debugCheck is the error a blkdebug node injects into a request (nil for other nodes).
func (n *Node) debugCheck(off, length int64, io int) error {
	if n.dbg == nil {
		return nil
	}
	return n.dbg.check(off, length, io)
}

// debugEvent raises event ev on n (BLKDBG_EVENT): nothing without a blkdebug node below.
func (n *Node) debugEvent(ev int) {
	if d := n.debugNode(); d != nil {
		d.event(ev)
	}
}

// event runs the rules of ev (blkdebug_co_debug_event); a breakpoint makes it wait until
// resumed.
func (d *blkdebug) event(ev int) {
	d.mu.Lock()
	newState := d.state
	injects := 0
	var waits []chan struct{}
	for _, r := range slices.Clone(d.rules[ev]) {
		if r.state != 0 && r.state != d.state {
			continue
		}
		switch r.action {
		case actInject:
			if injects++; injects == 1 {
				d.active = nil
			}
			d.active = append([]*bdRule{r}, d.active...)
		case actSetState:
			newState = r.newState
		case actSuspend:
			s := &bdSuspended{tag: r.tag, resume: make(chan struct{}), out: r.out}
			d.removeRule(r)
			d.suspended = append([]*bdSuspended{s}, d.suspended...)
			if s.out != nil {
				fmt.Fprintf(s.out, "blkdebug: Suspended request '%s'\n", s.tag)
			}
			waits = append(waits, s.resume)
			d.changed.Broadcast()
		}
	}
	d.state = newState
	d.mu.Unlock()
	for _, w := range waits {
		<-w
	}
}

// removeRule drops r from its event's list. Caller holds mu.
func (d *blkdebug) removeRule(r *bdRule) {
	d.rules[r.event] = slices.DeleteFunc(d.rules[r.event], func(x *bdRule) bool { return x == r })
}

// check is rule_check: the error the first matching active rule injects into a request of
// type io over [off, off+length), nil when none does.
func (d *blkdebug) check(off, length int64, io int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, r := range d.active {
		if (r.offset == -1 || (length > 0 && r.offset >= off && r.offset < off+length)) && r.iomask&(1<<io) != 0 {
			if r.errno == 0 {
				return nil
			}
			if r.once {
				d.active = slices.Delete(d.active, i, i+1)
				d.removeRule(r)
			}
			e := syscall.Errno(r.errno)
			return qerror.Wrapf(ErrIO, e, "%s", qerror.Strerror(e))
		}
	}
	return nil
}

// breakpoint is bdrv_debug_breakpoint: ENOENT for an unknown event.
func (d *blkdebug) breakpoint(event, tag string, out io.Writer) error {
	ev := slices.Index(BlkdebugEvents, event)
	if ev < 0 {
		return syscall.ENOENT
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r := &bdRule{event: ev, action: actSuspend, tag: tag, out: out}
	d.rules[ev] = append([]*bdRule{r}, d.rules[ev]...)
	return nil
}

// resume is resume_req_by_tag: the newest request suspended with tag (all with all).
// Caller holds mu.
func (d *blkdebug) resumeLocked(tag string, all bool, out io.Writer) error {
	err := error(syscall.ENOENT)
	for i := 0; i < len(d.suspended); {
		s := d.suspended[i]
		if s.tag != tag {
			i++
			continue
		}
		if out != nil {
			fmt.Fprintf(out, "blkdebug: Resuming request '%s'\n", s.tag)
		}
		d.suspended = slices.Delete(d.suspended, i, i+1)
		close(s.resume)
		err = nil
		if !all {
			break
		}
	}
	return err
}

func (d *blkdebug) resume(tag string, out io.Writer) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.resumeLocked(tag, false, out)
}

// removeBreakpoint deletes the breakpoints tagged tag and resumes their requests.
func (d *blkdebug) removeBreakpoint(tag string, out io.Writer) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := error(syscall.ENOENT)
	for ev := range d.rules {
		n := len(d.rules[ev])
		d.rules[ev] = slices.DeleteFunc(d.rules[ev], func(r *bdRule) bool { return r.action == actSuspend && r.tag == tag })
		if len(d.rules[ev]) != n {
			err = nil
		}
	}
	if d.resumeLocked(tag, true, out) == nil {
		err = nil
	}
	return err
}

// waitSuspended returns once a request is suspended with tag (qemu-io's wait_break; like
// QEMU's it waits as long as it takes).
func (d *blkdebug) waitSuspended(tag string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for !slices.ContainsFunc(d.suspended, func(s *bdSuspended) bool { return s.tag == tag }) {
		d.changed.Wait()
	}
}

// The qemu-io commands on breakpoints, on the target's root node (or the first blkdebug
// node below it).
func init() {
	qemuIOCommands = append(qemuIOCommands,
		qemuIOCommand{name: "break", args: "event tag", help: "sets a breakpoint on event and tags the stopped request as tag", argmin: 2,
			run: func(t qemuIOTarget, _ map[byte]string, args []string, out io.Writer) {
				if err := debugOf(t, func(d *blkdebug) error { return d.breakpoint(args[0], args[1], out) }); err != nil {
					fmt.Fprintf(out, "Could not set breakpoint: %s\n", qerror.Strerror(err))
				}
			}},
		qemuIOCommand{name: "remove_break", args: "tag", help: "remove a breakpoint by tag", argmin: 1,
			run: func(t qemuIOTarget, _ map[byte]string, args []string, out io.Writer) {
				if err := debugOf(t, func(d *blkdebug) error { return d.removeBreakpoint(args[0], out) }); err != nil {
					fmt.Fprintf(out, "Could not remove breakpoint %s: %s\n", args[0], qerror.Strerror(err))
				}
			}},
		qemuIOCommand{name: "resume", args: "tag", help: "resumes the request tagged as tag", argmin: 1,
			run: func(t qemuIOTarget, _ map[byte]string, args []string, out io.Writer) {
				if err := debugOf(t, func(d *blkdebug) error { return d.resume(args[0], out) }); err != nil {
					fmt.Fprintf(out, "Could not resume request: %s\n", qerror.Strerror(err))
				}
			}},
		qemuIOCommand{name: "wait_break", args: "tag", help: "waits for the suspension of a request", argmin: 1,
			run: func(t qemuIOTarget, _ map[byte]string, args []string, _ io.Writer) {
				_ = debugOf(t, func(d *blkdebug) error { d.waitSuspended(args[0]); return nil })
			}},
	)
}

// debugOf runs f on the blkdebug node under the target's root: ENOTSUP without one.
func debugOf(t qemuIOTarget, f func(d *blkdebug) error) error {
	var n *Node
	switch t := t.(type) {
	case nodeTarget:
		n = t.n
	case backendTarget:
		t.b.io.RLock()
		n, _ = t.b.root()
		t.b.io.RUnlock()
	}
	d := n.debugNode()
	if d == nil {
		return syscall.ENOTSUP
	}
	return f(d)
}
