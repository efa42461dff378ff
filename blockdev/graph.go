package blockdev

import (
	"fmt"
	"io"
	"math/rand"
	"sync"

	"github.com/rs/zerolog"

	"tlcvm/compat/optval"
)

// Emitter receives the events the block layer raises (JOB_STATUS_CHANGE, DEVICE_DELETED,
// BLOCK_JOB_*). data is a plain struct; qmp/cmds gives it QEMU's key order.
type Emitter interface {
	Emit(name string, data any)
}

// Config configures a Graph.
type Config struct {
	Log zerolog.Logger
	// Events receives events; nil drops them.
	Events Emitter
	// Warn receives the warnings QEMU prints on stderr (raw format probing); nil discards.
	Warn io.Writer
	// Stdout receives what QEMU prints on stdout (the "Formatting ..." line of an image
	// drive-mirror or drive-backup creates); nil discards.
	Stdout io.Writer
	// Rand picks the two random digits of generated node names ("#block" N RR); nil uses
	// math/rand, as QEMU's g_random_int_range.
	Rand func() int
}

// Graph is the block graph of one VM: nodes, backends (drives), the disk devices using
// them, and the block jobs. Its methods are safe for concurrent use.
type Graph struct {
	mu       sync.Mutex
	nodes    []*Node    // in naming order
	backends []*Backend // in creation order
	devices  []*Device
	counter  int // for generated node names
	cfg      Config
	jobs     *jobList
	incoming bool // nodes opened from now on start inactive (activate.go)

	tgMu   sync.Mutex                // guards groups and throttle membership
	groups map[string]*throttleGroup // throttle groups by name; +checklocks:tgMu
}

// New returns an empty graph.
func New(cfg Config) *Graph {
	if cfg.Warn == nil {
		cfg.Warn = io.Discard
	}
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	if cfg.Rand == nil {
		cfg.Rand = func() int { return rand.Intn(100) }
	}
	g := &Graph{cfg: cfg}
	g.jobs = newJobList(g)
	return g
}

func (g *Graph) emit(name string, data any) {
	if g.cfg.Events != nil {
		g.cfg.Events.Emit(name, data)
	}
}

// Close is qemu_cleanup's end of the block layer: every job pauses for the drain
// (bdrv_drain_all_begin) and is cancelled (job_cancel_sync_all), then every image closes,
// releasing its locks.
func (g *Graph) Close() {
	g.mu.Lock()
	g.drainBegin(nil) // never ended: no request is to run from here on
	g.mu.Unlock()
	g.CancelAllJobs()
	g.jobs.wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := len(g.nodes) - 1; i >= 0; i-- {
		g.nodes[i].storeBeforeClose() // before any file child closes
	}
	for _, n := range g.nodes {
		n.close()
	}
	g.nodes, g.backends, g.devices = nil, nil, nil
}

// autoName is QEMU's id_generate(ID_BLOCK): "#block", a counter, two random digits.
func (g *Graph) autoName() string {
	name := fmt.Sprintf("#block%d%02d", g.counter, g.cfg.Rand())
	g.counter++
	return name
}

// Nodes returns the nodes newest first, as query-named-block-nodes lists them.
func (g *Graph) Nodes() []*Node {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*Node, 0, len(g.nodes))
	for i := len(g.nodes) - 1; i >= 0; i-- {
		out = append(out, g.nodes[i])
	}
	return out
}

// Backends returns the backends in creation order (query-block's order).
func (g *Graph) Backends() []*Backend {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*Backend(nil), g.backends...)
}

// Lock and Unlock give callers that read node or backend fields a consistent view.
func (g *Graph) Lock()   { g.mu.Lock() }
func (g *Graph) Unlock() { g.mu.Unlock() }

func (g *Graph) node(name string) *Node {
	for _, n := range g.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func (g *Graph) backend(name string) *Backend {
	if name == "" {
		return nil
	}
	for _, b := range g.backends {
		if b.Name == name {
			return b
		}
	}
	return nil
}

// Node returns the node named name.
func (g *Graph) Node(name string) (*Node, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.node(name)
	return n, n != nil
}

// lookup is bdrv_lookup_bs: a backend name (its root node) or a node name.
func (g *Graph) lookup(device, nodeName string) (*Node, error) {
	if device != "" {
		if b := g.backend(device); b != nil {
			if b.Root == nil {
				return nil, errf(ErrNotFound, "Device '%s' has no medium", device)
			}
			return b.Root, nil
		}
	}
	if nodeName != "" {
		if n := g.node(nodeName); n != nil {
			return n, nil
		}
	}
	return nil, errf(ErrNotFound, "Cannot find device='%s' nor node-name='%s'", device, nodeName)
}

// checkNodeName validates a user-given node name as bdrv_assign_node_name does.
func (g *Graph) checkNodeName(name string) error {
	if !optval.ID(name) {
		return errf(ErrInvalid, "Invalid node-name: '%s'", name)
	}
	if g.backend(name) != nil {
		return errf(ErrExists, "node-name=%s is conflicting with a device id", name)
	}
	if g.node(name) != nil {
		return errf(ErrExists, "Duplicate nodes with node-name='%s'", name)
	}
	if len(name) >= 32 {
		return errf(ErrInvalid, "Node name too long")
	}
	return nil
}

// edgePerms is what one parent asks of its child: permissions it takes and those it shares.
func (e edge) perms() (Perm, Perm) {
	switch {
	case e.backend != nil:
		if e.backend.disabled() {
			return 0, PermAll // QEMU's disable_perm (activate.go)
		}
		if e.backend.shareAll {
			return e.backend.perm, PermAll
		}
		return e.backend.perm, e.backend.shared
	case e.temp != nil:
		return e.temp.perm, e.temp.shared
	}
	return childPerms(e.node, e.role)
}

// cumulative is the union of what n's parents take and the intersection of what they share.
func cumulative(n *Node) (Perm, Perm) {
	perm, shared := Perm(0), PermAll
	for _, e := range n.parents {
		p, s := e.perms()
		perm |= p
		shared &= s
	}
	return perm, shared
}

// childPerms is the permissions a format node asks of its child in role, as QEMU 7.2's
// bdrv_default_perms (qcow2: storage with metadata for "file", COW for "backing") and
// raw_child_perm (a filter) compute them from the node's own parents.
func childPerms(p *Node, role string) (Perm, Perm) {
	pp, ps := cumulative(p)
	if p.filter != nil {
		return filterPerms(p, role, pp, ps)
	}
	switch {
	case p.inactive && p.Driver == DriverQcow2 && role == "file":
		return inactiveFilePerms()
	case p.Driver == DriverQcow2 && role == "backing":
		// bdrv_default_perms_for_cow: a writable backing file only when the parent's
		// users share writes.
		shared := PermConsistentRead | PermWriteUnchanged
		if ps&PermWrite != 0 {
			shared |= PermWrite | PermResize
		}
		return pp & PermConsistentRead, shared
	case p.Driver == DriverQcow2:
		perm := pp | PermConsistentRead
		if !p.ReadOnly {
			perm |= PermWrite | PermResize
		}
		return perm, ps &^ (PermWrite | PermResize)
	default: // raw: a filter (bdrv_filter_default_perms passes the users' sharing through)
		perm := pp
		if pp&PermWrite == 0 {
			perm &^= PermWrite | PermResize
		}
		return perm, ps
	}
}

// refresh recomputes every node's permissions, checks them (read-only nodes, conflicts
// between users of one node) and moves the file locks; on an error nothing changes.
func (g *Graph) refresh() error {
	for _, n := range g.nodes {
		// bdrv_list_refresh_perms: the parents' conflicts first, then read-only.
		for i, a := range n.parents {
			ap, _ := a.perms()
			for j, b := range n.parents {
				if i == j {
					continue
				}
				_, bs := b.perms()
				if conflict := ap &^ bs; conflict != 0 {
					return errf(ErrPermission, "Permission conflict on node '%s': permissions '%s' are both required by %s (uses node '%s' as '%s' child) and unshared by %s (uses node '%s' as '%s' child).",
						n.Name, conflict, a.desc(), n.Name, a.role, b.desc(), n.Name, b.role)
				}
			}
		}
		if perm, _ := cumulative(n); n.ReadOnly && perm&(PermWrite|PermWriteUnchanged) != 0 {
			return errf(ErrReadOnly, "Block node is read-only")
		}
	}
	var done []lockUndo
	for _, n := range g.nodes {
		if n.f == nil || !n.protocol() || n.inactive {
			continue // an inactive file node keeps its locks as they are (activate.go)
		}
		perm, shared := cumulative(n)
		if perm == n.perm && shared == n.shared {
			continue
		}
		if perm&(PermWrite|PermWriteUnchanged|PermResize) != 0 && !n.rw {
			if err := n.reopen(true); err != nil {
				undoLocks(done)
				return err
			}
		}
		if err := n.lock.change(n.perm, n.shared, perm, shared, n.filename); err != nil {
			undoLocks(done)
			return err
		}
		done = append(done, lockUndo{n, n.perm, n.shared})
		n.perm, n.shared = perm, shared
		if n.AutoReadOnly && n.rw && perm&(PermWrite|PermWriteUnchanged|PermResize) == 0 {
			_ = n.reopen(false)
		}
	}
	return nil
}

// lockUndo is a file node's permissions before refresh changed them.
type lockUndo struct {
	n            *Node
	perm, shared Perm
}

func undoLocks(done []lockUndo) {
	for i := len(done) - 1; i >= 0; i-- {
		u := done[i]
		_ = u.n.lock.change(u.n.perm, u.n.shared, u.perm, u.shared, u.n.filename)
		u.n.perm, u.n.shared = u.perm, u.shared
	}
}

// NodesLocked is Nodes for a caller holding Lock.
func (g *Graph) NodesLocked() []*Node {
	out := make([]*Node, 0, len(g.nodes))
	for i := len(g.nodes) - 1; i >= 0; i-- {
		out = append(out, g.nodes[i])
	}
	return out
}

// BackendsLocked is Backends for a caller holding Lock.
func (g *Graph) BackendsLocked() []*Backend { return append([]*Backend(nil), g.backends...) }

// Backend returns the named backend (a -drive's id).
func (g *Graph) Backend(name string) (*Backend, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.backend(name)
	return b, b != nil
}

// DeviceBackend returns the backend of the disk device with the given qdev id.
func (g *Graph) DeviceBackend(id string) (*Backend, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, d := range g.devices {
		if d.ID == id && d.Backend != nil {
			return d.Backend, true
		}
	}
	return nil, false
}
