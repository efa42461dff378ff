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
	if s.cv.t != nil {
		s.cv.t.SetCPUThrottle(0)
	}
}

// The convergence throttle: tlcvm's answer to a precopy that cannot converge without
// auto-converge (QEMU 7.2 iterates such a migration forever). Once stage 2's stop rules
// say the dirty set no longer shrinks toward bandwidth × downtime-limit (or the stream
// budget is spent), the vCPUs are throttled as auto-converge throttles them — to
// cpu-throttle-initial %, then cpu-throttle-increment more — but one step per pass, not
// per second, and a step large enough, when the dirty set is many times what fits, to
// scale the guest's CPU share by fit ÷ dirty at once (the inverse of auto-converge's
// tailslow); query-migrate shows cpu-throttle-percentage meanwhile. Stage 2 goes on
// while the throttle can rise, and for stallPasses passes at max-cpu-throttle; then stage
// 3 takes what is left. Not for x-tlc (its stage 3 does not grow with the final set), a
// postcopy-ram migration (it waits for migrate-start-postcopy) or one with auto-converge
// (which throttles by its own rules).
type convergeThrottle struct {
	t      Throttler // set at the first step
	atMax  int       // passes run at max-cpu-throttle
	offers bool      // the machine can be throttled (checked once)
	asked  bool
}

// convergeStep throttles one step more and reports whether stage 2 should go on: dirty
// bytes are left, fit would fit the downtime budget.
func (s *saver) convergeStep(dirty, fit uint64) bool {
	cv := &s.cv
	if !cv.asked {
		cv.asked = true
		if t, ok := s.m.(Throttler); ok && !s.j.tlc && !s.j.autoConverge {
			cv.t, cv.offers = t, true
		}
	}
	if !cv.offers {
		return false
	}
	p := s.j.e.Params()
	now, top := cv.t.CPUThrottle(), int(*p.MaxCPUThrottle)
	switch {
	case now >= top:
		cv.atMax++
		return cv.atMax <= stallPasses
	}
	next := now + int(*p.CPUThrottleIncrement)
	if now == 0 {
		next = int(*p.CPUThrottleInitial)
	}
	if dirty > 0 && fit < dirty {
		// The CPU share that would shrink the set to what fits, were dirtying linear in it.
		share := float64(100-now) * float64(fit) / float64(dirty)
		next = max(next, 100-int(share))
	}
	cv.t.SetCPUThrottle(min(next, top))
	s.j.e.log.Debug().Int("cpu-throttle", cv.t.CPUThrottle()).Msg("precopy not converging: throttled")
	return true
}

// throttlePercentage is query-migrate's cpu-throttle-percentage (0: not throttling).
func (e *Engine) throttlePercentage() int {
	if t, ok := e.m.(Throttler); ok {
		return t.CPUThrottle()
	}
	return 0
}
