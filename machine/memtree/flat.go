package memtree

import (
	"fmt"
	"slices"
	"strings"
)

// flatRange is a FlatRange: [start, last] of an address space showing region r from
// offset off.
type flatRange struct {
	start, last uint64
	r           *Region
	off         uint64
	readonly    bool
}

// flatRoot is memory_region_get_flatview_root: the region a flat view is rendered from
// (nil: nothing enabled). An enabled alias covering all of its target, or a container's
// only enabled child covering all of it from offset 0, stands for it, so that address
// spaces share views.
func flatRoot(r *Region) *Region {
	for r.Enabled {
		switch {
		case r.Alias != nil:
			if r.AliasOffset == 0 && covers(r, r.Alias) {
				r = r.Alias
				continue
			}
		case !r.terminates():
			found, next := 0, (*Region)(nil)
			for _, c := range r.sub {
				if !c.Enabled {
					continue
				}
				if found++; found > 1 {
					next = nil
					break
				}
				if c.Addr == 0 && covers(r, c) {
					next = c
				}
			}
			if found == 0 {
				return nil
			}
			if next != nil {
				r = next
				continue
			}
		}
		return r
	}
	return nil
}

// covers reports a's size >= b's.
func covers(a, b *Region) bool { return a.Full || (!b.Full && a.Size >= b.Size) }

// render is render_memory_region: r's enabled subregions (by priority) and then r itself
// fill the gaps of view within clip [cstart, clast].
func render(view []flatRange, r *Region, base, cstart, clast uint64, readonly bool) []flatRange {
	if !r.Enabled {
		return view
	}
	base += r.Addr
	readonly = readonly || r.readonly()
	last := base + r.last()
	if r.Size == 0 && !r.Full {
		return view // an empty region intersects nothing
	}
	if last < cstart || base > clast {
		return view
	}
	cstart, clast = max(cstart, base), min(clast, last)
	if r.Alias != nil {
		return render(view, r.Alias, base-r.Alias.Addr-r.AliasOffset, cstart, clast, readonly)
	}
	for _, s := range r.sub {
		view = render(view, s, base, cstart, clast, readonly)
	}
	if !r.terminates() {
		return view
	}
	off, cur := cstart-base, cstart
	i := 0
	for ; i < len(view); i++ {
		v := view[i]
		if cur > v.last {
			continue
		}
		if cur < v.start {
			e := min(clast, v.start-1)
			view = slices.Insert(view, i, flatRange{start: cur, last: e, r: r, off: off, readonly: readonly})
			i++
			if e == clast {
				return view
			}
			off, cur = off+e-cur+1, e+1
		}
		if clast <= view[i].last {
			return view
		}
		off, cur = off+view[i].last-cur+1, view[i].last+1
	}
	return append(view, flatRange{start: cur, last: clast, r: r, off: off, readonly: readonly})
}

// simplify is flatview_simplify: neighbours showing consecutive bytes of one region merge.
func simplify(view []flatRange) []flatRange {
	var out []flatRange
	for i, v := range view {
		if i > 0 {
			p, o := view[i-1], &out[len(out)-1]
			if p.r == v.r && p.last+1 == v.start && p.off+(p.last-p.start+1) == v.off && p.readonly == v.readonly {
				o.last = v.last
				continue
			}
		}
		out = append(out, v)
	}
	return out
}

// printFlat is mtree_info_flatview: one FlatView per flat-view root (QEMU orders them by a
// hash of pointers, tlcvm by first creation), with the address spaces that show it in
// creation order.
func (t *Tree) printFlat(b *strings.Builder, owner bool) {
	type fv struct {
		root   *Region
		spaces []string
	}
	var views []*fv
	by := map[*Region]*fv{}
	for _, as := range t.Spaces {
		root := flatRoot(as.Root)
		v := by[root]
		if v == nil {
			v = &fv{root: root}
			by[root] = v
			views = append(views, v)
		}
		v.spaces = append(v.spaces, as.Name)
	}
	for n, v := range views {
		fmt.Fprintf(b, "FlatView #%d\n", n)
		for _, name := range v.spaces {
			as := t.space(name)
			fmt.Fprintf(b, " AS \"%s\", root: %s", name, as.Root.Name)
			if as.Root.Alias != nil {
				fmt.Fprintf(b, ", alias %s", as.Root.Alias.Name)
			}
			b.WriteString("\n")
		}
		if v.root == nil {
			b.WriteString(" Root memory region: (none)\n  No rendered FlatView\n\n")
			continue
		}
		fmt.Fprintf(b, " Root memory region: %s\n", v.root.Name)
		view := simplify(render(nil, v.root, 0, 0, ^uint64(0), false))
		if len(view) == 0 {
			b.WriteString("  No rendered FlatView\n\n")
			continue
		}
		for _, f := range view {
			typ := f.r.typeName()
			if f.readonly {
				typ = "rom"
			}
			fmt.Fprintf(b, "  %016x-%016x (prio %d, %s): %s", f.start, f.last, f.r.Priority, typ, f.r.Name)
			if f.off != 0 {
				fmt.Fprintf(b, " @%016x", f.off)
			}
			if owner {
				b.WriteString(f.r.ownerText())
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
}

func (t *Tree) space(name string) AddressSpace {
	for _, as := range t.Spaces {
		if as.Name == name {
			return as
		}
	}
	return AddressSpace{}
}
