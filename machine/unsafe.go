package machine

import "unsafe"

// ptr returns a pointer to b[off]; off+8 <= len(b) and off%8 == 0 are the caller's duty
// (guest stores are 8-byte aligned by construction).
func ptr(b []byte, off uint64) unsafe.Pointer {
	return unsafe.Pointer(&b[off])
}
