package migration

import "time"

// fitEstimate judges whether a dirty set fits the downtime limit: the bytes stage 3 can
// send in downtime-limit milliseconds, at a bandwidth estimated from the passes so far.
//
// The last pass's rate alone (QEMU's threshold_size) overshot the limit in practice
// (312 and 481 ms against 300): a short pass is measured fast, its tail still in the
// socket buffers when the pass ends, and the link may slow down just when the set goes.
// So the estimate is the lower of the last pass's rate and a smoothed rate (the newest
// pass weighs fitSmoothing), less a margin (fitMargin) for what stage 3 adds (the last
// sync, the device state, the stop). A link that slows down is followed at once (the
// last pass), a pass that ran fast moves the estimate by a quarter of its excess only.
//
// The estimate never exceeds max-bandwidth (limit): a pass shorter than the rate limiter's
// window goes out at once and measures the host, not the link the limit stands for (a
// 550 KB first pass of a guest that had just started measured 12 GB/s under a 16 MiB/s
// limit, and its 2 MiB dirty set was judged to fit 1 ms). QEMU's estimate cannot exceed
// it either: it measures over 100 ms windows of rate-limited sending.
//
// query-migrate's expected-downtime is not derived from it (job.info reports the limit).
type fitEstimate struct {
	last, smooth float64 // bytes/s; 0 before the first pass
	limit        float64 // max-bandwidth, bytes/s (0: none)
}

const (
	fitSmoothing = 0.25 // weight of the newest pass in smooth
	fitMargin    = 0.9  // the share of the estimated bandwidth stage 3 is allowed
)

// observe records a pass: bytes sent in d. A pass that sent nothing, or took no time,
// tells nothing.
func (f *fitEstimate) observe(bytes uint64, d time.Duration) {
	r := rate(bytes, d)
	if r <= 0 {
		return
	}
	f.last = r
	if f.smooth == 0 {
		f.smooth = r
	} else {
		f.smooth = fitSmoothing*r + (1-fitSmoothing)*f.smooth
	}
}

// bandwidth is the estimate stage 3 is judged on, bytes/s (0 before the first pass).
func (f *fitEstimate) bandwidth() float64 {
	b := min(f.last, f.smooth)
	if f.limit > 0 {
		b = min(b, f.limit)
	}
	return b * fitMargin
}

// budget is how many bytes fit in downMS milliseconds.
func (f *fitEstimate) budget(downMS uint64) uint64 {
	return uint64(f.bandwidth() * float64(downMS) / 1000)
}

// fits reports whether dirty bytes fit in downMS milliseconds; never before a pass was
// measured.
func (f *fitEstimate) fits(dirty, downMS uint64) bool {
	return f.bandwidth() > 0 && dirty <= f.budget(downMS)
}
