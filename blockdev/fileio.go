package blockdev

import (
	"errors"
	"io"

	"golang.org/x/sys/unix"

	"tlcvm/compat/qerror"
)

// The file driver's data path (QEMU's file-posix): pread/pwrite on the host file, reads
// past the file's end as zeroes, holes punched for discard and unmapping write-zeroes,
// fdatasync for flush, SEEK_DATA/SEEK_HOLE for the allocation status. The caller holds
// n.io (see io.go), which keeps n.f from being swapped (reopen) or closed meanwhile.

// fileRead reads p at off; what lies past the host file's end reads as zeroes.
func (n *Node) fileRead(p []byte, off int64) error {
	if n.f == nil {
		return errf(ErrIO, "tlcvm: node '%s' is closed", n.Name)
	}
	got, err := n.f.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return qerror.Errno(ErrIO, err, "Could not read from '%s'", n.filename)
	}
	clear(p[got:])
	return nil
}

// fileWrite writes p at off (the host file grows when a format driver writes past its end).
func (n *Node) fileWrite(p []byte, off int64) error {
	if n.f == nil {
		return errf(ErrIO, "tlcvm: node '%s' is closed", n.Name)
	}
	if !n.rw {
		return errf(ErrReadOnly, "Block node is read-only")
	}
	if _, err := n.f.WriteAt(p, off); err != nil {
		return qerror.Errno(ErrIO, err, "Could not write to '%s'", n.filename)
	}
	return nil
}

// fileWriteZeroes zeroes [off, off+length): a hole when unmapping is allowed and the node
// discards (discard=unmap), else fallocate's zero range, else written zeroes.
func (n *Node) fileWriteZeroes(off, length int64, fl ZeroFlags) error {
	if n.f == nil {
		return errf(ErrIO, "tlcvm: node '%s' is closed", n.Name)
	}
	if !n.rw {
		return errf(ErrReadOnly, "Block node is read-only")
	}
	fd := int(n.f.Fd())
	if fl&ZeroMayUnmap != 0 && n.Discard == "unmap" {
		if unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length) == nil {
			return n.extendTo(off + length)
		}
	}
	if unix.Fallocate(fd, unix.FALLOC_FL_ZERO_RANGE, off, length) == nil {
		return nil
	}
	return n.writeZeroBuffers(off, length)
}

// extendTo grows the host file to end (a punched hole past the end does not extend it).
func (n *Node) extendTo(end int64) error {
	st, err := n.f.Stat()
	if err != nil {
		return qerror.Errno(ErrIO, err, "Could not stat '%s'", n.filename)
	}
	if st.Size() < end {
		if err := n.f.Truncate(end); err != nil {
			return qerror.Errno(ErrIO, err, "Could not resize '%s'", n.filename)
		}
	}
	return nil
}

// zeroBuf is a shared buffer of zeroes for writing zeroes (never written to).
var zeroBuf = make([]byte, 1<<20)

// writeZeroBuffers writes length zero bytes at off through the node's own write path.
func (n *Node) writeZeroBuffers(off, length int64) error {
	for length > 0 {
		k := min(length, int64(len(zeroBuf)))
		if err := n.write(zeroBuf[:k], off); err != nil {
			return err
		}
		off += k
		length -= k
	}
	return nil
}

// fileDiscard punches a hole (counted in the file driver's discard statistics).
func (n *Node) fileDiscard(off, length int64) error {
	if n.f == nil {
		return errf(ErrIO, "tlcvm: node '%s' is closed", n.Name)
	}
	err := unix.Fallocate(int(n.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
	if err != nil {
		n.discardNo.Add(1)
		if errors.Is(err, unix.EOPNOTSUPP) {
			return nil // discard is advisory
		}
		return qerror.Errno(ErrIO, err, "Could not discard in '%s'", n.filename)
	}
	n.discardOK.Add(1)
	n.discardB.Add(length)
	return nil
}

// fileFlush is fdatasync, unless cache.no-flush or the file is open read-only.
func (n *Node) fileFlush() error {
	if n.f == nil {
		return errf(ErrIO, "tlcvm: node '%s' is closed", n.Name)
	}
	if n.NoFlush || !n.rw {
		return nil
	}
	if err := unix.Fdatasync(int(n.f.Fd())); err != nil {
		return qerror.Errno(ErrIO, err, "Could not flush '%s'", n.filename)
	}
	return nil
}

// fileStatus is file-posix's block status: data where the file has data, zeroes in holes
// and past the end; a file node always decides its content.
func (n *Node) fileStatus(off, length int64) (Status, int64, error) {
	if n.f == nil {
		return 0, 0, errf(ErrIO, "tlcvm: node '%s' is closed", n.Name)
	}
	fd := int(n.f.Fd())
	data, err := unix.Seek(fd, off, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO): // no data from off to the end
		return StatusZero, length, nil
	case err != nil: // no SEEK_DATA: say data
		return StatusData, length, nil
	case data > off:
		return StatusZero, min(length, data-off), nil
	}
	hole, err := unix.Seek(fd, off, unix.SEEK_HOLE)
	if err != nil || hole <= off {
		return StatusData, length, nil
	}
	return StatusData, min(length, hole-off), nil
}

// Stats of the file driver (query-blockstats' driver-specific "file" member).
type FileStats struct {
	DiscardNbOK, DiscardNbFailed, DiscardBytesOK int64
}

// FileStats returns a file node's discard statistics.
func (n *Node) FileStats() FileStats {
	return FileStats{DiscardNbOK: n.discardOK.Load(), DiscardNbFailed: n.discardNo.Load(), DiscardBytesOK: n.discardB.Load()}
}

// pread and pwrite are a format driver's access to its file child (through a raw node to
// its file): no bounds, since the image grows as the driver writes; past the end reads
// zeroes. They take the child's lock (the parent's is held: parent before child).
func (n *Node) pread(p []byte, off int64) error {
	n.io.RLock()
	defer n.io.RUnlock()
	switch n.Driver {
	case DriverRaw, DriverBlkdebug:
		if err := n.debugCheck(off, int64(len(p)), ioRead); err != nil {
			return err
		}
		return n.File.pread(p, off)
	case DriverFile, DriverHostDevice:
		return n.fileRead(p, off)
	case DriverNBD:
		return n.nbdRead(p, off)
	case DriverNullCo, DriverNullAIO:
		return n.nullRead(p)
	}
	return errf(ErrUnsupported, "tlcvm: qcow2 images are read from file and raw nodes only")
}

func (n *Node) pwrite(p []byte, off int64) error {
	err := n.withWrite(false, func() error {
		switch n.Driver {
		case DriverRaw, DriverBlkdebug:
			if n.dbg != nil {
				n.debugEvent(evPwritev)
				defer n.debugEvent(evPwritevDone)
			}
			if err := n.debugCheck(off, int64(len(p)), ioWrite); err != nil {
				return err
			}
			return n.File.pwrite(p, off)
		case DriverFile, DriverHostDevice:
			return n.fileWrite(p, off)
		case DriverNBD:
			return n.nbdWrite(p, off)
		case DriverNullCo, DriverNullAIO:
			n.nullWait()
			return nil
		}
		return errf(ErrUnsupported, "tlcvm: qcow2 images are written to file and raw nodes only")
	})
	if err == nil {
		n.wrote(off, int64(len(p)))
	}
	return err
}

// hostSize is the length of the host file under n (a file node, or a raw node's file).
func (n *Node) hostSize() (int64, error) {
	n.io.RLock()
	defer n.io.RUnlock()
	if n.Driver == DriverRaw || n.Driver == DriverBlkdebug {
		return n.File.hostSize()
	}
	if n.remote != nil {
		return n.remote.size, nil
	}
	if n.null != nil {
		return n.Size(), nil
	}
	if n.f == nil {
		return 0, errf(ErrIO, "tlcvm: node '%s' is closed", n.Name)
	}
	st, err := n.f.Stat()
	if err != nil {
		return 0, qerror.Errno(ErrIO, err, "Could not stat '%s'", n.filename)
	}
	return st.Size(), nil
}
