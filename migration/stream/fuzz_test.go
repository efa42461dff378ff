package stream_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"tlcvm/migration/stream"
)

// FuzzReader: any input either reads to a verified End or fails with a stream error;
// never a panic, never a hang, never a transport-style error. An input that passes is
// re-checked: cuts of the part the Reader consumed must be refused.
func FuzzReader(f *testing.F) {
	// Small seeds: the fuzzer minimises every new input, which is slow for large ones.
	valid := zeroMachine(f)
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	raw, _ := hex.DecodeString(qemuPrefix)
	f.Add(raw)
	var empty bytes.Buffer
	w := stream.NewWriter(&empty, "none")
	_ = w.Begin()
	_ = w.Finish(nil)
	f.Add(empty.Bytes())
	f.Add([]byte("QEVM"))
	setup, data := sampleBitmaps()
	f.Add(bitmapsStream(f, setup, data))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := stream.NewReader(bytes.NewReader(data))
		var end bool
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				if !isStreamErr(err) {
					t.Fatalf("error %v wraps none of the sentinels", err)
				}
				return
			}
			end = rec.Kind == stream.End
		}
		if !end {
			t.Fatal("io.EOF without End")
		}
		// Bytes after the vmdesc are not read; every cut before its end must be refused.
		used := int(r.Offset())
		for _, n := range []int{0, used / 2, used - 1} {
			if _, err := load(bytes.NewReader(data[:n])); !errors.Is(err, stream.ErrTruncated) {
				t.Fatalf("accepted input cut at %d: %v", n, err)
			}
		}
	})
}

// TestEmptyMachineStream: a machine without RAM (-machine none) and without devices.
func TestEmptyMachineStream(t *testing.T) {
	var buf bytes.Buffer
	w := stream.NewWriter(&buf, "none")
	if err := w.Begin(); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(nil); err != nil {
		t.Fatal(err)
	}
	r := stream.NewReader(&buf)
	var kinds []stream.RecordKind
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, rec.Kind)
	}
	if len(kinds) != 2 || kinds[0] != stream.Config || kinds[1] != stream.End {
		t.Fatalf("records %v", kinds)
	}
}

// zeroMachine is a ~600-byte stream: two blocks of zero pages, CONTINUE records, a PART,
// the END and two devices.
func zeroMachine(t testing.TB) []byte {
	var buf bytes.Buffer
	w := stream.NewWriter(&buf, "pc")
	zero := make([]byte, stream.PageSize)
	steps := []func() error{w.Begin,
		func() error { return w.RAMSetup([]stream.Block{{Name: "a", Size: 8192}, {Name: "b", Size: 4096}}) },
		w.RAMIterBegin,
		func() error { return w.RAMPage("a", 0, zero) },
		func() error { return w.RAMPage("a", 4096, zero) },
		func() error { return w.RAMZero("b", 0) },
		w.RAMIterEnd, w.RAMComplete,
		func() error { return w.RAMZero("a", 4096) },
		w.RAMIterEnd,
		func() error { return w.Device("cpu/0", 0, 1, []byte(`{"rip":1}`)) },
		func() error { return w.Device("serial0", 0, 2, nil) },
		func() error { return w.Finish(nil) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}
