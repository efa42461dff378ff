package blockdev

import (
	"slices"
	"sort"
)

// Latency histograms (QEMU 7.2's block/accounting.c block_latency_histogram_*, set by
// block-latency-histogram-set): per request type, a list of strictly ascending boundaries
// in nanoseconds dividing the latencies into intervals [0, b0), [b0, b1), …, [bN, ∞), and a
// count per interval of the requests the backend accounted (completed or failed, not
// invalid), each with the latency it was accounted with (submission to completion).

// LatencyHistogram is one request type's histogram: len(Bins) == len(Boundaries)+1.
type LatencyHistogram struct {
	Boundaries []uint64
	Bins       []uint64
}

// clone returns a copy sharing nothing with h (nil for nil).
func (h *LatencyHistogram) clone() *LatencyHistogram {
	if h == nil {
		return nil
	}
	return &LatencyHistogram{Boundaries: slices.Clone(h.Boundaries), Bins: slices.Clone(h.Bins)}
}

// account counts one request of latency ns in its interval.
func (h *LatencyHistogram) account(ns int64) {
	if h == nil {
		return
	}
	if ns < 0 {
		ns = 0
	}
	// the number of boundaries at or below ns is the interval's index
	h.Bins[sort.Search(len(h.Boundaries), func(i int) bool { return h.Boundaries[i] > uint64(ns) })]++
}

// newLatencyHistogram is block_latency_histogram_set's check: boundaries strictly
// ascending from above 0; ok false otherwise.
func newLatencyHistogram(boundaries []uint64) (*LatencyHistogram, bool) {
	prev := uint64(0)
	for _, b := range boundaries {
		if b <= prev {
			return nil, false
		}
		prev = b
	}
	return &LatencyHistogram{Boundaries: slices.Clone(boundaries), Bins: make([]uint64, len(boundaries)+1)}, true
}

// LatencyHistogramArgs are block-latency-histogram-set's lists; nil: not given.
type LatencyHistogramArgs struct {
	Boundaries, Read, Write, Flush *[]uint64
}

// SetLatencyHistogram is block-latency-histogram-set on the backend of the device with
// qdev id (or QOM path) id: with no list at all every histogram is removed; otherwise the
// read, write and flush histograms each restart empty with their own list or the common
// one, in that order, stopping at the first bad list (those set before it stay set).
func (g *Graph) SetLatencyHistogram(id string, a LatencyHistogramArgs) error {
	g.mu.Lock()
	b, err := g.qmpBackend("", id)
	g.mu.Unlock()
	if err != nil {
		return err
	}
	if b == nil {
		return errf(ErrInvalid, "Device does not have a block device backend")
	}
	b.statsMu.Lock()
	defer b.statsMu.Unlock()
	s := &b.stats
	if a.Boundaries == nil && a.Read == nil && a.Write == nil && a.Flush == nil {
		s.RdHist, s.WrHist, s.FlushHist = nil, nil, nil // block_latency_histograms_clear
		return nil
	}
	for _, t := range []struct {
		list *[]uint64
		hist **LatencyHistogram
		name string
	}{{a.Read, &s.RdHist, "read"}, {a.Write, &s.WrHist, "write"}, {a.Flush, &s.FlushHist, "flush"}} {
		list := t.list
		if list == nil {
			list = a.Boundaries
		}
		if list == nil {
			continue
		}
		h, ok := newLatencyHistogram(*list)
		if !ok {
			return errf(ErrInvalid, "Device '%s' set %s boundaries fail", id, t.name)
		}
		*t.hist = h
	}
	return nil
}
