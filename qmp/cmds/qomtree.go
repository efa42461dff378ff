package cmds

import (
	"tlcvm/machine/qomtree"
	"tlcvm/qmp"
)

// HMP info qom-tree prints the QOM composition tree (qom/qom-hmp-cmds.c
// hmp_info_qom_tree); qmp has no twin. It is tlcvm's QOM objects (Tree) with what the
// board adds beside them, the memory regions of package memtree under their owners
// (package qomtree), through this internal command.

// QOMTreeArgs is info qom-tree's optional path.
type QOMTreeArgs struct {
	Path string `json:"path,omitempty"`
}

func registerQOMTree(r *qmp.Registry, d *Deps) {
	if d.QOM == nil {
		return
	}
	r.Register(qmp.Command{Name: "x-tlcvm-info-qom-tree", Internal: true, Args: &QOMTreeArgs{}, Returns: TextInfo{},
		Run: func(c *qmp.Call) (any, error) {
			root := d.QOM().composition()
			if d.MemoryTree != nil {
				qomtree.Augment(root, d.MemoryTree())
			}
			return TextInfo{Text: qomtree.Print(root, c.Args.(*QOMTreeArgs).Path)}, nil
		}})
}

// composition copies the tree's objects (their child<> properties) as they are now.
func (t *Tree) composition() *qomtree.Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refresh()
	var copyObj func(name string, o *Object) *qomtree.Node
	copyObj = func(name string, o *Object) *qomtree.Node {
		n := &qomtree.Node{Name: name, Type: o.Type}
		for _, c := range o.children {
			n.Children = append(n.Children, copyObj(c.name, c.obj))
		}
		return n
	}
	return copyObj("", t.root)
}
