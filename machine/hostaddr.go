package machine

import (
	"encoding/binary"
	"errors"
	"os"
	"unsafe"

	"tlcvm/compat/qerror"
)

// ErrHostPage: the host physical address of guest RAM is not known (pagemap unreadable, or
// the page not present). A GenericError at the monitor.
var ErrHostPage = errors.New("machine: host physical page unavailable")

// HostAddr is the host virtual address at which guest-physical gpa's byte lives (QEMU's
// qemu_map_ram_ptr, for HMP gpa2hva) and the name of its RAM block. ok is false where no
// RAM block backs gpa. The address stays valid while the block is mapped.
func (m *Machine) HostAddr(gpa uint64) (block string, hva uintptr, ok bool) {
	m.ramMu.RLock()
	defer m.ramMu.RUnlock()
	if !m.ramUsable() {
		return "", 0, false
	}
	b, off, _, ok := m.lookupPhys(gpa)
	if !ok || b.mem == nil {
		return "", 0, false
	}
	return b.name, uintptr(unsafe.Pointer(&b.mem[off])), true
}

// HostPhysAddr is hmp_gpa2hpa's vtop: the host physical address of this process's virtual
// address hva, from /proc/self/pagemap (an entry's bit 63: present; bits 0-54: the page
// frame number, which reads as zero without CAP_SYS_ADMIN). Errors carry QEMU's texts.
func HostPhysAddr(hva uintptr) (uint64, error) {
	pagesize := uint64(os.Getpagesize())
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return 0, qerror.Errno(ErrHostPage, err, "Cannot open /proc/self/pagemap")
	}
	defer f.Close()
	var e [8]byte
	if _, err := f.ReadAt(e[:], int64(uint64(hva)/pagesize*8)); err != nil {
		return 0, qerror.Errno(ErrHostPage, err, "Cannot read pagemap")
	}
	pinfo := binary.LittleEndian.Uint64(e[:])
	if pinfo&(1<<63) == 0 {
		return 0, qerror.New(ErrHostPage, "Page not present")
	}
	return (pinfo&0x007fffffffffffff)*pagesize | uint64(hva)&(pagesize-1), nil
}
