package memtree

// Find is memory_region_find over an address space's flat view: the region whose contents
// show at addr (a RAM, ROM or IO region, never a container or an alias), and addr's
// offset in it. ok is false where nothing is mapped (or the space is unknown).
func (t *Tree) Find(space string, addr uint64) (r *Region, off uint64, ok bool) {
	root := t.space(space).Root
	if root == nil {
		return nil, 0, false
	}
	for _, f := range render(nil, root, 0, addr, addr, false) {
		if f.start <= addr && addr <= f.last {
			return f.r, f.off + addr - f.start, true
		}
	}
	return nil, 0, false
}
