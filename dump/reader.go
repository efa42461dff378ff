package dump

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/golang/snappy"
)

// Readers of the formats this package writes: the tests' round trip, the end-to-end
// tests' comparison with QEMU's files, and a checker of the kdump format where
// makedumpfile and crash cannot go without a Linux kernel's symbols. Every length read is
// bounded; malformed input is an error wrapping ErrFormat, never a panic.

// ErrFormat is malformed dump input.
var ErrFormat = errors.New("dump: malformed file")

func bad(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, a...)...)
}

// Note is one ELF note.
type Note struct {
	Name string
	Type uint32
	Desc []byte
}

// Phdr is one program header.
type Phdr struct {
	Type                                uint32
	Offset, Vaddr, Paddr, Filesz, Memsz uint64
}

// ELFCore is the structure of an ELF core: what the differential tests compare.
type ELFCore struct {
	Class64        bool
	Machine        uint16
	Ehsize         uint16
	Phoff, Shoff   uint64
	Shnum, Shstrnd uint16
	Phdrs          []Phdr
	Notes          []Note
	Shstrtab       []byte
}

const maxHeaders = 1 << 16

// ReadELF parses the headers and notes of an ELF core of size bytes.
func ReadELF(r io.ReaderAt, size int64) (*ELFCore, error) {
	var id [16]byte
	if _, err := r.ReadAt(id[:], 0); err != nil || !bytes.Equal(id[:4], []byte("\x7fELF")) {
		return nil, bad("no ELF magic")
	}
	c := &ELFCore{Class64: id[4] == elfClass64}
	le := binary.LittleEndian
	hs := ehdr32Size
	if c.Class64 {
		hs = ehdr64Size
	}
	h := make([]byte, hs)
	if _, err := r.ReadAt(h, 0); err != nil {
		return nil, bad("short ELF header")
	}
	if le.Uint16(h[16:]) != etCore {
		return nil, bad("not a core file")
	}
	c.Machine = le.Uint16(h[18:])
	var phnum, phent, shent int
	if c.Class64 {
		c.Phoff, c.Shoff = le.Uint64(h[32:]), le.Uint64(h[40:])
		c.Ehsize, phent, phnum, shent = le.Uint16(h[52:]), int(le.Uint16(h[54:])), int(le.Uint16(h[56:])), int(le.Uint16(h[58:]))
		c.Shnum, c.Shstrnd = le.Uint16(h[60:]), le.Uint16(h[62:])
	} else {
		c.Phoff, c.Shoff = uint64(le.Uint32(h[28:])), uint64(le.Uint32(h[32:]))
		c.Ehsize, phent, phnum, shent = le.Uint16(h[40:]), int(le.Uint16(h[42:])), int(le.Uint16(h[44:])), int(le.Uint16(h[46:]))
		c.Shnum, c.Shstrnd = le.Uint16(h[48:]), le.Uint16(h[50:])
	}
	wantPh, wantSh := phdr32Size, shdr32Size
	if c.Class64 {
		wantPh, wantSh = phdr64Size, shdr64Size
	}
	if phent != wantPh || (c.Shnum > 0 && shent != wantSh) || phnum >= maxHeaders {
		return nil, bad("header sizes %d/%d", phent, shent)
	}
	ph := make([]byte, phnum*phent)
	if _, err := r.ReadAt(ph, int64(c.Phoff)); err != nil {
		return nil, bad("short program headers")
	}
	for i := 0; i < phnum; i++ {
		b := ph[i*phent:]
		var p Phdr
		if c.Class64 {
			p = Phdr{le.Uint32(b), le.Uint64(b[8:]), le.Uint64(b[16:]), le.Uint64(b[24:]), le.Uint64(b[32:]), le.Uint64(b[40:])}
		} else {
			p = Phdr{le.Uint32(b), uint64(le.Uint32(b[4:])), uint64(le.Uint32(b[8:])), uint64(le.Uint32(b[12:])), uint64(le.Uint32(b[16:])), uint64(le.Uint32(b[20:]))}
		}
		if p.Type == ptLoad && p.Filesz > 0 && (p.Offset > uint64(size) || p.Filesz > uint64(size)-p.Offset) {
			return nil, bad("PT_LOAD at 0x%x beyond the file", p.Offset)
		}
		c.Phdrs = append(c.Phdrs, p)
		if p.Type == ptNote {
			if p.Filesz > 1<<24 || p.Offset > uint64(size) || p.Filesz > uint64(size)-p.Offset {
				return nil, bad("PT_NOTE out of the file")
			}
			nb := make([]byte, p.Filesz)
			if _, err := r.ReadAt(nb, int64(p.Offset)); err != nil {
				return nil, bad("short notes")
			}
			notes, err := ParseNotes(nb)
			if err != nil {
				return nil, err
			}
			c.Notes = append(c.Notes, notes...)
		}
	}
	if c.Shnum > 1 && int(c.Shstrnd) < int(c.Shnum) && c.Shnum < 64 {
		sh := make([]byte, int(c.Shnum)*shent)
		if _, err := r.ReadAt(sh, int64(c.Shoff)); err != nil {
			return nil, bad("short section headers")
		}
		s := sh[int(c.Shstrnd)*shent:]
		var off, sz uint64
		if c.Class64 {
			off, sz = le.Uint64(s[24:]), le.Uint64(s[32:])
		} else {
			off, sz = uint64(le.Uint32(s[16:])), uint64(le.Uint32(s[20:]))
		}
		if sz > 4096 || off > uint64(size) || sz > uint64(size)-off {
			return nil, bad("section string table out of the file")
		}
		c.Shstrtab = make([]byte, sz)
		if _, err := r.ReadAt(c.Shstrtab, int64(off)); err != nil {
			return nil, bad("short section string table")
		}
	}
	return c, nil
}

// ParseNotes splits a PT_NOTE segment.
func ParseNotes(b []byte) ([]Note, error) {
	le := binary.LittleEndian
	var out []Note
	for len(b) > 0 {
		if len(b) < nhdrSize {
			return nil, bad("truncated note header")
		}
		nsz, dsz, typ := int(le.Uint32(b)), int(le.Uint32(b[4:])), le.Uint32(b[8:])
		b = b[nhdrSize:]
		if nsz > len(b) || align4(nsz) > len(b) || dsz > len(b)-align4(nsz) {
			return nil, bad("note sizes %d/%d", nsz, dsz)
		}
		name := string(bytes.TrimRight(b[:nsz], "\x00"))
		b = b[align4(nsz):]
		desc := b[:dsz]
		b = b[min(align4(dsz), len(b)):]
		out = append(out, Note{Name: name, Type: typ, Desc: desc})
	}
	return out, nil
}

// Unflatten rearranges a makedumpfile flattened stream into the standard file it
// describes (what `makedumpfile -R` does), up to max bytes.
func Unflatten(r io.Reader, max int64) ([]byte, error) {
	h := make([]byte, flatHeaderSize)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, bad("short flat header")
	}
	if !bytes.Equal(h[:13], []byte("makedumpfile\x00")) || binary.BigEndian.Uint64(h[16:]) != 1 || binary.BigEndian.Uint64(h[24:]) != 1 {
		return nil, bad("not a makedumpfile flattened stream")
	}
	var out []byte
	for {
		var rec [16]byte
		if _, err := io.ReadFull(r, rec[:]); err != nil {
			return nil, bad("missing end record")
		}
		off, n := int64(binary.BigEndian.Uint64(rec[:])), int64(binary.BigEndian.Uint64(rec[8:]))
		if off == -1 && n == -1 {
			return out, nil
		}
		if off < 0 || n < 0 || n > 1<<24 || off > max || n > max-off {
			return nil, bad("record at %d of %d bytes", off, n)
		}
		if int64(len(out)) < off+n {
			out = append(out, make([]byte, off+n-int64(len(out)))...)
		}
		if _, err := io.ReadFull(r, out[off:off+n]); err != nil {
			return nil, bad("short record")
		}
	}
}

// Kdump is a parsed kdump-compressed (diskdump) file.
type Kdump struct {
	Class64       bool
	HeaderVersion uint32
	Machine       string
	Status        uint32
	BlockSize     uint32
	SubHdrSize    uint32
	BitmapBlocks  uint32
	MaxMapnr      uint64
	NrCPUs        uint32
	DumpLevel     uint32
	OffsetNote    uint64
	NoteSize      uint64
	Notes         []Note
	Bitmap1       []byte
	Bitmap2       []byte
	file          []byte
	offsetPage    uint64
	index         map[uint64]int // pfn → index of its descriptor
}

// ReadKdump parses the headers, notes and bitmaps of a kdump-compressed file and checks
// the format's invariants (makedumpfile's read_disk_dump_header checks and more).
func ReadKdump(f []byte) (*Kdump, error) {
	le := binary.LittleEndian
	if len(f) < dhSize32 || string(f[:8]) != "KDUMP   " {
		return nil, bad("no KDUMP signature")
	}
	k := &Kdump{file: f, HeaderVersion: le.Uint32(f[8:])}
	k.Machine = string(bytes.TrimRight(f[12+65*4:12+65*5], "\x00"))
	// The 64-bit header's timestamp is 22 bytes, the 32-bit one's 10: the block size
	// (a power of two) tells them apart.
	st := 12 + 390 + 22
	if bs := le.Uint32(f[st+4:]); bs != PageSize {
		st = 12 + 390 + 10
	} else {
		k.Class64 = true
	}
	k.Status, k.BlockSize, k.SubHdrSize = le.Uint32(f[st:]), le.Uint32(f[st+4:]), le.Uint32(f[st+8:])
	k.BitmapBlocks, k.NrCPUs = le.Uint32(f[st+12:]), le.Uint32(f[st+36:])
	if k.HeaderVersion != 6 || k.BlockSize != PageSize || k.SubHdrSize == 0 || k.SubHdrSize > 1024 {
		return nil, bad("header version %d, block size %d, sub header %d", k.HeaderVersion, k.BlockSize, k.SubHdrSize)
	}
	bs := uint64(k.BlockSize)
	if uint64(len(f)) < 2*bs {
		return nil, bad("no sub header")
	}
	kh := f[bs:]
	if k.Class64 {
		k.DumpLevel, k.OffsetNote, k.NoteSize, k.MaxMapnr = le.Uint32(kh[8:]), le.Uint64(kh[48:]), le.Uint64(kh[56:]), le.Uint64(kh[96:])
	} else {
		k.DumpLevel, k.OffsetNote, k.NoteSize, k.MaxMapnr = le.Uint32(kh[4:]), le.Uint64(kh[32:]), uint64(le.Uint32(kh[40:])), le.Uint64(kh[72:])
	}
	subEnd := (1 + uint64(k.SubHdrSize)) * bs
	if k.OffsetNote < bs || k.NoteSize > subEnd || k.OffsetNote > subEnd-k.NoteSize || subEnd > uint64(len(f)) {
		return nil, bad("notes at 0x%x (%d bytes) outside the sub header", k.OffsetNote, k.NoteSize)
	}
	notes, err := ParseNotes(f[k.OffsetNote : k.OffsetNote+k.NoteSize])
	if err != nil {
		return nil, err
	}
	k.Notes = notes
	lenBitmap := uint64(k.BitmapBlocks) / 2 * bs
	if k.BitmapBlocks%2 != 0 || lenBitmap*8 < k.MaxMapnr || lenBitmap > 1<<30 {
		return nil, bad("%d bitmap blocks for %d pages", k.BitmapBlocks, k.MaxMapnr)
	}
	bm := subEnd
	k.offsetPage = bm + 2*lenBitmap
	if k.offsetPage > uint64(len(f)) {
		return nil, bad("bitmaps beyond the file")
	}
	k.Bitmap1, k.Bitmap2 = f[bm:bm+lenBitmap], f[bm+lenBitmap:k.offsetPage]
	k.index = map[uint64]int{}
	n := 0
	for pfn := uint64(0); pfn < k.MaxMapnr; pfn++ {
		if k.Bitmap2[pfn/8]&(1<<(pfn%8)) != 0 {
			k.index[pfn] = n
			n++
		}
	}
	if k.offsetPage+uint64(n)*pageDescSize > uint64(len(f)) {
		return nil, bad("%d page descriptors beyond the file", n)
	}
	return k, nil
}

// Dumpable reports whether pfn is in the dump (its bit in the second bitmap).
func (k *Kdump) Dumpable(pfn uint64) bool { _, ok := k.index[pfn]; return ok }

// PageDesc is one page descriptor.
type PageDesc struct {
	Offset uint64
	Size   uint32
	Flags  uint32
}

// Desc returns pfn's page descriptor.
func (k *Kdump) Desc(pfn uint64) (PageDesc, bool) {
	i, ok := k.index[pfn]
	if !ok {
		return PageDesc{}, false
	}
	b := k.file[k.offsetPage+uint64(i)*pageDescSize:]
	le := binary.LittleEndian
	return PageDesc{le.Uint64(b), le.Uint32(b[8:]), le.Uint32(b[12:])}, true
}

// Page returns pfn's content, decompressed.
func (k *Kdump) Page(pfn uint64) ([]byte, error) {
	d, ok := k.Desc(pfn)
	if !ok {
		return nil, bad("pfn 0x%x is not dumped", pfn)
	}
	if d.Size > PageSize || d.Offset > uint64(len(k.file)) || uint64(d.Size) > uint64(len(k.file))-d.Offset {
		return nil, bad("pfn 0x%x: data at 0x%x of %d bytes", pfn, d.Offset, d.Size)
	}
	data := k.file[d.Offset : d.Offset+uint64(d.Size)]
	var out []byte
	var err error
	switch d.Flags {
	case 0:
		if d.Size != PageSize {
			return nil, bad("pfn 0x%x: %d bytes stored uncompressed", pfn, d.Size)
		}
		return data, nil
	case dhCompressZlib:
		var zr io.ReadCloser
		if zr, err = zlib.NewReader(bytes.NewReader(data)); err == nil {
			out, err = io.ReadAll(io.LimitReader(zr, PageSize+1))
		}
	case dhCompressLZO:
		out, err = lzoDecompress(data, PageSize)
	case dhCompressSnap:
		var n int
		if n, err = snappy.DecodedLen(data); err == nil && n == PageSize {
			out, err = snappy.Decode(nil, data)
		}
	default:
		return nil, bad("pfn 0x%x: flags 0x%x", pfn, d.Flags)
	}
	if err != nil || len(out) != PageSize {
		return nil, bad("pfn 0x%x: %d bytes decompressed (%v)", pfn, len(out), err)
	}
	return out, nil
}
