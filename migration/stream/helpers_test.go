package stream_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"testing"

	"tlcvm/migration/stream"
)

// machine is a fake guest: RAM blocks with contents, and device sections.
type machine struct {
	typ     string
	blocks  []stream.Block
	mem     [][]byte
	devices []device
}

type device struct {
	idstr    string
	instance uint32
	version  uint32
	state    []byte
}

// newMachine builds RAM with a mix of data pages, zero pages and pages filled with one
// non-zero byte, deterministically from seed.
func newMachine(seed int64, sizes ...uint64) *machine {
	rng := rand.New(rand.NewSource(seed))
	m := &machine{typ: "pc-i440fx-7.2"}
	names := []string{"pc.ram", "vga.vram", "/rom@etc/acpi/tables", "pc.bios"}
	for i, size := range sizes {
		m.blocks = append(m.blocks, stream.Block{Name: names[i%len(names)], Size: size})
		mem := make([]byte, size)
		for p := uint64(0); p < size; p += stream.PageSize {
			switch rng.Intn(4) {
			case 0: // zero page
			case 1:
				mem[p+uint64(rng.Intn(stream.PageSize))] = byte(1 + rng.Intn(255))
			case 2:
				b := byte(1 + rng.Intn(255))
				for j := range mem[p : p+stream.PageSize] {
					mem[p+uint64(j)] = b
				}
			default:
				rng.Read(mem[p : p+stream.PageSize])
			}
		}
		m.mem = append(m.mem, mem)
	}
	m.devices = []device{
		{"cpu/0", 0, 1, []byte(`{"rip":1048576,"rsp":0,"halted":false}`)},
		{"clock", 0, 2, []byte(`{"ns":123456789}`)},
		{"empty", 3, 1, nil},
		{"serial0", 0, 1, []byte(`{"lsr":96}`)},
	}
	return m
}

func (m *machine) page(b int, off uint64) []byte { return m.mem[b][off : off+stream.PageSize] }

// save writes m the way the engine does: setup, one PART with every page, a PART and the
// END re-sending pages changed meanwhile, then the devices. It returns the final memory.
func (m *machine) save(t testing.TB, out io.Writer) {
	t.Helper()
	m.saveTo(t, stream.NewWriter(out, m.typ))
}

// saveTo is save through any Writer (NewMappedWriter's too).
func (m *machine) saveTo(t testing.TB, w *stream.Writer) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Begin())
	must(w.RAMSetup(m.blocks))
	must(w.RAMIterBegin())
	for b, bl := range m.blocks {
		for off := uint64(0); off < bl.Size; off += stream.PageSize {
			must(w.RAMPage(bl.Name, off, m.page(b, off)))
		}
	}
	must(w.RAMIterEnd())
	// Stage 2: the guest rewrote the first page of each block and the last of the first.
	must(w.RAMIterBegin())
	for b, bl := range m.blocks {
		m.mem[b][10] ^= 0x5a
		must(w.RAMPage(bl.Name, 0, m.page(b, 0)))
	}
	must(w.RAMIterEnd())
	must(w.RAMIterBegin()) // an empty iteration
	must(w.RAMIterEnd())
	// Stage 3.
	must(w.RAMComplete())
	last := m.blocks[0].Size - stream.PageSize
	copy(m.page(0, last), bytes.Repeat([]byte{0}, stream.PageSize))
	must(w.RAMPage(m.blocks[0].Name, last, m.page(0, last)))
	must(w.RAMZero(m.blocks[len(m.blocks)-1].Name, 0))
	clear(m.page(len(m.blocks)-1, 0))
	must(w.RAMIterEnd())
	var descs []stream.DeviceDesc
	for _, d := range m.devices {
		must(w.Device(d.idstr, d.instance, d.version, d.state))
		descs = append(descs, stream.DeviceDesc{Name: d.idstr, Instance: d.instance, Version: d.version})
	}
	must(w.Finish(descs))
}

func (m *machine) stream(t testing.TB) []byte {
	var buf bytes.Buffer
	m.save(t, &buf)
	return buf.Bytes()
}

// loaded is what a Reader produced.
type loaded struct {
	typ     string
	blocks  []stream.Block
	mem     [][]byte
	devices []device
	kinds   []stream.RecordKind
	end     bool
	bitmaps []stream.DirtyBitmap
}

// load reads a whole stream; it returns the first error that is not io.EOF.
func load(r io.Reader) (*loaded, error) {
	rd := stream.NewReader(r)
	l := &loaded{}
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			if !l.end {
				return l, errors.New("io.EOF before End")
			}
			return l, nil
		}
		if err != nil {
			return l, err
		}
		if l.end {
			return l, errors.New("record after End")
		}
		l.kinds = append(l.kinds, rec.Kind)
		switch rec.Kind {
		case stream.Config:
			l.typ = rec.MachineType
		case stream.RAMBlocks:
			l.blocks = rec.Blocks
			l.mem = make([][]byte, len(rec.Blocks))
		case stream.Page:
			if l.blocks[rec.BlockIndex].Name != rec.Block || len(rec.Data) != stream.PageSize {
				return l, fmt.Errorf("bad page record %+v", rec)
			}
			if mem := l.block(rec.BlockIndex); mem != nil {
				copy(mem[rec.Offset:], rec.Data)
			}
		case stream.ZeroPage:
			if mem := l.block(rec.BlockIndex); mem != nil {
				p := mem[rec.Offset : rec.Offset+stream.PageSize]
				for i := range p {
					p[i] = rec.Fill
				}
			}
		case stream.Device:
			l.devices = append(l.devices, device{rec.IDStr, rec.Instance, rec.Version, rec.State})
		case stream.End:
			l.end = true
		case stream.BitmapsSetup, stream.BitmapsData:
			l.bitmaps = append(l.bitmaps, rec.Bitmaps...)
		default:
			return l, fmt.Errorf("unknown record kind %v", rec.Kind)
		}
	}
}

// isStreamErr reports whether err wraps one of the Reader's three sentinels.
func isStreamErr(err error) bool {
	return errors.Is(err, stream.ErrFormat) || errors.Is(err, stream.ErrIntegrity) || errors.Is(err, stream.ErrTruncated)
}

// block returns block i's memory, allocated on first use; nil for blocks over 64 MiB
// (fuzzed inputs announce terabytes).
func (l *loaded) block(i int) []byte {
	if l.mem[i] == nil && l.blocks[i].Size <= 64<<20 {
		l.mem[i] = make([]byte, l.blocks[i].Size)
	}
	return l.mem[i]
}
