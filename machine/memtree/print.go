package memtree

import (
	"fmt"
	"slices"
	"strings"
)

// Options are info mtree's flags.
type Options struct {
	FlatView bool // -f: the flat views instead of the trees
	Disabled bool // -D: disabled regions too
	Owner    bool // -o: each region's owner (or QOM parent)
}

// Print is mtree_info: the address spaces grouped by root region (names sorted within a
// group; QEMU orders the groups by a hash of pointers, tlcvm by first creation), each
// root's tree, then every region an alias points at ("memory-region:"), in the order
// they were met. With FlatView, the flat views instead.
func (t *Tree) Print(o Options) string {
	var b strings.Builder
	if o.FlatView {
		t.printFlat(&b, o.Owner)
		return b.String()
	}
	var queue []*Region
	for _, g := range t.groups() {
		names := make([]string, len(g.spaces))
		for i, as := range g.spaces {
			names[i] = as.Name
		}
		slices.Sort(names) // g_strcmp0
		for _, n := range names {
			fmt.Fprintf(&b, "address-space: %s\n", n)
		}
		printMR(&b, g.root, 1, 0, &queue, o)
		b.WriteString("\n")
	}
	for i := 0; i < len(queue); i++ {
		fmt.Fprintf(&b, "memory-region: %s\n", queue[i].Name)
		printMR(&b, queue[i], 1, 0, &queue, o)
		b.WriteString("\n")
	}
	return b.String()
}

type group struct {
	root   *Region
	spaces []AddressSpace
}

// groups gathers the address spaces by root region, in order of first appearance.
func (t *Tree) groups() []*group {
	var out []*group
	by := map[*Region]*group{}
	for _, as := range t.Spaces {
		g := by[as.Root]
		if g == nil {
			g = &group{root: as.Root}
			by[as.Root] = g
			out = append(out, g)
		}
		g.spaces = append(g.spaces, as)
	}
	return out
}

// printMR is mtree_print_mr: a region, then its subregions by address (higher priority
// first at one address, else in list order); a disabled region's line is left out unless
// disabled is set, its subregions are not. Every alias met queues its target once.
func printMR(b *strings.Builder, r *Region, level int, base uint64, queue *[]*Region, o Options) {
	start := base + r.Addr
	end := start + r.last()
	if start < base || end < start {
		b.WriteString("[DETECTED OVERFLOW!] ")
	}
	dis := ""
	if !r.Enabled {
		dis = " [disabled]"
	}
	if o.Owner {
		dis += r.ownerText()
	}
	if r.Alias != nil {
		if !slices.Contains(*queue, r.Alias) {
			*queue = append(*queue, r.Alias)
		}
		if r.Enabled || o.Disabled {
			b.WriteString(strings.Repeat("  ", level))
			fmt.Fprintf(b, "%016x-%016x (prio %d, %s): alias %s @%s %016x-%016x%s\n",
				start, end, r.Priority, r.typeName(), r.Name, r.Alias.Name,
				r.AliasOffset, r.AliasOffset+r.last(), dis)
		}
	} else if r.Enabled || o.Disabled {
		b.WriteString(strings.Repeat("  ", level))
		fmt.Fprintf(b, "%016x-%016x (prio %d, %s): %s%s\n", start, end, r.Priority, r.typeName(), r.Name, dis)
	}
	for _, s := range printOrder(r.sub) {
		printMR(b, s, level+1, start, queue, o)
	}
}

// printOrder is mtree_print_mr's submr_print_queue: a stable sort of the subregion list
// by address, higher priority first at one address.
func printOrder(sub []*Region) []*Region {
	var q []*Region
	for _, s := range sub {
		i := slices.IndexFunc(q, func(o *Region) bool {
			return s.Addr < o.Addr || (s.Addr == o.Addr && s.Priority > o.Priority)
		})
		if i < 0 {
			q = append(q, s)
		} else {
			q = slices.Insert(q, i, s)
		}
	}
	return q
}
