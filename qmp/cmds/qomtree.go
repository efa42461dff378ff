package cmds

import (
	"sort"

	"tlcvm/blockdev"

	"tlcvm/machine/qomtree"
	"tlcvm/qdev"
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
				var ide []string
				if d.Block != nil {
					ide = boardIDE(d.Block)
				}
				qomtree.Augment(root, d.MemoryTree(), ide, deviceProps(d.Devices))
			}
			return TextInfo{Text: qomtree.Print(root, c.Args.(*QOMTreeArgs).Path)}, nil
		}})
}

// deviceProps reads the properties set on the device tree's devices, by QOM path.
func deviceProps(t *qdev.Tree) qomtree.Props {
	if t == nil {
		return nil
	}
	byPath := map[string]map[string]string{} // a copy: qom-set may change them
	t.Locked(func(devs []*qdev.Device) {
		for _, dev := range devs {
			m := map[string]string{}
			for k, v := range dev.Props {
				m[k] = string(v)
			}
			byPath[dev.Path] = m
		}
	})
	return func(path, name string) (string, bool) {
		v, ok := byPath[path][name]
		return v, ok
	}
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

// boardIDE are the types of the board's IDE drives (-drive if=ide, -cdrom), in index
// order, as pci_ide_create_devs makes them.
func boardIDE(g blockLister) []string {
	if g == nil {
		return nil
	}
	g.Lock()
	defer g.Unlock()
	var drives []*blockdev.Backend
	for _, b := range g.BackendsLocked() {
		if b.Drive != nil && b.Drive.Interface == "ide" && b.Device != nil {
			drives = append(drives, b)
		}
	}
	sort.Slice(drives, func(i, j int) bool { return drives[i].Drive.Index < drives[j].Drive.Index })
	types := make([]string, len(drives))
	for i, b := range drives {
		types[i] = b.Device.Driver
	}
	return types
}
