package blockdev

import "slices"

// The debugging view of the graph (x-debug-query-block-graph, QEMU's
// bdrv_get_xdbg_block_graph): every backend, block job and node as a vertex, every use of
// a node (a backend's root, a job's node, a node's child) as an edge carrying the
// permissions the user takes and shares.
//
// QEMU numbers the vertices from 1 in the order it first meets them (xdbg_graph_node_num)
// and prepends both vertices and edges to their lists, so the reply lists them newest
// first; DebugGraph reproduces that order.

// Vertex types (XDbgBlockGraphNodeType).
const (
	VertexBackend = "block-backend"
	VertexJob     = "block-job"
	VertexDriver  = "block-driver"
)

// DebugVertex is one vertex of the debugging graph.
type DebugVertex struct {
	ID   int
	Type string
	Name string
}

// DebugEdge is one parent's use of a child node.
type DebugEdge struct {
	Parent, Child int
	Name          string // the child's role: "root", "file", "backing", "main node", ...
	Perm, Shared  Perm
}

// DebugGraph is x-debug-query-block-graph's graph, in QEMU's order.
type DebugGraph struct {
	Vertices []DebugVertex
	Edges    []DebugEdge
}

// debugGraphBuilder is XDbgBlockGraphConstructor.
type debugGraphBuilder struct {
	ids map[any]int
	gr  DebugGraph
}

func (b *debugGraphBuilder) id(v any) int {
	if id, ok := b.ids[v]; ok {
		return id
	}
	id := len(b.ids) + 1
	b.ids[v] = id
	return id
}

func (b *debugGraphBuilder) vertex(v any, typ, name string) {
	b.gr.Vertices = append(b.gr.Vertices, DebugVertex{ID: b.id(v), Type: typ, Name: name})
}

func (b *debugGraphBuilder) edge(parent any, child *Node, e edge) {
	perm, shared := e.perms()
	b.gr.Edges = append(b.gr.Edges, DebugEdge{Parent: b.id(parent), Child: b.id(child),
		Name: e.role, Perm: perm, Shared: shared})
}

// edgesTo adds parent's edges to child, found among child's parent edges by match.
func (b *debugGraphBuilder) edgesTo(parent any, child *Node, match func(edge) bool) {
	for _, e := range child.parents {
		if match(e) {
			b.edge(parent, child, e)
		}
	}
}

// DebugGraph returns the graph as x-debug-query-block-graph shows it: the backends in
// creation order (the block layer's internal ones last, in node order), then the jobs (newest first, each with its nodes newest first), then
// the nodes in naming order, each with its children newest first (bdrv_attach_child
// inserts at the head: the backing before the file); both lists reversed at the end.
func (g *Graph) DebugGraph() DebugGraph {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := &debugGraphBuilder{ids: map[any]int{}}
	for _, be := range g.backends {
		name := be.Name
		if name == "" && be.Device != nil {
			name = be.Device.Qdev() // blk_get_attached_dev_id
		}
		b.vertex(be, VertexBackend, name)
		if be.Root != nil {
			b.edgesTo(be, be.Root, func(e edge) bool { return e.backend == be })
		}
	}
	// The block layer's own short-lived backends (a mirror's or commit's target, a resize):
	// created after the users' backends, listed after them, nameless.
	for _, n := range g.nodes {
		for _, e := range n.parents {
			if e.temp != nil && e.temp.job == nil {
				b.vertex(e.temp, VertexBackend, "")
				b.edge(e.temp, n, e)
			}
		}
	}
	g.jobs.mu.Lock()
	jobs := append([]*Job(nil), g.jobs.jobs...)
	g.jobs.mu.Unlock()
	for _, j := range jobs {
		if !j.drv.Block {
			continue // job_next lists every job, but only block jobs hold nodes
		}
		b.vertex(j, VertexJob, j.id)
		for i := len(j.nodes) - 1; i >= 0; i-- {
			jn := j.nodes[i]
			b.edgesTo(j, jn.n, func(e edge) bool { return e.temp == jn.use })
		}
	}
	for _, n := range g.nodes {
		b.vertex(n, VertexDriver, n.Name)
		for _, c := range n.debugChildren() {
			b.edgesTo(n, c, func(e edge) bool { return e.node == n })
		}
	}
	slices.Reverse(b.gr.Vertices)
	slices.Reverse(b.gr.Edges)
	return b.gr
}

// debugChildren is n's children, newest attached first, each once.
func (n *Node) debugChildren() []*Node {
	var target *Node
	if n.filter != nil {
		n.filter.childMu.Lock()
		target = n.filter.target
		defer n.filter.childMu.Unlock()
	}
	var out []*Node
	for _, c := range []*Node{n.Backing, target, n.File} {
		if c == nil {
			continue
		}
		seen := false
		for _, x := range out {
			seen = seen || x == c
		}
		if !seen {
			out = append(out, c)
		}
	}
	return out
}
