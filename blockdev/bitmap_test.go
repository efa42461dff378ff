package blockdev_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlcvm/blockdev"
)

// Dirty bitmaps: the granule arithmetic, the write hook, the monitor operations with
// QEMU's texts, and persistence in qcow2 images with qemu-img, qemu-io and qemu-nbd as the
// oracle (they read what tlcvm stores and write what tlcvm loads).

// rawNode opens a raw image of size bytes as node "img".
func rawNode(t *testing.T, size int64) (*blockdev.Graph, *blockdev.Node) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "d.raw")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	g, n := openImage(t, path, blockdev.DriverRaw)
	t.Cleanup(g.Close)
	return g, n
}

// dirtyRuns lists b's dirty runs as "off+len".
func dirtyRuns(b *blockdev.Bitmap) string {
	var out []string
	b.Extents(0, b.Size(), func(off, length int64, dirty bool) bool {
		if dirty {
			out = append(out, fmt.Sprintf("%d+%d", off, length))
		}
		return true
	})
	return strings.Join(out, " ")
}

func TestBitmapGranules(t *testing.T) {
	// 1 MiB + 1 KiB: the last 4 KiB granule is partial.
	_, n := rawNode(t, 1<<20+1024)
	cases := []struct {
		name       string
		gran       int64
		set, reset [][2]int64
		runs       string
		count      int64
	}{
		{"one byte marks its granule", 4096, [][2]int64{{5000, 1}}, nil, "4096+4096", 4096},
		{"a range across granules", 4096, [][2]int64{{4095, 2}}, nil, "0+8192", 8192},
		{"the partial last granule counts whole", 4096, [][2]int64{{1 << 20, 1024}}, nil, "1048576+1024", 4096},
		{"past the end is ignored", 4096, [][2]int64{{1 << 21, 4096}, {-4096, 4096}}, nil, "", 0},
		{"zero length marks nothing", 512, [][2]int64{{4096, 0}}, nil, "", 0},
		{"reset clears whole granules", 512, [][2]int64{{0, 8192}}, [][2]int64{{1024, 2048}}, "0+1024 3072+5120", 6144},
		{"across a 64-bit word", 512, [][2]int64{{63 * 512, 3 * 512}}, nil, "32256+1536", 1536},
		{"many words", 512, [][2]int64{{512, 200 * 512}}, [][2]int64{{100 * 512, 512}}, "512+50688 51712+51200", 199 * 512},
		{"large granularity covers the disk", 1 << 30, [][2]int64{{7, 1}}, nil, "0+1049600", 1 << 30},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := n.CreateBitmap(fmt.Sprintf("b%d", i), c.gran)
			if err != nil {
				t.Fatal(err)
			}
			defer n.ReleaseBitmap(b)
			for _, r := range c.set {
				b.Set(r[0], r[1])
			}
			for _, r := range c.reset {
				b.Reset(r[0], r[1])
			}
			if got := dirtyRuns(b); got != c.runs {
				t.Errorf("runs = %q, want %q", got, c.runs)
			}
			if got := b.Count(); got != c.count {
				t.Errorf("count = %d, want %d", got, c.count)
			}
		})
	}
}

func TestBitmapSearch(t *testing.T) {
	_, n := rawNode(t, 1<<20)
	b, err := n.CreateBitmap("s", 4096)
	if err != nil {
		t.Fatal(err)
	}
	b.Set(8192, 4096)
	b.Set(200*4096, 8192)
	for _, c := range []struct {
		off, end, want int64
		zero           bool
	}{
		{0, 1 << 20, 8192, false},
		{9000, 1 << 20, 9000, false}, // inside a dirty granule: off itself
		{12288, 1 << 20, 200 * 4096, false},
		{12288, 200 * 4096, -1, false}, // end excludes the next run
		{202 * 4096, 1 << 20, -1, false},
		{8192, 1 << 20, 12288, true},
		{0, 1 << 20, 0, true},
		{8192, 12288, -1, true},
	} {
		var got int64
		if c.zero {
			got = b.NextCleanOffset(c.off, c.end)
		} else {
			got = b.NextDirtyOffset(c.off, c.end)
		}
		if got != c.want {
			t.Errorf("next(zero=%v, %d, %d) = %d, want %d", c.zero, c.off, c.end, got, c.want)
		}
	}
	start, length, ok := b.NextDirtyArea(0, 1<<20, 4096)
	if !ok || start != 8192 || length != 4096 {
		t.Errorf("NextDirtyArea = %d+%d %v", start, length, ok)
	}
	start, length, ok = b.NextDirtyArea(12288, 1<<20, 4096)
	if !ok || start != 200*4096 || length != 4096 {
		t.Errorf("NextDirtyArea capped = %d+%d %v", start, length, ok)
	}
	if _, _, ok := b.NextDirtyArea(202*4096, 1<<20, 0); ok {
		t.Error("NextDirtyArea found a run past the last")
	}
}

// TestBitmapDetached: a job's bitmap, kept apart from the node's and told of writes as a
// WriteTracker; NextDirty walks it in runs of at most max bytes, granule aligned.
func TestBitmapDetached(t *testing.T) {
	_, n := rawNode(t, 1<<20+1024)
	b := blockdev.NewBitmap(n.Size(), 65536)
	untrack := n.TrackWrites(b)
	if _, err := n.WriteAt(make([]byte, 100), 70000); err != nil {
		t.Fatal(err)
	}
	if err := n.WriteZeroes(1<<20, 1024, 0); err != nil {
		t.Fatal(err)
	}
	if got := dirtyRuns(b); got != "65536+65536 1048576+1024" {
		t.Errorf("tracked: %q", got)
	}
	b.SetEnabled(false)
	if _, err := n.WriteAt(make([]byte, 1), 0); err != nil {
		t.Fatal(err)
	}
	untrack()
	b.SetEnabled(true)
	if _, err := n.WriteAt(make([]byte, 1), 5*65536); err != nil {
		t.Fatal(err)
	}
	if got := dirtyRuns(b); got != "65536+65536 1048576+1024" {
		t.Errorf("after a disabled and an untracked write: %q", got)
	}
	if len(n.Bitmaps()) != 0 {
		t.Error("a detached bitmap is listed on the node")
	}
	c := b.Copy()
	b.SetAll()
	for _, x := range []struct{ off, max, start, length int64 }{
		{0, 1 << 30, 0, 1<<20 + 1024},
		{70000, 65536, 65536, 65536},
		{0, 1000, 0, 65536},
		{1 << 20, 1 << 20, 1 << 20, 1024},
	} {
		s, l, ok := b.NextDirty(x.off, x.max)
		if !ok || s != x.start || l != x.length {
			t.Errorf("NextDirty(%d, %d) = %d+%d %v, want %d+%d", x.off, x.max, s, l, ok, x.start, x.length)
		}
	}
	s, l, ok := c.NextDirty(131072, 1<<30)
	if !ok || s != 1<<20 || l != 1024 {
		t.Errorf("copy: NextDirty = %d+%d %v", s, l, ok)
	}
	if _, _, ok := c.NextDirty(1<<20+1024, 1<<30); ok {
		t.Error("NextDirty past the end")
	}
	b.Reset(0, b.Size())
	if b.Count() != 0 {
		t.Errorf("count after reset %d", b.Count())
	}
}

func TestBitmapMergeAndSerialize(t *testing.T) {
	_, n := rawNode(t, 1<<20)
	fine, _ := n.CreateBitmap("fine", 512)
	coarse, _ := n.CreateBitmap("coarse", 65536)
	fine.Set(70000, 10)     // granule 136
	fine.Set(200000, 70000) // crosses coarse granules 3 and 4
	coarse.Merge(fine)
	if got := dirtyRuns(coarse); got != "65536+65536 196608+131072" {
		t.Errorf("coarse after merge = %q", got)
	}
	back, _ := n.CreateBitmap("back", 512)
	back.Merge(coarse)
	if got := back.Count(); got != 3*65536 {
		t.Errorf("fine from coarse count = %d", got)
	}
	// Serialize/Deserialize: QEMU's little-endian layout and a round trip.
	s := fine.Serialize(0, 2048)
	if len(s) != 256 {
		t.Fatalf("serialised %d bytes, want 256", len(s))
	}
	if s[136/8] != 1<<(136%8) {
		t.Errorf("granule 136 is byte %d = %#x", 136/8, s[136/8])
	}
	copyb, _ := n.CreateBitmap("copy", 512)
	copyb.Deserialize(0, s)
	if dirtyRuns(copyb) != dirtyRuns(fine) || copyb.Count() != fine.Count() {
		t.Errorf("round trip %q (%d) != %q (%d)", dirtyRuns(copyb), copyb.Count(), dirtyRuns(fine), fine.Count())
	}
}

func TestBitmapSuccessor(t *testing.T) {
	_, n := rawNode(t, 1<<20)
	b, _ := n.CreateBitmap("job", 4096)
	b.Set(0, 4096)
	s, err := b.CreateSuccessor()
	if err != nil {
		t.Fatal(err)
	}
	if !b.Busy() || !b.Recording() || b.Enabled() {
		t.Errorf("frozen: busy %v recording %v enabled %v", b.Busy(), b.Recording(), b.Enabled())
	}
	if _, err := b.CreateSuccessor(); err == nil {
		t.Error("a second successor was created")
	}
	if _, err := n.WriteAt(make([]byte, 10), 8192); err != nil {
		t.Fatal(err)
	}
	if b.Get(8192) || !s.Get(8192) {
		t.Error("the write did not go to the successor only")
	}
	b.Reclaim()
	if !b.Get(8192) || !b.Get(0) || b.Busy() || !b.Enabled() {
		t.Errorf("reclaim: %q busy %v", dirtyRuns(b), b.Busy())
	}
	if len(n.Bitmaps()) != 1 {
		t.Errorf("bitmaps after reclaim: %d", len(n.Bitmaps()))
	}
	s, _ = b.CreateSuccessor()
	if _, err := n.WriteAt(make([]byte, 10), 40960); err != nil {
		t.Fatal(err)
	}
	nb := b.Abdicate()
	if nb != s || nb.Name() != "job" || dirtyRuns(nb) != "40960+4096" {
		t.Errorf("abdicate: %q %q", nb.Name(), dirtyRuns(nb))
	}
	if got, ok := n.Bitmap("job"); !ok || got != s {
		t.Error("the successor does not carry the name")
	}
}

// TestBitmapWriteHook: every write that reaches a node marks its recording bitmaps with
// the node's own offsets; disabled bitmaps and reads do not.
func TestBitmapWriteHook(t *testing.T) {
	needQemuImg(t)
	path := filepath.Join(t.TempDir(), "d.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", path, "4M")
	g, n := openImage(t, path, blockdev.DriverQcow2, func(o *blockdev.Options) { o.Discard = "unmap" })
	defer g.Close()
	on, _ := n.CreateBitmap("on", 65536)
	off, _ := n.CreateBitmap("off", 65536)
	off.Disable()
	file, _ := n.File.CreateBitmap("host", 65536)
	buf := make([]byte, 4096)
	if _, err := n.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	pattern(buf, 0, 1)
	if _, err := n.WriteAt(buf, 3<<20); err != nil {
		t.Fatal(err)
	}
	if err := n.WriteZeroes(1<<20, 65536, 0); err != nil {
		t.Fatal(err)
	}
	if err := n.Unmap(2<<20, 65536); err != nil {
		t.Fatal(err)
	}
	if got := dirtyRuns(on); got != "1048576+65536 2097152+65536 3145728+65536" {
		t.Errorf("recording bitmap: %q", got)
	}
	if off.Count() != 0 {
		t.Errorf("disabled bitmap counted %d", off.Count())
	}
	// The data cluster and the L2 table went somewhere past the image's first clusters.
	if file.Count() == 0 || file.Get(3<<20) {
		t.Errorf("file bitmap: %q", dirtyRuns(file))
	}
}

func TestBitmapOps(t *testing.T) {
	needQemuImg(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "d.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", path, "4M")
	g, n := openImage(t, path, blockdev.DriverQcow2)
	defer g.Close()
	add := func(name string, gran int64, persistent, disabled bool) error {
		return blockdev.Run(g.PrepareBitmapAdd(blockdev.BitmapAddOptions{Node: "img", Name: name,
			Granularity: gran, Persistent: persistent, Disabled: disabled}))
	}
	want := func(err error, text string) {
		t.Helper()
		if err == nil || err.Error() != text {
			t.Errorf("error %v, want %q", err, text)
		}
	}
	if err := add("a", 0, false, false); err != nil {
		t.Fatal(err)
	}
	want(add("a", 0, false, false), "Bitmap already exists: a")
	want(add("", 0, false, false), "Bitmap name cannot be empty")
	want(add("x", 1000, false, false), "Granularity must be power of 2 and at least 512")
	want(add("x", 256, false, false), "Granularity must be power of 2 and at least 512")
	want(add("a", 0, true, false), "Bitmap already exists: a")
	want(blockdev.Run(g.PrepareBitmapAdd(blockdev.BitmapAddOptions{Node: "nope", Name: "x"})), "Cannot find device='nope' nor node-name='nope'")
	want(blockdev.Run(g.PrepareBitmapAdd(blockdev.BitmapAddOptions{Node: n.File.Name, Name: "x", Persistent: true})),
		fmt.Sprintf("Can't store persistent bitmaps to %s: Operation not supported", n.File.Name))
	if b, _ := n.Bitmap("a"); b.Granularity() != 65536 {
		t.Errorf("default granularity %d", b.Granularity())
	}
	want(blockdev.Run(g.PrepareBitmapClear("img", "zz")), "Dirty bitmap 'zz' not found")
	want(blockdev.Run(g.PrepareBitmapClear("nope", "a")), "Node 'nope' not found")
	b, _ := n.Bitmap("a")
	b.Set(0, 100)
	b.SetBusy(true)
	want(blockdev.Run(g.PrepareBitmapClear("img", "a")), "Bitmap 'a' is currently in use by another operation and cannot be used")
	want(blockdev.Run(g.PrepareBitmapRemove("img", "a")), "Bitmap 'a' is currently in use by another operation and cannot be used")
	want(blockdev.Run(g.PrepareBitmapEnable("img", "a", false)), "Bitmap 'a' is currently in use by another operation and cannot be used")
	b.SetBusy(false)
	// A transaction's abort puts everything back.
	steps := []*blockdev.TxnStep{}
	for _, f := range []func() (*blockdev.TxnStep, error){
		func() (*blockdev.TxnStep, error) { return g.PrepareBitmapClear("img", "a") },
		func() (*blockdev.TxnStep, error) { return g.PrepareBitmapEnable("img", "a", false) },
		func() (*blockdev.TxnStep, error) {
			return g.PrepareBitmapAdd(blockdev.BitmapAddOptions{Node: "img", Name: "t"})
		},
		func() (*blockdev.TxnStep, error) { return g.PrepareBitmapRemove("img", "a") },
	} {
		s, err := f()
		if err != nil {
			t.Fatal(err)
		}
		steps = append(steps, s)
	}
	if !b.Busy() {
		t.Error("a bitmap being removed is not busy")
	}
	for i := len(steps) - 1; i >= 0; i-- {
		steps[i].Abort()
	}
	if b.Count() != 65536 || !b.Enabled() || b.Busy() {
		t.Errorf("after abort: count %d enabled %v busy %v", b.Count(), b.Enabled(), b.Busy())
	}
	if _, ok := n.Bitmap("t"); ok {
		t.Error("the added bitmap survived the abort")
	}
	// Merge: local and external sources; the target is unchanged on error.
	if err := add("m", 4096, false, true); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "o.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", other, "8M")
	if _, err := g.Add(&blockdev.Options{Driver: blockdev.DriverQcow2, NodeName: "big",
		File: &blockdev.Ref{Options: &blockdev.Options{Driver: blockdev.DriverFile, Filename: other}}}); err != nil {
		t.Fatal(err)
	}
	if err := blockdev.Run(g.PrepareBitmapAdd(blockdev.BitmapAddOptions{Node: "big", Name: "x"})); err != nil {
		t.Fatal(err)
	}
	want(blockdev.Run(g.PrepareBitmapMerge("img", "m", []blockdev.MergeSource{{Name: "a"}, {Node: "big", Name: "x"}})),
		"Bitmaps are of different sizes (destination size is 4194304, source size is 8388608) and can't be merged")
	want(blockdev.Run(g.PrepareBitmapMerge("img", "m", []blockdev.MergeSource{{Name: "nob"}})), "Dirty bitmap 'nob' not found")
	if m, _ := n.Bitmap("m"); m.Count() != 0 {
		t.Error("a failed merge changed the target")
	}
	if err := blockdev.Run(g.PrepareBitmapMerge("img", "m", []blockdev.MergeSource{{Name: "a"}, {Node: "img", Name: "a"}})); err != nil {
		t.Fatal(err)
	}
	if m, _ := n.Bitmap("m"); dirtyRuns(m) != "0+65536" {
		t.Errorf("merged: %q", dirtyRuns(m))
	}
	if err := blockdev.Run(g.PrepareBitmapRemove("img", "m")); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.Bitmap("m"); ok {
		t.Error("removed bitmap still there")
	}
}

// imgBitmap is one bitmap of qemu-img info's format-specific data.
type imgBitmap struct {
	Name        string   `json:"name"`
	Granularity int64    `json:"granularity"`
	Flags       []string `json:"flags"`
}

func imageBitmaps(t *testing.T, path string) []imgBitmap {
	t.Helper()
	var info struct {
		FormatSpecific struct {
			Data struct {
				Bitmaps []imgBitmap `json:"bitmaps"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	out := qemuImg(t, "info", "-U", "--output=json", path)
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("qemu-img info: %v\n%s", err, out)
	}
	return info.FormatSpecific.Data.Bitmaps
}

// nbdBitmapRuns reads a stored bitmap back through qemu-nbd (-B) and qemu-img map's
// x-dirty-bitmap: dirty runs show as "data": false.
func nbdBitmapRuns(t *testing.T, path, name string) string {
	t.Helper()
	if _, err := exec.LookPath("qemu-nbd"); err != nil {
		t.Skip("qemu-nbd not installed (Debian: qemu-utils)")
	}
	sock := filepath.Join(t.TempDir(), "nbd.sock")
	cmd := exec.Command("qemu-nbd", "-r", "-B", name, "-k", sock, "-f", "qcow2", path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("qemu-nbd did not listen: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := qemuImg(t, "map", "--output=json", "--image-opts",
		"driver=nbd,server.type=unix,server.path="+sock+",x-dirty-bitmap=qemu:dirty-bitmap:"+name)
	var ext []struct {
		Start  int64 `json:"start"`
		Length int64 `json:"length"`
		Data   bool  `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &ext); err != nil {
		t.Fatalf("qemu-img map: %v\n%s", err, out)
	}
	var runs []string
	for _, e := range ext {
		if !e.Data {
			runs = append(runs, fmt.Sprintf("%d+%d", e.Start, e.Length))
		}
	}
	return strings.Join(runs, " ")
}

// TestBitmapQcow2Persistence: bitmaps tlcvm stores are what qemu-img and qemu-nbd read;
// bitmaps qemu-img and qemu-io write are what tlcvm loads; the image stays clean and the
// in-use flag is set exactly while tlcvm has the image open read-write.
func TestBitmapQcow2Persistence(t *testing.T) {
	needQemuIO(t)
	path := filepath.Join(t.TempDir(), "d.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", path, "64M")
	// qemu-img adds a bitmap, qemu-io writes through it (it records: "auto").
	qemuImg(t, "bitmap", "--add", path, "ext")
	if out, err := exec.Command("qemu-io", "-c", "write 1M 64k", "-c", "write 40M 1k", path).CombinedOutput(); err != nil {
		t.Fatalf("qemu-io: %v\n%s", err, out)
	}
	g, n := openImage(t, path, blockdev.DriverQcow2)
	ext, ok := n.Bitmap("ext")
	if !ok || !ext.Persistent() || !ext.Enabled() || ext.Inconsistent() {
		t.Fatalf("ext not loaded as a recording persistent bitmap: %+v", n.BitmapInfos())
	}
	if got := dirtyRuns(ext); got != "1048576+65536 41943040+65536" {
		t.Errorf("loaded %q", got)
	}
	if bms := imageBitmaps(t, path); len(bms) != 1 || strings.Join(bms[0].Flags, ",") != "in-use,auto" {
		t.Errorf("while open: %+v", bms)
	}
	for _, a := range []blockdev.BitmapAddOptions{
		{Node: "img", Name: "b1", Persistent: true},
		{Node: "img", Name: "b2", Granularity: 4096, Persistent: true, Disabled: true},
		{Node: "img", Name: "temp"},
	} {
		if err := blockdev.Run(g.PrepareBitmapAdd(a)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 8192)
	pattern(buf, 0, 7)
	for _, off := range []int64{0, 10 << 20, 63<<20 + 4096} {
		if _, err := n.WriteAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	b2, _ := n.Bitmap("b2")
	b2.Set(5<<20, 3*4096)
	g.Close()
	checkClean(t, path)
	got := imageBitmaps(t, path)
	want := []imgBitmap{{"ext", 65536, []string{"auto"}}, {"b2", 4096, []string{}}, {"b1", 65536, []string{"auto"}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("qemu-img info bitmaps = %+v, want %+v", got, want)
	}
	for name, runs := range map[string]string{
		"ext": "0+65536 1048576+65536 10485760+65536 41943040+65536 66060288+65536",
		"b1":  "0+65536 10485760+65536 66060288+65536",
		"b2":  "5242880+12288",
	} {
		if got := nbdBitmapRuns(t, path, name); got != runs {
			t.Errorf("%s through qemu-nbd: %q, want %q", name, got, runs)
		}
	}
	// qemu-img edits what tlcvm stored; tlcvm loads the result.
	qemuImg(t, "bitmap", "--merge", "b2", path, "b1")
	qemuImg(t, "bitmap", "--remove", path, "ext")
	qemuImg(t, "bitmap", "--enable", path, "b2")
	checkClean(t, path)
	g, n = openImage(t, path, blockdev.DriverQcow2)
	b1, _ := n.Bitmap("b1")
	if got := dirtyRuns(b1); got != "0+65536 5242880+65536 10485760+65536 66060288+65536" {
		t.Errorf("b1 after qemu-img merge: %q", got)
	}
	if b2, _ := n.Bitmap("b2"); !b2.Enabled() {
		t.Error("b2 not enabled after qemu-img bitmap --enable")
	}
	// Removing a persistent bitmap takes it out of the image at once.
	if err := blockdev.Run(g.PrepareBitmapRemove("img", "b2")); err != nil {
		t.Fatal(err)
	}
	if bms := imageBitmaps(t, path); len(bms) != 1 || bms[0].Name != "b1" {
		t.Errorf("after remove: %+v", bms)
	}
	g.Close()
	checkClean(t, path)
	// The last persistent bitmap removed: no extension, no autoclear bit.
	g, _ = openImage(t, path, blockdev.DriverQcow2)
	if err := blockdev.Run(g.PrepareBitmapRemove("img", "b1")); err != nil {
		t.Fatal(err)
	}
	g.Close()
	if bms := imageBitmaps(t, path); len(bms) != 0 {
		t.Errorf("bitmaps left: %+v", bms)
	}
	checkClean(t, path)
}

// TestBitmapInconsistent: an image whose bitmap is in use (its writer died) loads it
// inconsistent: only removal works, and the image keeps it marked until then.
func TestBitmapInconsistent(t *testing.T) {
	needQemuImg(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "d.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", path, "4M")
	qemuImg(t, "bitmap", "--add", path, "b")
	g, _ := openImage(t, path, blockdev.DriverQcow2)
	crashed := filepath.Join(dir, "crashed.qcow2")
	data, err := os.ReadFile(path) // the image as a crash would leave it: b in use
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	if err := os.WriteFile(crashed, data, 0o644); err != nil {
		t.Fatal(err)
	}
	g, n := openImage(t, crashed, blockdev.DriverQcow2)
	b, _ := n.Bitmap("b")
	if !b.Inconsistent() {
		t.Fatal("not inconsistent")
	}
	err = blockdev.Run(g.PrepareBitmapClear("img", "b"))
	if err == nil || err.Error() != "Bitmap 'b' is inconsistent and cannot be used" {
		t.Errorf("clear: %v", err)
	}
	g.Close()
	if bms := imageBitmaps(t, crashed); len(bms) != 1 || strings.Join(bms[0].Flags, ",") != "in-use,auto" {
		t.Errorf("stored after close: %+v", bms)
	}
	g, _ = openImage(t, crashed, blockdev.DriverQcow2)
	if err := blockdev.Run(g.PrepareBitmapRemove("img", "b")); err != nil {
		t.Fatal(err)
	}
	g.Close()
	checkClean(t, crashed)
	if bms := imageBitmaps(t, crashed); len(bms) != 0 {
		t.Errorf("left: %+v", bms)
	}
}

// TestBitmapReadOnly: a read-only node loads its bitmaps read-only and never writes.
func TestBitmapReadOnly(t *testing.T) {
	needQemuImg(t)
	path := filepath.Join(t.TempDir(), "d.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", path, "4M")
	qemuImg(t, "bitmap", "--add", path, "b")
	before, _ := os.ReadFile(path)
	ro := true
	g, n := openImage(t, path, blockdev.DriverQcow2, func(o *blockdev.Options) { o.ReadOnly = &ro })
	b, _ := n.Bitmap("b")
	if !b.Readonly() {
		t.Error("not readonly")
	}
	err := blockdev.Run(g.PrepareBitmapClear("img", "b"))
	if err == nil || !errors.Is(err, blockdev.ErrReadOnly) || err.Error() != "Bitmap 'b' is readonly and cannot be modified" {
		t.Errorf("clear: %v", err)
	}
	if err := blockdev.Run(g.PrepareBitmapEnable("img", "b", false)); err != nil {
		t.Errorf("disable a readonly bitmap: %v", err)
	}
	g.Close()
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Error("a read-only open changed the image")
	}
}
