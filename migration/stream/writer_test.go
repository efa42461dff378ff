package stream_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"tlcvm/migration/stream"
)

var page = bytes.Repeat([]byte{0xab}, stream.PageSize)

// TestWriterUsage: calls out of order or with bad arguments fail with ErrUsage.
func TestWriterUsage(t *testing.T) {
	blocks := []stream.Block{{Name: "pc.ram", Size: 8192}}
	begin := func(w *stream.Writer) error { return w.Begin() }
	setup := func(w *stream.Writer) error {
		if err := w.Begin(); err != nil {
			return err
		}
		return w.RAMSetup(blocks)
	}
	inPart := func(w *stream.Writer) error {
		if err := setup(w); err != nil {
			return err
		}
		return w.RAMIterBegin()
	}
	for _, tc := range []struct {
		name  string
		prep  func(*stream.Writer) error
		call  func(*stream.Writer) error
		mtype string
	}{
		{"RAMSetup before Begin", nil, func(w *stream.Writer) error { return w.RAMSetup(blocks) }, ""},
		{"Begin twice", begin, func(w *stream.Writer) error { return w.Begin() }, ""},
		{"machine type too long", nil, func(w *stream.Writer) error { return w.Begin() }, strings.Repeat("x", 257)},
		{"machine type not UTF-8", nil, func(w *stream.Writer) error { return w.Begin() }, "pc\xff"},
		{"RAMSetup twice", setup, func(w *stream.Writer) error { return w.RAMSetup(blocks) }, ""},
		{"empty block name", begin, func(w *stream.Writer) error { return w.RAMSetup([]stream.Block{{Name: "", Size: 4096}}) }, ""},
		{"block name 256 bytes", begin, func(w *stream.Writer) error {
			return w.RAMSetup([]stream.Block{{Name: strings.Repeat("b", 256), Size: 4096}})
		}, ""},
		{"block size not page multiple", begin, func(w *stream.Writer) error { return w.RAMSetup([]stream.Block{{Name: "a", Size: 4097}}) }, ""},
		{"block size zero", begin, func(w *stream.Writer) error { return w.RAMSetup([]stream.Block{{Name: "a", Size: 0}}) }, ""},
		{"duplicate block", begin, func(w *stream.Writer) error {
			return w.RAMSetup([]stream.Block{{Name: "a", Size: 4096}, {Name: "a", Size: 4096}})
		}, ""},
		{"too many blocks", begin, func(w *stream.Writer) error { return w.RAMSetup(make([]stream.Block, stream.MaxBlocks+1)) }, ""},
		{"RAMIterBegin without setup", begin, func(w *stream.Writer) error { return w.RAMIterBegin() }, ""},
		{"RAMPage outside a section", setup, func(w *stream.Writer) error { return w.RAMPage("pc.ram", 0, page) }, ""},
		{"RAMZero outside a section", setup, func(w *stream.Writer) error { return w.RAMZero("pc.ram", 0) }, ""},
		{"unknown block", inPart, func(w *stream.Writer) error { return w.RAMPage("vga", 0, page) }, ""},
		{"offset past the block", inPart, func(w *stream.Writer) error { return w.RAMPage("pc.ram", 8192, page) }, ""},
		{"offset not aligned", inPart, func(w *stream.Writer) error { return w.RAMPage("pc.ram", 100, page) }, ""},
		{"short page", inPart, func(w *stream.Writer) error { return w.RAMPage("pc.ram", 0, page[:100]) }, ""},
		{"Device inside a RAM section", inPart, func(w *stream.Writer) error { return w.Device("d", 0, 1, nil) }, ""},
		{"RAMComplete inside a section", inPart, func(w *stream.Writer) error { return w.RAMComplete() }, ""},
		{"RAMIterEnd without a section", setup, func(w *stream.Writer) error { return w.RAMIterEnd() }, ""},
		{"Device named ram", begin, func(w *stream.Writer) error { return w.Device("ram", 0, 1, nil) }, ""},
		{"Device named like the integrity section", begin, func(w *stream.Writer) error { return w.Device(stream.IntegrityIDStr, 0, 1, nil) }, ""},
		{"Device twice", func(w *stream.Writer) error {
			if err := w.Begin(); err != nil {
				return err
			}
			return w.Device("d", 0, 1, nil)
		}, func(w *stream.Writer) error { return w.Device("d", 0, 2, []byte("x")) }, ""},
		{"Device state too large", begin, func(w *stream.Writer) error { return w.Device("d", 0, 1, make([]byte, stream.MaxStateSize+1)) }, ""},
		{"Finish before RAMComplete", setup, func(w *stream.Writer) error { return w.Finish(nil) }, ""},
		{"Finish describing an unwritten device", begin, func(w *stream.Writer) error {
			return w.Finish([]stream.DeviceDesc{{Name: "d", Instance: 0, Version: 1}})
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mt := tc.mtype
			if mt == "" {
				mt = "pc-i440fx-7.2"
			}
			w := stream.NewWriter(io.Discard, mt)
			if tc.prep != nil {
				if err := tc.prep(w); err != nil {
					t.Fatalf("prep: %v", err)
				}
			}
			if err := tc.call(w); !errors.Is(err, stream.ErrUsage) {
				t.Fatalf("got %v, want ErrUsage", err)
			}
		})
	}
}

// failWriter accepts limit bytes, then fails.
type failWriter struct {
	limit int
	err   error
	calls int
}

func (f *failWriter) Write(p []byte) (int, error) {
	f.calls++
	if len(p) <= f.limit {
		f.limit -= len(p)
		return len(p), nil
	}
	n := f.limit
	f.limit = 0
	return n, f.err
}

// TestWriterErrorSticky: the transport's error comes back unchanged, from every later call.
func TestWriterErrorSticky(t *testing.T) {
	enospc := errors.New("write /tmp/x: no space left on device")
	fw := &failWriter{limit: 100 << 10, err: enospc}
	w := stream.NewWriter(fw, "pc")
	_ = w.Begin()
	_ = w.RAMSetup([]stream.Block{{Name: "pc.ram", Size: 16 << 20}})
	_ = w.RAMIterBegin()
	var err error
	for off := uint64(0); off < 16<<20 && err == nil; off += stream.PageSize {
		err = w.RAMPage("pc.ram", off, page)
	}
	if err != enospc {
		t.Fatalf("RAMPage: %v, want the writer's error", err)
	}
	calls := fw.calls
	for _, f := range []func() error{w.RAMIterEnd, w.Flush, func() error { return w.Finish(nil) },
		func() error { return w.RAMPage("pc.ram", 0, page) }} {
		if err := f(); err != enospc {
			t.Fatalf("later call: %v, want the writer's error", err)
		}
	}
	if fw.calls != calls {
		t.Fatalf("wrote again after the error")
	}
}

// TestWriterLargeState: state larger than the buffer goes straight through and reads back.
func TestWriterLargeState(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16+3)
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	w := stream.NewWriter(bw, "pc")
	for _, f := range []func() error{w.Begin,
		func() error { return w.Device("small", 0, 1, []byte("{}")) },
		func() error { return w.Device("big", 0, 1, big) },
		func() error { return w.Finish(nil) }} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	if bw.Buffered() != 0 {
		t.Fatal("Finish did not flush the bufio.Writer")
	}
	l, err := load(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.devices) != 2 || !bytes.Equal(l.devices[1].state, big) || l.blocks != nil {
		t.Fatalf("devices %d, blocks %v", len(l.devices), l.blocks)
	}
}

// TestVMDescLengthNeverHasBrace: whatever the number of devices, the analyser's search
// for the vmdesc ('{' after the last NUL, 0x06 five bytes before) finds it.
func TestVMDescLengthNeverHasBrace(t *testing.T) {
	for n := 0; n < 300; n++ {
		var buf bytes.Buffer
		w := stream.NewWriter(&buf, "pc")
		_ = w.Begin()
		for i := 0; i < n; i++ {
			_ = w.Device("dev", uint32(i), 1, []byte("{}"))
		}
		if err := w.Finish(nil); err != nil {
			t.Fatal(err)
		}
		data := buf.Bytes()
		nul := bytes.LastIndexByte(data, 0)
		js := nul + bytes.IndexByte(data[nul:], '{')
		if data[js-5] != 0x06 {
			t.Fatalf("%d devices: analyser would not find the vmdesc", n)
		}
	}
}

// TestNoAllocationPerPage: RAMPage and the Reader's Next for page records allocate nothing.
func TestNoAllocationPerPage(t *testing.T) {
	const size = 4 << 20
	mem := newMachine(12, size).mem[0]
	var buf bytes.Buffer
	w := stream.NewWriter(&buf, "pc")
	_ = w.Begin()
	_ = w.RAMSetup([]stream.Block{{Name: "pc.ram", Size: size}})
	_ = w.RAMIterBegin()
	off := uint64(0)
	if n := testing.AllocsPerRun(500, func() {
		if err := w.RAMPage("pc.ram", off, mem[off:off+stream.PageSize]); err != nil {
			t.Fatal(err)
		}
		off += stream.PageSize
	}); n != 0 {
		t.Errorf("RAMPage: %v allocations per page", n)
	}
	for ; off < size; off += stream.PageSize {
		_ = w.RAMPage("pc.ram", off, mem[off:off+stream.PageSize])
	}
	_ = w.RAMIterEnd()
	_ = w.RAMComplete()
	_ = w.RAMIterEnd()
	if err := w.Finish(nil); err != nil {
		t.Fatal(err)
	}
	r := stream.NewReader(bytes.NewReader(buf.Bytes()))
	for i := 0; i < 300; i++ { // config, blocks, and enough pages for the buffer to reach full size
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if n := testing.AllocsPerRun(500, func() {
		if rec, err := r.Next(); err != nil || (rec.Kind != stream.Page && rec.Kind != stream.ZeroPage) {
			t.Fatalf("%v %v", rec.Kind, err)
		}
	}); n != 0 {
		t.Errorf("Reader.Next: %v allocations per page", n)
	}
}
