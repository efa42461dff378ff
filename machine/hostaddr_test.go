package machine

import (
	"errors"
	"os"
	"testing"
	"unsafe"
)

// TestHostPhysAddr: a touched page of this process is present (its frame number is shown
// to root only); a fresh untouched anonymous page is not.
func TestHostPhysAddr(t *testing.T) {
	p := make([]byte, 3*os.Getpagesize())
	page := p[os.Getpagesize():]
	page[0x123] = 1
	hva := uintptr(unsafe.Pointer(&page[0x123]))
	pa, err := HostPhysAddr(hva)
	if err != nil {
		t.Fatal(err)
	}
	if pa&uint64(os.Getpagesize()-1) != uint64(hva)&uint64(os.Getpagesize()-1) {
		t.Errorf("HostPhysAddr(%#x) = %#x: not the same offset in its page", hva, pa)
	}
	if os.Geteuid() == 0 && pa < uint64(os.Getpagesize()) {
		t.Errorf("HostPhysAddr(%#x) = %#x as root: no frame number", hva, pa)
	}
	b, err := newRAMBlock("t", 4*PageSize)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	_, err = HostPhysAddr(uintptr(unsafe.Pointer(&b.mem[PageSize])))
	if !errors.Is(err, ErrHostPage) || err.Error() != "Page not present" {
		t.Errorf("untouched page: %v", err)
	}
}
