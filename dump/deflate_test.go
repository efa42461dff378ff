package dump

import (
	"bytes"
	"compress/zlib"
	stdadler "hash/adler32"
	"io"
	"math/rand/v2"
	"testing"
)

// testPages are pages of the kinds memory holds: zeros, runs, records at a stride, text,
// random bytes, and mixes of them.
func testPages() map[string][]byte {
	rng := rand.New(rand.NewPCG(11, 11))
	pages := map[string][]byte{}
	page := func(name string, fill func(p []byte)) {
		p := make([]byte, PageSize)
		fill(p)
		pages[name] = p
	}
	page("zeros", func([]byte) {})
	page("ones", func(p []byte) { copy(p, bytes.Repeat([]byte{0xff}, PageSize)) })
	page("random", func(p []byte) {
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
	})
	page("counter words", func(p []byte) { // the workload's pattern: base ^ index, a word each
		for i := 0; i < PageSize; i += 8 {
			v := 0x3b92dc1c7f4a7c15 ^ uint64(i/8)
			for k := range 8 {
				p[i+k] = byte(v >> (8 * k))
			}
		}
	})
	page("records", func(p []byte) {
		for i := 0; i+24 <= PageSize; i += 24 {
			copy(p[i:], []byte{0, 0, 0, 0, byte(i), byte(i >> 8), 0xde, 0xad, 1, 2, 3, 4, 5, 6, 7, 8})
		}
	})
	page("text", func(p []byte) {
		words := []string{"the ", "guest ", "memory ", "dump ", "kdump ", "page ", "zlib ", "of "}
		for i := 0; i < PageSize; {
			i += copy(p[i:], words[rng.IntN(len(words))])
		}
	})
	page("half random", func(p []byte) {
		for i := range p[:PageSize/2] {
			p[i] = byte(rng.Uint32())
		}
	})
	page("small alphabet", func(p []byte) {
		for i := range p {
			p[i] = byte(rng.IntN(4))
		}
	})
	page("long runs", func(p []byte) {
		for i := range p {
			p[i] = byte(i / 300)
		}
	})
	return pages
}

// inflate is what crash and makedumpfile do with a page: uncompress(), here Go's zlib
// reader (checks the header and adler32).
func inflate(t testing.TB, z []byte) []byte {
	t.Helper()
	r, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatalf("zlib header: %v", err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	return out
}

// TestZlibPage: every stream inflates to its page; a page that compresses is shorter
// than the page, one that does not (random bytes) is reported so.
func TestZlibPage(t *testing.T) {
	var d deflater
	for name, p := range testPages() {
		z := d.zlibPage(p)
		switch {
		case name == "random":
			if z != nil {
				t.Errorf("%s: %d bytes, want nil (stored raw)", name, len(z))
			}
			continue
		case z == nil:
			t.Errorf("%s: not compressed", name)
			continue
		}
		if len(z) >= PageSize || z[0] != 0x78 || z[1] != 0x01 {
			t.Errorf("%s: %d bytes, header % x", name, len(z), z[:2])
		}
		if got := inflate(t, z); !bytes.Equal(got, p) {
			t.Errorf("%s: inflates to something else (%d bytes)", name, len(got))
		}
	}
	if z := d.zlibPage(make([]byte, PageSize)); len(z) > 40 {
		t.Errorf("a zero page takes %d bytes", len(z))
	}
}

// TestAdler32: the eight-bytes-a-step checksum is hash/adler32's for every length up to a
// page, on bytes that make the sums largest.
func TestAdler32(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	ff := bytes.Repeat([]byte{0xff}, PageSize)
	rnd := make([]byte, PageSize)
	for i := range rnd {
		rnd[i] = byte(rng.Uint32())
	}
	for n := 0; n <= PageSize; n++ {
		for _, p := range [][]byte{ff[:n], rnd[:n]} {
			if got, want := adler32(p), stdadler.Checksum(p); got != want {
				t.Fatalf("%d bytes: %08x, want %08x", n, got, want)
			}
		}
	}
}

// FuzzZlibPage: any page's stream inflates to it.
func FuzzZlibPage(f *testing.F) {
	for _, p := range testPages() {
		f.Add(p[:512])
	}
	var d deflater
	f.Fuzz(func(t *testing.T, b []byte) {
		p := make([]byte, PageSize)
		for i := 0; len(b) > 0 && i < PageSize; i += len(b) {
			copy(p[i:], b) // repeated: the fuzzer's short inputs make pages that compress
		}
		if z := d.zlibPage(p); z != nil && !bytes.Equal(inflate(t, z), p) {
			t.Fatalf("%d-byte stream does not inflate to its page", len(z))
		}
	})
}

// benchPages are the benchmark's kinds of page: the workload's (a word each of a constant
// XOR its index, as dump-guest-memory's benchmark guest writes), text and records.
func benchPages(b *testing.B) [][]byte {
	b.Helper()
	pages := testPages()
	return [][]byte{pages["counter words"], pages["text"], pages["records"]}
}

// BenchmarkZlibPage: one page's stream (adler32 included), by kind of page.
func BenchmarkZlibPage(b *testing.B) {
	var d deflater
	for i, p := range benchPages(b) {
		b.Run([]string{"counter-words", "text", "records"}[i], func(b *testing.B) {
			b.SetBytes(PageSize)
			for b.Loop() {
				d.zlibPage(p)
			}
		})
	}
}

// BenchmarkAdler32: the checksum of one page.
func BenchmarkAdler32(b *testing.B) {
	p := benchPages(b)[0]
	b.SetBytes(PageSize)
	for b.Loop() {
		adler32(p)
	}
}
