package dirtyrate

import (
	"sync"
	"time"

	"tlcvm/compat/qerror"
)

// QEMU's dirty-limit constants (softmmu/dirtylimit.c).
const (
	limitCalcMS      = 1000 // DIRTYLIMIT_CALC_TIME_MS: each round measures 1 s
	limitTolerance   = 25   // MB/s: closer than this to the quota, no adjustment
	limitLinearPct   = 50   // off by more than this %: a linear step
	limitThrottleMax = 99   // at most this many ring-fill times of sleep per ring
)

// LimitInfo is QAPI's DirtyLimitInfo.
type LimitInfo struct {
	CPUIndex    int64
	LimitRate   uint64 // MB/s
	CurrentRate uint64 // MB/s, measured in the last round
}

// Limiter is QEMU's dirty page rate limit: per-vCPU quotas enforced by sleeping the vCPU
// each time its dirty ring is full, the sleep adjusted every second from the vCPU's
// measured dirty rate (see the package doc).
type Limiter struct {
	m       Machine
	ring    uint64 // dirty ring entries per vCPU; 0: no dirty ring
	maxCPUs int

	mu      sync.Mutex
	quota   []uint64        // MB/s per vCPU (0: not limited); +checklocks:mu
	current []uint64        // MB/s per vCPU, last round; +checklocks:mu
	sleep   []time.Duration // throttle per full ring, per vCPU; +checklocks:mu
	maxRate uint64          // highest rate seen (dirtylimit_dirty_ring_full_time's static); +checklocks:mu
	stop    chan struct{}   // non-nil while the thread runs (dirtylimit_in_service); +checklocks:mu
	done    chan struct{}   // closed when the thread has returned
}

// NewLimiter returns the limiter of a machine with maxCPUs possible vCPUs; ring is the
// dirty ring size, 0 when the machine has none (then SetLimit fails as QEMU's does).
func NewLimiter(m Machine, ring uint64, maxCPUs int) *Limiter {
	return &Limiter{m: m, ring: ring, maxCPUs: maxCPUs}
}

func (l *Limiter) checkIndex(cpu *int64) error {
	if cpu != nil && (*cpu < 0 || *cpu >= int64(l.maxCPUs)) {
		return qerror.New(ErrInvalid, "incorrect cpu index specified")
	}
	return nil
}

// SetLimit is set-vcpu-dirty-limit: rate MB/s for vCPU *cpu, or for every vCPU when cpu
// is nil; rate 0 cancels.
func (l *Limiter) SetLimit(cpu *int64, rate uint64) error {
	if l.ring == 0 {
		return qerror.New(ErrNotEnabled, "dirty page limit feature requires KVM with accelerator property 'dirty-ring-size' set'")
	}
	if err := l.checkIndex(cpu); err != nil {
		return err
	}
	if rate == 0 {
		return l.CancelLimit(cpu)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stop == nil {
		l.quota = make([]uint64, l.maxCPUs)
		l.current = make([]uint64, l.maxCPUs)
		l.sleep = make([]time.Duration, l.maxCPUs)
		l.stop, l.done = make(chan struct{}), make(chan struct{})
		go l.run(l.stop, l.done)
	}
	for i := range l.quota {
		if cpu == nil || int64(i) == *cpu {
			l.quota[i] = rate
		}
	}
	return nil
}

// CancelLimit is cancel-vcpu-dirty-limit: without a dirty ring it does nothing (QEMU
// returns before checking the index); the last limit cancelled stops the thread.
func (l *Limiter) CancelLimit(cpu *int64) error {
	if l.ring == 0 {
		return nil
	}
	if err := l.checkIndex(cpu); err != nil {
		return err
	}
	l.mu.Lock()
	if l.stop == nil {
		l.mu.Unlock()
		return nil
	}
	limited := 0
	for i := range l.quota {
		if cpu == nil || int64(i) == *cpu {
			l.quota[i] = 0
			l.sleep[i] = 0
			l.m.SetDirtyThrottle(i, 0, l.ring)
		}
		if l.quota[i] != 0 {
			limited++
		}
	}
	if limited > 0 {
		l.mu.Unlock()
		return nil
	}
	stop, done := l.stop, l.done
	l.stop = nil
	l.mu.Unlock()
	close(stop)
	<-done
	return nil
}

// Query is query-vcpu-dirty-limit: the limited vCPUs in index order (none when the
// limit is not in service).
func (l *Limiter) Query() []LimitInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []LimitInfo{}
	if l.stop == nil {
		return out
	}
	for i, q := range l.quota {
		if q != 0 {
			out = append(out, LimitInfo{CPUIndex: int64(i), LimitRate: q, CurrentRate: l.current[i]})
		}
	}
	return out
}

// run is QEMU's dirtyrate-stat thread: measure each vCPU for 1 s, adjust the throttles.
func (l *Limiter) run(stop, done chan struct{}) {
	defer close(done)
	meter := &Meter{m: l.m, now: monotonic, wait: func(d time.Duration) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-stop:
		}
	}}
	l.m.SyncDirtyRate() // the log starts: every page counts from now
	for {
		select {
		case <-stop:
			return
		default:
		}
		rates, _ := meter.vcpuRates(limitCalcMS)
		l.mu.Lock()
		if l.stop != stop {
			l.mu.Unlock()
			return
		}
		for _, r := range rates {
			if int(r.ID) < len(l.current) {
				l.current[r.ID] = uint64(max(r.DirtyRate, 0))
			}
		}
		for i, q := range l.quota {
			if q == 0 || i >= len(rates) {
				continue
			}
			if d, change := l.adjust(l.sleep[i], q, l.current[i]); change {
				l.sleep[i] = d
				l.m.SetDirtyThrottle(i, d, l.ring)
			}
		}
		l.mu.Unlock()
	}
}

// ringFull is dirtylimit_dirty_ring_full_time: how long a ring takes to fill at the
// highest rate seen (µs). mu held.
func (l *Limiter) ringFull(rate uint64) uint64 {
	l.maxRate = max(l.maxRate, rate)
	return (l.ring * pageSize >> 20) * 1000000 / l.maxRate
}

// adjust is dirtylimit_adjust_throttle + dirtylimit_set_throttle: the new sleep per full
// ring for a vCPU at current MB/s under quota MB/s, and whether it changes. mu held.
func (l *Limiter) adjust(sleep time.Duration, quota, current uint64) (time.Duration, bool) {
	lo, hi := min(quota, current), max(quota, current)
	if hi-lo <= limitTolerance {
		return sleep, false
	}
	if current == 0 {
		return 0, true
	}
	full := int64(l.ringFull(current)) // µs
	us := sleep.Microseconds()
	if (hi-lo)*100/hi > limitLinearPct {
		var pct uint64
		if quota < current {
			pct = (current - quota) * 100 / current
			us += int64(float64(full) * float64(pct) / float64(100-pct))
		} else {
			pct = (quota - current) * 100 / quota
			us -= int64(float64(full) * float64(pct) / float64(100-pct))
		}
	} else if quota < current {
		us += full / 10
	} else {
		us -= full / 10
	}
	us = max(min(us, full*limitThrottleMax), 0)
	return time.Duration(us) * time.Microsecond, true
}
