package stream_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"tlcvm/migration/stream"
)

// The dirty-bitmap section: QEMU's chunk encoding byte for byte, a round trip through the
// Reader, and the damage the Reader refuses.

func bitmapsStream(t testing.TB, setup, data []stream.DirtyBitmap) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := stream.NewWriter(&buf, "pc")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Begin())
	must(w.RAMSetup([]stream.Block{{Name: "pc.ram", Size: stream.PageSize}}))
	must(w.BitmapsSetup(setup))
	must(w.RAMComplete())
	must(w.RAMPage("pc.ram", 0, make([]byte, stream.PageSize)))
	must(w.RAMIterEnd())
	must(w.BitmapsComplete(data))
	must(w.Device("dev", 0, 1, []byte("{}")))
	must(w.Finish(nil))
	return buf.Bytes()
}

func sampleBitmaps() (setup, data []stream.DirtyBitmap) {
	bits := make([]byte, 32)
	bits[0], bits[31] = 0x81, 0x01
	setup = []stream.DirtyBitmap{
		{Node: "drive0", Name: "b1", Granularity: 65536, Enabled: true, Persistent: true},
		{Node: "drive0", Name: "b2", Granularity: 512},
		{Node: "node1", Name: "b1", Granularity: 4096, Enabled: true},
	}
	data = append([]stream.DirtyBitmap(nil), setup...)
	data[0].Chunks = []stream.BitmapChunk{{Start: 0, Sectors: 1 << 20, Bits: bits}, {Start: 1 << 20, Sectors: 8}}
	data[1].Chunks = []stream.BitmapChunk{{Start: 0, Sectors: 8192}}
	data[2].Chunks = []stream.BitmapChunk{{Start: 0, Sectors: 65536, Bits: bits}}
	return setup, data
}

// TestBitmapsEncoding: the START section's bytes, as QEMU's send_bitmap_start writes them
// (names only when they change).
func TestBitmapsEncoding(t *testing.T) {
	setup, data := sampleBitmaps()
	raw := bitmapsStream(t, setup, data)
	start := []byte("\x01\x00\x00\x00\x01\x0cdirty-bitmap\x00\x00\x00\x00\x00\x00\x00\x01" +
		"\x1c\x06drive0\x02b1\x00\x01\x00\x00\x03" + // START|DEVICE|BITMAP, granularity, enabled|persistent
		"\x14\x02b2\x00\x00\x02\x00\x00" + // START|BITMAP
		"\x1c\x05node1\x02b1\x00\x00\x10\x00\x01" +
		"\x01\x7e\x00\x00\x00\x01")
	if !bytes.Contains(raw, start) {
		t.Fatalf("START section not found in\n%s", hex.Dump(raw[:200]))
	}
	end := []byte("\x03\x00\x00\x00\x01" +
		"\x4c\x06drive0\x02b1\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20")
	if !bytes.Contains(raw, end) {
		t.Fatalf("END section's first chunk not found")
	}
	if !bytes.Contains(raw, []byte("\x42\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00\x00\x08")) {
		t.Error("a ZEROES chunk of the same bitmap does not omit the names")
	}
	if !bytes.Contains(raw, []byte("\x2c\x06drive0\x02b1\x24\x02b2\x2c\x05node1\x02b1\x01\x7e")) {
		t.Error("COMPLETE chunks and EOS not as QEMU writes them")
	}
}

// TestBitmapsLikeQEMU: the sections QEMU 7.2 wrote for a disabled persistent bitmap (b2,
// clean) and an enabled one (b1: granules 0 and 48 dirty) on node q0 of a 4 MiB qcow2
// image (-machine none, migrate with dirty-bitmaps to a file), from the section's payload
// to its footer.
func TestBitmapsLikeQEMU(t *testing.T) {
	bits := make([]byte, 32)
	bits[0], bits[6] = 0x01, 0x01
	setup := []stream.DirtyBitmap{
		{Node: "q0", Name: "b2", Granularity: 65536, Persistent: true},
		{Node: "q0", Name: "b1", Granularity: 65536, Enabled: true},
	}
	data := append([]stream.DirtyBitmap(nil), setup...)
	data[0].Chunks = []stream.BitmapChunk{{Start: 0, Sectors: 8192}}
	data[1].Chunks = []stream.BitmapChunk{{Start: 0, Sectors: 8192, Bits: bits}}
	raw := bitmapsStream(t, setup, data)
	for _, h := range []string{
		"1c0271300262320001000002140262310001000001017e",
		"4602623200000000000000000000200044026231000000000000000000002000000000000000002001000000000001" +
			"000000000000000000000000000000000000000000000000002402623224026231017e",
	} {
		want, _ := hex.DecodeString(h)
		if !bytes.Contains(raw, want) {
			t.Errorf("QEMU's bytes %s not in\n%s", h, hex.Dump(raw))
		}
	}
}

func TestBitmapsRoundTrip(t *testing.T) {
	setup, data := sampleBitmaps()
	l, err := load(bytes.NewReader(bitmapsStream(t, setup, data)))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []stream.RecordKind
	for _, k := range l.kinds {
		if k == stream.BitmapsSetup || k == stream.BitmapsData {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) != 2 || kinds[0] != stream.BitmapsSetup || kinds[1] != stream.BitmapsData || len(l.bitmaps) != 2*len(setup) {
		t.Fatalf("records %v, bitmaps %v", kinds, l.bitmaps)
	}
	if got := l.bitmaps[:len(setup)]; fmt.Sprint(got) != fmt.Sprint(setup) {
		t.Errorf("setup\n %v\nwant\n %v", got, setup)
	}
	for i := range data {
		// The END section names bitmaps; their headers were in the START section.
		data[i].Complete, data[i].Granularity, data[i].Enabled, data[i].Persistent = true, 0, false, false
	}
	if got := l.bitmaps[len(setup):]; fmt.Sprint(got) != fmt.Sprint(data) {
		t.Errorf("data\n %v\nwant\n %v", got, data)
	}
}

func TestBitmapsDamage(t *testing.T) {
	setup, data := sampleBitmaps()
	good := bitmapsStream(t, setup, data)
	i := bytes.Index(good, []byte("dirty-bitmap"))
	for _, c := range []struct {
		name   string
		change func([]byte) []byte
		want   string
	}{
		{"reserved start flags", func(b []byte) []byte { b[bytes.Index(b, []byte("b1\x00\x01\x00\x00\x03"))+6] |= 0x08; return b },
			"Unknown flags in migrated dirty bitmap header"},
		{"extra flags byte", func(b []byte) []byte { b[i+len("dirty-bitmap")+8] = 0x9c; return b }, "extra flags"},
		{"chunk of no kind", func(b []byte) []byte { b[i+len("dirty-bitmap")+8] = 0x0c; return b }, "no kind"},
		{"huge chunk buffer", func(b []byte) []byte {
			j := bytes.Index(b, []byte("\x00\x00\x00\x00\x00\x00\x00\x20\x81"))
			b[j+6] = 0xff
			return b
		}, "too large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(bytes.NewReader(c.change(append([]byte(nil), good...))))
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, stream.ErrFormat) {
				t.Errorf("error %v, want ErrFormat with %q", err, c.want)
			}
		})
	}
	// Writer misuse.
	var buf bytes.Buffer
	w := stream.NewWriter(&buf, "pc")
	_ = w.Begin()
	if err := w.BitmapsComplete(data); !errors.Is(err, stream.ErrUsage) {
		t.Errorf("complete before setup: %v", err)
	}
	if err := w.BitmapsSetup([]stream.DirtyBitmap{{Node: "", Name: "x"}}); !errors.Is(err, stream.ErrUsage) {
		t.Errorf("empty node alias: %v", err)
	}
	if err := w.BitmapsSetup(setup); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(nil); !errors.Is(err, stream.ErrUsage) {
		t.Errorf("finish before complete: %v", err)
	}
}
