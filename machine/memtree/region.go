package memtree

// Kind is what a region is, as memory_region_type names it.
type Kind int

// The kinds of region tlcvm's boards have.
const (
	Container Kind = iota // memory_region_init: no contents of its own ("i/o", non-terminating)
	IO                    // memory_region_init_io: a device's registers ("i/o", terminating)
	RAM                   // memory_region_init_ram ("ram")
	ROM                   // memory_region_init_rom ("rom", read-only)
)

// Region is a MemoryRegion: a named range with a priority, either with contents of its
// own (IO, RAM, ROM), or a container of subregions, or an alias of part of another
// region.
type Region struct {
	Name        string
	Kind        Kind
	Size        uint64 // 0 with Full: 2^64
	Full        bool   // the region spans the whole 64-bit space (QEMU's UINT64_MAX size)
	Addr        uint64 // offset in the parent, set by Add
	Priority    int
	Enabled     bool
	Alias       *Region
	AliasOffset uint64
	Owner       *Owner    // nil: none (QEMU parents the region to /machine/unattached)
	sub         []*Region // QEMU's subregions list: priority descending, newest first among equals
}

// New is a region of a kind (enabled, as memory_region_init leaves it).
func New(name string, k Kind, size uint64) *Region {
	return &Region{Name: name, Kind: k, Size: size, Enabled: true}
}

// NewFull is a container spanning the whole 64-bit space.
func NewFull(name string) *Region { return &Region{Name: name, Full: true, Enabled: true} }

// NewAlias is memory_region_init_alias: size bytes of target from offset.
func NewAlias(name string, target *Region, offset, size uint64) *Region {
	return &Region{Name: name, Kind: target.Kind, Size: size, Enabled: true, Alias: target, AliasOffset: offset}
}

// NewFullAlias is an alias spanning the whole 64-bit space.
func NewFullAlias(name string, target *Region) *Region {
	return &Region{Name: name, Kind: target.Kind, Full: true, Enabled: true, Alias: target}
}

// Add is memory_region_add_subregion_overlap: sub goes at addr with priority prio, before
// the first subregion of equal or lower priority. It returns sub.
func (r *Region) Add(addr uint64, sub *Region, prio int) *Region {
	sub.Addr, sub.Priority = addr, prio
	for i, o := range r.sub {
		if prio >= o.Priority {
			r.sub = append(r.sub[:i], append([]*Region{sub}, r.sub[i:]...)...)
			return sub
		}
	}
	r.sub = append(r.sub, sub)
	return sub
}

// Disable is memory_region_set_enabled(false); it returns r.
func (r *Region) Disable() *Region {
	r.Enabled = false
	return r
}

// last is the region's last offset (MR_SIZE: size-1, and 0 for an empty region).
func (r *Region) last() uint64 {
	if r.Full {
		return ^uint64(0)
	}
	if r.Size == 0 {
		return 0
	}
	return r.Size - 1
}

// terminates is mr->terminates: the region has contents of its own (an alias does not).
func (r *Region) terminates() bool { return r.Alias == nil && r.Kind != Container }

// typeName is memory_region_type: an alias shows its target's.
func (r *Region) typeName() string {
	for r.Alias != nil {
		r = r.Alias
	}
	switch r.Kind {
	case ROM:
		return "rom"
	case RAM:
		return "ram"
	}
	return "i/o"
}

// readonly is mr->readonly (ROMs).
func (r *Region) readonly() bool { return r.Kind == ROM && r.Alias == nil }

// Owner is the QOM object owning a region, as info mtree -o names it: a device by its id
// when it has one, else by its canonical path; another object by its path.
type Owner struct {
	Dev      bool
	ID, Path string
}

// Dev is a device owner at a QOM path.
func Dev(path string) *Owner { return &Owner{Dev: true, Path: path} }

// String is mtree_expand_owner's text: "{dev id=ID}", "{dev path=P}", "{obj path=P}".
func (o *Owner) String() string {
	kind := "obj"
	if o.Dev {
		kind = "dev"
	}
	if o.Dev && o.ID != "" {
		return "{" + kind + " id=" + o.ID + "}"
	}
	return "{" + kind + " path=" + o.Path + "}"
}

// ownerText is mtree_print_mr_owner's: " owner:{…}", or for a region without owner its QOM
// parent, the board's container of unattached objects.
func (r *Region) ownerText() string {
	if r.Owner == nil {
		return " parent:{obj path=/machine/unattached}"
	}
	return " owner:" + r.Owner.String()
}

// AddressSpace is an AddressSpace: a name and its root region.
type AddressSpace struct {
	Name string
	Root *Region
}

// Tree is a machine's address spaces, in the order QEMU creates them.
type Tree struct {
	Spaces []AddressSpace
	Board  Board // what Build laid out
}
