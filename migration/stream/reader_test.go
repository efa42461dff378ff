package stream_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"tlcvm/migration/stream"
)

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sizes  []uint64
		reader func(io.Reader) io.Reader
	}{
		{"one block", []uint64{64 << 10}, nil},
		{"four blocks", []uint64{256 << 10, 8 << 10, 4 << 10, 128 << 10}, nil},
		{"larger than the buffers", []uint64{2 << 20, 1 << 20}, nil},
		{"one byte at a time", []uint64{32 << 10, 4 << 10}, iotest.OneByteReader},
		{"half reads", []uint64{600 << 10}, iotest.HalfReader},
		{"data with EOF", []uint64{16 << 10}, iotest.DataErrReader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(int64(len(tc.name)), tc.sizes...)
			data := m.stream(t)
			var in io.Reader = bytes.NewReader(data)
			if tc.reader != nil {
				in = tc.reader(in)
			}
			l, err := load(in)
			if err != nil {
				t.Fatal(err)
			}
			if l.typ != m.typ || !reflect.DeepEqual(l.blocks, m.blocks) {
				t.Fatalf("config/blocks: got %q %v, want %q %v", l.typ, l.blocks, m.typ, m.blocks)
			}
			for i := range m.mem {
				if !bytes.Equal(l.mem[i], m.mem[i]) {
					t.Fatalf("block %s differs after restore", m.blocks[i].Name)
				}
			}
			if len(l.devices) != len(m.devices) {
				t.Fatalf("%d devices, want %d", len(l.devices), len(m.devices))
			}
			for i, d := range m.devices {
				got := l.devices[i]
				if got.idstr != d.idstr || got.instance != d.instance || got.version != d.version || !bytes.Equal(got.state, d.state) {
					t.Errorf("device %d: got %+v, want %+v", i, got, d)
				}
			}
			if k := l.kinds; k[0] != stream.Config || k[1] != stream.RAMBlocks || k[len(k)-1] != stream.End {
				t.Errorf("record order %v", k)
			}
		})
	}
}

func TestReaderCountsAndVMDesc(t *testing.T) {
	m := newMachine(1, 16<<10)
	var buf bytes.Buffer
	w := stream.NewWriter(&buf, m.typ)
	_ = w.Begin()
	_ = w.RAMSetup(m.blocks)
	_ = w.RAMIterBegin()
	zeroes, normal := 0, 0
	for off := uint64(0); off < m.blocks[0].Size; off += stream.PageSize {
		if stream.IsZero(m.page(0, off)) {
			zeroes++
		} else {
			normal++
		}
		_ = w.RAMPage(m.blocks[0].Name, off, m.page(0, off))
	}
	_ = w.RAMIterEnd()
	_ = w.RAMComplete()
	_ = w.RAMIterEnd()
	if err := w.Finish(nil); err != nil {
		t.Fatal(err)
	}
	if n, z := w.Pages(); n != uint64(normal) || z != uint64(zeroes) {
		t.Errorf("writer pages %d/%d, want %d/%d", n, z, normal, zeroes)
	}
	if w.Bytes() != uint64(buf.Len()) {
		t.Errorf("Bytes() = %d, wrote %d", w.Bytes(), buf.Len())
	}
	r := stream.NewReader(bytes.NewReader(buf.Bytes()))
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Kind == stream.End && r.VMDesc() == nil {
			t.Error("no vmdesc at End")
		}
	}
	if n, z := r.Pages(); n != uint64(normal) || z != uint64(zeroes) {
		t.Errorf("reader pages %d/%d, want %d/%d", n, z, normal, zeroes)
	}
	if r.Offset() != uint64(buf.Len()) {
		t.Errorf("Offset() = %d, stream is %d bytes", r.Offset(), buf.Len())
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after the end: %v, want io.EOF", err)
	}
	if !strings.HasPrefix(string(r.VMDesc()), `{"page_size": 4096, "devices": [{"name": "tlcvm/integrity", "instance_id": 0, `) {
		t.Errorf("vmdesc %s", r.VMDesc())
	}
}

// qemuPrefix is the start of a stream QEMU 7.2 wrote (`-machine pc -m 16 -S`, migrate
// "exec:cat > FILE"): header, configuration, the RAM START section (id 2) with its six
// blocks, the first PART header and two ZERO records.
const qemuPrefix = "5145564d00000003070000000d70632d6934343066782d372e3201000000020372616d0000000000000004" +
	"00000000010820040670632e72616d0000000001000000142f726f6d406574632f616370692f7461626c6573" +
	"00000000000200000770632e62696f7300000000000400000670632e726f6d0000000000020000152f726f6d" +
	"406574632f7461626c652d6c6f616465720000000000001000122f726f6d406574632f616370692f72736470" +
	"000000000000100000000000000000107e00000002" + // START footer ends at 0xc4
	"02000000020000000000000002" + "0670632e72616d00" + "000000000000102200"

var qemuBlocks = []stream.Block{
	{Name: "pc.ram", Size: 16 << 20}, {Name: "/rom@etc/acpi/tables", Size: 128 << 10},
	{Name: "pc.bios", Size: 256 << 10}, {Name: "pc.rom", Size: 128 << 10},
	{Name: "/rom@etc/table-loader", Size: 4096}, {Name: "/rom@etc/acpi/rsdp", Size: 4096},
}

// TestReaderReadsQEMUFraming: the Reader decodes QEMU 7.2's own header, configuration
// and RAM records, and refuses the stream for want of the integrity section (here: cut).
func TestReaderReadsQEMUFraming(t *testing.T) {
	raw, _ := hex.DecodeString(qemuPrefix)
	r := stream.NewReader(bytes.NewReader(raw))
	want := []stream.Record{
		{Kind: stream.Config, MachineType: "pc-i440fx-7.2"},
		{Kind: stream.RAMBlocks, Blocks: qemuBlocks},
		{Kind: stream.ZeroPage, Block: "pc.ram", Offset: 0},
		{Kind: stream.ZeroPage, Block: "pc.ram", Offset: 4096},
	}
	for i, w := range want {
		got, err := r.Next()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("record %d: got %+v, want %+v", i, got, w)
		}
	}
	if _, err := r.Next(); !errors.Is(err, stream.ErrTruncated) {
		t.Fatalf("end of the prefix: %v, want ErrTruncated", err)
	}
}

// TestWriterMatchesQEMU: the Writer's header, configuration and RAM setup are QEMU 7.2's
// bytes (QEMU numbers its RAM section 2, tlcvm 0).
func TestWriterMatchesQEMU(t *testing.T) {
	want, _ := hex.DecodeString(qemuPrefix)
	want = want[:0xc4+5]
	binary.BigEndian.PutUint32(want[0x1b:], 0) // START id
	binary.BigEndian.PutUint32(want[0xc0:], 0) // footer id
	binary.BigEndian.PutUint32(want[0xc5:], 0) // PART id
	var buf bytes.Buffer
	w := stream.NewWriter(&buf, "pc-i440fx-7.2")
	if err := w.Begin(); err != nil {
		t.Fatal(err)
	}
	if err := w.RAMSetup(qemuBlocks); err != nil {
		t.Fatal(err)
	}
	if err := w.RAMIterBegin(); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("got\n%x\nwant\n%x", buf.Bytes(), want)
	}
}

// errReader fails after its data.
type errReader struct {
	data []byte
	err  error
}

func (e *errReader) Read(p []byte) (int, error) {
	if len(e.data) == 0 {
		return 0, e.err
	}
	n := copy(p, e.data)
	e.data = e.data[n:]
	return n, nil
}

func TestReaderTransportErrorUnchanged(t *testing.T) {
	boom := errors.New("connection reset by peer")
	data := newMachine(2, 16<<10).stream(t)
	_, err := load(&errReader{data[:len(data)/2], boom})
	if err != boom {
		t.Fatalf("got %v, want the transport's error unchanged", err)
	}
}

// TestStreamingThroughPipe: the Reader consumes while the Writer produces (an OS pipe, as
// exec: and fd: transports give), and the restored memory is exact.
func TestStreamingThroughPipe(t *testing.T) {
	m := newMachine(13, 1<<20, 64<<10)
	want := newMachine(13, 1<<20, 64<<10)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	done := make(chan error, 1)
	go func() {
		var werr error
		func() {
			defer func() {
				if p := recover(); p != nil {
					werr = fmt.Errorf("writer panicked: %v", p)
				}
			}()
			m.save(nopTB{t}, pw)
		}()
		if err := pw.Close(); werr == nil {
			werr = err
		}
		done <- werr
	}()
	l, err := load(pr)
	if werr := <-done; werr != nil {
		t.Fatal(werr)
	}
	if err != nil {
		t.Fatal(err)
	}
	want.save(t, io.Discard) // the same stage-2/3 changes, for the expected memory
	for i := range want.mem {
		if !bytes.Equal(l.mem[i], want.mem[i]) {
			t.Fatalf("block %d differs", i)
		}
	}
}

// nopTB lets save run off the test goroutine: failures panic instead of calling t.Fatal.
type nopTB struct{ testing.TB }

func (nopTB) Helper()                   {}
func (nopTB) Fatal(args ...any)         { panic(fmt.Sprint(args...)) }
func (nopTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
