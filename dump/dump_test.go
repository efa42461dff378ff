package dump

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// fakeMem is a block's content: a byte slice and its written pages.
type fakeMem struct {
	b       []byte
	written map[uint64]bool
}

func (f *fakeMem) Written(off uint64) bool { return f.written[off] }

// NextWritten makes fakeMem a WrittenFinder (offsetMem is not: both ways are tested).
func (f *fakeMem) NextWritten(off, end uint64) uint64 {
	for ; off < end && !f.written[off]; off += PageSize {
	}
	return off
}
func (f *fakeMem) ReadAt(p []byte, off uint64) error {
	if !f.written[off&^(PageSize-1)] {
		return errors.New("read of a page never written")
	}
	copy(p, f.b[off:])
	return nil
}

func (f *fakeMem) store(off uint64, p []byte) {
	copy(f.b[off:], p)
	for pg := off &^ (PageSize - 1); pg < off+uint64(len(p)); pg += PageSize {
		f.written[pg] = true
	}
}

func newFakeMem(size uint64) *fakeMem {
	return &fakeMem{b: make([]byte, size), written: map[uint64]bool{}}
}

// resetCPU is x86 reset state, as QEMU 7.2 and tlcvm show it for qemu64.
func resetCPU() CPU {
	var c CPU
	c.Regs[rDX] = 0x60fb1
	c.RIP, c.RFlags = 0xfff0, 2
	data := Segment{Limit: 0xffff, Flags: 0x9300}
	c.Segs = [6]Segment{data, {Selector: 0xf000, Base: 0xffff0000, Limit: 0xffff, Flags: 0x9b00}, data, data, data, data}
	c.LDT = Segment{Limit: 0xffff, Flags: 0x8200}
	c.TR = Segment{Limit: 0xffff, Flags: 0x8b00}
	c.GDT, c.IDT = Segment{Limit: 0xffff}, Segment{Limit: 0xffff}
	c.CR[0] = 0x60000010
	return c
}

// pcReset is QEMU 7.2's pc machine, 256 MiB, -nodefaults, at reset (-S): RAM below the
// ROMs, pc.rom, isa-bios, RAM from 1 MiB, pc.bios below 4 GiB.
func pcReset(ram *fakeMem) *Machine {
	return &Machine{
		Blocks: []Block{
			{Start: 0, Size: 0xc0000, Name: "pc.ram", Mem: ram},
			{Start: 0xc0000, Size: 0x20000, Name: "pc.rom"},
			{Start: 0xe0000, Size: 0x20000, Name: "isa-bios"},
			{Start: 0x100000, Size: 0xff00000, Name: "pc.ram", Mem: offsetMem{ram, 0x100000}},
			{Start: 0xfffc0000, Size: 0x40000, Name: "pc.bios"},
		},
		CPUs: []CPU{resetCPU()},
	}
}

type offsetMem struct {
	m   *fakeMem
	off uint64
}

func (o offsetMem) Written(off uint64) bool           { return o.m.Written(o.off + off) }
func (o offsetMem) ReadAt(p []byte, off uint64) error { return o.m.ReadAt(p, o.off+off) }

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// TestELFHeadersAsQEMU: the headers and notes tlcvm writes for QEMU's machine are the
// bytes QEMU 7.2 wrote (dump-guest-memory paging=false of qemu-system-x86_64 -S
// -nodefaults -m 256), e_ehsize of 8 included.
func TestELFHeadersAsQEMU(t *testing.T) {
	want, err := os.ReadFile("testdata/qemu-pc-256M-S.elf.head")
	if err != nil {
		t.Fatal(err)
	}
	m := pcReset(newFakeMem(256 << 20))
	var out bytes.Buffer
	r := &Request{Out: nopCloser{&out}}
	d := NewDumper()
	if err := d.Start(fixedVM{m}, r); err != nil {
		t.Fatal(err)
	}
	got := out.Bytes()
	if !bytes.Equal(got[:len(want)], want) {
		t.Fatalf("headers differ from QEMU's at byte %d", firstDiff(got, want))
	}
	if size := int64(len(got)); size != 268698763 {
		t.Errorf("file is %d bytes, QEMU's 268698763", size)
	}
	if !bytes.HasSuffix(got, shstrtab) {
		t.Errorf("no section string table at the end")
	}
	if q := d.Query(); q != (Result{StatusCompleted, 268697600, 268697600}) {
		t.Errorf("query-dump %+v", q)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

type fixedVM struct{ m *Machine }

func (fixedVM) StopForDump() func()  { return nil }
func (v fixedVM) Snapshot() *Machine { return v.m }

// TestKdumpHeadersAsQEMU: the flattened stream's header, sub header, notes and bitmap
// records are QEMU 7.2's bytes for the same machine.
func TestKdumpHeadersAsQEMU(t *testing.T) {
	f, err := os.Open("testdata/qemu-pc-256M-S.kdump-zlib.flat.head.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	want, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	m := pcReset(newFakeMem(256 << 20))
	var out bytes.Buffer
	if err := NewDumper().Start(fixedVM{m}, &Request{Format: FormatKdumpZlib, Out: nopCloser{&out}}); err != nil {
		t.Fatal(err)
	}
	got := out.Bytes()
	if !bytes.Equal(got[:len(want)], want) {
		t.Fatalf("stream differs from QEMU's at byte %d", firstDiff(got, want))
	}
}

// randomMachine has two RAM blocks with a mix of never-written, zero, compressible and
// random pages, a ROM, and a vCPU in long mode.
func randomMachine(seed uint64) (*Machine, *fakeMem, *fakeMem) {
	rng := rand.New(rand.NewPCG(seed, 1))
	low, high := newFakeMem(8<<20), newFakeMem(2<<20)
	fill := func(m *fakeMem) {
		for pg := uint64(0); pg < uint64(len(m.b)); pg += PageSize {
			p := make([]byte, PageSize)
			switch rng.IntN(5) {
			case 0: // never written
				continue
			case 1: // written zeros
			case 2: // compressible
				for i := range p {
					p[i] = byte(i / 64)
				}
			default:
				for i := range p {
					p[i] = byte(rng.Uint32())
				}
			}
			m.store(pg, p)
		}
	}
	fill(low)
	fill(high)
	c := resetCPU()
	c.EFER = eferLMA | 1<<8
	c.Regs = [16]uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	c.RIP = 0x100080
	return &Machine{
		Blocks: []Block{
			{Start: 0, Size: 8 << 20, Name: "pc.ram", Mem: low},
			{Start: 0xfffc0000, Size: 0x40000, Name: "pc.bios"},
			{Start: 1 << 32, Size: 2 << 20, Name: "pc.ram", Mem: high},
		},
		CPUs: []CPU{c, c},
	}, low, high
}

// TestELFRoundTrip: every PT_LOAD of the file holds the block's bytes; the notes are the
// x86_64 ones; never-written pages are holes of a sparse file.
func TestELFRoundTrip(t *testing.T) {
	m, low, high := randomMachine(1)
	path := filepath.Join(t.TempDir(), "core")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := NewDumper().Start(fixedVM{m}, &Request{Out: f}); err != nil {
		t.Fatal(err)
	}
	f, _ = os.Open(path)
	defer f.Close()
	st, _ := f.Stat()
	c, err := ReadELF(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if !c.Class64 || c.Machine != emX8664 || len(c.Phdrs) != 4 || len(c.Notes) != 4 {
		t.Fatalf("class64 %v machine %d phdrs %d notes %d", c.Class64, c.Machine, len(c.Phdrs), len(c.Notes))
	}
	if n := c.Notes[0]; n.Name != "CORE" || len(n.Desc) != prstatus64Size || binary.LittleEndian.Uint64(n.Desc[112+16*8:]) != 0x100080 {
		t.Errorf("prstatus: %s %d bytes", n.Name, len(n.Desc))
	}
	if n := c.Notes[3]; n.Name != "QEMU" || len(n.Desc) != qemuStateSize {
		t.Errorf("QEMU note: %s %d bytes", n.Name, len(n.Desc))
	}
	check := func(p Phdr, mem *fakeMem) {
		got := make([]byte, p.Filesz)
		if _, err := f.ReadAt(got, int64(p.Offset)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, mem.b) {
			t.Errorf("PT_LOAD at 0x%x differs at %d", p.Paddr, firstDiff(got, mem.b))
		}
	}
	check(c.Phdrs[1], low)
	check(c.Phdrs[3], high)
	var sys syscall.Stat_t
	if err := syscall.Stat(path, &sys); err != nil {
		t.Fatal(err)
	}
	if sys.Blocks*512 >= st.Size() {
		t.Errorf("no holes: %d bytes allocated for %d", sys.Blocks*512, st.Size())
	}
}

// TestELFToPipe: over a pipe the holes are written as zeros and the file is the same.
func TestELFToPipe(t *testing.T) {
	m, _, _ := randomMachine(2)
	var seekable bytes.Buffer
	if err := NewDumper().Start(fixedVM{m}, &Request{Out: nopCloser{&seekable}}); err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte)
	go func() { b, _ := io.ReadAll(pr); got <- b }()
	if err := NewDumper().Start(fixedVM{m}, &Request{Out: pw}); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, seekable.Bytes()) {
		t.Errorf("pipe output differs at %d", firstDiff(b, seekable.Bytes()))
	}
}

// TestKdumpRoundTrip: for every compression, every page of every block reads back.
func TestKdumpRoundTrip(t *testing.T) {
	for _, format := range []Format{FormatKdumpZlib, FormatKdumpLZO, FormatKdumpSnappy} {
		t.Run(string(format), func(t *testing.T) {
			m, low, high := randomMachine(3)
			var out bytes.Buffer
			if err := NewDumper().Start(fixedVM{m}, &Request{Format: format, Out: nopCloser{&out}}); err != nil {
				t.Fatal(err)
			}
			img, err := Unflatten(&out, 1<<34)
			if err != nil {
				t.Fatal(err)
			}
			k, err := ReadKdump(img)
			if err != nil {
				t.Fatal(err)
			}
			if k.MaxMapnr != (1<<32+2<<20)/PageSize || k.NrCPUs != 2 || k.DumpLevel != 1 || len(k.Notes) != 4 {
				t.Fatalf("header %+v", k)
			}
			compressed := 0
			for _, b := range m.Blocks {
				for off := uint64(0); off < b.Size; off += PageSize {
					pfn := (b.Start + off) / PageSize
					page, err := k.Page(pfn)
					if err != nil {
						t.Fatal(err)
					}
					want := zeroPage[:]
					if fm, ok := b.Mem.(*fakeMem); ok && fm.written[off] {
						want = fm.b[off : off+PageSize]
					}
					if !bytes.Equal(page, want) {
						t.Fatalf("pfn 0x%x differs", pfn)
					}
					if d, _ := k.Desc(pfn); d.Flags != 0 {
						compressed++
					}
				}
			}
			if k.Dumpable(0x1000) || !k.Dumpable(0xfffc0) {
				t.Errorf("bitmap: a hole is dumpable or pc.bios is not")
			}
			if compressed == 0 {
				t.Errorf("no page was compressed")
			}
			_ = low
			_ = high
		})
	}
}

// TestKdumpRawPages: a page that compression does not shrink (random bytes) is stored as it
// is (flags 0, a whole page), the others compressed, in every format; all read back
// through the kdump reader, in pfn order, beside never-written and zero pages.
func TestKdumpRawPages(t *testing.T) {
	kinds := testPages()
	names := []string{"random", "counter words", "random", "text", "half random", "zeros", "random", "records"}
	mem := newFakeMem(64 * PageSize)
	for i := range 64 {
		if i%3 != 2 { // every third page never written
			mem.store(uint64(i)*PageSize, kinds[names[i%len(names)]])
		}
	}
	m := &Machine{Blocks: []Block{{Start: 0, Size: 64 * PageSize, Name: "pc.ram", Mem: mem}}, CPUs: []CPU{resetCPU()}}
	for _, format := range []Format{FormatKdumpZlib, FormatKdumpLZO, FormatKdumpSnappy} {
		t.Run(string(format), func(t *testing.T) {
			var out bytes.Buffer
			if err := NewDumper().Start(fixedVM{m}, &Request{Format: format, Out: nopCloser{&out}}); err != nil {
				t.Fatal(err)
			}
			img, err := Unflatten(&out, 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			k, err := ReadKdump(img)
			if err != nil {
				t.Fatal(err)
			}
			raw, compressed := 0, 0
			for pfn := uint64(0); pfn < 64; pfn++ {
				page, err := k.Page(pfn)
				if err != nil {
					t.Fatal(err)
				}
				off := pfn * PageSize
				want := zeroPage[:]
				if mem.written[off] {
					want = mem.b[off : off+PageSize]
				}
				if !bytes.Equal(page, want) {
					t.Fatalf("pfn %d differs", pfn)
				}
				d, _ := k.Desc(pfn)
				isRandom := mem.written[off] && names[pfn%uint64(len(names))] == "random"
				switch {
				case isRandom && (d.Flags != 0 || d.Size != PageSize):
					t.Errorf("pfn %d (random bytes): flags %d, %d bytes; want stored raw", pfn, d.Flags, d.Size)
				case isRandom:
					raw++
				case d.Flags != 0:
					compressed++
				}
			}
			if raw == 0 || compressed == 0 {
				t.Errorf("%d pages raw, %d compressed", raw, compressed)
			}
		})
	}
}

// failWriter fails every write once n bytes have gone through.
type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, syscall.ENOSPC
	}
	w.n -= len(p)
	return len(p), nil
}

// failMem is a block whose page at bad fails to read (a check of a page restored by
// mapping that fails).
type failMem struct {
	*fakeMem
	bad uint64
}

func (f failMem) ReadAt(p []byte, off uint64) error {
	if off <= f.bad && f.bad < off+uint64(len(p)) {
		return errors.New("page check failed")
	}
	return f.fakeMem.ReadAt(p, off)
}

// TestKdumpFailures: a write that fails in the page data (ENOSPC) and a page that fails to
// read end the dump with QEMU's text and the state failed; the workers end (no goroutine
// left behind) and the next dump works.
func TestKdumpFailures(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, format := range []Format{FormatKdumpZlib, FormatKdumpLZO, FormatKdumpSnappy} {
		m, low, _ := randomMachine(6)
		for _, c := range []struct {
			name string
			out  io.Writer
			mem  Memory
			want string
		}{
			{"ENOSPC", &failWriter{n: 3 << 20}, low, "dump: failed to write page data: no space left on device"},
			{"read", io.Discard, failMem{low, 5 << 20}, "dump: failed to write page data: page check failed"},
		} {
			m.Blocks[0].Mem = c.mem
			d := NewDumper()
			err := d.Start(fixedVM{m}, &Request{Format: format, Out: nopCloser{c.out}})
			if err == nil || err.Error() != c.want {
				t.Errorf("%s, %s: %v, want %q", format, c.name, err, c.want)
			}
			if st := d.Query().Status; st != StatusFailed {
				t.Errorf("%s, %s: status %s", format, c.name, st)
			}
			m.Blocks[0].Mem = low
			if err := d.Start(fixedVM{m}, &Request{Format: format, Out: nopCloser{io.Discard}}); err != nil {
				t.Errorf("%s, %s: the next dump: %v", format, c.name, err)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines, %d before the dumps", n, before)
	}
}

// TestFilter: begin/length keep the blocks' bytes within the area (get_offset_range).
func TestFilter(t *testing.T) {
	m, low, _ := randomMachine(4)
	var out bytes.Buffer
	r := &Request{HasBegin: true, Begin: 0x3000, HasLength: true, Length: 0x5000, Out: nopCloser{&out}}
	d := NewDumper()
	if err := d.Start(fixedVM{m}, r); err != nil {
		t.Fatal(err)
	}
	c, err := ReadELF(bytes.NewReader(out.Bytes()), int64(out.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Phdrs) != 2 || c.Phdrs[1].Paddr != 0x3000 || c.Phdrs[1].Filesz != 0x5000 {
		t.Fatalf("phdrs %+v", c.Phdrs)
	}
	p := c.Phdrs[1]
	if !bytes.Equal(out.Bytes()[p.Offset:p.Offset+p.Filesz], low.b[0x3000:0x8000]) {
		t.Errorf("filtered memory differs")
	}
	if q := d.Query(); q.Total != 0x5000 || q.Completed != 0x5000 {
		t.Errorf("query-dump %+v", q)
	}
}

// TestErrors: QEMU's texts for the checks before and after the output opens.
func TestErrors(t *testing.T) {
	d := NewDumper()
	for _, c := range []struct {
		r    Request
		want string
	}{
		{Request{Format: FormatKdumpZlib, Paging: true}, "kdump-compressed format doesn't support paging or filter"},
		{Request{HasBegin: true}, "Parameter 'length' is missing"},
		{Request{HasLength: true}, "Parameter 'begin' is missing"},
	} {
		if err := d.Check(&c.r); err == nil || err.Error() != c.want {
			t.Errorf("%+v: %v, want %q", c.r, err, c.want)
		}
	}
	m, _, _ := randomMachine(5)
	for _, c := range []struct {
		r    Request
		want string
	}{
		{Request{HasBegin: true, HasLength: true}, "Invalid parameter 'length'"},
		{Request{HasBegin: true, Begin: 1 << 40, HasLength: true, Length: 4096}, "dump: no guest memory to dump"},
		{Request{Format: FormatWinDmp}, "win-dump: invalid vmcoreinfo note size"},
	} {
		c.r.Out = nopCloser{io.Discard}
		if err := d.Start(fixedVM{m}, &c.r); err == nil || err.Error() != c.want {
			t.Errorf("%+v: %v, want %q", c.r, err, c.want)
		}
		if d.Query().Status != StatusFailed {
			t.Errorf("status %v", d.Query().Status)
		}
	}
}

// TestPagingMappings: a 4-level identity map with 2 MiB pages gives QEMU's merged
// mappings, with the lower half's virtual addresses ORed with 0xffff<<48 as
// arch_memory_mapping.c does; pages over memory holes are left out.
func TestPagingMappings(t *testing.T) {
	ram := newFakeMem(16 << 20)
	le := binary.LittleEndian
	e := make([]byte, 8)
	le.PutUint64(e, 0x11000|3)
	ram.store(0x10000, e)
	le.PutUint64(e, 0x12000|3)
	ram.store(0x11000, e)
	for j := uint64(0); j < 512; j++ { // 1 GiB identity-mapped, RAM only below 16 MiB
		le.PutUint64(e, j<<21|0x83)
		ram.store(0x12000+8*j, e)
	}
	c := resetCPU()
	c.EFER, c.CR[0], c.CR[3], c.CR[4] = eferLMA, 0x80000011, 0x10000, cr4PAE
	m := &Machine{Blocks: []Block{{Start: 0, Size: 16 << 20, Mem: ram}}, CPUs: []CPU{c, c}}
	got := pagingMappings(m)
	want := []mapping{{0, 0xffff << 48, 16 << 20}}
	if len(got) != 1 || got[0] != want[0] {
		t.Errorf("mappings %+x, want %+x", got, want)
	}
}

// TestLZORoundTrip: the encoder's streams decode to their input.
func TestLZORoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 200; i++ {
		n := rng.IntN(9000)
		src := make([]byte, n)
		alphabet := rng.IntN(256) + 1
		for j := range src {
			src[j] = byte(rng.IntN(alphabet))
			if j > 300 && rng.IntN(3) == 0 {
				src[j] = src[j-rng.IntN(300)-1]
			}
		}
		enc := lzoCompress(src)
		dec, err := lzoDecompress(enc, len(src))
		if err != nil || !bytes.Equal(dec, src) {
			t.Fatalf("case %d (%d bytes): %v", i, n, err)
		}
	}
	page := bytes.Repeat([]byte("tlcvm "), PageSize/6+1)[:PageSize]
	if enc := lzoCompress(page); len(enc) > 200 {
		t.Errorf("a repetitive page compresses to %d bytes", len(enc))
	}
}

func FuzzLZODecompress(f *testing.F) {
	f.Add(lzoCompress(bytes.Repeat([]byte("abc"), 100)))
	f.Add([]byte{0x11, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := lzoDecompress(b, PageSize)
		if err == nil && len(out) > PageSize {
			t.Fatalf("%d bytes out", len(out))
		}
	})
}

func FuzzReadELF(f *testing.F) {
	head, _ := os.ReadFile("testdata/qemu-pc-256M-S.elf.head")
	f.Add(head)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ReadELF(bytes.NewReader(b), int64(len(b)))
	})
}

func FuzzReadKdump(f *testing.F) {
	m, _, _ := randomMachine(9)
	m.Blocks = m.Blocks[:1]
	m.Blocks[0].Size = 64 << 10
	var out bytes.Buffer
	_ = NewDumper().Start(fixedVM{m}, &Request{Format: FormatKdumpLZO, Out: nopCloser{&out}})
	f.Add(out.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := Unflatten(bytes.NewReader(b), 1<<20)
		if err != nil {
			return
		}
		k, err := ReadKdump(img)
		if err != nil {
			return
		}
		for pfn := uint64(0); pfn < min(k.MaxMapnr, 64); pfn++ {
			_, _ = k.Page(pfn)
		}
	})
}
