package blockdev_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"tlcvm/blockdev"
)

// The data path, with qemu-img and qemu-io as the oracle: what tlcvm writes, qemu-img check
// finds clean and qemu-img convert reads back byte for byte; what qemu-io writes, tlcvm reads.

func needQemuIO(t *testing.T) {
	t.Helper()
	needQemuImg(t)
	if _, err := exec.LookPath("qemu-io"); err != nil {
		t.Skip("qemu-io not installed (Debian: qemu-utils)")
	}
}

// openImage opens path as a writable node "img" of format fmt in a fresh graph.
func openImage(t *testing.T, path, format string, o ...func(*blockdev.Options)) (*blockdev.Graph, *blockdev.Node) {
	t.Helper()
	g := newGraph(nil)
	opts := &blockdev.Options{Driver: format, NodeName: "img",
		File: &blockdev.Ref{Options: &blockdev.Options{Driver: blockdev.DriverFile, Filename: path}}}
	for _, f := range o {
		f(opts)
	}
	n, err := g.Add(opts)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return g, n
}

// createQcow2 makes a qcow2 image of size with qemu-img create -o opts ("" : none).
func createQcow2(t *testing.T, opts, size string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "a.qcow2")
	args := []string{"create", "-q", "-f", "qcow2"}
	if opts != "" {
		args = append(args, "-o", opts)
	}
	qemuImg(t, append(args, path, size)...)
	return path
}

// checkClean runs qemu-img check and fails unless the image is clean (no errors, no leaks).
func checkClean(t *testing.T, path string) {
	t.Helper()
	out, err := exec.Command("qemu-img", "check", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No errors were found on the image.") {
		t.Fatalf("qemu-img check %s: %v\n%s", path, err, out)
	}
}

// rawContent is what qemu-img convert reads from the image (through its backing chain).
func rawContent(t *testing.T, path string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.raw")
	qemuImg(t, "convert", "-O", "raw", path, out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func firstDiff(a, b []byte) string {
	if len(a) != len(b) {
		return fmt.Sprintf("length %d != %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			return fmt.Sprintf("first difference at byte %d (%#x != %#x)", i, a[i], b[i])
		}
	}
	return ""
}

// pattern fills p with bytes that depend on off and seed.
func pattern(p []byte, off int64, seed byte) {
	for i := range p {
		x := uint64(off+int64(i)) * 0x9e3779b97f4a7c15
		p[i] = byte(x>>56) ^ seed
	}
}

// randomWrites writes n requests of random offsets and lengths (crossing clusters, partial
// clusters, some large) to node and to the model.
func randomWrites(t *testing.T, node *blockdev.Node, model []byte, n int, seed int64, maxLen int) {
	t.Helper()
	r := rand.New(rand.NewSource(seed))
	size := int64(len(model))
	for i := 0; i < n; i++ {
		l := int64(r.Intn(maxLen) + 1)
		if r.Intn(4) == 0 {
			l = int64(r.Intn(8)+1) * 512
		}
		off := r.Int63n(size - l + 1)
		if r.Intn(3) == 0 {
			off &^= 511
		}
		p := make([]byte, l)
		pattern(p, off, byte(i))
		if _, err := node.WriteAt(p, off); err != nil {
			t.Fatalf("write %d+%d: %v", off, l, err)
		}
		copy(model[off:], p)
	}
}

func readAll(t *testing.T, node *blockdev.Node) []byte {
	t.Helper()
	b := make([]byte, node.Size())
	if _, err := node.ReadAt(b, 0); err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

// TestQcow2WritesQemuImgClean writes random requests to images of every variant qemu-img
// makes, then requires qemu-img check to find them clean and qemu-img convert to read back
// the model; tlcvm reads back the same.
// closeAndVerify checks that node n of image path reads as model, closes g, and checks
// that the image is clean and that qemu-img reads the same.
func closeAndVerify(t *testing.T, g *blockdev.Graph, n *blockdev.Node, path string, model []byte) {
	t.Helper()
	if d := firstDiff(readAll(t, n), model); d != "" {
		t.Fatalf("tlcvm reads: %s", d)
	}
	g.Close()
	checkClean(t, path)
	if d := firstDiff(rawContent(t, path), model); d != "" {
		t.Fatalf("qemu-img convert: %s", d)
	}
}

func TestQcow2WritesQemuImgClean(t *testing.T) {
	needQemuImg(t)
	cases := []struct {
		name   string
		opts   string
		size   string
		writes int
		maxLen int
	}{
		{"v3", "", "16M", 300, 200000},
		{"v2", "compat=0.10", "16M", 200, 100000},
		{"cluster512", "cluster_size=512", "4M", 400, 5000},
		{"cluster4k-refcount1", "cluster_size=4096,refcount_bits=1", "8M", 300, 20000},
		{"cluster4k-refcount64", "cluster_size=4096,refcount_bits=64", "8M", 300, 20000},
		{"cluster2m", "cluster_size=2M", "32M", 40, 3 << 20},
		{"lazy", "lazy_refcounts=on", "8M", 50, 100000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := createQcow2(t, c.opts, c.size)
			g, n := openImage(t, path, "qcow2")
			model := make([]byte, n.Size())
			randomWrites(t, n, model, c.writes, 1, c.maxLen)
			if d := firstDiff(readAll(t, n), model); d != "" {
				t.Fatalf("tlcvm reads back: %s", d)
			}
			if err := n.Flush(); err != nil {
				t.Fatal(err)
			}
			g.Close()
			checkClean(t, path)
			if d := firstDiff(rawContent(t, path), model); d != "" {
				t.Fatalf("qemu-img convert: %s", d)
			}
		})
	}
}

// TestQcow2RefcountTableGrows writes across an image of 512-byte clusters far larger than
// its first refcount table covers (64 blocks of 256 clusters): new refcount blocks, then a
// larger table at the end of the file, with the old one freed.
func TestQcow2RefcountTableGrows(t *testing.T) {
	needQemuImg(t)
	path := filepath.Join(t.TempDir(), "a.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", path, "64M")
	g, n := openImage(t, path, "qcow2")
	model := make([]byte, n.Size())
	buf := make([]byte, 96<<10) // 12 MiB of data: the first table covers 8 MiB of file
	for off := int64(0); off < int64(len(model)); off += 512 << 10 {
		l := min(int64(len(buf)), int64(len(model))-off)
		pattern(buf[:l], off, 7)
		if _, err := n.WriteAt(buf[:l], off); err != nil {
			t.Fatal(err)
		}
		copy(model[off:], buf[:l])
	}
	h := n.Header()
	if h.RefcountTableOffset == 512 {
		t.Fatalf("the refcount table did not move (%d clusters at %d)", h.RefcountTableClusters, h.RefcountTableOffset)
	}
	g.Close()
	checkClean(t, path)
	if d := firstDiff(rawContent(t, path), model); d != "" {
		t.Fatalf("qemu-img convert: %s", d)
	}
	info := qemuImg(t, "info", "--output=json", path)
	if !strings.Contains(info, `"virtual-size": 67108864`) {
		t.Fatalf("qemu-img info: %s", info)
	}
}

// TestQcow2BackingChain writes through an overlay over a chain whose middle layer is
// shorter: unwritten parts of new clusters come from the chain, zeroes past a backing
// file's end; the base files are untouched.
func TestQcow2BackingChain(t *testing.T) {
	needQemuIO(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	mid := filepath.Join(dir, "mid.qcow2")
	top := filepath.Join(dir, "top.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", base, "4M")
	qemuIO(t, base, "write -P 0x11 0 4M")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", mid, "2M")
	qemuIO(t, mid, "write -P 0x22 65536 100000")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "-b", mid, "-F", "qcow2", top, "8M")
	baseRaw, midRaw := rawContent(t, base), rawContent(t, mid)
	g, n := openImage(t, top, "qcow2")
	model := make([]byte, n.Size())
	copy(model, midRaw) // mid (2 MiB) over base; nothing past mid's end
	if d := firstDiff(readAll(t, n), model); d != "" {
		t.Fatalf("read through the chain: %s", d)
	}
	randomWrites(t, n, model, 200, 3, 30000)
	if d := firstDiff(readAll(t, n), model); d != "" {
		t.Fatalf("tlcvm reads back: %s", d)
	}
	g.Close()
	for _, p := range []string{top, mid, base} {
		checkClean(t, p)
	}
	if d := firstDiff(rawContent(t, top), model); d != "" {
		t.Fatalf("qemu-img convert: %s", d)
	}
	if !bytes.Equal(rawContent(t, base), baseRaw) || !bytes.Equal(rawContent(t, mid), midRaw) {
		t.Fatal("a backing file changed")
	}
}

func qemuIO(t *testing.T, path string, cmds ...string) string {
	t.Helper()
	args := []string{"-f", "qcow2"}
	if strings.HasSuffix(path, ".raw") || strings.HasSuffix(path, ".img") {
		args = []string{"-f", "raw"}
	}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.Command("qemu-io", append(args, path)...).CombinedOutput()
	if err != nil || strings.Contains(string(out), "failed") {
		t.Fatalf("qemu-io %v: %v\n%s", cmds, err, out)
	}
	return string(out)
}

// TestQcow2ReadsQemuIOWrites: what qemu-io writes (data, zero clusters, discards) and what
// qemu-img compresses, tlcvm reads as qemu-img does; tlcvm's overwrite of a compressed
// image stays clean.
func TestQcow2ReadsQemuIOWrites(t *testing.T) {
	needQemuIO(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "a.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", path, "8M")
	qemuIO(t, path, "write -P 0xab 1000 300000", "write -z 131072 65536", "write -P 0xcd 4M 1M",
		"discard 4M 65536", "write -z -u 5M 131072")
	want := rawContent(t, path)
	g, n := openImage(t, path, "qcow2")
	if d := firstDiff(readAll(t, n), want); d != "" {
		t.Fatalf("tlcvm reads: %s", d)
	}
	g.Close()

	comp := filepath.Join(dir, "c.qcow2")
	qemuImg(t, "convert", "-c", "-O", "qcow2", path, comp)
	model := rawContent(t, comp)
	g, n = openImage(t, comp, "qcow2")
	if d := firstDiff(readAll(t, n), model); d != "" {
		t.Fatalf("tlcvm reads compressed: %s", d)
	}
	randomWrites(t, n, model, 100, 5, 70000)
	g.Close()
	checkClean(t, comp)
	if d := firstDiff(rawContent(t, comp), model); d != "" {
		t.Fatalf("after overwriting compressed clusters: %s", d)
	}
}

// TestQcow2InternalSnapshotCOW writes to an image with an internal snapshot: shared
// clusters and L2 tables are copied, the snapshot keeps its content.
func TestQcow2InternalSnapshotCOW(t *testing.T) {
	needQemuIO(t)
	path := filepath.Join(t.TempDir(), "a.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", path, "8M")
	qemuIO(t, path, "write -P 0x5a 0 3M", "write -z 3M 1M")
	qemuImg(t, "snapshot", "-c", "s1", path)
	before := rawContent(t, path)
	g, n := openImage(t, path, "qcow2")
	model := append([]byte(nil), before...)
	randomWrites(t, n, model, 100, 9, 50000)
	g.Close()
	checkClean(t, path)
	if d := firstDiff(rawContent(t, path), model); d != "" {
		t.Fatalf("active layer: %s", d)
	}
	snap := filepath.Join(t.TempDir(), "s1.raw")
	qemuImg(t, "convert", "-l", "s1", "-O", "raw", path, snap)
	got, _ := os.ReadFile(snap)
	if d := firstDiff(got, before); d != "" {
		t.Fatalf("snapshot s1: %s", d)
	}
}

// TestQcow2ZeroesAndDiscard: write-zeroes makes zero clusters (and frees them with
// unmap), discard frees whole clusters, detect-zeroes turns zero buffers into zero
// clusters; qemu-img map and check agree.
func TestQcow2ZeroesAndDiscard(t *testing.T) {
	needQemuImg(t)
	path := filepath.Join(t.TempDir(), "a.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", path, "8M")
	g, n := openImage(t, path, "qcow2", func(o *blockdev.Options) {
		o.Discard = "unmap"
		o.File.Options.Discard = "unmap"
		o.DetectZeroes = "unmap"
	})
	model := make([]byte, n.Size())
	randomWrites(t, n, model, 50, 11, 300000)
	for _, z := range []struct {
		off, l int64
		fl     blockdev.ZeroFlags
	}{{65536, 65536 * 3, 0}, {1 << 20, 1000, 0}, {2 << 20, 1 << 20, blockdev.ZeroMayUnmap}, {5<<20 + 7, 70000, blockdev.ZeroMayUnmap}} {
		if err := n.WriteZeroes(z.off, z.l, z.fl); err != nil {
			t.Fatal(err)
		}
		clear(model[z.off : z.off+z.l])
	}
	if _, err := n.WriteAt(make([]byte, 131072), 6<<20); err != nil {
		t.Fatal(err)
	}
	clear(model[6<<20 : 6<<20+131072])
	if err := n.Unmap(3<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	clear(model[3<<20 : 4<<20]) // v3 without backing: discarded clusters read as zeroes
	ex, err := n.BlockStatus(2<<20, 1<<20)
	if err != nil || ex.Status != blockdev.StatusZero|blockdev.StatusAllocated || ex.Length != 1<<20 {
		t.Fatalf("status of the zeroed range: %+v %v", ex, err)
	}
	closeAndVerify(t, g, n, path, model)
}

// TestBlockStatusMatchesQemuImgMap compares BlockStatusAbove over a two-layer chain with
// qemu-img map's depth, data and zero flags.
func TestBlockStatusMatchesQemuImgMap(t *testing.T) {
	needQemuIO(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	top := filepath.Join(dir, "top.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", base, "4M")
	qemuIO(t, base, "write -P 1 0 1M", "write -z 2M 512k")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top, "4M")
	qemuIO(t, top, "write -P 2 512k 1M", "write -z 3M 128k")
	out := qemuImg(t, "map", "--output=json", top)
	g, n := openImage(t, top, "qcow2")
	defer g.Close()
	var got strings.Builder
	for off := int64(0); off < n.Size(); {
		ex, err := n.BlockStatusAbove(nil, off, n.Size()-off)
		if err != nil {
			t.Fatal(err)
		}
		depth := ex.Depth - 1
		if ex.Depth == 0 {
			depth = 1 // qemu-img map: the bottom layer's depth when no layer allocates it
		}
		fmt.Fprintf(&got, "%d+%d depth=%d data=%v zero=%v\n", ex.Offset, ex.Length, depth,
			ex.Status&blockdev.StatusData != 0, ex.Status&blockdev.StatusZero != 0)
		off += ex.Length
	}
	// qemu-img map merges equal neighbours: compare after merging ours the same way.
	want := mapLines(t, out)
	if merged := mergeLines(got.String()); merged != want {
		t.Fatalf("block status:\n%s\nqemu-img map:\n%s", merged, want)
	}
}

// mapLines renders qemu-img map --output=json in the test's line format.
func mapLines(t *testing.T, js string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(js), "\n") {
		var start, length, depth int64
		var present, zero, data bool
		l = strings.Trim(l, "[],")
		_, err := fmt.Sscanf(strings.ReplaceAll(l, " ", ""), `{"start":%d,"length":%d,"depth":%d,"present":%t,"zero":%t,"data":%t`,
			&start, &length, &depth, &present, &zero, &data)
		if err != nil {
			t.Fatalf("qemu-img map line %q: %v", l, err)
		}
		fmt.Fprintf(&b, "%d+%d depth=%d data=%v zero=%v\n", start, length, depth, data, zero)
	}
	return mergeLines(b.String())
}

func mergeLines(s string) string {
	var out []string
	var prevOff, prevLen int64
	var prevRest string
	flush := func() {
		if prevLen > 0 {
			out = append(out, fmt.Sprintf("%d+%d %s", prevOff, prevLen, prevRest))
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		var off, length int64
		var rest string
		i := strings.IndexByte(l, ' ')
		fmt.Sscanf(l[:i], "%d+%d", &off, &length)
		rest = l[i+1:]
		if rest == prevRest && off == prevOff+prevLen {
			prevLen += length
			continue
		}
		flush()
		prevOff, prevLen, prevRest = off, length, rest
	}
	flush()
	return strings.Join(out, "\n")
}

// TestConcurrentWriters writes from several goroutines at once (disjoint regions, as
// several vCPUs and a job would) while others read and the image is resized; the image
// stays clean and exact.
func TestConcurrentWriters(t *testing.T) {
	needQemuImg(t)
	path := filepath.Join(t.TempDir(), "a.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", path, "16M")
	g, n := openImage(t, path, "qcow2")
	model := make([]byte, n.Size())
	const workers = 4
	region := int64(len(model)) / workers
	var wg sync.WaitGroup
	errs := make(chan error, workers*2)
	for w := 0; w < workers; w++ {
		wg.Add(2)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(w)))
			for i := 0; i < 200; i++ {
				l := int64(r.Intn(20000) + 1)
				off := int64(w)*region + r.Int63n(region-l)
				p := make([]byte, l)
				pattern(p, off, byte(w))
				if _, err := n.WriteAt(p, off); err != nil {
					errs <- err
					return
				}
				copy(model[off:], p)
			}
		}(w)
		go func() {
			defer wg.Done()
			p := make([]byte, 100000)
			for i := 0; i < 100; i++ {
				if _, err := n.ReadAt(p, int64(i)*100000%(int64(len(model))-100000)); err != nil && err != io.EOF {
					errs <- err
					return
				}
			}
		}()
	}
	// and the image grows under them (block_resize drains the node, moves the L1 table)
	if err := g.Resize("", "img", 32<<20); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n.Size() != 32<<20 {
		t.Fatalf("size %d after the resize", n.Size())
	}
	g.Close()
	checkClean(t, path)
	model = append(model, make([]byte, 16<<20)...)
	if d := firstDiff(rawContent(t, path), model); d != "" {
		t.Fatalf("qemu-img convert: %s", d)
	}
}

// TestConcurrentAllocatingWrites: writers that share clusters (disjoint 4 KiB slots of
// 64 KiB clusters over a backing file) allocate at once. An allocating write writes its
// data outside the metadata lock, so the others must wait for the clusters it has in
// flight (awaitAllocs) and not allocate them a second time: every slot keeps its writer's
// data, the rest reads from the backing file, and the image stays clean.
func TestConcurrentAllocatingWrites(t *testing.T) {
	needQemuIO(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	top := filepath.Join(dir, "top.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", base, "8M")
	qemuIO(t, base, "write -P 0x5a 0 8M")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top, "8M")
	g, n := openImage(t, top, "qcow2")
	model := bytes.Repeat([]byte{0x5a}, int(n.Size()))
	const workers, slot = 4, 4096
	slots := n.Size() / slot
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(w) + 7))
			for i := 0; i < 300; i++ {
				s := r.Int63n(slots/workers)*workers + int64(w) // a slot of w's
				k := int64(1)
				if r.Intn(4) == 0 { // sometimes two slots further on too, across a cluster
					k = 1 + 2*workers
				}
				if s+k > slots {
					k = 1
				}
				for j := int64(0); j < k; j += workers {
					p := make([]byte, slot)
					pattern(p, (s+j)*slot, byte(w+1))
					if _, err := n.WriteAt(p, (s+j)*slot); err != nil {
						errs <- err
						return
					}
					copy(model[(s+j)*slot:], p)
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	closeAndVerify(t, g, n, top, model)
}

// TestRawAndFileIO: a raw image reads and writes through its file node; statistics of
// the file node count the highest write.
func TestRawAndFileIO(t *testing.T) {
	needQemuImg(t)
	path := filepath.Join(t.TempDir(), "a.img")
	qemuImg(t, "create", "-q", "-f", "raw", path, "1M")
	g, n := openImage(t, path, "raw")
	model := make([]byte, n.Size())
	randomWrites(t, n, model, 50, 2, 50000)
	if _, err := n.WriteAt([]byte{1}, n.Size()); err == nil {
		t.Fatal("a write past the end succeeded")
	}
	p := make([]byte, 10)
	if k, err := n.ReadAt(p, n.Size()-4); k != 4 || err != io.EOF {
		t.Fatalf("read at the end: %d %v", k, err)
	}
	if n.File.WrHighestOffset() == 0 {
		t.Fatal("no wr_highest_offset on the file node")
	}
	g.Close()
	got, _ := os.ReadFile(path)
	if d := firstDiff(got, model); d != "" {
		t.Fatal(d)
	}
}

// TestLayoutMatchesQemuIO: the same writes made by qemu-io and by tlcvm leave byte-identical
// images: where L2 tables, data clusters, new refcount blocks and a grown refcount table go,
// refcounts, COPIED flags, copy-on-write content.
func TestLayoutMatchesQemuIO(t *testing.T) {
	needQemuIO(t)
	for _, c := range []struct {
		opts, size  string
		n, maxLen   int
		aligned     bool
		description string
	}{
		{"cluster_size=65536", "64M", 80, 200000, false, "default clusters, unaligned writes"},
		{"cluster_size=65536,compat=0.10", "64M", 80, 200000, true, "version 2"},
		{"cluster_size=4096", "64M", 200, 20000, false, "4 KiB clusters"},
		{"cluster_size=4096,refcount_bits=1", "64M", 200, 20000, true, "1-bit refcounts"},
		{"cluster_size=512", "32M", 300, 3000, false, "new refcount blocks"},
		{"cluster_size=512", "64M", 200, 120000, false, "a refcount table that grows"},
		{"cluster_size=1024,refcount_bits=64", "64M", 200, 120000, false, "64-bit refcounts, growing"},
		{"cluster_size=65536,backing_file=base.qcow2,backing_fmt=qcow2", "64M", 80, 200000, false, "copy-on-write from a backing file"},
		{"cluster_size=4096,snapshot", "64M", 200, 20000, false, "clusters shared with an internal snapshot"},
	} {
		t.Run(c.description, func(t *testing.T) {
			dir := t.TempDir()
			a, b := filepath.Join(dir, "qemu.qcow2"), filepath.Join(dir, "tlcvm.qcow2")
			base := filepath.Join(dir, "base.qcow2")
			qemuImg(t, "create", "-q", "-f", "qcow2", base, "64M")
			qemuIO(t, base, "write -P 0x77 0 64M")
			opts, snapshot := strings.CutSuffix(c.opts, ",snapshot")
			opts = strings.ReplaceAll(opts, "base.qcow2", base)
			qemuImg(t, "create", "-q", "-f", "qcow2", "-o", opts, a, c.size)
			if snapshot {
				qemuIO(t, a, "write -P 0x33 0 32M")
				qemuImg(t, "snapshot", "-c", "s1", a) // the snapshot table holds its time: copy it
			}
			img, err := os.ReadFile(a)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(b, img, 0o644); err != nil {
				t.Fatal(err)
			}
			g, n := openImage(t, b, "qcow2")
			r := rand.New(rand.NewSource(1))
			var cmds []string
			for i := 0; i < c.n; i++ {
				l := int64(r.Intn(c.maxLen) + 1)
				off := r.Int63n(n.Size() - l)
				if c.aligned {
					l, off = (l+511)&^511, off&^511
				}
				cmds = append(cmds, fmt.Sprintf("write -P %d %d %d", i%256, off, l))
				p := bytes.Repeat([]byte{byte(i)}, int(l))
				if _, err := n.WriteAt(p, off); err != nil {
					t.Fatal(err)
				}
			}
			g.Close()
			qemuIO(t, a, cmds...)
			x, _ := os.ReadFile(a)
			y, _ := os.ReadFile(b)
			if d := firstDiff(x, y); d != "" {
				t.Fatalf("tlcvm's image differs from qemu-io's: %s", d)
			}
		})
	}
}

// TestZeroesAndDiscardsMatchQemuIO: writes, write-zeroes (with and without unmap) and
// discards made by qemu-io and by tlcvm leave byte-identical images, on version 2 and 3,
// with and without a backing file: zero clusters, zeroed heads and tails, discards passed
// to the image file when clusters are freed (pass-discard-request), L2 tables made for
// nothing, as QEMU makes them.
func TestZeroesAndDiscardsMatchQemuIO(t *testing.T) {
	needQemuIO(t)
	for _, c := range []struct {
		name, opts string
		backing    bool
	}{{"v3", "cluster_size=4096", false}, {"v3 over a backing file", "cluster_size=4096", true},
		{"v2", "cluster_size=4096,compat=0.10", false}, {"v2 over a backing file", "cluster_size=4096,compat=0.10", true}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			a, b := filepath.Join(dir, "qemu.qcow2"), filepath.Join(dir, "tlcvm.qcow2")
			base := filepath.Join(dir, "base.qcow2")
			qemuImg(t, "create", "-q", "-f", "qcow2", base, "8M")
			qemuIO(t, base, "write -P 0x77 0 4M", "write -z 4M 2M")
			opts := c.opts
			if c.backing {
				opts += ",backing_file=" + base + ",backing_fmt=qcow2"
			}
			qemuImg(t, "create", "-q", "-f", "qcow2", "-o", opts, a, "8M")
			img, _ := os.ReadFile(a)
			if err := os.WriteFile(b, img, 0o644); err != nil {
				t.Fatal(err)
			}
			g, n := openImage(t, b, "qcow2", func(o *blockdev.Options) { o.Discard, o.File.Options.Discard = "unmap", "unmap" })
			r := rand.New(rand.NewSource(3))
			args := []string{"-d", "unmap", "-f", "qcow2"}
			for i := 0; i < 300; i++ {
				l := int64(r.Intn(30000) + 1)
				off := r.Int63n(n.Size() - l)
				var err error
				switch r.Intn(4) {
				case 0:
					args = append(args, "-c", fmt.Sprintf("write -z %d %d", off, l))
					err = n.WriteZeroes(off, l, 0)
				case 1:
					args = append(args, "-c", fmt.Sprintf("write -z -u %d %d", off, l))
					err = n.WriteZeroes(off, l, blockdev.ZeroMayUnmap)
				case 2:
					args = append(args, "-c", fmt.Sprintf("discard %d %d", off, l))
					err = n.Unmap(off, l)
				default:
					args = append(args, "-c", fmt.Sprintf("write -P %d %d %d", i%256, off, l))
					_, err = n.WriteAt(bytes.Repeat([]byte{byte(i)}, int(l)), off)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			g.Close()
			if out, err := exec.Command("qemu-io", append(args, a)...).CombinedOutput(); err != nil {
				t.Fatalf("qemu-io: %v\n%s", err, out)
			}
			x, _ := os.ReadFile(a)
			y, _ := os.ReadFile(b)
			if d := firstDiff(x, y); d != "" {
				t.Fatalf("tlcvm's image differs from qemu-io's: %s", d)
			}
			checkClean(t, b)
		})
	}
}

// TestResizeMatchesQemuImg: block_resize of a qcow2 image past what its L1 table covers
// moves the table as qemu-img resize does (byte-identical images), and writes past the old
// end land where qemu-io puts them.
func TestResizeMatchesQemuImg(t *testing.T) {
	needQemuIO(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "qemu.qcow2"), filepath.Join(dir, "tlcvm.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", a, "1M")
	qemuIO(t, a, "write -P 1 0 100k", "write -P 2 700k 300k")
	img, _ := os.ReadFile(a)
	if err := os.WriteFile(b, img, 0o644); err != nil {
		t.Fatal(err)
	}
	qemuImg(t, "resize", "-q", a, "64M")
	qemuIO(t, a, "write -P 3 60M 200k", "write -P 4 512k 4k")
	g, n := openImage(t, b, "qcow2")
	if err := g.Resize("", "img", 64<<20); err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		off, n int64
		p      byte
	}{{60 << 20, 200 << 10, 3}, {512 << 10, 4 << 10, 4}} {
		if _, err := n.WriteAt(bytes.Repeat([]byte{w.p}, int(w.n)), w.off); err != nil {
			t.Fatal(err)
		}
	}
	g.Close()
	checkClean(t, b)
	x, _ := os.ReadFile(a)
	y, _ := os.ReadFile(b)
	if d := firstDiff(x, y); d != "" {
		t.Fatalf("tlcvm's image differs from qemu-img's: %s", d)
	}
}
