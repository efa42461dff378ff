package transport_test

import (
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

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
