package machine

import (
	"time"
)

// The CPU throttle of auto-converge (QEMU's softmmu/cpu-throttle.c): at percentage p every
// vCPU, after each timeslice of running, sleeps timeslice*p/(100-p), so that it runs
// (100-p) % of the time. It is checked after each backend Run (vcpu.runPeriod); the
// sleep ends early when the run period ends, so a throttled VM still stops at once. The
// guest clock keeps running meanwhile: a paced workload falls behind and catches up, as
// a real guest's would; an unpaced one (rate=max) does p % less work.

// throttleSlice is QEMU's CPU_THROTTLE_TIMESLICE_NS.
const throttleSlice = 10 * time.Millisecond

// SetCPUThrottle sets the throttle percentage of every vCPU (0 lifts it; at most 99).
func (m *Machine) SetCPUThrottle(pct int) {
	m.cpuThrottle.Store(int32(min(max(pct, 0), 99)))
}

// CPUThrottle returns the throttle percentage in force (0: not throttled).
func (m *Machine) CPUThrottle() int { return int(m.cpuThrottle.Load()) }

// cpuThrottle is called by the vCPU thread after each Run: once the vCPU has run a
// timeslice since its last sleep, it sleeps its share, or until kick closes.
func (v *vcpu) cpuThrottle(kick <-chan struct{}) {
	pct := v.m.cpuThrottle.Load()
	if pct == 0 {
		v.ranSince = time.Time{}
		return
	}
	now := time.Now()
	if v.ranSince.IsZero() {
		v.ranSince = now
		return
	}
	if now.Sub(v.ranSince) < throttleSlice {
		return
	}
	t := time.NewTimer(throttleSlice * time.Duration(pct) / time.Duration(100-pct))
	defer t.Stop()
	select {
	case <-t.C:
	case <-kick:
	}
	v.ranSince = time.Now()
}
