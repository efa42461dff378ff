package qomtree

import (
	"fmt"
	"sort"
	"strings"
)

// Node is a QOM object: its name in its parent, its type and its child<> objects.
type Node struct {
	Name, Type string
	Children   []*Node
}

// Child returns the named child, or nil.
func (n *Node) Child(name string) *Node {
	for _, c := range n.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Ensure returns the named child, adding it with type typ when it is missing.
func (n *Node) Ensure(name, typ string) *Node {
	if c := n.Child(name); c != nil {
		return c
	}
	c := &Node{Name: name, Type: typ}
	n.Children = append(n.Children, c)
	return c
}

// Path returns the node at an absolute path ("/machine/unattached"), or nil.
func (n *Node) Path(path string) *Node {
	o := n
	for _, part := range strings.Split(path, "/") {
		if part == "" {
			continue
		}
		if o = o.Child(part); o == nil {
			return nil
		}
	}
	return o
}

// Resolve is object_resolve_path from the root n: an absolute path, or a partial one
// ("ioapic", "unattached/device[3]") naming exactly one object in the tree.
func (n *Node) Resolve(path string) *Node {
	if strings.HasPrefix(path, "/") {
		return n.Path(path)
	}
	parts := strings.Split(path, "/")
	var found *Node
	count := 0
	var walk func(o *Node)
	walk = func(o *Node) {
		if count > 1 {
			return
		}
		if m := o.follow(parts); m != nil {
			found, count = m, count+1
		}
		for _, c := range o.Children {
			walk(c)
		}
	}
	walk(n)
	if count == 1 {
		return found
	}
	return nil
}

func (n *Node) follow(parts []string) *Node {
	o := n
	for _, p := range parts {
		if p == "" {
			continue
		}
		if o = o.Child(p); o == nil {
			return nil
		}
	}
	return o
}

// Print is hmp_info_qom_tree: the tree from path ("" is /machine), or QEMU's text for a
// path that resolves to no object.
func Print(root *Node, path string) string {
	var start *Node
	name := ""
	if path == "" {
		start, name = root.Child("machine"), "machine"
	} else if start = root.Resolve(path); start != nil {
		name = start.Name
		if start == root {
			name = ""
		}
	}
	if start == nil {
		return fmt.Sprintf("Path '%s' could not be resolved.\n", path)
	}
	var b strings.Builder
	var walk func(o *Node, name string, indent int)
	walk = func(o *Node, name string, indent int) {
		fmt.Fprintf(&b, "%*s/%s (%s)\n", indent, "", name, o.Type)
		kids := append([]*Node(nil), o.Children...)
		sort.Slice(kids, func(i, j int) bool { return kids[i].Name < kids[j].Name })
		for _, c := range kids {
			walk(c, c.Name, indent+2)
		}
	}
	walk(start, name, 0)
	return b.String()
}

// EscapeRegionName is memory_region_escape_name: '/', '[', '\\' and ']' become \xNN, so
// that the region's child property ("name[k]") parses as one path component.
func EscapeRegionName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '/', '[', '\\', ']':
			fmt.Fprintf(&b, "\\x%02x", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
