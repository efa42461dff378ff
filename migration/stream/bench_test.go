package stream_test

import (
	"bufio"
	"bytes"
	"io"
	"math/rand"
	"testing"

	"tlcvm/migration/stream"
)

const benchRAM = 64 << 20 // 16384 pages per pass

func benchMemory(zero bool) []byte {
	mem := make([]byte, benchRAM)
	if !zero {
		rand.New(rand.NewSource(1)).Read(mem)
	}
	return mem
}

// BenchmarkWriterPages: PAGE records (random data) and ZERO records into a bufio.Writer
// over io.Discard; bytes/s is guest RAM per second. Must not allocate per page.
func BenchmarkWriterPages(b *testing.B) {
	for _, tc := range []struct {
		name string
		zero bool
	}{{"data", false}, {"zero", true}} {
		b.Run(tc.name, func(b *testing.B) {
			mem := benchMemory(tc.zero)
			w := stream.NewWriter(bufio.NewWriterSize(io.Discard, 1<<20), "pc")
			if err := w.Begin(); err != nil {
				b.Fatal(err)
			}
			if err := w.RAMSetup([]stream.Block{{Name: "pc.ram", Size: benchRAM}}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(stream.PageSize)
			b.ReportAllocs()
			b.ResetTimer()
			off := uint64(0)
			_ = w.RAMIterBegin()
			for i := 0; i < b.N; i++ {
				if err := w.RAMPage("pc.ram", off, mem[off:off+stream.PageSize]); err != nil {
					b.Fatal(err)
				}
				if off += stream.PageSize; off == benchRAM {
					off = 0
					_ = w.RAMIterEnd()
					_ = w.RAMIterBegin()
				}
			}
			_ = w.RAMIterEnd()
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkReaderPages: reading PAGE records back from memory (CRC included).
func BenchmarkReaderPages(b *testing.B) {
	mem := benchMemory(false)
	var buf bytes.Buffer
	w := stream.NewWriter(&buf, "pc")
	_ = w.Begin()
	_ = w.RAMSetup([]stream.Block{{Name: "pc.ram", Size: benchRAM}})
	_ = w.RAMIterBegin()
	for off := uint64(0); off < benchRAM; off += stream.PageSize {
		_ = w.RAMPage("pc.ram", off, mem[off:off+stream.PageSize])
	}
	_ = w.RAMIterEnd()
	_ = w.RAMComplete()
	_ = w.RAMIterEnd()
	if err := w.Finish(nil); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(benchRAM)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := stream.NewReader(bytes.NewReader(data))
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if rec.Kind == stream.Page {
				copy(mem[rec.Offset:], rec.Data)
			}
		}
	}
}

func BenchmarkIsZero(b *testing.B) {
	p := make([]byte, stream.PageSize)
	b.SetBytes(stream.PageSize)
	for i := 0; i < b.N; i++ {
		if !stream.IsZero(p) {
			b.Fatal("not zero")
		}
	}
}
