package migration

import "time"

// Auto-converge (QEMU 7.2's migration_trigger_throttle and mig_throttle_guest_down): once
// a second, at a dirty-log sync of stage 2, the bytes the guest dirtied in the period are
// compared with throttle-trigger-threshold % of the bytes sent in it; the second time in a
// row they exceed it, the vCPUs are throttled — to cpu-throttle-initial %, then
// cpu-throttle-increment more each time (with cpu-throttle-tailslow, only what should
// bring the dirty rate down to the threshold, at most the increment), up to
// max-cpu-throttle. The throttle is lifted when the migration ends. With auto-converge,
// stage 2 keeps iterating (QEMU's behaviour) until the dirty set fits the downtime budget,
// or the throttle is at its maximum and the set no longer shrinks.

// Throttler is a Machine whose vCPUs can be throttled (machine.Machine.SetCPUThrottle).
type Throttler interface {
	SetCPUThrottle(pct int)
	CPUThrottle() int
}

// autoConverge is stage 2's throttle state (the checkpoint thread only).
type autoConverge struct {
	t           Throttler // nil: auto-converge off, or a machine without a throttle
	periodStart time.Time
	sentStart   uint64
	dirtied     uint64 // bytes dirtied in the period
	high        int    // periods in a row over the threshold
}

// newAutoConverge starts the throttle logic when the capability is on.
func (s *saver) newAutoConverge() {
	if !s.j.autoConverge {
		return
	}
	if t, ok := s.m.(Throttler); ok {
		s.ac = autoConverge{t: t, periodStart: time.Now(), sentStart: s.sent()}
	}
}

// noteSync counts a stage-2 sync's dirty pages and throttles when it is time.
func (s *saver) noteSync(pages uint64) {
	ac := &s.ac
	if ac.t == nil {
		return
	}
	ac.dirtied += pages * pageSize
	if time.Since(ac.periodStart) < time.Second {
		return
	}
	p := s.j.e.Params()
	xfer := s.sent() - ac.sentStart
	threshold := xfer * uint64(*p.ThrottleTriggerThreshold) / 100
	if ac.dirtied > threshold {
		if ac.high++; ac.high >= 2 {
			ac.high = 0
			s.throttleDown(p, ac.dirtied, threshold)
		}
	}
	ac.periodStart, ac.sentStart, ac.dirtied = time.Now(), s.sent(), 0
}

// throttleDown is mig_throttle_guest_down.
func (s *saver) throttleDown(p Params, dirtied, threshold uint64) {
	t := s.ac.t
	now := t.CPUThrottle()
	if now == 0 {
		t.SetCPUThrottle(int(*p.CPUThrottleInitial))
		return
	}
	inc := int(*p.CPUThrottleIncrement)
	if *p.CPUThrottleTailslow && dirtied > 0 {
		cpuNow := float64(100 - now)
		ideal := cpuNow * float64(threshold) / float64(dirtied)
		inc = min(int(cpuNow-ideal), inc)
	}
	t.SetCPUThrottle(min(now+inc, int(*p.MaxCPUThrottle)))
}

// throttleMaxed reports whether the throttle can go no higher.
func (s *saver) throttleMaxed() bool {
	if s.ac.t == nil {
		return true
	}
	return s.ac.t.CPUThrottle() >= int(*s.j.e.Params().MaxCPUThrottle)
}

// stopThrottle lifts the throttle (the migration ended: QEMU's cpu_throttle_stop).
func (s *saver) stopThrottle() {
	if s.ac.t != nil {
		s.ac.t.SetCPUThrottle(0)
	}
}

// throttlePercentage is query-migrate's cpu-throttle-percentage (0: not throttling).
func (e *Engine) throttlePercentage() int {
	if t, ok := e.m.(Throttler); ok {
		return t.CPUThrottle()
	}
	return 0
}
