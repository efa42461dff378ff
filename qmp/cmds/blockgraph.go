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
	Edges []XDbgBlockGraphEdge `json:"edges"`
	Nodes []XDbgBlockGraphNode `json:"nodes"`
}

// XDbgBlockGraphNode is one vertex: a backend, a block job or a node.
type XDbgBlockGraphNode struct {
	Name string `json:"name"`
	Type string `json:"type"`
	ID   int    `json:"id"`
}

// XDbgBlockGraphEdge is one parent's use of a child node.
type XDbgBlockGraphEdge struct {
	Name       string   `json:"name"`
	Parent     int      `json:"parent"`
	SharedPerm []string `json:"shared-perm"`
	Perm       []string `json:"perm"`
	Child      int      `json:"child"`
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
		Run: func(*qmp.Call) (any, error) { return xdbgBlockGraph(g.DebugGraph()), nil }})
}

func xdbgBlockGraph(gr blockdev.DebugGraph) XDbgBlockGraph {
	out := XDbgBlockGraph{Edges: []XDbgBlockGraphEdge{}, Nodes: []XDbgBlockGraphNode{}}
	for _, e := range gr.Edges {
		out.Edges = append(out.Edges, XDbgBlockGraphEdge{Name: e.Name, Parent: e.Parent,
			SharedPerm: blockPermissions(e.Shared), Perm: blockPermissions(e.Perm), Child: e.Child})
	}
	for _, v := range gr.Vertices {
		out.Nodes = append(out.Nodes, XDbgBlockGraphNode{Name: v.Name, Type: v.Type, ID: v.ID})
	}
	return out
}

// blockPermNames are BlockPermission's names, in bit order.
var blockPermNames = []string{"consistent-read", "write", "write-unchanged", "resize"}

// blockPermissions is xdbg_graph_add_edge's list: the permissions highest bit first (it
// prepends each in bit order).
func blockPermissions(p blockdev.Perm) []string {
	out := []string{}
	for i := len(blockPermNames) - 1; i >= 0; i-- {
		if p&(1<<i) != 0 {
			out = append(out, blockPermNames[i])
		}
	}
	return out
}
