package machine

import (
	"bufio"
	"encoding/binary"
	"errors"
	"os"

	"tlcvm/compat/qerror"
)

// ReadPhys reads guest-physical memory. Addresses outside RAM fail with ErrInvalidAddress
// (p is then partly filled). Pages the guest never wrote read as zeros without being
// touched. A page of a RAM block restored by mapping is checked first: a failed check
// returns the check's text wrapped in ErrRAMCheck.
func (m *Machine) ReadPhys(addr uint64, p []byte) error {
	m.ramMu.RLock()
	defer m.ramMu.RUnlock()
	if !m.ramUsable() {
		return qerr(ErrInvalidAddress, "Invalid addr 0x%016x/size %d specified", addr, len(p))
	}
	return m.readPhys(addr, p)
}

// ramUsable reports whether RAM is mapped. Caller holds ramMu.
func (m *Machine) ramUsable() bool { return m.ram != nil && m.ram.mem != nil }

func (m *Machine) readPhys(addr uint64, p []byte) error {
	for len(p) > 0 {
		b, off, avail, ok := m.lookupPhys(addr)
		if !ok {
			return qerr(ErrInvalidAddress, "Invalid addr 0x%016x/size %d specified", addr, len(p))
		}
		n := min(uint64(len(p)), avail)
		if err := b.readUntouched(off, p[:n]); err != nil {
			return err
		}
		p, addr = p[n:], addr+n
	}
	return nil
}

// readUntouched copies [off, off+len(p)) into p; pages never written are zero-filled
// without touching the mapping. A written page of a lazy chunk (restore by mapping) is
// checked first; a failed check is returned wrapped in ErrRAMCheck (p is then partly
// filled).
func (b *RAMBlock) readUntouched(off uint64, p []byte) error {
	for len(p) > 0 {
		page := off >> pageShift
		n := min(uint64(len(p)), PageSize-off%PageSize)
		if b.Written(page) {
			if err := b.ensurePage(page); err != nil {
				return ramCheckError(err)
			}
			copy(p[:n], b.mem[off:off+n])
		} else {
			clear(p[:n])
		}
		p, off = p[n:], off+n
	}
	return nil
}

// translate walks vCPU cpu's page tables (4-level, 4 KiB/2 MiB/1 GiB pages) in guest
// RAM. With paging off virtual equals physical. err is a failed RAM check (ErrRAMCheck)
// of a page-table page, with ok false.
func (m *Machine) translate(st *CPUState, va uint64) (pa uint64, ok bool, err error) {
	if st.CR[0]&cr0PG == 0 {
		return va, true, nil
	}
	if !st.longMode() {
		return 0, false, nil // 32-bit paging is never used by the workload
	}
	// canonical check
	if top := int64(va) >> 47; top != 0 && top != -1 {
		return 0, false, nil
	}
	table := st.CR[3] &^ 0xfff
	for level := 3; level >= 0; level-- {
		idx := (va >> (12 + 9*uint(level))) & 511
		var e [8]byte
		if err := m.readPhys(table+8*idx, e[:]); err != nil {
			if errors.Is(err, ErrRAMCheck) {
				return 0, false, err
			}
			return 0, false, nil
		}
		pte := binary.LittleEndian.Uint64(e[:])
		if pte&1 == 0 {
			return 0, false, nil
		}
		addr := pte & 0x000ffffffffff000
		if level == 0 || (level <= 2 && pte&0x80 != 0) {
			size := uint64(1) << (12 + 9*uint(level))
			return addr&^(size-1) | va&(size-1), true, nil
		}
		table = addr
	}
	return 0, false, nil
}

// ReadVirt reads vCPU cpu's virtual memory (QEMU's cpu_memory_rw_debug): translated by
// the CPU's page tables, page by page. Errors carry QEMU's memsave text.
func (m *Machine) ReadVirt(cpu int, addr uint64, p []byte) error {
	if m.vcpu(cpu) == nil {
		return qerr(ErrNoCPU, "Parameter 'cpu-index' expects a CPU number")
	}
	m.ramMu.RLock()
	defer m.ramMu.RUnlock()
	if !m.ramUsable() {
		return qerr(ErrInvalidAddress, "Invalid addr 0x%016x/size %d specified", addr, len(p))
	}
	return m.readVirt(cpu, addr, p, addr, uint64(len(p)))
}

func (m *Machine) readVirt(cpu int, addr uint64, p []byte, origAddr, origSize uint64) error {
	v := m.vcpu(cpu)
	if v == nil { // unplugged meanwhile
		return qerr(ErrNoCPU, "Parameter 'cpu-index' expects a CPU number")
	}
	v.mu.Lock()
	st := v.be.State()
	v.mu.Unlock()
	for len(p) > 0 {
		n := min(uint64(len(p)), PageSize-addr%PageSize)
		pa, ok, err := m.translate(&st, addr)
		if ok {
			err = m.readPhys(pa, p[:n])
		}
		if errors.Is(err, ErrRAMCheck) {
			return err
		}
		if !ok || err != nil {
			return qerr(ErrInvalidAddress, "Invalid addr 0x%016x/size %d specified", origAddr, int64(origSize))
		}
		p, addr = p[n:], addr+n
	}
	return nil
}

// SaveMemory is pmemsave (phys) / memsave (virtual, through vCPU cpu's page tables):
// it writes size bytes from addr to path, exactly as QEMU does: in 1024-byte chunks;
// pmemsave reads unassigned physical memory as zeros; memsave stops at the first chunk
// it cannot translate or read, with "Invalid addr 0x%016x/size %d specified", leaving
// what it wrote. Other texts: "Could not open '%s': %s", "An IO error has occurred",
// "Parameter 'cpu-index' expects a CPU number".
func (m *Machine) SaveMemory(path string, addr, size uint64, phys bool, cpu int) (err error) {
	if !phys && m.vcpu(cpu) == nil {
		return qerr(ErrNoCPU, "Parameter 'cpu-index' expects a CPU number")
	}
	f, ferr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
	if ferr != nil {
		return qerror.Errno(ErrIO, ferr, "Could not open '%s'", path)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = qerr(ErrIO, "An IO error has occurred")
		}
	}()
	w := bufio.NewWriterSize(f, 1<<16)
	defer func() {
		if ferr := w.Flush(); ferr != nil && err == nil {
			err = qerr(ErrIO, "An IO error has occurred")
		}
	}()
	m.ramMu.RLock()
	defer m.ramMu.RUnlock()
	var buf [1024]byte
	origAddr, origSize := addr, size
	for size != 0 {
		l := min(size, uint64(len(buf)))
		chunk := buf[:l]
		if phys {
			if !m.ramUsable() || m.readPhys(addr, chunk) != nil {
				if err := m.readPhysZeroFill(addr, chunk); err != nil {
					return err
				}
			}
		} else if !m.ramUsable() {
			return qerr(ErrInvalidAddress, "Invalid addr 0x%016x/size %d specified", origAddr, int64(origSize))
		} else if err := m.readVirt(cpu, addr, chunk, origAddr, origSize); err != nil {
			return err
		}
		if _, werr := w.Write(chunk); werr != nil {
			return qerr(ErrIO, "An IO error has occurred")
		}
		addr += l
		size -= l
	}
	return nil
}

// readPhysZeroFill reads what RAM there is in [addr, addr+len(p)) and zeros the rest
// (QEMU's unassigned memory reads as 0 for pmemsave). A failed RAM check is returned.
// Caller holds ramMu.
func (m *Machine) readPhysZeroFill(addr uint64, p []byte) error {
	clear(p)
	if !m.ramUsable() {
		return nil
	}
	return m.eachRAM(addr, len(p), func(b *RAMBlock, off uint64, i, n int) error {
		return b.readUntouched(off, p[i:i+n])
	})
}

// eachRAM calls fn for each run of RAM in [addr, addr+size): block b's bytes from off
// stand for bytes [i, i+n) of the range; unassigned bytes are skipped. It stops at fn's
// first error. Caller holds ramMu with RAM usable.
func (m *Machine) eachRAM(addr uint64, size int, fn func(b *RAMBlock, off uint64, i, n int) error) error {
	for i := 0; i < size; {
		b, off, avail, ok := m.lookupPhys(addr + uint64(i))
		if !ok {
			i++
			continue
		}
		n := int(min(uint64(size-i), avail))
		if err := fn(b, off, i, n); err != nil {
			return err
		}
		i += n
	}
	return nil
}
