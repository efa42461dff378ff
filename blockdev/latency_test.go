package blockdev_test

import (
	"context"
	"path/filepath"
	"sort"
	"testing"

	"tlcvm/blockdev"
)

// TestLatencyHistogram writes and flushes through a virtio-blk device's backend (the guest
// workload's path) and checks that each request lands in the bin of the latency it was
// accounted with: one write, so wr_total_time_ns is its latency.
func TestLatencyHistogram(t *testing.T) {
	needQemuImg(t)
	img := filepath.Join(t.TempDir(), "d.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", img, "1M")
	g := newGraph(nil)
	defer g.Close()
	if _, err := g.Add(&blockdev.Options{Driver: blockdev.DriverQcow2, NodeName: "d0", File: &blockdev.Ref{Options: &blockdev.Options{Driver: blockdev.DriverFile, Filename: img}}}); err != nil {
		t.Fatal(err)
	}
	if err := g.AttachDevice(&blockdev.Device{ID: "vd0", Driver: "virtio-blk-pci", Path: "/machine/peripheral/vd0"}, "d0"); err != nil {
		t.Fatal(err)
	}
	b := g.Backends()[0]
	// 1 µs … ~1 s, a bin per factor of 4
	var bounds []uint64
	for v := uint64(1000); v < 1<<30; v *= 4 {
		bounds = append(bounds, v)
	}
	id := "/machine/peripheral/vd0/virtio-backend"
	if err := g.SetLatencyHistogram(id, blockdev.LatencyHistogramArgs{Boundaries: &bounds}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Write(ctx, make([]byte, 4096), 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s := b.Stats()
	binOf := func(ns int64) int {
		return sort.Search(len(bounds), func(i int) bool { return bounds[i] > uint64(ns) })
	}
	for _, c := range []struct {
		name    string
		h       *blockdev.LatencyHistogram
		totalNs int64
		ops     int64
	}{{"write", s.WrHist, s.WrTotalNs, s.WrOps}, {"flush", s.FlushHist, s.FlushTotalNs, s.FlushOps}} {
		if c.h == nil || c.ops != 1 {
			t.Fatalf("%s: histogram %v after %d ops", c.name, c.h, c.ops)
		}
		want := make([]uint64, len(bounds)+1)
		want[binOf(c.totalNs)] = 1
		if len(c.h.Bins) != len(want) {
			t.Fatalf("%s: %d bins, want %d", c.name, len(c.h.Bins), len(want))
		}
		for i := range want {
			if c.h.Bins[i] != want[i] {
				t.Errorf("%s of %d ns: bins %v, want %v", c.name, c.totalNs, c.h.Bins, want)
				break
			}
		}
	}
	if s.RdHist == nil || s.RdHist.Bins[0]+s.RdHist.Bins[len(bounds)] != 0 {
		t.Errorf("read histogram %v, want empty bins", s.RdHist)
	}
	// the errors: a device id of the proxy, bad lists (the read list set before the bad write one stays)
	if err := g.SetLatencyHistogram("vd0", blockdev.LatencyHistogramArgs{Boundaries: &bounds}); err == nil || err.Error() != "Device does not have a block device backend" {
		t.Errorf("vd0: %v", err)
	}
	one, bad := []uint64{7}, []uint64{5, 5}
	err := g.SetLatencyHistogram(id, blockdev.LatencyHistogramArgs{Read: &one, Write: &bad})
	if err == nil || err.Error() != "Device '"+id+"' set write boundaries fail" {
		t.Errorf("bad write list: %v", err)
	}
	if s := b.Stats(); len(s.RdHist.Boundaries) != 1 || len(s.WrHist.Bins) != len(bounds)+1 {
		t.Errorf("after a bad write list: read %v write %v", s.RdHist, s.WrHist)
	}
	if err := g.SetLatencyHistogram(id, blockdev.LatencyHistogramArgs{}); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.RdHist != nil || s.WrHist != nil || s.FlushHist != nil {
		t.Errorf("not cleared: %v %v %v", s.RdHist, s.WrHist, s.FlushHist)
	}
}
