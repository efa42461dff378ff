package dump

import "encoding/binary"

// ELF notes, as QEMU 7.2's target/i386/arch_dump.c writes them: for every vCPU an
// NT_PRSTATUS note named "CORE", then for every vCPU a note named "QEMU" of type 0
// holding QEMUCPUState. The prstatus layout is x86_64's when the first vCPU is in long
// mode, i386's otherwise (for every vCPU); Elf32_Nhdr and Elf64_Nhdr are the same 12
// bytes, so the notes do not depend on the ELF class.

const (
	ntPRStatus = 1
	nhdrSize   = 12

	prstatus64Size = 336 // x86_64_elf_prstatus
	prstatus32Size = 144 // x86_elf_prstatus
	qemuStateSize  = 440 // QEMUCPUState (version 1, with kernel_gs_base)
	qemuStateVer   = 1
)

func align4(n int) int { return (n + 3) &^ 3 }

// noteSize is ELF_NOTE_SIZE for a 5-byte name ("CORE", "QEMU").
func noteSize(desc int) int { return nhdrSize + align4(5) + align4(desc) }

// notesSize is cpu_get_note_size: the PT_NOTE segment for n vCPUs.
func notesSize(lma bool, n int) int {
	pr := prstatus32Size
	if lma {
		pr = prstatus64Size
	}
	return (noteSize(pr) + noteSize(qemuStateSize)) * n
}

// appendNote appends one note: header, name padded to 4, desc padded to 4.
func appendNote(b []byte, name string, typ uint32, desc []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(name)+1))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
	b = binary.LittleEndian.AppendUint32(b, typ)
	nm := make([]byte, align4(len(name)+1))
	copy(nm, name)
	b = append(b, nm...)
	d := make([]byte, align4(len(desc)))
	copy(d, desc)
	return append(b, d...)
}

// appendNotes appends the whole PT_NOTE content for cpus (write_elf64_notes).
func appendNotes(b []byte, cpus []CPU) []byte {
	lma := len(cpus) > 0 && cpus[0].LMA()
	for i := range cpus {
		id := uint32(i + 1) // cpu_index + 1
		if lma {
			b = appendNote(b, "CORE", ntPRStatus, prstatus64(&cpus[i], id))
		} else {
			b = appendNote(b, "CORE", ntPRStatus, prstatus32(&cpus[i], id))
		}
	}
	for i := range cpus {
		b = appendNote(b, "QEMU", 0, qemuCPUState(&cpus[i]))
	}
	return b
}

// prstatus64 is x86_64_elf_prstatus: pr_pid at 32, user_regs_struct at 112.
func prstatus64(c *CPU, id uint32) []byte {
	d := make([]byte, prstatus64Size)
	le := binary.LittleEndian
	le.PutUint32(d[32:], id)
	r := c.Regs
	regs := [27]uint64{
		r[15], r[14], r[13], r[12], r[rBP], r[rBX], r[11], r[10],
		r[9], r[8], r[rAX], r[rCX], r[rDX], r[rSI], r[rDI], 0, // orig_rax
		c.RIP, uint64(c.Segs[segCS].Selector), c.RFlags,
		r[rSP], uint64(c.Segs[segSS].Selector),
		c.Segs[segFS].Base, c.Segs[segGS].Base,
		uint64(c.Segs[segDS].Selector), uint64(c.Segs[segES].Selector),
		uint64(c.Segs[segFS].Selector), uint64(c.Segs[segGS].Selector),
	}
	for i, v := range regs {
		le.PutUint64(d[112+8*i:], v)
	}
	return d
}

// prstatus32 is x86_elf_prstatus: pr_pid at 24, user_regs_struct (i386) at 72.
func prstatus32(c *CPU, id uint32) []byte {
	d := make([]byte, prstatus32Size)
	le := binary.LittleEndian
	le.PutUint32(d[24:], id)
	r := c.Regs
	g := d[72:]
	for i, v := range []uint64{r[rBX], r[rCX], r[rDX], r[rSI], r[rDI], r[rBP], r[rAX]} {
		le.PutUint32(g[4*i:], uint32(v))
	}
	le.PutUint16(g[28:], c.Segs[segDS].Selector)
	le.PutUint16(g[32:], c.Segs[segES].Selector)
	le.PutUint16(g[36:], c.Segs[segFS].Selector)
	le.PutUint16(g[40:], c.Segs[segGS].Selector)
	// orig_eax at 44 stays 0
	le.PutUint32(g[48:], uint32(c.RIP))
	le.PutUint16(g[52:], c.Segs[segCS].Selector)
	le.PutUint32(g[56:], uint32(c.RFlags))
	le.PutUint32(g[60:], uint32(r[rSP]))
	le.PutUint16(g[64:], c.Segs[segSS].Selector)
	return d
}

// qemuCPUState is QEMUCPUState version 1: the general registers in QEMU's order, the
// segments (selector, limit, flags, pad, base), CR0-CR4 and kernel_gs_base (0).
func qemuCPUState(c *CPU) []byte {
	d := make([]byte, qemuStateSize)
	le := binary.LittleEndian
	le.PutUint32(d[0:], qemuStateVer)
	le.PutUint32(d[4:], qemuStateSize)
	r := c.Regs
	off := 8
	for _, v := range []uint64{r[rAX], r[rBX], r[rCX], r[rDX], r[rSI], r[rDI], r[rSP], r[rBP],
		r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15], c.RIP, c.RFlags} {
		le.PutUint64(d[off:], v)
		off += 8
	}
	s := c.Segs
	for _, sg := range []Segment{s[segCS], s[segDS], s[segES], s[segFS], s[segGS], s[segSS], c.LDT, c.TR, c.GDT, c.IDT} {
		le.PutUint32(d[off:], uint32(sg.Selector))
		le.PutUint32(d[off+4:], sg.Limit)
		le.PutUint32(d[off+8:], sg.Flags)
		le.PutUint64(d[off+16:], sg.Base)
		off += 24
	}
	for _, v := range c.CR {
		le.PutUint64(d[off:], v)
		off += 8
	}
	return d // kernel_gs_base (at 432) is 0: the guest never sets it
}
