package dump

import (
	"encoding/binary"
	"fmt"

	"tlcvm/compat/qerror"
)

// ELF constants (elf.h).
const (
	elfClass32 = 1
	elfClass64 = 2
	emI386     = 3
	emX8664    = 62
	etCore     = 4
	ptLoad     = 1
	ptNote     = 4
	shtStrtab  = 3
	pnXNum     = 0xffff

	ehdr64Size = 64
	phdr64Size = 56
	shdr64Size = 64
	ehdr32Size = 52
	phdr32Size = 32
	shdr32Size = 40

	// QEMU 7.2's prepare_elf*_header sets e_ehsize to sizeof(elf_header), which there
	// is a pointer: 8 on every 64-bit host, for both classes.
	qemuEhsize = 8
)

// shstrtab is the section string table QEMU 7.2 appends after the memory: the null name
// and ".shstrtab".
var shstrtab = []byte("\x00.shstrtab\x00")

// mapping is one PT_LOAD (QEMU's MemoryMapping).
type mapping struct{ phys, virt, length uint64 }

// arch is cpu_get_dump_info: long mode gives EM_X86_64 and ELFCLASS64; otherwise EM_386,
// ELFCLASS64 only when a block ends above 4 GiB - 1 (target_end > UINT_MAX).
func arch(m *Machine) (machine uint16, class64 bool) {
	if len(m.CPUs) > 0 && m.CPUs[0].LMA() {
		return emX8664, true
	}
	for _, b := range m.Blocks {
		if b.End() > 0xffffffff {
			return emI386, true
		}
	}
	return emI386, false
}

// layout is everything dump_init computes before the first byte is written.
type layout struct {
	machine               uint16
	class64               bool
	maps                  []mapping
	phdrNum               uint32
	shdrOff, phdrOff      uint64
	noteOff, noteSize     uint64
	memOff, total, secOff uint64
	flt                   filter
}

func elfLayout(m *Machine, paging bool, f filter) layout {
	l := layout{flt: f}
	l.machine, l.class64 = arch(m)
	if paging {
		l.maps = pagingMappings(m)
	} else {
		for _, b := range m.Blocks { // qemu_get_guest_simple_memory_mapping: virt 0
			l.maps = addMergeSorted(l.maps, b.Start, 0, b.Size)
		}
	}
	if f.on() {
		l.maps = filterMappings(l.maps, f)
	}
	l.phdrNum = 1 + uint32(len(l.maps))
	l.noteSize = uint64(notesSize(len(m.CPUs) > 0 && m.CPUs[0].LMA(), len(m.CPUs)))
	l.total = m.totalSize(f)
	ehdr, shdr, phdr := uint64(ehdr32Size), uint64(shdr32Size), uint64(phdr32Size)
	if l.class64 {
		ehdr, shdr, phdr = ehdr64Size, shdr64Size, phdr64Size
	}
	l.shdrOff = ehdr
	l.phdrOff = l.shdrOff + shdr*2
	l.noteOff = l.phdrOff + phdr*uint64(l.phdrNum)
	l.memOff = l.noteOff + l.noteSize
	l.secOff = l.memOff + l.total
	return l
}

// offsetRange is get_offset_range: where the memory of a mapping lies in the file, and
// how much of it; offset is -1 (all ones) and filesz 0 when it is not in the file.
func (l *layout) offsetRange(m *Machine, phys, length uint64) (offset, filesz uint64) {
	f := l.flt
	offset = ^uint64(0)
	if f.on() && (phys < f.begin || phys >= f.begin+f.length) {
		return offset, 0
	}
	off := l.memOff
	for _, b := range m.Blocks {
		start, size := b.Start, b.Size
		if f.on() {
			if b.Start >= f.begin+f.length || b.End() <= f.begin {
				continue
			}
			start = max(f.begin, b.Start)
			size = b.End() - start
			if f.begin+f.length < b.End() {
				size -= b.End() - (f.begin + f.length)
			}
		}
		if phys >= start && phys < start+size {
			if phys+length <= start+size {
				return phys - start + off, length
			}
			return phys - start + off, size - (phys - start)
		}
		off += size
	}
	return offset, 0
}

// header builds the ELF header, the section headers, the program headers and the notes:
// everything before the memory (dump_begin).
func (l *layout) header(m *Machine) []byte {
	le := binary.LittleEndian
	var b []byte
	phnum := uint16(min(l.phdrNum, pnXNum))
	ident := []byte{0x7f, 'E', 'L', 'F', elfClass32, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if l.class64 {
		ident[4] = elfClass64
	}
	b = append(b, ident...)
	b = le.AppendUint16(b, etCore)
	b = le.AppendUint16(b, l.machine)
	b = le.AppendUint32(b, 1) // EV_CURRENT
	word := func(v uint64) {
		if l.class64 {
			b = le.AppendUint64(b, v)
		} else {
			b = le.AppendUint32(b, uint32(v))
		}
	}
	word(0) // e_entry
	word(l.phdrOff)
	word(l.shdrOff)
	b = le.AppendUint32(b, 0) // e_flags
	b = le.AppendUint16(b, qemuEhsize)
	if l.class64 {
		b = le.AppendUint16(b, phdr64Size)
		b = le.AppendUint16(b, phnum)
		b = le.AppendUint16(b, shdr64Size)
	} else {
		b = le.AppendUint16(b, phdr32Size)
		b = le.AppendUint16(b, phnum)
		b = le.AppendUint16(b, shdr32Size)
	}
	b = le.AppendUint16(b, 2) // e_shnum: the null section and .shstrtab
	b = le.AppendUint16(b, 1) // e_shstrndx

	// Section header 0 (sh_info = phdr_num only past PN_XNUM), then .shstrtab.
	shdr := func(name, typ uint32, off, size uint64, info uint32) {
		b = le.AppendUint32(b, name)
		b = le.AppendUint32(b, typ)
		word(0)    // sh_flags
		word(0)    // sh_addr
		word(off)  // sh_offset
		word(size) // sh_size
		b = le.AppendUint32(b, 0)
		b = le.AppendUint32(b, info)
		word(0) // sh_addralign
		word(0) // sh_entsize
	}
	info := uint32(0)
	if l.phdrNum >= pnXNum {
		info = l.phdrNum
	}
	shdr(0, 0, 0, 0, info)
	shdr(1, shtStrtab, l.secOff, uint64(len(shstrtab)), 0)

	phdr := func(typ uint32, off, vaddr, paddr, filesz, memsz uint64) {
		if l.class64 {
			b = le.AppendUint32(b, typ)
			b = le.AppendUint32(b, 0) // p_flags
			b = le.AppendUint64(b, off)
			b = le.AppendUint64(b, vaddr)
			b = le.AppendUint64(b, paddr)
			b = le.AppendUint64(b, filesz)
			b = le.AppendUint64(b, memsz)
			b = le.AppendUint64(b, 0) // p_align
			return
		}
		for _, v := range []uint64{uint64(typ), off, vaddr, paddr, filesz, memsz, 0, 0} {
			b = le.AppendUint32(b, uint32(v))
		}
	}
	phdr(ptNote, l.noteOff, 0, 0, l.noteSize, l.noteSize)
	for i, mp := range l.maps {
		if uint32(i)+1 >= l.phdrNum {
			break
		}
		off, filesz := l.offsetRange(m, mp.phys, mp.length)
		vaddr := mp.virt
		if l.class64 && vaddr == 0 || !l.class64 && uint32(vaddr) == 0 {
			vaddr = mp.phys
		}
		phdr(ptLoad, off, vaddr, mp.phys, filesz, mp.length)
	}
	b = appendNotes(b, m.CPUs)
	if uint64(len(b)) != l.memOff {
		panic(fmt.Sprintf("dump: ELF headers are %d bytes, the layout says %d", len(b), l.memOff))
	}
	return b
}

// writeELF writes the ELF core (create_vmcore): headers and notes, every block's memory
// within the filter (never-written pages as holes), then the section string table.
func writeELF(o *output, m *Machine, l *layout, p *progress) error {
	o.write(l.header(m))
	if o.flush(); o.err != nil {
		return qerror.Errorf(ErrDump, "dump: failed to write elf header: %s", qerror.Strerror(o.err))
	}
	if err := writeBlocks(o, m, l.flt, p); err != nil {
		return err
	}
	o.write(shstrtab)
	return o.finish()
}

// writeBlocks is dump_iterate: the memory of each block within the filter, in order.
func writeBlocks(o *output, m *Machine, f filter, p *progress) error {
	buf := make([]byte, PageSize)
	for _, b := range m.Blocks {
		start, ok := f.start(b)
		if !ok {
			continue
		}
		end := start + f.size(b)
		for off := start; off < end; {
			page := off &^ (PageSize - 1)
			n := min(page+PageSize, end) - off
			if b.Mem == nil || !b.Mem.Written(page) {
				o.skip(n)
			} else {
				if err := b.Mem.ReadAt(buf[:n], off); err != nil {
					return qerror.Errorf(ErrDump, "dump: failed to save memory: %s", err.Error())
				}
				o.write(buf[:n])
			}
			if o.err != nil {
				return qerror.Errorf(ErrDump, "dump: failed to save memory: %s", qerror.Strerror(o.err))
			}
			p.add(n)
			off += n
		}
	}
	return nil
}
