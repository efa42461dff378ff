package blockdev_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"tlcvm/blockdev"
	"tlcvm/compat/qerror"
)

func needQemuImg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed (Debian: qemu-utils)")
	}
}

func qemuImg(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("qemu-img", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
	}
	return string(out)
}

type events struct{ got []string }

func (e *events) Emit(name string, data any) {
	if j, ok := data.(blockdev.JobStatusEvent); ok {
		e.got = append(e.got, name+":"+j.Status.String())
	}
}

func newGraph(ev blockdev.Emitter) *blockdev.Graph {
	n := 0
	return blockdev.New(blockdev.Config{Events: ev, Rand: func() int { n++; return n }})
}

// TestOpenQemuImgVariants opens every image variant qemu-img makes and checks what the
// header says against qemu-img info.
func TestOpenQemuImgVariants(t *testing.T) {
	needQemuImg(t)
	dir := t.TempDir()
	qemuImg(t, "create", "-q", "-f", "qcow2", filepath.Join(dir, "base.qcow2"), "64M")
	cases := []struct {
		name string
		args []string
	}{
		{"v3", []string{"-f", "qcow2"}},
		{"v2", []string{"-f", "qcow2", "-o", "compat=0.10"}},
		{"lazy", []string{"-f", "qcow2", "-o", "lazy_refcounts=on"}},
		{"cluster4k", []string{"-f", "qcow2", "-o", "cluster_size=4096"}},
		{"cluster2m", []string{"-f", "qcow2", "-o", "cluster_size=2M"}},
		{"refcount1", []string{"-f", "qcow2", "-o", "refcount_bits=1"}},
		{"refcount64", []string{"-f", "qcow2", "-o", "refcount_bits=64"}},
		{"extl2", []string{"-f", "qcow2", "-o", "extended_l2=on"}},
		{"zstd", []string{"-f", "qcow2", "-o", "compression_type=zstd"}},
		{"backing", []string{"-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2"}},
		{"raw", []string{"-f", "raw"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(dir, c.name+".img")
			args := append([]string{"create", "-q"}, c.args...)
			qemuImg(t, append(args, img, "32M")...)
			var info struct {
				VirtualSize int64  `json:"virtual-size"`
				ClusterSize int64  `json:"cluster-size"`
				Format      string `json:"format"`
				Backing     string `json:"backing-filename"`
				BackingFmt  string `json:"backing-filename-format"`
				Specific    struct {
					Data struct {
						Compat       string `json:"compat"`
						Lazy         bool   `json:"lazy-refcounts"`
						RefcountBits int    `json:"refcount-bits"`
						ExtendedL2   bool   `json:"extended-l2"`
						Compression  string `json:"compression-type"`
					} `json:"data"`
				} `json:"format-specific"`
			}
			if err := json.Unmarshal([]byte(qemuImg(t, "info", "--output=json", "-U", img)), &info); err != nil {
				t.Fatal(err)
			}
			g := newGraph(nil)
			defer g.Close()
			b, err := g.AddDrive([]blockdev.KV{{Key: "file", Value: img}, {Key: "format", Value: info.Format}, {Key: "if", Value: "none"}, {Key: "id", Value: "d"}}, blockdev.DriveLimits{})
			if err != nil {
				t.Fatal(err)
			}
			n := b.Root
			if n.Size() != info.VirtualSize || n.Driver != info.Format {
				t.Errorf("size/format %d %s, qemu-img %d %s", n.Size(), n.Driver, info.VirtualSize, info.Format)
			}
			if h := n.Header(); h != nil {
				d := info.Specific.Data
				if h.ClusterSize() != info.ClusterSize || h.Compat() != d.Compat || h.LazyRefcounts() != d.Lazy ||
					1<<h.RefcountOrder != d.RefcountBits || h.ExtendedL2() != d.ExtendedL2 || h.Compression() != d.Compression {
					t.Errorf("header %+v disagrees with qemu-img %+v", h, info)
				}
				if n.BackingFile != info.Backing || n.BackingFormat != info.BackingFmt {
					t.Errorf("backing %q/%q, qemu-img %q/%q", n.BackingFile, n.BackingFormat, info.Backing, info.BackingFmt)
				}
				if info.Backing != "" && (n.Backing == nil || !n.Backing.ReadOnly || n.BackingDepth(false) != 1) {
					t.Errorf("backing chain not opened read-only: %+v", n.Backing)
				}
			}
		})
	}
}

// TestOpenErrors checks QEMU 7.2's texts for images it refuses.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hdr := func(version uint32, mutate func([]byte)) []byte {
		b := make([]byte, 0x30008)
		copy(b, "QFI\xfb")
		b[7] = byte(version)
		b[23] = 16                        // cluster bits
		b[29] = 0x10                      // size 1 MiB
		b[39] = 1                         // l1 size
		b[42] = 3                         // l1 offset 0x30000
		b[50] = 1                         // refcount table 0x10000
		b[59] = 1                         // refcount table clusters
		b[99], b[103] = 4, 104            // refcount order, header length
		b[0x10000+5], b[0x20000+1] = 2, 1 // refcount table → block, refcount of cluster 0
		if mutate != nil {
			mutate(b)
		}
		return b
	}
	cases := []struct {
		name, file, format string
		kind               error
		want               string
	}{
		{"missing", filepath.Join(dir, "nope.qcow2"), "", blockdev.ErrOpen, "Could not open '" + dir + "/nope.qcow2': No such file or directory"},
		{"magic", write("txt.img", []byte("hello\n")), "qcow2", blockdev.ErrFormat, "Image is not in qcow2 format"},
		{"version4", write("v4.qcow2", hdr(4, nil)), "", blockdev.ErrUnsupported, "Unsupported qcow2 version 4"},
		{"version1", write("v1.qcow2", hdr(1, nil)), "qcow2", blockdev.ErrUnsupported, "Unsupported qcow2 version 1"},
		{"feature", write("feat.qcow2", hdr(3, func(b []byte) { b[72] = 0x80 })), "", blockdev.ErrUnsupported, "Unsupported qcow2 feature(s): Unknown incompatible feature: 8000000000000000"},
		{"corrupt", write("corrupt.qcow2", hdr(3, func(b []byte) { b[79] = 2 })), "", blockdev.ErrFormat, "qcow2: Image is corrupt; cannot be opened read/write"},
		{"aes", write("aes.qcow2", hdr(3, func(b []byte) { b[35] = 1 })), "", blockdev.ErrEncrypted, "Use of AES-CBC encrypted qcow2 images is no longer supported in system emulators"},
		{"cluster", write("cl.qcow2", hdr(3, func(b []byte) { b[23] = 30 })), "", blockdev.ErrUnsupported, "Unsupported cluster size: 2^30"},
		{"backing", write("bk.qcow2", hdr(3, func(b []byte) {
			b[15], b[19] = 0x80, 4 // backing file at 0x80, 4 bytes
			copy(b[0x80:], "gone")
		})), "", blockdev.ErrOpen, "Could not open backing file: Could not open '" + dir + "/gone': No such file or directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newGraph(nil)
			defer g.Close()
			kv := []blockdev.KV{{Key: "file", Value: c.file}, {Key: "if", Value: "none"}}
			if c.format != "" {
				kv = append(kv, blockdev.KV{Key: "format", Value: c.format})
			}
			_, err := g.AddDrive(kv, blockdev.DriveLimits{})
			if err == nil || err.Error() != c.want || !errors.Is(err, c.kind) {
				t.Fatalf("got %v, want %q (%v)", err, c.want, c.kind)
			}
			if len(g.Nodes()) != 0 {
				t.Errorf("nodes left after a failed open: %v", g.Nodes())
			}
		})
	}
}

// TestLocksBetweenGraphs: two graphs are two users of one image, as two VMs are.
func TestLocksBetweenGraphs(t *testing.T) {
	needQemuImg(t)
	img := filepath.Join(t.TempDir(), "a.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", img, "1M")
	drive := func(g *blockdev.Graph, extra ...blockdev.KV) error {
		_, err := g.AddDrive(append([]blockdev.KV{{Key: "file", Value: img}, {Key: "if", Value: "none"}}, extra...), blockdev.DriveLimits{})
		return err
	}
	a := newGraph(nil)
	defer a.Close()
	if err := drive(a); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		extra []blockdev.KV
		want  string
	}{
		{nil, `Failed to get "write" lock`},
		{[]blockdev.KV{{Key: "readonly", Value: "on"}}, `Failed to get shared "write" lock`},
	} {
		b := newGraph(nil)
		err := drive(b, c.extra...)
		b.Close()
		if err == nil || err.Error() != c.want || !errors.Is(err, blockdev.ErrLocked) {
			t.Errorf("second user %v: got %v, want %q", c.extra, err, c.want)
		}
		if h := qerror.Hint(err); h != "Is another process using the image ["+img+"]?\n" {
			t.Errorf("hint %q", h)
		}
	}
	// raw over a qcow2 image only reads: QEMU shares that.
	b := newGraph(nil)
	defer b.Close()
	if err := drive(b, blockdev.KV{Key: "format", Value: "raw"}, blockdev.KV{Key: "readonly", Value: "on"}); err != nil {
		t.Errorf("read-only raw user refused: %v", err)
	}
	a.Close()
	c := newGraph(nil)
	defer c.Close()
	b.Close()
	if err := drive(c); err != nil {
		t.Errorf("after the first user closed: %v", err)
	}
}

// TestCreateMatchesQemuImg creates images with blockdev-create's job and requires the very
// bytes qemu-img writes, a clean qemu-img check, and the same qemu-img info.
func TestCreateMatchesQemuImg(t *testing.T) {
	needQemuImg(t)
	dir := t.TempDir()
	cases := []struct {
		name string
		opt  blockdev.Qcow2Create
		args []string
	}{
		{"default", blockdev.Qcow2Create{}, nil},
		{"v2", blockdev.Qcow2Create{Version: "v2"}, []string{"-o", "compat=0.10"}},
		{"lazy4k", blockdev.Qcow2Create{LazyRefcounts: true, ClusterSize: 4096}, []string{"-o", "lazy_refcounts=on,cluster_size=4096"}},
		{"refcount64", blockdev.Qcow2Create{RefcountBits: 64}, []string{"-o", "refcount_bits=64"}},
		{"backing", blockdev.Qcow2Create{BackingFile: "base.qcow2", BackingFormat: "qcow2"}, []string{"-b", "base.qcow2", "-F", "qcow2"}},
	}
	qemuImg(t, "create", "-q", "-f", "qcow2", filepath.Join(dir, "base.qcow2"), "96M")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ours := filepath.Join(dir, c.name+".ours")
			theirs := filepath.Join(dir, c.name+".qemu")
			qemuImg(t, append(append([]string{"create", "-q", "-f", "qcow2"}, c.args...), theirs, "96M")...)
			ev := &events{}
			g := newGraph(ev)
			defer g.Close()
			if err := g.Create("f", &blockdev.CreateOptions{Driver: "file", Filename: ours, Size: 0}); err != nil {
				t.Fatal(err)
			}
			g.WaitJobs()
			if err := g.DismissJob("f", false); err != nil {
				t.Fatal(err)
			}
			if _, err := g.Add(&blockdev.Options{Driver: "file", Filename: ours, NodeName: "of"}); err != nil {
				t.Fatal(err)
			}
			opt := c.opt
			if err := g.Create("q", &blockdev.CreateOptions{Driver: "qcow2", File: "of", Size: 96 << 20, Qcow2: opt}); err != nil {
				t.Fatal(err)
			}
			g.WaitJobs()
			jobs := g.Jobs()
			if len(jobs) != 1 || jobs[0].Status != blockdev.JobConcluded || jobs[0].Err != "" {
				t.Fatalf("jobs %+v", jobs)
			}
			want := []string{"JOB_STATUS_CHANGE:created", "JOB_STATUS_CHANGE:running", "JOB_STATUS_CHANGE:waiting",
				"JOB_STATUS_CHANGE:pending", "JOB_STATUS_CHANGE:concluded", "JOB_STATUS_CHANGE:null"}
			want = append(want, want[:5]...)
			if strings.Join(ev.got, " ") != strings.Join(want, " ") {
				t.Errorf("events %v", ev.got)
			}
			a, _ := os.ReadFile(ours)
			b, _ := os.ReadFile(theirs)
			if !bytes.Equal(a, b) {
				t.Errorf("image differs from qemu-img's (%d vs %d bytes)", len(a), len(b))
			}
			qemuImg(t, "check", "-U", ours)
			infoA := strings.ReplaceAll(qemuImg(t, "info", "-U", "--output=json", ours), ".ours", "")
			infoB := strings.ReplaceAll(qemuImg(t, "info", "-U", "--output=json", theirs), ".qemu", "")
			if infoA != infoB {
				t.Errorf("qemu-img info differs:\n%s\n%s", infoA, infoB)
			}
		})
	}
}

// TestResizeQcow2 grows an image beyond its L1 table and shrinks it back; qemu-img must
// still find it clean and report the new size.
func TestResizeQcow2(t *testing.T) {
	needQemuImg(t)
	img := filepath.Join(t.TempDir(), "r.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", img, "1M")
	g := newGraph(nil)
	defer g.Close()
	if _, err := g.Add(&blockdev.Options{Driver: "qcow2", NodeName: "q", File: &blockdev.Ref{Options: &blockdev.Options{Driver: "file", Filename: img}}}); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{64 << 20, 1 << 30, 2 << 20} {
		if err := g.Resize("", "q", size); err != nil {
			t.Fatalf("resize %d: %v", size, err)
		}
		// The freed L1 table's refcount sits in the write-back cache, as in QEMU, until a
		// flush writes it.
		if n, ok := g.Node("q"); !ok {
			t.Fatal("node q is gone")
		} else if err := n.Flush(); err != nil {
			t.Fatal(err)
		}
		qemuImg(t, "check", "-U", img)
		var info struct {
			VirtualSize int64 `json:"virtual-size"`
		}
		_ = json.Unmarshal([]byte(qemuImg(t, "info", "-U", "--output=json", img)), &info)
		if info.VirtualSize != size {
			t.Errorf("qemu-img sees %d, want %d", info.VirtualSize, size)
		}
	}
	if err := g.Resize("", "q", -1); err == nil || err.Error() != "Parameter 'size' expects a >0 size" {
		t.Errorf("negative size: %v", err)
	}
}

// TestGraphOps covers node names, blockdev-del, snapshots and device attachment.
func TestGraphOps(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "r.img")
	if err := os.WriteFile(raw, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	g := newGraph(nil)
	defer g.Close()
	mustErr := func(err error, want string) {
		t.Helper()
		if err == nil || err.Error() != want {
			t.Errorf("got %v, want %q", err, want)
		}
	}
	_, err := g.Add(&blockdev.Options{Driver: "file", Filename: raw})
	mustErr(err, "'node-name' must be specified for the root node")
	_, err = g.Add(&blockdev.Options{Driver: "file", Filename: raw, NodeName: "9x"})
	mustErr(err, "Invalid node-name: '9x'")
	if _, err := g.Add(&blockdev.Options{Driver: "file", Filename: raw, NodeName: "f"}); err != nil {
		t.Fatal(err)
	}
	_, err = g.Add(&blockdev.Options{Driver: "file", Filename: raw, NodeName: "f"})
	mustErr(err, "Duplicate nodes with node-name='f'")
	_, err = g.Add(&blockdev.Options{Driver: "qcow2", File: &blockdev.Ref{Node: "f"}, NodeName: "q"})
	mustErr(err, "Image is not in qcow2 format")
	if _, err := g.Add(&blockdev.Options{Driver: "raw", File: &blockdev.Ref{Node: "f"}, NodeName: "r"}); err != nil {
		t.Fatal(err)
	}
	mustErr(g.Del("f"), "Block device f is in use")
	d := &blockdev.Device{ID: "vd", Driver: "virtio-blk-pci", Path: "/machine/peripheral/vd"}
	if err := g.AttachDevice(d, "r"); err != nil {
		t.Fatal(err)
	}
	mustErr(g.AttachDevice(&blockdev.Device{ID: "vd2", Driver: "virtio-blk-pci"}, "nope"), "Property 'virtio-blk-device.drive' can't find value 'nope'")
	// QEMU names a virtio-blk-pci's backend by the QOM path of its virtio-backend
	mustErr(g.AttachDevice(&blockdev.Device{ID: "vd2", Driver: "virtio-blk-pci", Path: "/machine/peripheral/vd2"}, "r"),
		"Permission conflict on node 'r': permissions 'write' are both required by block device '/machine/peripheral/vd/virtio-backend' (uses node 'r' as 'root' child) and unshared by block device '/machine/peripheral/vd2/virtio-backend' (uses node 'r' as 'root' child).")
	mustErr(g.Del("r"), "Node r is in use")
	if q := d.Qdev(); q != "/machine/peripheral/vd/virtio-backend" {
		t.Errorf("qdev %q", q)
	}
	mustErr(g.Snapshot(blockdev.SnapshotAction{Node: "r", Overlay: "f"}), "The overlay is already in use")
	g.DetachDevice(d)
	if err := g.Del("r"); err != nil {
		t.Fatal(err)
	}
	if err := g.Del("f"); err != nil {
		t.Fatal(err)
	}
	if n := len(g.Nodes()); n != 0 {
		t.Errorf("%d nodes left", n)
	}
	b, err := g.AddDrive([]blockdev.KV{{Key: "file", Value: raw}, {Key: "format", Value: "raw"}}, blockdev.DriveLimits{IDEUnitsPerBus: 2})
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "ide0-hd0" || !strings.HasPrefix(b.Root.Name, "#block1") || !strings.HasPrefix(g.Nodes()[1].Name, "#block0") {
		t.Errorf("drive %q root %q", b.Name, b.Root.Name)
	}
	_, err = g.AddDrive([]blockdev.KV{{Key: "index", Value: "0"}}, blockdev.DriveLimits{IDEUnitsPerBus: 2})
	mustErr(err, "drive with bus=0, unit=0 (index=0) exists")
	_, err = g.AddDrive([]blockdev.KV{{Key: "cache", Value: "bogus"}}, blockdev.DriveLimits{})
	mustErr(err, "invalid cache option")
	_, err = g.AddDrive([]blockdev.KV{{Key: "unit", Value: "5"}}, blockdev.DriveLimits{IDEUnitsPerBus: 2})
	mustErr(err, "unit 5 too big (max is 1)")
}

// TestQemuIOCommands: qemu-io's texts (QEMU 7.2's, as its HMP qemu-io prints them) and
// what the commands do, on a memory disk.
func TestQemuIOCommands(t *testing.T) {
	timing := regexp.MustCompile(`\d\d\.\d\d sec \([^)]*\)`)
	for _, c := range []struct{ line, want string }{
		{"bogus 0 4k", "command \"bogus\" not found\n"},
		{"write 0", "bad argument count 1 to write, expected at least 2 arguments\n"},
		{"flush now", "bad argument count 1 to flush, expected 0 arguments\n"},
		{"write -P 0x12 512", "write [-bcCfnquz] [-P pattern | -s source_file] off len -- writes a number of bytes at a specified offset\n"},
		{"write -X 0 1k", "write: invalid option -- 'X'\nwrite [-bcCfnquz] [-P pattern | -s source_file] off len -- writes a number of bytes at a specified offset\n"},
		{"write -P zz 0 1k", "zz is not a valid pattern byte\n"},
		{"write 0 abc", "Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- abc\n"},
		{"write -z -P 1 0 1k", "Only one of -z, -P, and -s can be specified at the same time\n"},
		{"write 0 2G", "length cannot exceed 2147483136 without -n, given 2G\n"},
		{"write -P 0x12 512 1k", "wrote 1024/1024 bytes at offset 512\n1 KiB, 1 ops; TIME\n"},
		{"write -q 0 100", ""},
		{"write 60k 8k", "write failed: Input/output error\n"},
		{"length", "64 KiB\n"},
		{"read 0 100", "read 100/100 bytes at offset 0\n100 bytes, 1 ops; TIME\n"},
		{"read -P 1 0 16", "Pattern verification failed at offset 0, 16 bytes\nread 16/16 bytes at offset 0\n16 bytes, 1 ops; TIME\n"},
		{"read -v -q 0 16", ""},
		{"read -v 0 20", "00000000:  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................\n" +
			"00000010:  00 00 00 00  ....\nread 20/20 bytes at offset 0\n20 bytes, 1 ops; TIME\n"},
	} {
		var out bytes.Buffer
		data := blockdev.RunQemuIOInMemory(64<<10, c.line, &out)
		if got := timing.ReplaceAllString(out.String(), "TIME"); got != c.want {
			t.Errorf("%q:\n got %q\nwant %q", c.line, got, c.want)
		}
		if c.line == "write -P 0x12 512 1k" && (data[511] != 0 || data[512] != 0x12 || data[1535] != 0x12 || data[1536] != 0) {
			t.Errorf("%q wrote the wrong bytes", c.line)
		}
	}
}
