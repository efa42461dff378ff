package blockdev

import "io"

// Test hooks (compiled only into this package's tests).

// WriteQcow2 writes a fresh qcow2 image to f, as blockdev-create does.
var WriteQcow2 = writeQcow2

// memTarget is a qemu-io target in memory.
type memTarget struct{ data []byte }

func (m *memTarget) read(p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > int64(len(m.data)) {
		return errf(ErrIO, "out of range")
	}
	copy(p, m.data[off:])
	return nil
}
func (m *memTarget) write(p []byte, off int64, _ bool) error {
	if off < 0 || off+int64(len(p)) > int64(len(m.data)) {
		return errf(ErrIO, "out of range")
	}
	copy(m.data[off:], p)
	return nil
}
func (m *memTarget) zeroes(off, length int64, _, _ bool) error {
	return m.write(make([]byte, length), off, false)
}
func (m *memTarget) discard(off, length int64) error { return nil }
func (m *memTarget) flush() error                    { return nil }
func (m *memTarget) size() int64                     { return int64(len(m.data)) }

// RunQemuIOInMemory runs a qemu-io line on a memory disk of size bytes.
func RunQemuIOInMemory(size int64, line string, out io.Writer) []byte {
	m := &memTarget{data: make([]byte, size)}
	runQemuIO(m, line, out)
	return m.data
}
