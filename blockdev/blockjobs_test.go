package blockdev_test

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tlcvm/blockdev"
)

// The block jobs on real images, with qemu-img and qemu-io as the oracle: the chain is
// made and filled by qemu-img/qemu-io, the job runs in a Graph while writers hit the
// active layer, and afterwards qemu-img check finds the images clean, qemu-img info
// shows the chain QEMU would leave (backing file names in the headers), and the content
// is what the writes and the original chain make.

const chainSize = 4 << 20

// testChain is base ← mid ← top (64 KiB clusters unless given), each layer with its own
// pattern: base 0x11 over [0,1M), mid 0x22 over [1M,2M), top 0x33 over [2M,2.5M).
type testChain struct {
	dir            string
	base, mid, top string
}

func newTestChain(t *testing.T, opts ...string) *testChain {
	t.Helper()
	needQemuImg(t)
	needQemuIO(t)
	dir := t.TempDir()
	c := &testChain{dir: dir, base: filepath.Join(dir, "base.qcow2"), mid: filepath.Join(dir, "mid.qcow2"),
		top: filepath.Join(dir, "top.qcow2")}
	o := strings.Join(opts, ",")
	create := func(img, backing string) {
		args := []string{"create", "-q", "-f", "qcow2"}
		if o != "" {
			args = append(args, "-o", o)
		}
		if backing != "" {
			args = append(args, "-b", backing, "-F", "qcow2")
		}
		qemuImg(t, append(args, img, "4M")...)
	}
	create(c.base, "")
	create(c.mid, c.base)
	create(c.top, c.mid)
	qemuIO(t, c.base, "write -P 0x11 0 1M")
	qemuIO(t, c.mid, "write -P 0x22 1M 1M")
	qemuIO(t, c.top, "write -P 0x33 2M 512k")
	return c
}

// want is the chain's content before any job: what every layer reads as.
func (c *testChain) want() []byte {
	b := make([]byte, chainSize)
	fill(b[0:1<<20], 0x11)
	fill(b[1<<20:2<<20], 0x22)
	fill(b[2<<20:2<<20+512<<10], 0x33)
	return b
}

func fill(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}

// open opens top through its file, the backing chain as the image names it (the -drive
// way: implicit nodes), top named "top".
func (c *testChain) open(t *testing.T, g *blockdev.Graph) *blockdev.Node {
	t.Helper()
	n, err := g.Add(&blockdev.Options{Driver: "qcow2", NodeName: "top",
		File: &blockdev.Ref{Options: &blockdev.Options{Driver: "file", Filename: c.top, NodeName: "top-file"}}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// imgInfo is qemu-img info's JSON for an image's backing chain.
type imgInfo struct {
	Filename        string `json:"filename"`
	BackingFilename string `json:"backing-filename"`
	BackingFormat   string `json:"backing-filename-format"`
}

func backingChain(t *testing.T, img string) []imgInfo {
	t.Helper()
	out := qemuImg(t, "info", "-U", "--backing-chain", "--output=json", img)
	var infos []imgInfo
	if err := json.Unmarshal([]byte(out), &infos); err != nil {
		t.Fatalf("qemu-img info: %v\n%s", err, out)
	}
	return infos
}

// checkContent requires qemu-img check to find img clean and img (through its chain) to
// read as want.
func checkContent(t *testing.T, img string, want []byte) {
	t.Helper()
	checkClean(t, img)
	if d := firstDiff(rawContent(t, img), want); d != "" {
		t.Fatalf("%s: %s", img, d)
	}
}

// writer hits a node with random writes until stopped, keeping a model of the content.
type writer struct {
	n     *blockdev.Node
	model []byte
	stop  chan struct{}
	done  sync.WaitGroup
	mu    sync.Mutex
	count int
	err   error
}

func startWriter(t *testing.T, n *blockdev.Node, model []byte, seed int64) *writer {
	w := &writer{n: n, model: model, stop: make(chan struct{})}
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		r := rand.New(rand.NewSource(seed))
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			l := int64(1+r.Intn(16)) * 4096
			off := r.Int63n(chainSize-l) &^ 511
			p := bytes.Repeat([]byte{byte(r.Intn(250) + 1)}, int(l))
			w.mu.Lock()
			if _, err := w.n.WriteAt(p, off); err != nil {
				w.err = err
				w.mu.Unlock()
				return
			}
			copy(w.model[off:], p)
			w.count++
			w.mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	return w
}

func (w *writer) finish(t *testing.T) []byte {
	t.Helper()
	close(w.stop)
	w.done.Wait()
	if w.err != nil {
		t.Fatalf("writer: %v", w.err)
	}
	if w.count == 0 {
		t.Fatal("the writer made no write")
	}
	return w.model
}

func waitJobGone(t *testing.T, g *blockdev.Graph, id string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		found := false
		for _, j := range g.Jobs() {
			found = found || j.ID == id
		}
		if !found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still there: %+v", id, g.Jobs())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func strp(s string) *string { return &s }

// TestStream streams into top with and without a base, while a writer writes top; the
// result is top alone (or top on base) with the backing file QEMU records.
func TestStream(t *testing.T) {
	for _, c := range []struct {
		name     string
		baseNode bool
		opts     []string
	}{
		{"whole chain", false, nil},
		{"down to base", true, nil},
		{"4k clusters", true, []string{"cluster_size=4096"}},
		{"v2", false, []string{"compat=0.10"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ch := newTestChain(t, c.opts...)
			ev := newJobEvents()
			g := newGraph(ev)
			top := ch.open(t, g)
			w := startWriter(t, top, ch.want(), 1)
			o := blockdev.StreamOptions{JobID: strp("s"), Device: "top", Speed: 8 << 20}
			if c.baseNode {
				base := top.Backing.Backing
				o.BaseNode = &base.Name
			}
			if err := g.Stream(o); err != nil {
				t.Fatal(err)
			}
			waitJobGone(t, g, "s")
			model := w.finish(t)
			if got := ev.take(); !strings.HasSuffix(got, "waiting pending BLOCK_JOB_COMPLETED:4194304/4194304 concluded null") {
				t.Fatalf("events %s", got)
			}
			chain := []string{}
			for n := top; n != nil; n = n.Backing {
				chain = append(chain, filepath.Base(n.Filename()))
			}
			want := "top.qcow2"
			if c.baseNode {
				want = "top.qcow2 base.qcow2"
			}
			if strings.Join(chain, " ") != want {
				t.Fatalf("chain %v, want %s", chain, want)
			}
			if n := len(g.Nodes()); n != len(chain)*2 {
				t.Fatalf("%d nodes left, want %d", n, len(chain)*2)
			}
			g.Close()
			infos := backingChain(t, ch.top)
			if c.baseNode && (len(infos) != 2 || infos[0].BackingFilename != ch.base || infos[0].BackingFormat != "qcow2") {
				t.Fatalf("qemu-img info: %+v", infos)
			}
			if !c.baseNode && (len(infos) != 1 || infos[0].BackingFilename != "") {
				t.Fatalf("qemu-img info: %+v", infos)
			}
			checkContent(t, ch.top, model)
		})
	}
}

// TestStreamErrors: block-stream's argument errors in QEMU's order and words.
func TestStreamErrors(t *testing.T) {
	ch := newTestChain(t)
	g := newGraph(newJobEvents())
	defer g.Close()
	top := ch.open(t, g)
	mid := top.Backing
	for _, c := range []struct {
		o    blockdev.StreamOptions
		want string
	}{
		{blockdev.StreamOptions{Device: "nope"}, "Cannot find device='nope' nor node-name='nope'"},
		{blockdev.StreamOptions{Device: "top", Base: strp("x"), BaseNode: strp("y")}, "'base' and 'base-node' cannot be specified at the same time"},
		{blockdev.StreamOptions{Device: "top", Base: strp("x"), Bottom: strp("y")}, "'base' and 'bottom' cannot be specified at the same time"},
		{blockdev.StreamOptions{Device: "top", Bottom: strp("x"), BaseNode: strp("y")}, "'bottom' and 'base-node' cannot be specified at the same time"},
		{blockdev.StreamOptions{Device: "top", Base: strp("/none")}, "Can't find '/none' in the backing chain"},
		{blockdev.StreamOptions{Device: "top", BaseNode: strp("zz")}, "Cannot find device='' nor node-name='zz'"},
		{blockdev.StreamOptions{Device: "top", BaseNode: strp("top")}, "Node 'top' is not a backing image of 'top'"},
		{blockdev.StreamOptions{Device: "top", BackingFile: strp("x")}, "backing file specified, but streaming the entire chain"},
		{blockdev.StreamOptions{Device: "top"}, "Invalid job ID ''"},
		{blockdev.StreamOptions{Device: "top", JobID: strp("j"), Speed: -1}, "Parameter 'speed' expects a non-negative value"},
	} {
		if err := g.Stream(c.o); err == nil || err.Error() != c.want {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
	if n := len(g.Nodes()); n != 6 {
		t.Fatalf("failed streams left %d nodes (a filter?)", n)
	}
	if !mid.ReadOnly {
		t.Fatal("mid is read-write after the failures")
	}
	if err := g.Stream(blockdev.StreamOptions{Device: "top", JobID: strp("s"), Base: strp(ch.base), Speed: 1}); err != nil {
		t.Fatal(err)
	}
	if err := g.Stream(blockdev.StreamOptions{Device: "top", JobID: strp("s2")}); err == nil || err.Error() != "Node 'top' is busy: block device is in use by block job: stream" {
		t.Fatalf("second stream: %v", err)
	}
}
