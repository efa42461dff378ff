package blockdev_test

import (
	"bytes"
	"testing"

	"tlcvm/blockdev"
)

// TestNullNodes checks the null drivers' data path and block status (block/null.c):
// reads leave the buffer alone unless read-zeroes, writes store nothing, and the status
// is zero+allocated with read-zeroes, else neither data nor zero nor allocated, also
// through a raw node.
func TestNullNodes(t *testing.T) {
	g := newGraph(nil)
	yes, size := true, int64(1000)
	for _, c := range []struct {
		name, driver string
		null         *blockdev.NullOptions
		size         int64
		fill         byte
		status       blockdev.Status
		filename     string
	}{
		{"n0", blockdev.DriverNullCo, nil, 1 << 30, 0xab, 0, "null-co://"},
		{"n1", blockdev.DriverNullAIO, &blockdev.NullOptions{Size: &size, ReadZeroes: &yes}, 1024, 0,
			blockdev.StatusZero | blockdev.StatusAllocated, `json:{"read-zeroes": true, "driver": "null-aio", "size": 1000}`},
	} {
		n, err := g.Add(&blockdev.Options{Driver: c.driver, NodeName: c.name, Null: c.null})
		if err != nil {
			t.Fatal(err)
		}
		r, err := g.Add(&blockdev.Options{Driver: blockdev.DriverRaw, NodeName: "r" + c.name, File: &blockdev.Ref{Node: c.name}})
		if err != nil {
			t.Fatal(err)
		}
		if n.Size() != c.size || r.Size() != c.size || n.Filename() != c.filename || n.IsFormat() {
			t.Errorf("%s: size %d (raw %d), filename %q, format %v", c.name, n.Size(), r.Size(), n.Filename(), n.IsFormat())
		}
		if _, err := r.WriteAt(bytes.Repeat([]byte{1}, 512), 0); err != nil {
			t.Fatal(err)
		}
		for _, x := range []*blockdev.Node{n, r} {
			p := bytes.Repeat([]byte{0xab}, 512)
			if _, err := x.ReadAt(p, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p, bytes.Repeat([]byte{c.fill}, 512)) {
				t.Errorf("%s: read %x…, want %x", x.Name, p[:4], c.fill)
			}
			ex, err := x.BlockStatus(0, 1024)
			if err != nil {
				t.Fatal(err)
			}
			if ex.Status != c.status || ex.Length != 1024 {
				t.Errorf("%s: status %+v, want %v", x.Name, ex, c.status)
			}
		}
	}
	neg := int64(-5)
	if _, err := g.Add(&blockdev.Options{Driver: blockdev.DriverNullCo, NodeName: "bad", Null: &blockdev.NullOptions{LatencyNS: &neg}}); err == nil || err.Error() != "latency-ns is invalid" {
		t.Errorf("negative latency: %v", err)
	}
}
