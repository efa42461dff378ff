package blockdev

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// qcow2 on-disk constants (docs/interop/qcow2.txt in QEMU).
const (
	qcow2Magic        = 0x514649fb // "QFI\xfb"
	qcow2HeaderV2Len  = 72
	qcow2HeaderV3Len  = 104
	qcow2MaxHeader    = 2 << 20 // largest cluster: 2 MiB, the header never exceeds one
	extEnd            = 0x00000000
	extBackingFormat  = 0xe2792aca
	extFeatureTable   = 0x6803f857
	extBitmaps        = 0x23852875
	extCrypto         = 0x0537be77
	extDataFile       = 0x44415441
	maxBackingNameLen = 1023

	// Incompatible feature bits.
	incompatDirty       = 1 << 0
	incompatCorrupt     = 1 << 1
	incompatDataFile    = 1 << 2
	incompatCompression = 1 << 3
	incompatExtendedL2  = 1 << 4
	incompatMask        = incompatDirty | incompatCorrupt | incompatDataFile | incompatCompression | incompatExtendedL2

	// Compatible feature bits.
	compatLazyRefcounts = 1 << 0

	cryptNone = 0
	cryptAES  = 1
	cryptLUKS = 2
)

// Qcow2Header is a qcow2 image header with what its extensions say (see doc.go for the
// layout). Fields are host-endian copies of the big-endian on-disk values.
type Qcow2Header struct {
	Version               uint32
	BackingFileOffset     uint64
	BackingFileSize       uint32
	ClusterBits           uint32
	Size                  uint64 // virtual disk size in bytes
	CryptMethod           uint32
	L1Size                uint32
	L1TableOffset         uint64
	RefcountTableOffset   uint64
	RefcountTableClusters uint32
	NbSnapshots           uint32
	SnapshotsOffset       uint64
	IncompatibleFeatures  uint64
	CompatibleFeatures    uint64
	AutoclearFeatures     uint64
	RefcountOrder         uint32
	HeaderLength          uint32
	CompressionType       uint8

	// From the header extensions and the backing file name area.
	BackingFile   string
	BackingFormat string
	// Features is the feature name table: key "type:bit" (type 0 incompatible,
	// 1 compatible, 2 autoclear) to name.
	Features map[string]string
	// DataFile is the external data file name extension, if any.
	DataFile string
	// Bitmaps is the bitmaps extension (bitmap_qcow2.go), zero when the image has none
	// or when StaleBitmaps: the extension is there but the autoclear bit is not (a
	// program that does not know bitmaps wrote the image; QEMU then ignores them).
	Bitmaps      BitmapsExt
	StaleBitmaps bool
	// unknown keeps the extensions tlcvm does not interpret, rewritten as they were.
	unknown []rawExt
}

// rawExt is a header extension kept as read.
type rawExt struct {
	typ  uint32
	data []byte
}

// ClusterSize is 1 << ClusterBits.
func (h *Qcow2Header) ClusterSize() int64 { return 1 << h.ClusterBits }

// Dirty reports the dirty bit (the image was not closed cleanly; lazy refcounts).
func (h *Qcow2Header) Dirty() bool { return h.IncompatibleFeatures&incompatDirty != 0 }

// Corrupt reports the corrupt bit.
func (h *Qcow2Header) Corrupt() bool { return h.IncompatibleFeatures&incompatCorrupt != 0 }

// LazyRefcounts reports the lazy refcounts compatible feature.
func (h *Qcow2Header) LazyRefcounts() bool { return h.CompatibleFeatures&compatLazyRefcounts != 0 }

// ExtendedL2 reports the extended L2 entries incompatible feature.
func (h *Qcow2Header) ExtendedL2() bool { return h.IncompatibleFeatures&incompatExtendedL2 != 0 }

// Compression returns the compression type name ("zlib" or "zstd").
func (h *Qcow2Header) Compression() string {
	if h.CompressionType == 1 {
		return "zstd"
	}
	return "zlib"
}

// Compat is the compat level qemu-img names: "0.10" for version 2, "1.1" for version 3.
func (h *Qcow2Header) Compat() string {
	if h.Version == 2 {
		return "0.10"
	}
	return "1.1"
}

// ReadQcow2Header reads and checks the header of a qcow2 image of fileSize bytes, as QEMU
// 7.2's qcow2_do_open does before it trusts the image, with its error texts. writable says
// whether the image is to be opened read-write (a corrupt image may then not be opened).
func ReadQcow2Header(r io.ReaderAt, fileSize int64, writable bool) (*Qcow2Header, error) {
	var b [qcow2HeaderV3Len]byte
	n, err := r.ReadAt(b[:], 0)
	if n < qcow2HeaderV2Len && err != nil {
		if err == io.EOF {
			return nil, errf(ErrFormat, "Image is not in qcow2 format")
		}
		return nil, errf(ErrIO, "Could not read qcow2 header: %v", err)
	}
	be := binary.BigEndian
	if be.Uint32(b[0:]) != qcow2Magic {
		return nil, errf(ErrFormat, "Image is not in qcow2 format")
	}
	h := &Qcow2Header{
		Version:               be.Uint32(b[4:]),
		BackingFileOffset:     be.Uint64(b[8:]),
		BackingFileSize:       be.Uint32(b[16:]),
		ClusterBits:           be.Uint32(b[20:]),
		Size:                  be.Uint64(b[24:]),
		CryptMethod:           be.Uint32(b[32:]),
		L1Size:                be.Uint32(b[36:]),
		L1TableOffset:         be.Uint64(b[40:]),
		RefcountTableOffset:   be.Uint64(b[48:]),
		RefcountTableClusters: be.Uint32(b[56:]),
		NbSnapshots:           be.Uint32(b[60:]),
		SnapshotsOffset:       be.Uint64(b[64:]),
	}
	if h.Version < 2 || h.Version > 3 {
		return nil, errf(ErrUnsupported, "Unsupported qcow2 version %d", h.Version)
	}
	if h.ClusterBits < 9 || h.ClusterBits > 21 {
		return nil, errf(ErrUnsupported, "Unsupported cluster size: 2^%d", h.ClusterBits)
	}
	cluster := h.ClusterSize()
	if h.Version == 2 {
		h.RefcountOrder = 4
		h.HeaderLength = qcow2HeaderV2Len
	} else {
		if n < qcow2HeaderV3Len {
			return nil, errf(ErrFormat, "qcow2 header too short")
		}
		h.IncompatibleFeatures = be.Uint64(b[72:])
		h.CompatibleFeatures = be.Uint64(b[80:])
		h.AutoclearFeatures = be.Uint64(b[88:])
		h.RefcountOrder = be.Uint32(b[96:])
		h.HeaderLength = be.Uint32(b[100:])
		if h.HeaderLength < qcow2HeaderV3Len {
			return nil, errf(ErrFormat, "qcow2 header too short")
		}
	}
	if int64(h.HeaderLength) > cluster {
		return nil, errf(ErrFormat, "qcow2 header exceeds cluster size")
	}
	if h.HeaderLength > qcow2HeaderV3Len {
		var ct [1]byte
		if _, err := r.ReadAt(ct[:], qcow2HeaderV3Len); err != nil {
			return nil, errf(ErrIO, "Could not read qcow2 header: %v", err)
		}
		h.CompressionType = ct[0]
	}
	if h.BackingFileOffset > uint64(cluster) {
		return nil, errf(ErrFormat, "Invalid backing file offset")
	}
	extEndOff := uint64(cluster)
	if h.BackingFileOffset != 0 {
		extEndOff = h.BackingFileOffset
	}
	if err := h.readExtensions(r, uint64(h.HeaderLength), extEndOff); err != nil {
		return nil, err
	}
	if unk := h.IncompatibleFeatures &^ incompatMask; unk != 0 {
		return nil, errf(ErrUnsupported, "Unsupported qcow2 feature(s): %s", h.featureList(unk))
	}
	if h.Corrupt() && writable {
		return nil, errf(ErrFormat, "qcow2: Image is corrupt; cannot be opened read/write")
	}
	if h.RefcountOrder > 6 {
		return nil, errf(ErrUnsupported, "Reference count entry width too large; may not exceed 64 bits")
	}
	if h.IncompatibleFeatures&incompatCompression != 0 {
		if h.CompressionType > 1 {
			return nil, errf(ErrUnsupported, "qcow2: unknown compression type: %d", h.CompressionType)
		}
	} else if h.CompressionType != 0 {
		return nil, errf(ErrFormat, "qcow2: Compression type incompatible feature bit must be set if compression type is not zlib")
	}
	switch h.CryptMethod {
	case cryptNone:
	case cryptAES:
		return nil, errf(ErrEncrypted, "Use of AES-CBC encrypted qcow2 images is no longer supported in system emulators").
			AppendHint("You can use 'qemu-img convert' to convert your image to an alternative supported format, such as unencrypted qcow2, or raw with the LUKS format instead.\n")
	case cryptLUKS:
		return nil, errf(ErrEncrypted, "tlcvm: LUKS-encrypted qcow2 images are not supported")
	default:
		return nil, errf(ErrUnsupported, "Unsupported encryption method: %d", h.CryptMethod)
	}
	if h.IncompatibleFeatures&incompatDataFile != 0 || h.DataFile != "" {
		return nil, errf(ErrUnsupported, "tlcvm: qcow2 images with an external data file are not supported")
	}
	if h.ExtendedL2() {
		// Extended L2 entries need clusters of at least 16 KiB (QEMU: "The cluster size
		// must be at least 16 KiB with extended L2 entries" on create only).
		_ = cluster
	}
	// L1 table: QEMU's limits (QCOW_MAX_L1_SIZE 32 MiB) and alignment.
	if uint64(h.L1Size)*8 > 32<<20 {
		return nil, errf(ErrFormat, "Active L1 table too large")
	}
	l2Bits := h.ClusterBits - 3
	if h.ExtendedL2() {
		l2Bits--
	}
	shift := uint64(h.ClusterBits + l2Bits)
	if shift < 64 {
		need := (h.Size + (1<<shift - 1)) >> shift
		if h.Size > 1<<62 || need > uint64(h.L1Size) {
			return nil, errf(ErrFormat, "L1 table is too small")
		}
	}
	if h.L1Size > 0 && h.L1TableOffset%uint64(cluster) != 0 {
		return nil, errf(ErrFormat, "Invalid L1 table offset")
	}
	if h.RefcountTableClusters == 0 || h.RefcountTableOffset%uint64(cluster) != 0 {
		return nil, errf(ErrFormat, "Invalid reference count table offset")
	}
	if h.BackingFileOffset != 0 {
		l := uint64(h.BackingFileSize)
		if l > maxBackingNameLen || l > uint64(cluster)-h.BackingFileOffset {
			return nil, errf(ErrFormat, "Backing file name too long")
		}
		name := make([]byte, l)
		if _, err := r.ReadAt(name, int64(h.BackingFileOffset)); err != nil && l > 0 {
			return nil, errf(ErrIO, "Could not read backing file name: %v", err)
		}
		h.BackingFile = string(name)
	}
	_ = fileSize
	return h, nil
}

// readExtensions walks the header extensions between off and end.
func (h *Qcow2Header) readExtensions(r io.ReaderAt, off, end uint64) error {
	be := binary.BigEndian
	for off+8 <= end {
		var hdr [8]byte
		if _, err := r.ReadAt(hdr[:], int64(off)); err != nil {
			return errf(ErrFormat, "qcow2_read_extension: ERROR: pread fail from offset %d", off)
		}
		typ, l := be.Uint32(hdr[0:]), uint64(be.Uint32(hdr[4:]))
		off += 8
		if typ == extEnd {
			return nil
		}
		if l > end-off {
			return errf(ErrFormat, "Header extension too large")
		}
		data := make([]byte, l)
		if l > 0 {
			if _, err := r.ReadAt(data, int64(off)); err != nil {
				return errf(ErrFormat, "ERROR: ext: Could not read extension data")
			}
		}
		switch typ {
		case extBackingFormat:
			if l >= 32 {
				return errf(ErrFormat, "ERROR: ext_backing_format: len=%d too large (>=32)", l)
			}
			h.BackingFormat = string(data)
		case extFeatureTable:
			h.Features = map[string]string{}
			for i := 0; i+48 <= len(data); i += 48 {
				name := string(data[i+2 : i+48])
				if j := strings.IndexByte(name, 0); j >= 0 {
					name = name[:j]
				}
				h.Features[fmt.Sprintf("%d:%d", data[i], data[i+1])] = name
			}
		case extDataFile:
			h.DataFile = string(data)
		case extBitmaps:
			if err := h.readBitmapsExt(data); err != nil {
				return err
			}
		case extCrypto:
		default:
			h.unknown = append(h.unknown, rawExt{typ, data})
		}
		off += (l + 7) &^ 7
	}
	return nil
}

// featureList names unknown incompatible feature bits as QEMU's report_unsupported_feature.
func (h *Qcow2Header) featureList(mask uint64) string {
	var parts []string
	for bit := 0; bit < 64; bit++ {
		if mask&(1<<bit) == 0 {
			continue
		}
		if name, ok := h.Features[fmt.Sprintf("0:%d", bit)]; ok {
			parts = append(parts, name)
			mask &^= 1 << bit
		}
	}
	if mask != 0 {
		parts = append(parts, fmt.Sprintf("Unknown incompatible feature: %x", mask))
	}
	return strings.Join(parts, ", ")
}

// qcow2FeatureTable is the feature name table QEMU 7.2 writes into version 3 images.
var qcow2FeatureTable = []struct {
	typ, bit byte
	name     string
}{
	{0, 0, "dirty bit"}, {0, 1, "corrupt bit"}, {0, 2, "external data file"},
	{0, 3, "compression type"}, {0, 4, "extended L2 entries"},
	{1, 0, "lazy refcounts"}, {2, 0, "bitmaps"}, {2, 1, "raw external data"},
}

// encode returns the header cluster's meaningful bytes: the fixed header, the extensions
// (backing format, then for version 3 the feature table), the end marker and the backing
// file name, laid out as QEMU's qcow2_update_header does. It sets BackingFileOffset and
// BackingFileSize.
func (h *Qcow2Header) encode() []byte {
	be := binary.BigEndian
	hl := uint32(qcow2HeaderV2Len)
	if h.Version >= 3 {
		hl = qcow2HeaderV3Len + 8 // compression type byte, padded to 8
	}
	h.HeaderLength = hl
	buf := make([]byte, hl)
	var ext []byte
	putExt := func(typ uint32, data []byte) {
		var x [8]byte
		be.PutUint32(x[0:], typ)
		be.PutUint32(x[4:], uint32(len(data)))
		ext = append(ext, x[:]...)
		ext = append(ext, data...)
		for len(ext)%8 != 0 {
			ext = append(ext, 0)
		}
	}
	if h.BackingFile != "" && h.BackingFormat != "" {
		putExt(extBackingFormat, []byte(h.BackingFormat))
	}
	if h.Version >= 3 && h.ClusterBits > 12 { // QEMU leaves the table out of clusters of 4 KiB or less
		var t []byte
		for _, f := range qcow2FeatureTable {
			e := make([]byte, 48)
			e[0], e[1] = f.typ, f.bit
			copy(e[2:], f.name)
			t = append(t, e...)
		}
		putExt(extFeatureTable, t)
	}
	if h.Bitmaps.NbBitmaps > 0 {
		putExt(extBitmaps, h.Bitmaps.encode())
	}
	for _, u := range h.unknown {
		putExt(u.typ, u.data)
	}
	ext = append(ext, make([]byte, 8)...) // end of extensions
	h.BackingFileOffset, h.BackingFileSize = 0, 0
	if h.BackingFile != "" {
		h.BackingFileOffset = uint64(hl) + uint64(len(ext))
		h.BackingFileSize = uint32(len(h.BackingFile))
	}
	be.PutUint32(buf[0:], qcow2Magic)
	be.PutUint32(buf[4:], h.Version)
	be.PutUint64(buf[8:], h.BackingFileOffset)
	be.PutUint32(buf[16:], h.BackingFileSize)
	be.PutUint32(buf[20:], h.ClusterBits)
	be.PutUint64(buf[24:], h.Size)
	be.PutUint32(buf[32:], h.CryptMethod)
	be.PutUint32(buf[36:], h.L1Size)
	be.PutUint64(buf[40:], h.L1TableOffset)
	be.PutUint64(buf[48:], h.RefcountTableOffset)
	be.PutUint32(buf[56:], h.RefcountTableClusters)
	be.PutUint32(buf[60:], h.NbSnapshots)
	be.PutUint64(buf[64:], h.SnapshotsOffset)
	if h.Version >= 3 {
		be.PutUint64(buf[72:], h.IncompatibleFeatures)
		be.PutUint64(buf[80:], h.CompatibleFeatures)
		be.PutUint64(buf[88:], h.AutoclearFeatures)
		be.PutUint32(buf[96:], h.RefcountOrder)
		be.PutUint32(buf[100:], hl)
		buf[104] = h.CompressionType
	}
	out := append(buf, ext...)
	return append(out, h.BackingFile...)
}

// l1Entries is the number of L1 entries a disk of size bytes needs.
func l1Entries(size uint64, clusterBits uint32, extendedL2 bool) uint64 {
	l2Bits := clusterBits - 3
	if extendedL2 {
		l2Bits--
	}
	shift := clusterBits + l2Bits
	return (size + (1 << shift) - 1) >> shift
}
