package transport_test

import (
	"bufio"
	"io"
	"math/rand"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"tlcvm/migration/stream"
	"tlcvm/migration/transport"
)

// benchWrite writes b.N pages of 4 KiB (plus an 8-byte record header each, as the RAM
// section does) through uri.
func benchWrite(b *testing.B, uri string) {
	page := payload(4096 + 8)
	w, err := transport.Open(uri, transport.Env{Stderr: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(page)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := w.Write(page); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkWriteExecCat: the seed's path, migrate "exec:cat > /dev/null".
func BenchmarkWriteExecCat(b *testing.B) { benchWrite(b, "exec:cat > /dev/null") }

// BenchmarkWriteFile: file: to the test's temporary directory (page cache).
func BenchmarkWriteFile(b *testing.B) { benchWrite(b, "file:"+filepath.Join(b.TempDir(), "x.chk")) }

// BenchmarkWriteTCP: loopback tcp: to a reader that discards.
func BenchmarkWriteTCP(b *testing.B) {
	src, err := transport.Listen("tcp:127.0.0.1:0", transport.Env{})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if r, err := src.Accept(); err == nil {
			io.Copy(io.Discard, r) //nolint:errcheck // benchmark sink
			r.Close()
		}
	}()
	benchWrite(b, src.URI())
	<-done
}

// BenchmarkPipeLimit is the reference: 1 MiB writes straight into cat's stdin through an
// unenlarged pipe, no transport in between.
func BenchmarkPipeLimit(b *testing.B) {
	chunk := payload(1 << 20)
	cmd := exec.Command("/bin/sh", "-c", "cat > /dev/null")
	w, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := w.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReadExec: -incoming "exec:…" read in 4 KiB records, as the stream reader does.
func BenchmarkReadExec(b *testing.B) {
	const rec = 4096 + 8
	src, err := transport.Listen("exec:head -c "+strconv.Itoa(b.N*rec)+" /dev/zero", transport.Env{})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	r, err := src.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, rec)
	b.SetBytes(rec)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := io.ReadFull(r, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamTCP is a RAM pass end to end over loopback tcp: stream.Writer (through a
// 64 KiB bufio, as the engine) → transport → stream.Reader, each page copied into the
// destination's memory. Besides wall time it reports the CPU both ends spent per MB
// (user+system of the process; steadier than wall time on a shared machine), the figure
// the copies in between decide.
func BenchmarkStreamTCP(b *testing.B) {
	const ram = 64 << 20
	mem := make([]byte, ram)
	rand.New(rand.NewSource(1)).Read(mem)
	dst := make([]byte, ram)
	src, err := transport.Listen("tcp:127.0.0.1:0", transport.Env{})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	done := make(chan error, 1)
	go func() {
		r, err := src.Accept()
		if err != nil {
			done <- err
			return
		}
		defer r.Close()
		sr := stream.NewReader(r)
		for {
			rec, err := sr.Next()
			if err == io.EOF {
				done <- nil
				return
			}
			if err != nil {
				done <- err
				return
			}
			if rec.Kind == stream.Page {
				copy(dst[rec.Offset:], rec.Data)
			}
		}
	}()
	out, err := transport.Open(src.URI(), transport.Env{Stderr: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	w := stream.NewWriter(bw, "pc")
	_ = w.Begin()
	_ = w.RAMSetup([]stream.Block{{Name: "pc.ram", Size: ram}})
	b.SetBytes(stream.PageSize)
	cpu0 := cpuTime()
	b.ResetTimer()
	_ = w.RAMIterBegin()
	off := uint64(0)
	for i := 0; i < b.N; i++ {
		if err := w.RAMPage("pc.ram", off, mem[off:off+stream.PageSize]); err != nil {
			b.Fatal(err)
		}
		if off += stream.PageSize; off == ram {
			off = 0
		}
	}
	_ = w.RAMIterEnd()
	_ = w.RAMComplete()
	_ = w.RAMIterEnd()
	if err := w.Finish(nil); err != nil {
		b.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	mb := float64(b.N) * stream.PageSize / 1e6
	b.ReportMetric(float64(cpuTime()-cpu0)/1e6/mb, "cpu-ms/MB")
}

// cpuTime is the process's user+system time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
