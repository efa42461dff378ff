package blockdev_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

// writer is the guest: random writes through the device's backend (so that they pass
// the jobs' filters) until stopped, keeping a model of the disk's content. hold stops it
// between two writes (for a point-in-time look at the model).
type writer struct {
	b     *blockdev.Backend
	model []byte
	stop  chan struct{}
	done  sync.WaitGroup
	mu    sync.Mutex
	count int
	err   error
}

// attach puts a virtio disk device on node and returns its backend.
func attach(t *testing.T, g *blockdev.Graph, node string) *blockdev.Backend {
	t.Helper()
	if err := g.AttachDevice(&blockdev.Device{ID: "vd0", Driver: "virtio-blk-pci", Path: "/machine/peripheral/vd0"}, node); err != nil {
		t.Fatal(err)
	}
	b, ok := g.DeviceBackend("vd0")
	if !ok {
		t.Fatal("no backend")
	}
	return b
}

func startWriter(t *testing.T, b *blockdev.Backend, model []byte, seed int64) *writer {
	w := &writer{b: b, model: model, stop: make(chan struct{})}
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
			if err := w.b.Write(context.Background(), p, off); err != nil {
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

// snapshot returns a copy of the model between two writes.
func (w *writer) snapshot() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]byte(nil), w.model...)
}

// waitWrites waits until the writer made n more writes.
func (w *writer) waitWrites(t *testing.T, n int) {
	t.Helper()
	w.mu.Lock()
	want := w.count + n
	w.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		w.mu.Lock()
		c, err := w.count, w.err
		w.mu.Unlock()
		if err != nil {
			t.Fatalf("writer: %v", err)
		}
		if c >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the writer is stuck at %d writes", c)
		}
		time.Sleep(2 * time.Millisecond)
	}
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
			w := startWriter(t, attach(t, g, "top"), ch.want(), 1)
			o := blockdev.StreamOptions{JobID: strp("s"), Device: "top", Speed: 8 << 20}
			if c.baseNode {
				base := top.Backing.Backing
				o.BaseNode = &base.Name
			}
			if err := g.Stream(o); err != nil {
				t.Fatal(err)
			}
			waitJobGone(t, g, "s")
			w.waitWrites(t, 5) // the guest goes on writing after the job
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

// waitEvent waits for an event recorded as exactly name (or name:detail).
func waitEvent(t *testing.T, ev *jobEvents, prefix string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ev.mu.Lock()
		found := false
		for _, e := range ev.got {
			found = found || strings.HasPrefix(e, prefix)
		}
		ev.mu.Unlock()
		if found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in %s", prefix, ev.take())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// addTarget creates tgt.qcow2 (backed by backing's image when not nil) and adds it as
// node "tgt" on backing (or with no backing at all).
func (c *testChain) addTarget(t *testing.T, g *blockdev.Graph, backing *blockdev.Node) string {
	t.Helper()
	tgt := filepath.Join(c.dir, "tgt.qcow2")
	args := []string{"create", "-q", "-f", "qcow2"}
	o := &blockdev.Options{Driver: "qcow2", NodeName: "tgt",
		File: &blockdev.Ref{Options: &blockdev.Options{Driver: "file", Filename: tgt}}, Backing: &blockdev.Ref{Null: true}}
	if backing != nil {
		args = append(args, "-b", backing.Filename(), "-F", "qcow2")
		o.Backing = &blockdev.Ref{Node: backing.Name}
	}
	qemuImg(t, append(args, tgt, "4M")...)
	if _, err := g.Add(o); err != nil {
		t.Fatal(err)
	}
	return tgt
}

// TestCommitIntermediate: mid is committed into base while the guest writes top; top's
// backing becomes base and its header says so; top reads as the guest wrote, base holds
// base and mid. With a speed the copies run one at a time, without one several in flight.
func TestCommitIntermediate(t *testing.T) {
	for _, speed := range []int64{8 << 20, 0} {
		t.Run(fmt.Sprint("speed=", speed), func(t *testing.T) {
			ch := newTestChain(t)
			ev := newJobEvents()
			g := newGraph(ev)
			top := ch.open(t, g)
			mid, base := top.Backing, top.Backing.Backing
			w := startWriter(t, attach(t, g, "top"), ch.want(), 2)
			if err := g.Commit(blockdev.CommitOptions{JobID: strp("c"), Device: "top", TopNode: &mid.Name, BaseNode: &base.Name, Speed: speed}); err != nil {
				t.Fatal(err)
			}
			waitJobGone(t, g, "c")
			w.waitWrites(t, 5)
			model := w.finish(t)
			if got := ev.take(); !strings.HasSuffix(got, "running waiting pending BLOCK_JOB_COMPLETED:4194304/4194304 concluded null") {
				t.Fatalf("events %s", got)
			}
			if top.Backing != base || !base.ReadOnly {
				t.Fatalf("top's backing %v (read-only %v)", top.Backing, base.ReadOnly)
			}
			g.Close()
			if infos := backingChain(t, ch.top); len(infos) != 2 || infos[0].BackingFilename != ch.base || infos[0].BackingFormat != "qcow2" {
				t.Fatalf("qemu-img info: %+v", infos)
			}
			checkContent(t, ch.top, model)
			want := ch.want()
			clear(want[2<<20:])
			checkContent(t, ch.base, want)
			qemuImg(t, "check", ch.base)
		})
	}
}

// TestCommitActive: the active layer is committed into base while the guest writes; the
// job goes ready and follows the writes; complete switches the device to base (the
// pivot), the guest goes on writing there; or cancel once ready leaves the device on top
// with base holding what top held then (--keep-overlay).
func TestCommitActive(t *testing.T) {
	for _, pivot := range []bool{true, false} {
		t.Run(map[bool]string{true: "pivot", false: "keep overlay"}[pivot], func(t *testing.T) {
			ch := newTestChain(t)
			ev := newJobEvents()
			g := newGraph(ev)
			top := ch.open(t, g)
			base := top.Backing.Backing
			b := attach(t, g, "top")
			w := startWriter(t, b, ch.want(), 3)
			if err := g.Commit(blockdev.CommitOptions{JobID: strp("c"), Device: "top", ManualDismiss: true}); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, ev, "BLOCK_JOB_READY")
			w.waitWrites(t, 20) // the job follows the guest
			if pivot {
				if err := g.CompleteJob("c", false); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := g.CancelJob("c", true, false); err != nil {
					t.Fatal(err)
				}
			}
			waitEvent(t, ev, "concluded")
			w.waitWrites(t, 5)
			var model []byte
			if !pivot {
				model = w.snapshot()
			}
			if err := g.DismissJob("c", false); err != nil {
				t.Fatal(err)
			}
			final := w.finish(t)
			g.Lock()
			root := b.Root
			g.Unlock()
			if pivot && root != base || !pivot && root != top {
				t.Fatalf("the device's root is %s", root.Name)
			}
			if pivot && base.ReadOnly {
				t.Fatal("base is read-only after the pivot")
			}
			if got := ev.take(); !strings.Contains(got, "ready BLOCK_JOB_READY") || !strings.Contains(got, "waiting pending BLOCK_JOB_COMPLETED") {
				t.Fatalf("events %s", got)
			}
			g.Close()
			if pivot {
				checkContent(t, ch.base, final)
			} else {
				checkContent(t, ch.top, final)
				_ = model // base holds what top read as at the cancel; the guest went on writing top
				checkClean(t, ch.base)
			}
		})
	}
}

// TestMirror mirrors the disk into a new image while the guest writes, in each sync mode
// and copy mode; complete switches the device to the target, which then reads as the
// guest wrote.
func TestMirror(t *testing.T) {
	for _, c := range []struct {
		name, sync, mode string
	}{
		{"full", "full", "background"},
		{"top", "top", "background"},
		{"full write-blocking", "full", "write-blocking"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ch := newTestChain(t)
			ev := newJobEvents()
			g := newGraph(ev)
			top := ch.open(t, g)
			b := attach(t, g, "top")
			var backing *blockdev.Node
			if c.sync == "top" {
				backing = top.Backing
			}
			tgt := ch.addTarget(t, g, backing)
			w := startWriter(t, b, ch.want(), 4)
			if err := g.BlockdevMirror(blockdev.MirrorOptions{JobID: strp("m"), Device: "top", Target: "tgt", Sync: c.sync, CopyMode: c.mode}); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, ev, "BLOCK_JOB_READY")
			w.waitWrites(t, 20)
			if err := g.CompleteJob("m", true); err != nil {
				t.Fatal(err)
			}
			waitJobGone(t, g, "m")
			w.waitWrites(t, 5)
			model := w.finish(t)
			g.Lock()
			root := b.Root.Name
			g.Unlock()
			if root != "tgt" {
				t.Fatalf("the device's root is %s", root)
			}
			g.Close()
			checkContent(t, tgt, model)
		})
	}
}

// TestBackup: a backup taken while the guest writes holds the disk as it was when the
// job started (copy-before-write), in sync full, top and none; the source goes on
// reading as the guest wrote.
func TestBackup(t *testing.T) {
	for _, sync := range []string{"full", "top", "none"} {
		t.Run(sync, func(t *testing.T) {
			ch := newTestChain(t)
			ev := newJobEvents()
			g := newGraph(ev)
			top := ch.open(t, g)
			b := attach(t, g, "top")
			backing := map[string]*blockdev.Node{"top": top.Backing, "none": top}[sync]
			tgt := ch.addTarget(t, g, backing)
			w := startWriter(t, b, ch.want(), 5)
			w.waitWrites(t, 5)
			w.mu.Lock() // the point in time: no guest write in flight
			pit := append([]byte(nil), w.model...)
			err := g.BlockdevBackup(blockdev.BackupOptions{JobID: strp("b"), Device: "top", Target: "tgt", Sync: sync, Speed: 8 << 20})
			w.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			if sync == "none" {
				w.waitWrites(t, 40)
				w.mu.Lock() // the target's view must be read while its backing (top) holds still
				checkTarget := func() {
					n, _ := g.Node("tgt")
					got := make([]byte, chainSize)
					if _, err := n.ReadAt(got, 0); err != nil {
						t.Fatal(err)
					}
					if d := firstDiff(got, pit); d != "" {
						t.Fatalf("the sync=none target: %s", d)
					}
				}
				checkTarget()
				w.mu.Unlock()
				if err := g.CancelJob("b", true, false); err != nil {
					t.Fatal(err)
				}
			}
			waitJobGone(t, g, "b")
			model := w.finish(t)
			got := ev.take()
			if !strings.HasPrefix(got, "created running paused running") {
				t.Fatalf("events %s", got)
			}
			if sync == "full" && !strings.HasSuffix(got, "waiting pending BLOCK_JOB_COMPLETED:4194304/4194304 concluded null") ||
				sync == "top" && !strings.Contains(got, "waiting pending BLOCK_JOB_COMPLETED:") {
				t.Fatalf("events %s", got)
			}
			g.Close()
			checkContent(t, ch.top, model)
			if sync != "none" {
				checkContent(t, tgt, pit)
			}
		})
	}
}

// TestBackupIncremental: an incremental backup copies the clusters a bitmap marks, and
// leaves the bitmap holding the writes made during the backup (bitmap-mode on-success).
func TestBackupIncremental(t *testing.T) {
	ch := newTestChain(t)
	g := newGraph(newJobEvents())
	defer g.Close()
	top := ch.open(t, g)
	b := attach(t, g, "top")
	if err := blockdev.Run(g.PrepareBitmapAdd(blockdev.BitmapAddOptions{Node: "top", Name: "bm"})); err != nil {
		t.Fatal(err)
	}
	p := bytes.Repeat([]byte{0x5a}, 64<<10)
	if err := b.Write(context.Background(), p, 3<<20); err != nil {
		t.Fatal(err)
	}
	tgt := filepath.Join(ch.dir, "inc.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", tgt, "4M")
	if _, err := g.Add(&blockdev.Options{Driver: "qcow2", NodeName: "inc",
		File: &blockdev.Ref{Options: &blockdev.Options{Driver: "file", Filename: tgt}}}); err != nil {
		t.Fatal(err)
	}
	if err := g.BlockdevBackup(blockdev.BackupOptions{JobID: strp("i"), Device: "top", Target: "inc", Sync: "incremental", Bitmap: strp("bm")}); err != nil {
		t.Fatal(err)
	}
	waitJobGone(t, g, "i")
	g.Lock()
	bm := top.Bitmaps()[0]
	g.Unlock()
	if bm.Count() != 0 || bm.Busy() {
		t.Fatalf("bitmap after the backup: count %d busy %v", bm.Count(), bm.Busy())
	}
	n, _ := g.Node("inc")
	ex, err := n.BlockStatus(0, chainSize)
	if err != nil || ex.Status&blockdev.StatusAllocated != 0 || ex.Length != 3<<20 {
		t.Fatalf("the target holds more than the marked cluster: %+v %v", ex, err)
	}
	got := make([]byte, 64<<10)
	if _, err := n.ReadAt(got, 3<<20); err != nil || !bytes.Equal(got, p) {
		t.Fatalf("the marked cluster: %v", err)
	}
	if err := b.Write(context.Background(), p, 0); err != nil {
		t.Fatal(err)
	}
	if bm.Count() != 64<<10 {
		t.Fatalf("the bitmap records %d bytes after one write", bm.Count())
	}
}

// TestChangeBackingFile: change-backing-file rewrites the name in the image's header (and,
// for a read-only image below the top, reopens it read-write meanwhile); qemu-img reads the
// new names and finds the images clean; the graph keeps its nodes.
func TestChangeBackingFile(t *testing.T) {
	ch := newTestChain(t)
	g := newGraph(nil)
	top := ch.open(t, g)
	mid := top.Backing
	if err := g.ChangeBackingFile("top", "top", "mid-renamed.qcow2"); err != nil {
		t.Fatal(err)
	}
	if err := g.ChangeBackingFile("top", mid.Name, "base-renamed.qcow2"); err != nil {
		t.Fatal(err)
	}
	if !mid.ReadOnly || top.Backing != mid {
		t.Fatalf("the graph changed: mid read-only %v, top's backing %v", mid.ReadOnly, top.Backing.Name)
	}
	if err := g.ChangeBackingFile("top", "top-file", "x"); err == nil ||
		err.Error() != "not allowing backing file change on an image without a backing file" {
		t.Fatalf("a file node: %v", err)
	}
	g.Close()
	for img, want := range map[string]string{ch.top: "mid-renamed.qcow2", ch.mid: "base-renamed.qcow2"} {
		var info imgInfo
		if err := json.Unmarshal([]byte(qemuImg(t, "info", "--output=json", img)), &info); err != nil {
			t.Fatal(err)
		}
		if info.BackingFilename != want || info.BackingFormat != "qcow2" {
			t.Errorf("%s: backing %q (%s), want %q", filepath.Base(img), info.BackingFilename, info.BackingFormat, want)
		}
		// The renamed backing files do not exist: checked without them.
		if out := qemuImg(t, "check", "--image-opts", "driver=qcow2,file.driver=file,file.filename="+img+",backing="); !strings.Contains(out, "No errors were found") {
			t.Errorf("qemu-img check %s: %s", img, out)
		}
	}
}
