package dump

import "encoding/binary"

// The PT_LOAD list: QEMU's memory_mapping.c (the sorted, merging list) and, for
// paging=true, target/i386/arch_memory_mapping.c's page-table walk.

// addMergeSorted is memory_mapping_list_add_merge_sorted (without its last-mapping
// cache, which only speeds the search up).
func addMergeSorted(list []mapping, phys, virt, length uint64) []mapping {
	contiguous := func(m mapping) bool { return phys == m.phys+m.length && virt == m.virt+m.length }
	for i := range list {
		mp := &list[i]
		if contiguous(*mp) {
			mp.length += length
			return list
		}
		if phys+length < mp.phys {
			return insert(list, i, mapping{phys, virt, length})
		}
		sameRegion := !(phys+length < mp.phys || phys >= mp.phys+mp.length)
		if sameRegion {
			if virt-mp.virt != phys-mp.phys { // mapping_conflict
				continue
			}
			if virt < mp.virt { // mapping_merge
				mp.length += mp.virt - virt
				mp.virt = virt
			}
			if virt+length > mp.virt+mp.length {
				mp.length = virt + length - mp.virt
			}
			return list
		}
	}
	return append(list, mapping{phys, virt, length})
}

func insert(list []mapping, i int, m mapping) []mapping {
	list = append(list, mapping{})
	copy(list[i+1:], list[i:])
	list[i] = m
	return list
}

// filterMappings is memory_mapping_filter: drop what lies outside the area, trim the rest.
func filterMappings(list []mapping, f filter) []mapping {
	out := list[:0]
	for _, m := range list {
		if m.phys >= f.begin+f.length || m.phys+m.length <= f.begin {
			continue
		}
		if m.phys < f.begin {
			m.length -= f.begin - m.phys
			if m.virt != 0 {
				m.virt += f.begin - m.phys
			}
			m.phys = f.begin
		}
		if m.phys+m.length > f.begin+f.length {
			m.length -= m.phys + m.length - f.begin - f.length
		}
		out = append(out, m)
	}
	return out
}

// pagingMappings is qemu_get_guest_memory_mapping: the page tables of every vCPU from
// the first one with paging on; with none, one mapping per block with virt = phys.
func pagingMappings(m *Machine) []mapping {
	first := -1
	for i := range m.CPUs {
		if m.CPUs[i].CR[0]&cr0PG != 0 {
			first = i
			break
		}
	}
	var list []mapping
	if first < 0 {
		for _, b := range m.Blocks {
			list = append(list, mapping{b.Start, b.Start, b.Size})
		}
		return list
	}
	w := walker{m: m}
	for i := first; i < len(m.CPUs); i++ {
		c := &m.CPUs[i]
		if c.CR[0]&cr0PG == 0 || c.CR[4]&cr4PAE == 0 || !c.LMA() {
			// tlcvm's guest pages only in long mode (4-level); legacy and PAE paging
			// are not walked.
			continue
		}
		list = w.walk(list, c.CR[3]&addrMask, 0xffff<<48, 39)
	}
	return list
}

const (
	pgPresent = 1
	pgPSE     = 1 << 7
	addrMask  = 0xffffffffff000 // PLM4_ADDR_MASK, bits 51:12
)

type walker struct{ m *Machine }

// ldq reads a page-table entry; memory outside the blocks or never written reads 0.
func (w walker) ldq(addr uint64) uint64 {
	for _, b := range w.m.Blocks {
		if addr >= b.Start && addr+8 <= b.End() {
			off := addr - b.Start
			if b.Mem == nil || !b.Mem.Written(off&^(PageSize-1)) {
				return 0
			}
			var e [8]byte
			if b.Mem.ReadAt(e[:], off) != nil {
				return 0
			}
			return binary.LittleEndian.Uint64(e[:])
		}
	}
	return 0
}

// isIO is address_space_is_io: the address is not in a RAM or ROM block.
func (w walker) isIO(addr uint64) bool {
	for _, b := range w.m.Blocks {
		if addr >= b.Start && addr < b.End() {
			return false
		}
	}
	return true
}

// walk is walk_pml4e, walk_pdpe, walk_pde and walk_pte in one: the table at base maps
// 1<<shift bytes per entry (39, 30, 21, 12); large pages (PSE) end the walk at 1 GiB and
// 2 MiB, and a PML4 entry is never one.
func (w walker) walk(list []mapping, base, line uint64, shift uint) []mapping {
	for i := uint64(0); i < 512; i++ {
		e := w.ldq(base + 8*i)
		if e&pgPresent == 0 {
			continue
		}
		la := line | i<<shift
		if shift == 12 || shift < 39 && e&pgPSE != 0 {
			pa := e &^ (1<<shift - 1) &^ (1 << 63)
			if !w.isIO(pa) {
				list = addMergeSorted(list, pa, la, 1<<shift)
			}
			continue
		}
		list = w.walk(list, e&addrMask, la, shift-9)
	}
	return list
}
