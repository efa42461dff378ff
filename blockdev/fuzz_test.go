package blockdev_test

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tlcvm/blockdev"
)

// FuzzReadQcow2Header feeds arbitrary bytes to the qcow2 header parser: it must return an
// error or a header whose fields it checked, never panic or read out of bounds.
func FuzzReadQcow2Header(f *testing.F) {
	seed := make([]byte, 512)
	copy(seed, "QFI\xfb\x00\x00\x00\x03")
	seed[23], seed[29], seed[39], seed[42], seed[50], seed[59], seed[99], seed[103] = 16, 0x10, 1, 3, 1, 1, 4, 104
	f.Add(seed)
	v2 := append([]byte(nil), seed...)
	v2[7] = 2
	f.Add(v2)
	f.Add([]byte("QFI\xfb"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := blockdev.ReadQcow2Header(bytes.NewReader(b), int64(len(b)), true)
		if err != nil {
			return
		}
		if h.Version < 2 || h.Version > 3 || h.ClusterBits < 9 || h.ClusterBits > 21 {
			t.Fatalf("accepted header %+v", h)
		}
	})
}

// FuzzQcow2Image opens arbitrary bytes as a qcow2 image and reads, writes and queries it:
// the L1/L2 walk, the refcount walk and the allocator over a corrupt image must fail with
// an error, never panic or touch memory out of bounds.
func FuzzQcow2Image(f *testing.F) {
	dir := f.TempDir()
	// Small clusters keep the seeds (and each execution, and minimizing) small.
	for i, c := range []blockdev.Qcow2Create{{Size: 1 << 20, ClusterSize: 512}, {Size: 1 << 20, Version: "v2", ClusterSize: 512},
		{Size: 256 << 10, ClusterSize: 1024, RefcountBits: 1}} {
		path := filepath.Join(dir, fmt.Sprintf("seed%d.qcow2", i))
		fh, err := os.Create(path)
		if err != nil {
			f.Fatal(err)
		}
		if err := blockdev.WriteQcow2(fh, &c); err != nil {
			f.Fatal(err)
		}
		fh.Close()
		g, n := fuzzOpen(path)
		if n != nil {
			p := make([]byte, 5000)
			for j := range p {
				p[j] = byte(j)
			}
			if i == 0 { // a persistent bitmap: the bitmaps extension, directory and table
				_ = blockdev.Run(g.PrepareBitmapAdd(blockdev.BitmapAddOptions{Node: "q", Name: "b", Granularity: 512, Persistent: true}))
			}
			_, _ = n.WriteAt(p, 3000)
			if i == 1 { // an internal snapshot with a VM state: the table, an L1 copy, shared clusters
				_, _ = n.VMStateWriter().Write(p)
				_ = g.CreateSnapshot(blockdev.Snapshot{Name: "s", ICount: -1}, n, uint64(len(p)), nil)
				_, _ = n.WriteAt(p[:700], 100)
			}
			g.Close()
		}
		b, _ := os.ReadFile(path)
		f.Add(b)
	}
	boundMinimization()
	f.Fuzz(func(t *testing.T, b []byte) {
		defer execDeadline(len(b))()
		// An in-memory file: executions stay cheap (minimizing runs thousands of them).
		fd, err := unix.MemfdCreate("qcow2", unix.MFD_CLOEXEC)
		if err != nil {
			t.Skip("memfd_create:", err)
		}
		mf := os.NewFile(uintptr(fd), "qcow2")
		defer mf.Close()
		if _, err := mf.Write(b); err != nil {
			t.Fatal(err)
		}
		g, n := fuzzOpen(fmt.Sprintf("/proc/self/fd/%d", fd))
		if n == nil {
			return
		}
		defer g.Close()
		if h := n.Header(); n.Size() > 8<<20 || h.L1Size > 1<<16 || h.RefcountTableClusters > 16 || h.ClusterBits > 16 {
			return // bounded work per input
		}
		p := make([]byte, 70000)
		for off := int64(0); off < n.Size(); off += int64(len(p)) * 7 {
			_, _ = n.ReadAt(p, off)
			_, _ = n.BlockStatus(off, min(int64(len(p)), n.Size()-off))
			_, _ = n.WriteAt(p[:1000], off)
		}
		_ = n.WriteZeroes(0, min(n.Size(), 1<<16), blockdev.ZeroMayUnmap)
		// Internal snapshots: the table, a snapshot's L1 table and the refcount walk over
		// what a corrupt image holds.
		if list, err := n.Snapshots(); err == nil && len(list) > 0 && len(list) < 8 {
			_ = g.GotoSnapshot(list[0].Name, nil)
			_, _ = io.ReadAll(n.VMStateReader(int64(min(list[0].VMStateSize, 1<<16))))
			_ = g.DeleteSnapshot(list[0].Name, nil)
			_ = g.CreateSnapshot(blockdev.Snapshot{Name: "f", ICount: -1}, n, 0, nil)
		}
	})
}

// boundMinimization bounds how long the fuzzer minimizes an input, unless
// -fuzzminimizetime was given. The inputs here are whole images (kilobytes), and Go's
// minimizer, which also minimizes every new interesting input before it joins the corpus,
// tries to remove every subrange of it: O(n²) executions, cut off only at the default
// 60 s, during which the worker reports no executions (go.dev/issue/48820): a 20 s run
// showed "execs: 8283 (0/sec)" after its first seconds, although every execution took
// well under a millisecond. Removing bytes from an image shifts every offset after them,
// so a long minimization gains little anyway.
func boundMinimization() {
	set := false
	flag.Visit(func(fl *flag.Flag) { set = set || fl.Name == "test.fuzzminimizetime" })
	if !set {
		if err := flag.Set("test.fuzzminimizetime", "1s"); err != nil {
			panic(err)
		}
	}
}

// execDeadline panics with every goroutine's stack when one execution runs longer than
// a corrupt image may take (a loop in a table walk, a lock never released): Go's fuzzer
// has no per-execution timeout and a stuck worker only shows as "0/sec", while a panic
// makes the fuzzer record the input under testdata/fuzz. Call the result when the
// execution ends.
func execDeadline(size int) func() {
	const limit = 10 * time.Second
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(limit):
			debug.SetTraceback("all")
			panic(fmt.Sprintf("one execution on a %d-byte input took over %v", size, limit))
		}
	}()
	return func() { close(done) }
}

func fuzzOpen(path string) (*blockdev.Graph, *blockdev.Node) {
	g := blockdev.New(blockdev.Config{})
	// No backing file: the name in a fuzzed header could be any file (a FIFO blocks).
	n, err := g.Add(&blockdev.Options{Driver: blockdev.DriverQcow2, NodeName: "q", Backing: &blockdev.Ref{Null: true},
		File: &blockdev.Ref{Options: &blockdev.Options{Driver: blockdev.DriverFile, Filename: path}}})
	if err != nil {
		g.Close()
		return nil, nil
	}
	return g, n
}

// FuzzQemuIO feeds arbitrary lines to HMP qemu-io's command parser (options, numbers with
// suffixes, patterns) over a small memory disk: output or an error text, never a panic or
// a request outside the disk.
func FuzzQemuIO(f *testing.F) {
	for _, s := range []string{"write -P 0x12 512 1k", "read -v -P 18 512 1k", "write -z -u 0 4k", "discard 1k 1k",
		"write -fq 0x200 0x10", "write -n 0 1.5k", "flush", "length", "read -P", "write -- -1 2", "write 1E 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var out bytes.Buffer
		blockdev.RunQemuIOInMemory(1<<16, line, &out)
	})
}
