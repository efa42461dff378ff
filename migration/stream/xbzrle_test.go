package stream_test

import (
	"bytes"
	"errors"
	"math/rand"
	"testing"

	"tlcvm/migration/stream"
)

// TestXBZRLE: encodings of pages changed in runs decode back to the new page; equal pages
// encode to nothing; a page changed everywhere overflows; the run layout is QEMU's.
func TestXBZRLE(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	old := make([]byte, stream.PageSize)
	rng.Read(old)
	enc := make([]byte, stream.PageSize)
	if n := stream.EncodeXBZRLE(old, old, enc); n != 0 {
		t.Fatalf("equal pages encode to %d bytes", n)
	}
	mod := bytes.Clone(old)
	mod[0] ^= 1      // a change at the start: the first zero run is 0
	mod[200] ^= 0xff // one byte later on
	for i := 1000; i < 1300; i++ {
		mod[i] ^= 0x5a // a run longer than 127 (two-byte lengths)
	}
	n := stream.EncodeXBZRLE(old, mod, enc)
	// 0 (zrun), 1 (nzrun) + 1 byte; 199 (2 bytes), 1 + 1; 799 (2 bytes), 300 (2 bytes) + 300
	if want := 1 + 1 + 1 + 2 + 1 + 1 + 2 + 2 + 300; n != want {
		t.Fatalf("encoding of %d bytes, want %d", n, want)
	}
	if !bytes.Equal(enc[:7], []byte{0, 1, mod[0], 0x80 | 199&0x7f, 199 >> 7, 1, mod[200]}) {
		t.Fatalf("runs % x", enc[:7])
	}
	dst := bytes.Clone(old)
	if err := stream.DecodeXBZRLE(enc[:n], dst); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst, mod) {
		t.Fatal("decoded page differs")
	}
	all := bytes.Clone(old)
	for i := range all {
		all[i] ^= 0xff
	}
	if n := stream.EncodeXBZRLE(old, all, enc); n != -1 {
		t.Fatalf("a page changed everywhere encodes to %d bytes", n)
	}
	for _, bad := range [][]byte{{0}, {0, 0}, {1, 0, 0}, {0x80, 0x80, 1, 1}, {0, 5, 1}, {0xff, 0x7f, 1, 1}} {
		if err := stream.DecodeXBZRLE(bad, bytes.Clone(old)); !errors.Is(err, stream.ErrFormat) {
			t.Errorf("% x decoded: %v", bad, err)
		}
	}
}

// FuzzXBZRLE: any encoding decodes or is refused without touching memory beyond the page;
// an encoding of two pages always decodes to the second.
func FuzzXBZRLE(f *testing.F) {
	f.Add([]byte{0, 1, 7}, []byte{3})
	f.Add([]byte{0x80, 0x01, 0x02, 1, 2}, []byte{9, 9})
	f.Fuzz(func(t *testing.T, data, seed []byte) {
		page := make([]byte, stream.PageSize)
		_ = stream.DecodeXBZRLE(data, page)
		old := make([]byte, stream.PageSize)
		mod := make([]byte, stream.PageSize)
		for i, b := range seed {
			mod[(int(b)*37+i*101)%stream.PageSize] = b | 1
		}
		enc := make([]byte, stream.PageSize)
		n := stream.EncodeXBZRLE(old, mod, enc)
		if n <= 0 {
			return
		}
		if err := stream.DecodeXBZRLE(enc[:n], old); err != nil || !bytes.Equal(old, mod) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
