package blockdev

import (
	"encoding/binary"
	"math/bits"
	"os"
	"syscall"

	"tlcvm/compat/qerror"
)

// Qcow2Create is BlockdevCreateOptionsQcow2 (qapi/block-core.json) less the file reference.
type Qcow2Create struct {
	Size            uint64
	Version         string // "v2" or "v3" (default)
	ClusterSize     uint64 // default 65536
	BackingFile     string
	BackingFormat   string
	LazyRefcounts   bool
	RefcountBits    uint64 // default 16
	ExtendedL2      bool
	CompressionType string // "zlib" (default) or "zstd"
	Preallocation   string // only "off"
	Encrypt         bool
	DataFile        bool
}

// check validates the options with qcow2_co_create's texts.
func (c *Qcow2Create) check() error {
	if c.Version == "" {
		c.Version = "v3"
	}
	if c.ClusterSize == 0 {
		c.ClusterSize = 65536
	}
	if c.RefcountBits == 0 {
		c.RefcountBits = 16
	}
	if c.CompressionType == "" {
		c.CompressionType = "zlib"
	}
	if c.Size%512 != 0 {
		return errf(ErrInvalid, "Image size must be a multiple of 512 bytes")
	}
	if c.ClusterSize < 512 || c.ClusterSize > 2<<20 || c.ClusterSize&(c.ClusterSize-1) != 0 {
		return errf(ErrInvalid, "Cluster size must be a power of two between 512 and 2048k")
	}
	if c.Version == "v2" && c.LazyRefcounts {
		return errf(ErrInvalid, "Lazy refcounts only supported with compatibility level 1.1 and above (use version=v3 or greater)")
	}
	if c.RefcountBits > 64 || c.RefcountBits&(c.RefcountBits-1) != 0 {
		return errf(ErrInvalid, "Refcount width must be a power of two and may not exceed 64 bits")
	}
	if c.Version == "v2" && c.RefcountBits != 16 {
		return errf(ErrInvalid, "Different refcount widths than 16 bits require compatibility level 1.1 or above (use version=v3 or greater)")
	}
	if c.BackingFormat != "" && c.BackingFile == "" {
		return errf(ErrInvalid, "Backing format cannot be used without backing file")
	}
	if c.ExtendedL2 && c.ClusterSize < 16384 {
		return errf(ErrInvalid, "Extended L2 entries are only supported with cluster sizes of at least 16 KiB")
	}
	if c.Version == "v2" && (c.ExtendedL2 || c.CompressionType != "zlib") {
		return errf(ErrInvalid, "Compression type can only be set with compatibility level 1.1 and above (use version=v3 or greater)")
	}
	if c.Encrypt {
		return errf(ErrEncrypted, "tlcvm: encrypted qcow2 images are not supported")
	}
	if c.DataFile {
		return errf(ErrUnsupported, "tlcvm: qcow2 images with an external data file are not supported")
	}
	if c.Preallocation != "" && c.Preallocation != "off" {
		return errf(ErrUnsupported, "tlcvm: qcow2 preallocation '%s' is not supported", c.Preallocation)
	}
	return nil
}

// writeQcow2 writes an empty qcow2 image to f, laid out byte for byte as QEMU 7.2's
// qcow2_co_create leaves it: the header cluster, the refcount table (cluster 1), one
// refcount block (cluster 2), then the L1 table, the file ending right after it.
func writeQcow2(f *os.File, c *Qcow2Create) error {
	if err := c.check(); err != nil {
		return err
	}
	cb := uint32(bits.TrailingZeros64(c.ClusterSize))
	cs := int64(c.ClusterSize)
	h := &Qcow2Header{
		Version:               3,
		ClusterBits:           cb,
		Size:                  c.Size,
		RefcountTableOffset:   uint64(cs),
		RefcountTableClusters: 1,
		RefcountOrder:         uint32(bits.TrailingZeros64(c.RefcountBits)),
		BackingFile:           c.BackingFile,
		BackingFormat:         c.BackingFormat,
	}
	if c.Version == "v2" {
		h.Version = 2
	}
	if c.LazyRefcounts {
		h.CompatibleFeatures |= compatLazyRefcounts
	}
	if c.ExtendedL2 {
		h.IncompatibleFeatures |= incompatExtendedL2
	}
	if c.CompressionType == "zstd" {
		h.IncompatibleFeatures |= incompatCompression
		h.CompressionType = 1
	}
	l1 := l1Entries(c.Size, cb, c.ExtendedL2)
	h.L1Size = uint32(l1)
	l1Bytes := int64(l1) * 8
	l1Clusters := (l1Bytes + cs - 1) / cs
	used := 3 + l1Clusters
	if l1 > 0 {
		h.L1TableOffset = uint64(3 * cs)
	} else {
		used = 3
	}
	perBlock := cs * 8 / int64(c.RefcountBits)
	if used > perBlock {
		return errf(ErrUnsupported, "tlcvm: image too large for a fresh qcow2 with these cluster and refcount sizes")
	}
	hdr := h.encode()
	if int64(len(hdr)) > cs {
		return errf(ErrInvalid, "Backing file name too long")
	}
	rt := make([]byte, 8)
	binary.BigEndian.PutUint64(rt, uint64(2*cs))
	rb := make([]byte, cs)
	for i := int64(0); i < used; i++ {
		setRefcount(rb, i, h.RefcountOrder, 1)
	}
	if err := f.Truncate(0); err != nil {
		return qerror.Errno(ErrIO, err, "Could not resize image")
	}
	end := 3 * cs
	if l1 > 0 {
		end += l1Bytes
	}
	// QEMU writes whole clusters for the header, the refcount table and block, so the
	// file's allocation (actual-size) is the same.
	hdrc := make([]byte, cs)
	copy(hdrc, hdr)
	rtc := make([]byte, cs)
	copy(rtc, rt)
	for _, w := range []struct {
		b   []byte
		off int64
	}{{hdrc, 0}, {rtc, cs}, {rb, 2 * cs}} {
		if _, err := f.WriteAt(w.b, w.off); err != nil {
			return qerror.Errno(ErrIO, err, "Could not write qcow2 header")
		}
	}
	if l1 > 0 {
		if _, err := f.WriteAt(make([]byte, l1Bytes), 3*cs); err != nil {
			return qerror.Errno(ErrIO, err, "Could not write L1 table")
		}
	}
	if err := f.Truncate(end); err != nil {
		return qerror.Errno(ErrIO, err, "Could not resize image")
	}
	return nil
}

// setRefcount stores v as entry i of a refcount block of 2^order-bit entries: sub-byte
// widths packed from the least significant bit, wider ones big-endian.
func setRefcount(block []byte, i int64, order uint32, v uint64) {
	width := int64(1) << order
	if width < 8 {
		bit := i * width
		mask := byte(1<<width-1) << (bit % 8)
		block[bit/8] = block[bit/8]&^mask | byte(v)<<(bit%8)&mask
		return
	}
	n := width / 8
	off := i * n
	for k := int64(0); k < n; k++ {
		block[off+n-1-k] = byte(v >> (8 * k))
	}
}

// getRefcount reads entry i (see setRefcount).
func getRefcount(block []byte, i int64, order uint32) uint64 {
	width := int64(1) << order
	if width < 8 {
		bit := i * width
		return uint64(block[bit/8]>>(bit%8)) & (1<<width - 1)
	}
	n := width / 8
	var v uint64
	for k := int64(0); k < n; k++ {
		v = v<<8 | uint64(block[i*n+k])
	}
	return v
}

// createFile is the "file" driver's blockdev-create: a host file of size bytes.
func createFile(filename string, size int64) error {
	f, err := os.OpenFile(filename, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return qerror.Errno(ErrOpen, err, "Could not create '%s'", filename)
	}
	defer f.Close()
	l := fileLock{fd: int(f.Fd())}
	if err := l.change(0, PermAll, PermWrite|PermResize, PermAll, filename); err != nil {
		return err
	}
	err = f.Truncate(0)
	if err == nil {
		err = f.Truncate(size)
	}
	if err != nil {
		return qerror.Errno(ErrIO, err, "Could not resize file")
	}
	// Like file-posix's allocate_first_block: write the first block so that alignment
	// probing finds it allocated.
	if size > 0 {
		n := int64(4096)
		if size < n {
			n = size
		}
		if _, err := f.WriteAt(make([]byte, n), 0); err != nil {
			return qerror.Errno(ErrIO, err, "Could not write file")
		}
	}
	return nil
}
