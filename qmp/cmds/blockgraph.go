package cmds

import (
	"tlcvm/blockdev"
	"tlcvm/qmp"
)

// x-debug-query-block-graph (qapi/block-core.json XDbgBlockGraph): the block graph's
// backends, block jobs and nodes with every edge's permissions, from package blockdev's
// DebugGraph. The keys are in the order QEMU 7.2 prints them.

// XDbgBlockGraph is x-debug-query-block-graph's reply.
type XDbgBlockGraph struct {
	qmp.QAPIOrder
	Nodes []XDbgBlockGraphNode `json:"nodes"`
	Edges []XDbgBlockGraphEdge `json:"edges"`
}

// XDbgBlockGraphNode is one vertex: a backend, a block job or a node.
type XDbgBlockGraphNode struct {
	qmp.QAPIOrder
	ID   int                    `json:"id"`
	Type XDbgBlockGraphNodeType `json:"type"`
	Name string                 `json:"name"`
}

// XDbgBlockGraphEdge is one parent's use of a child node.
type XDbgBlockGraphEdge struct {
	qmp.QAPIOrder
	Parent     int               `json:"parent"`
	Child      int               `json:"child"`
	Name       string            `json:"name"`
	Perm       []BlockPermission `json:"perm"`
	SharedPerm []BlockPermission `json:"shared-perm"`
}

// XDbgBlockGraphNodeType is a vertex's kind.
type XDbgBlockGraphNodeType string

// EnumValues implements qmp.Enum.
func (XDbgBlockGraphNodeType) EnumValues() []string {
	return []string{blockdev.VertexBackend, blockdev.VertexJob, blockdev.VertexDriver}
}

// debugGrapher is what x-debug-query-block-graph needs of the block layer.
type debugGrapher interface {
	DebugGraph() blockdev.DebugGraph
}

func registerBlockGraph(r *qmp.Registry, d *Deps) {
	if d.Block != nil {
		blockGraphCommands(r, d.Block)
	}
}

func blockGraphCommands(r *qmp.Registry, g debugGrapher) {
	r.Register(qmp.Command{Name: "x-debug-query-block-graph", Returns: XDbgBlockGraph{},
		Features: []string{"unstable"},
		Run:      func(*qmp.Call) (any, error) { return xdbgBlockGraph(g.DebugGraph()), nil }})
}

func xdbgBlockGraph(gr blockdev.DebugGraph) XDbgBlockGraph {
	out := XDbgBlockGraph{Edges: []XDbgBlockGraphEdge{}, Nodes: []XDbgBlockGraphNode{}}
	for _, e := range gr.Edges {
		out.Edges = append(out.Edges, XDbgBlockGraphEdge{Name: e.Name, Parent: e.Parent,
			SharedPerm: blockPermissions(e.Shared), Perm: blockPermissions(e.Perm), Child: e.Child})
	}
	for _, v := range gr.Vertices {
		out.Nodes = append(out.Nodes, XDbgBlockGraphNode{Name: v.Name, Type: XDbgBlockGraphNodeType(v.Type), ID: v.ID})
	}
	return out
}

// blockPermissions is xdbg_graph_add_edge's list: the permissions highest bit first (it
// prepends each in bit order).
func blockPermissions(p blockdev.Perm) []BlockPermission {
	names := BlockPermission("").EnumValues()
	out := []BlockPermission{}
	for i := len(names) - 1; i >= 0; i-- {
		if p&(1<<i) != 0 {
			out = append(out, BlockPermission(names[i]))
		}
	}
	return out
}
