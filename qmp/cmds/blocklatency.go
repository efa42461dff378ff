package cmds

import (
	"tlcvm/blockdev"
	"tlcvm/qmp"
)

// block-latency-histogram-set (qapi/block.json) and the latency histograms it adds to
// query-blockstats' device statistics, calling package blockdev (latency.go).

// BlockLatencyHistogramSetArgs are block-latency-histogram-set's arguments.
type BlockLatencyHistogramSetArgs struct {
	ID              string    `json:"id"`
	Boundaries      *[]uint64 `json:"boundaries,omitempty"`
	BoundariesRead  *[]uint64 `json:"boundaries-read,omitempty"`
	BoundariesWrite *[]uint64 `json:"boundaries-write,omitempty"`
	BoundariesFlush *[]uint64 `json:"boundaries-flush,omitempty"`
}

// BlockLatencyHistogramInfo is one histogram in query-blockstats.
type BlockLatencyHistogramInfo struct {
	qmp.QAPIOrder
	Boundaries []uint64 `json:"boundaries"`
	Bins       []uint64 `json:"bins"`
}

// latencyHistograms is what block-latency-histogram-set needs of the block layer.
type latencyHistograms interface {
	SetLatencyHistogram(id string, a blockdev.LatencyHistogramArgs) error
}

func registerBlockLatency(r *qmp.Registry, d *Deps) {
	if d.Block != nil {
		blockLatencyCommands(r, d.Block)
	}
}

func blockLatencyCommands(r *qmp.Registry, g latencyHistograms) {
	r.Register(qmp.Command{Name: "block-latency-histogram-set", Args: &BlockLatencyHistogramSetArgs{},
		Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*BlockLatencyHistogramSetArgs)
			return nil, g.SetLatencyHistogram(a.ID, blockdev.LatencyHistogramArgs{
				Boundaries: a.Boundaries, Read: a.BoundariesRead, Write: a.BoundariesWrite, Flush: a.BoundariesFlush})
		}})
}

// latencyHistogramInfo is bdrv_latency_histogram_stats: nil when none was set.
func latencyHistogramInfo(h *blockdev.LatencyHistogram) *BlockLatencyHistogramInfo {
	if h == nil {
		return nil
	}
	return &BlockLatencyHistogramInfo{Boundaries: append([]uint64{}, h.Boundaries...), Bins: append([]uint64{}, h.Bins...)}
}
