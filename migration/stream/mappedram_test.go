package stream_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"tlcvm/migration/stream"
)

// writeMapped saves m in the mapped-ram layout into a new file whose stream starts at
// base (the bytes before are filled with 0xee) and returns the file's path.
func writeMapped(t testing.TB, m *machine, base uint64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mapped.mig")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(bytes.Repeat([]byte{0xee}, int(base))); err != nil {
		t.Fatal(err)
	}
	m.saveTo(t, stream.NewMappedWriter(f, base, m.typ))
	return path
}

// loadMapped reads a mapped-ram file with NewFileReader and ReadMapped.
func loadMapped(t testing.TB, path string, base uint64) (*loaded, []string, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(int64(base), io.SeekStart); err != nil {
		t.Fatal(err)
	}
	l, caps, err := loadMappedFrom(f, base)
	return l, caps, err
}

func loadMappedFrom(f interface {
	io.ReadSeeker
	io.ReaderAt
}, base uint64) (*loaded, []string, error) {
	rd := stream.NewFileReader(f, base)
	l := &loaded{}
	var caps []string
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return l, caps, err
		}
		l.kinds = append(l.kinds, rec.Kind)
		switch rec.Kind {
		case stream.Config:
			l.typ, caps = rec.MachineType, rec.Capabilities
		case stream.RAMBlocks:
			l.blocks = rec.Blocks
			l.mem = make([][]byte, len(rec.Blocks))
			if len(rec.Mapped) != len(rec.Blocks) {
				return l, caps, errors.New("RAMBlocks without Mapped")
			}
			for _, mb := range rec.Mapped {
				if mb.PagesOffset%stream.MappedAlign != 0 {
					return l, caps, errors.New("pages not 1 MiB aligned")
				}
			}
		case stream.Page, stream.ZeroPage:
			return l, caps, errors.New("page record in a mapped-ram stream")
		case stream.Device:
			l.devices = append(l.devices, device{rec.IDStr, rec.Instance, rec.Version, rec.State})
		case stream.End:
			l.end = true
		}
	}
	for i := range l.blocks {
		mem := l.block(i)
		err := rd.ReadMapped(f, i, func(p uint64, data []byte) {
			if mem != nil && data != nil {
				copy(mem[p*stream.PageSize:], data)
			}
		})
		if err != nil {
			return l, caps, err
		}
	}
	return l, caps, nil
}

func TestMappedRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		base  uint64
		sizes []uint64
	}{
		{"one block", 0, []uint64{64 << 10}},
		{"blocks not chunk multiples", 0, []uint64{(2 << 20) + 12<<10, 12 << 10, 1 << 20}},
		{"offset", 4096 + 7, []uint64{3 << 20, 4096}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(7, tc.sizes...)
			path := writeMapped(t, m, tc.base)
			l, caps, err := loadMapped(t, path, tc.base)
			if err != nil {
				t.Fatal(err)
			}
			if !l.end || l.typ != m.typ || len(caps) != 1 || caps[0] != stream.CapMappedRAM {
				t.Fatalf("end %v type %q caps %v", l.end, l.typ, caps)
			}
			for i := range m.mem {
				if !bytes.Equal(l.mem[i], m.mem[i]) {
					t.Errorf("block %d differs", i)
				}
			}
			if len(l.devices) != len(m.devices) {
				t.Errorf("%d devices, want %d (the digest table is not a device)", len(l.devices), len(m.devices))
			}
			raw, _ := os.ReadFile(path)
			if !bytes.Equal(raw[:tc.base], bytes.Repeat([]byte{0xee}, int(tc.base))) {
				t.Error("bytes before the offset changed")
			}
		})
	}
}

// TestMappedLayout checks QEMU 9.0's MappedRamHeader after the block's idstr and size.
func TestMappedLayout(t *testing.T) {
	m := newMachine(1, 8192)
	path := writeMapped(t, m, 0)
	raw, _ := os.ReadFile(path)
	i := bytes.Index(raw, []byte("\x06pc.ram"))
	if i < 0 {
		t.Fatal("block name not found")
	}
	h := raw[i+7+8:]
	version, ps := binary.BigEndian.Uint32(h), binary.BigEndian.Uint64(h[4:])
	bm, po := binary.BigEndian.Uint64(h[12:]), binary.BigEndian.Uint64(h[20:])
	hdrOff := uint64(i + 7 + 8)
	if version != 1 || ps != 4096 || bm != hdrOff+28 || po != 1<<20 {
		t.Fatalf("header version %d page size %d bitmap 0x%x pages 0x%x (header at 0x%x)", version, ps, bm, po, hdrOff)
	}
	if !bytes.Contains(raw[:100], []byte("\x05\x1aconfiguration/capabilities\x00\x00\x00\x01\x00\x00\x00\x01\x0amapped-ram")) {
		t.Error("configuration without the capabilities subsection")
	}
	// The bitmap (little-endian words) has the non-zero pages of the final memory.
	word := binary.LittleEndian.Uint64(raw[bm:])
	for p := uint64(0); p < 2; p++ {
		nonZero := !stream.IsZero(m.page(0, p*4096))
		if got := word&(1<<p) != 0; got != nonZero {
			t.Errorf("page %d: bit %v, non-zero %v", p, got, nonZero)
		}
	}
	if page := raw[po : po+4096]; word&1 != 0 && !bytes.Equal(page, m.page(0, 0)) {
		t.Error("page 0 not at pages_offset")
	}
}

// TestMappedBounded: passes that rewrite every page leave the file the same size.
func TestMappedBounded(t *testing.T) {
	size := func(passes int) int64 {
		m := newMachine(3, 1<<20)
		path := filepath.Join(t.TempDir(), "f")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		w := stream.NewMappedWriter(f, 0, m.typ)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(w.Begin())
		must(w.RAMSetup(m.blocks))
		for range passes {
			must(w.RAMIterBegin())
			for off := uint64(0); off < m.blocks[0].Size; off += 4096 {
				must(w.RAMPage("pc.ram", off, m.page(0, off)))
			}
			must(w.RAMIterEnd())
		}
		must(w.RAMComplete())
		must(w.RAMIterEnd())
		must(w.Finish(nil))
		st, _ := f.Stat()
		return st.Size()
	}
	one, five := size(1), size(5)
	if five-one > 4*18 { // only the PART framing grows (18 bytes a pass)
		t.Errorf("1 pass: %d bytes, 5 passes: %d", one, five)
	}
	if one > 3<<20 {
		t.Errorf("file of %d bytes for 1 MiB of RAM", one)
	}
}

// TestMappedDamage: any flipped byte of the stream, bitmaps or pages, and any cut, is
// refused before ReadMapped has handed over a page of the damaged chunk.
func TestMappedDamage(t *testing.T) {
	m := newMachine(5, 2<<20, 8192)
	path := writeMapped(t, m, 0)
	good, _ := os.ReadFile(path)
	f, _ := os.Open(path)
	rd := stream.NewFileReader(f, 0)
	var mapped []stream.MappedBlock
	for {
		rec, err := rd.Next()
		if err != nil {
			break
		}
		if rec.Kind == stream.RAMBlocks {
			mapped = rec.Mapped
		}
	}
	f.Close()
	pageAt := mapped[0].PagesOffset + 5*4096
	for p := uint64(5); stream.IsZero(m.page(0, p*4096)); p++ {
		pageAt += 4096
	}
	offsets := map[string]uint64{
		"magic": 0, "configuration": 20, "header of block 2": mapped[1].BitmapOffset - 3,
		"bitmap": mapped[0].BitmapOffset, "page": pageAt + 100, "last page": mapped[1].PagesOffset + 4096 + 7,
		"device": uint64(len(good)) - 900, "vmdesc": uint64(len(good)) - 3,
	}
	for name, off := range offsets {
		t.Run("flip "+name, func(t *testing.T) {
			bad := bytes.Clone(good)
			bad[off] ^= 0x10
			_, _, err := loadMappedFrom(bytes.NewReader(bad), 0)
			if !isStreamErr(err) {
				if name == "last page" && err == nil {
					t.Skip("absent page") // a byte of an absent page is not part of the checkpoint
				}
				t.Fatalf("flip at 0x%x: %v", off, err)
			}
		})
	}
	for _, cut := range []uint64{1, 100, mapped[0].PagesOffset + 4096, mapped[1].PagesOffset - 1, uint64(len(good)) - 1} {
		_, _, err := loadMappedFrom(bytes.NewReader(good[:len(good)-int(cut)]), 0)
		if !isStreamErr(err) {
			t.Errorf("cut %d bytes: %v", cut, err)
		}
	}
}

// TestMappedNeedsSeek: a mapped-ram stream read from a pipe is refused.
func TestMappedNeedsSeek(t *testing.T) {
	m := newMachine(1, 8192)
	raw, _ := os.ReadFile(writeMapped(t, m, 0))
	_, err := load(bytes.NewReader(raw))
	if !errors.Is(err, stream.ErrFormat) {
		t.Fatalf("NewReader on mapped-ram: %v", err)
	}
	// And a sequential stream still reads through NewFileReader.
	seq := m.stream(t)
	rd := stream.NewFileReader(bytes.NewReader(seq), 0)
	for {
		rec, err := rd.Next()
		if err != nil {
			t.Fatal(err)
		}
		if rec.Kind == stream.End {
			break
		}
	}
	if rd.Mapped() {
		t.Error("sequential stream reported mapped")
	}
}

// FuzzMappedReader: arbitrary bytes through NewFileReader and ReadMapped never panic and
// fail only with the Reader's sentinels.
func FuzzMappedReader(f *testing.F) {
	m := newMachine(9, 8192, 4096)
	dir := f.TempDir()
	path := filepath.Join(dir, "seed")
	fh, _ := os.Create(path)
	m.saveTo(f, stream.NewMappedWriter(fh, 0, m.typ))
	fh.Close()
	seed, _ := os.ReadFile(path)
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, err := loadMappedFrom(bytes.NewReader(data), 0)
		if err != nil && !isStreamErr(err) && !errors.Is(err, stream.ErrUsage) {
			t.Fatalf("error %v wraps no sentinel", err)
		}
	})
}

// TestMappedWriters: runs of pages written by several goroutines (multifd) give the same
// checkpoint, passes rewriting pages included.
func TestMappedWriters(t *testing.T) {
	for _, n := range []int{2, 3} {
		m := newMachine(13, 3<<20, 1<<20)
		path := filepath.Join(t.TempDir(), "w.mig")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w := stream.NewMappedWriter(f, 0, m.typ)
		w.SetWriters(n)
		m.saveTo(t, w)
		w.Close()
		w.Close() // idempotent
		f.Close()
		l, _, err := loadMapped(t, path, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range m.mem {
			if !bytes.Equal(l.mem[i], m.mem[i]) {
				t.Errorf("%d writers: block %d differs", n, i)
			}
		}
	}
}
