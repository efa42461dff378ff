package machine

import (
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// vcpu is one virtual CPU: a goroutine locked to its own OS thread.
type vcpu struct {
	m     *Machine
	index int
	tid   atomic.Int32
	wake  chan struct{} // buffered(1): leave HLT (power button, AP release, reset)

	// mu guards st. The vCPU goroutine holds it while executing a batch of steps;
	// monitors (Registers, snapshots) take it to see a consistent state between batches.
	mu    sync.Mutex
	st    CPUState // +checklocks:mu
	fault error    // +checklocks:mu; a failed guest RAM check met by the last step(s)
}

// vcpuCtl parks and releases all vCPUs together (QEMU's pause_all_vcpus /
// resume_all_vcpus): pause returns only once every vCPU goroutine is parked.
//
// Two conditions share mu, so that nobody is woken by a change that does not concern it:
//
//   - released: parked vCPUs sleep on it; only resume and shutdown (run or exit becoming
//     true) broadcast it. A parked vCPU is woken by nothing else, so a stopped VM sleeps.
//   - settled: pause and shutdown sleep on it until parked == alive (or alive == 0); a vCPU
//     broadcasts it when it parks or returns, once per such change, never in a loop.
type vcpuCtl struct {
	mu       sync.Mutex
	released *sync.Cond    // see above
	settled  *sync.Cond    // see above
	run      bool          // vCPUs may execute; +checklocks:mu
	exit     bool          // goroutines must return; +checklocks:mu
	parked   int           // goroutines parked in wait(); +checklocks:mu
	alive    int           // goroutines not yet returned; +checklocks:mu
	kick     chan struct{} // closed by pause/exit to wake sleeping vCPUs; +checklocks:mu
	stop     atomic.Bool   // == !run, read by running vCPUs between batches
}

func newVCPUCtl() *vcpuCtl {
	c := &vcpuCtl{kick: make(chan struct{})}
	c.released = sync.NewCond(&c.mu)
	c.settled = sync.NewCond(&c.mu)
	c.stop.Store(true)
	return c
}

// pause parks every vCPU and returns when all n are parked (or gone).
func (c *vcpuCtl) pause() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.run {
		c.run = false
		c.stop.Store(true)
		close(c.kick)
	}
	for c.parked < c.alive {
		c.settled.Wait()
	}
}

// resume releases the parked vCPUs.
func (c *vcpuCtl) resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.run || c.exit {
		return
	}
	c.run = true
	c.kick = make(chan struct{})
	c.stop.Store(false)
	c.released.Broadcast()
}

// shutdown makes every vCPU goroutine return and waits for them.
func (c *vcpuCtl) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.exit {
		c.exit = true
		if c.run {
			close(c.kick)
		}
		c.run = false
		c.stop.Store(true)
		c.released.Broadcast()
	}
	for c.alive > 0 {
		c.settled.Wait()
	}
}

// wait parks the caller until it may run; it returns the kick channel of the run period,
// or ok=false when the goroutine must return.
func (c *vcpuCtl) wait() (kick chan struct{}, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parked++
	c.settled.Broadcast()
	for !c.run && !c.exit {
		c.released.Wait()
	}
	c.parked--
	if c.exit {
		c.alive--
		c.settled.Broadcast()
		return nil, false
	}
	return c.kick, true
}

func (v *vcpu) wakeup() {
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// threadName is QEMU's vCPU thread name with -name debug-threads=on.
func (v *vcpu) threadName() string { return fmt.Sprintf("CPU %d/TCG", v.index) }

// loop is the vCPU goroutine.
func (v *vcpu) loop(started chan<- struct{}) {
	runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
	v.tid.Store(int32(unix.Gettid()))
	if v.m.cfg.DebugThreads {
		name := append([]byte(v.threadName()), 0)
		_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0)
	}
	close(started)
	for {
		kick, ok := v.m.ctl.wait()
		if !ok {
			return
		}
		v.run(kick)
	}
}

// batchPages bounds the work between two checks of the stop flag (~30 µs at max rate).
const batchPages = 1024

// run executes the program until the vCPUs are told to stop.
func (v *vcpu) run(kick chan struct{}) {
	m := v.m
	for !m.ctl.stop.Load() {
		if v.index == 0 && m.acpi.pending.Load() && m.acpi.enabled.Load() {
			v.powerButton()
		}
		v.mu.Lock()
		var n int
		var sleep time.Duration
		active := true
		if v.ensure(0, sysPages) {
			n, sleep = v.budget()
			if n > 0 {
				active = v.execute(n)
			}
		}
		var line string
		if v.index == 0 && v.fault == nil && v.st.working() {
			if now := m.clock.Now(); now >= v.st.Regs[regReport] {
				line = v.statusLine(now)
				v.st.Regs[regReport] = now + reportEveryNS
			}
		}
		fault := v.fault
		v.fault = nil
		v.mu.Unlock()
		if fault != nil {
			// The guest must not see the data: park until the VM stops (internal-error).
			m.ramFault(fault, false)
			<-kick
			return
		}
		if line != "" {
			m.serial.puts(line)
		}
		if !active {
			sleep = -1 // halted: until woken
		}
		if sleep != 0 {
			var t *time.Timer
			var tc <-chan time.Time
			if sleep > 0 {
				t = time.NewTimer(sleep)
				tc = t.C
			}
			select {
			case <-kick:
			case <-v.wake:
			case <-tc:
			}
			if t != nil {
				t.Stop()
			}
		}
	}
}

// execute runs up to n steps; false when the vCPU halted. Caller holds v.mu.
func (v *vcpu) execute(n int) bool {
	if v.st.RIP == ripLoop {
		v.loopPages(n)
		return true
	}
	for i := 0; i < n; i++ {
		if !v.step() {
			return false
		}
		if v.fault != nil {
			return true
		}
		if v.st.RIP == ripLoop {
			if n-i-1 > 0 {
				v.loopPages(n - i - 1)
			}
			return true
		}
	}
	return true
}

// working reports whether the program is in a paced stage (filling or looping).
func (s *CPUState) working() bool {
	return s.RIP == ripLoop || s.RIP == ripFill || s.RIP == ripFill2
}

// budget returns how many steps the rate allows now, or how long to sleep first.
// Caller holds v.mu.
func (v *vcpu) budget() (int, time.Duration) {
	s := &v.st
	rate := s.Regs[regRate]
	if !s.working() || rate == 0 {
		return batchPages, 0
	}
	now := v.m.clock.Now()
	elapsed := now - s.Regs[regEpoch]
	if now < s.Regs[regEpoch] {
		elapsed = 0
	}
	per := PageSize * max(s.Regs[regNCPU], 1) // bytes per page, times vCPUs sharing the rate
	due := mulDiv(elapsed, rate, per*1e9)
	if done := s.Regs[regPaced]; done < due {
		return int(min(due-done, batchPages)), 0
	}
	next := mulDiv(s.Regs[regPaced]+1, per*1e9, rate) // guest ns at which the next page is due
	wait := time.Duration(next - elapsed)
	return 0, max(wait, time.Millisecond)
}

// mulDiv is a*b/c without overflow (saturating).
func mulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return ^uint64(0)
	}
	q, _ := bits.Div64(hi, lo, c)
	return q
}

// powerButton is the guest's ACPI SCI handler: print, power off.
func (v *vcpu) powerButton() {
	v.m.acpi.pending.Store(false)
	v.mu.Lock()
	v.st.RIP = ripOff
	v.st.Halted = true
	v.mu.Unlock()
	v.m.serial.puts("tlcvm guest: ACPI power button pressed, powering off\r\n")
	v.m.requestGuestShutdown()
}

// CPUProps are a CPU's topology properties as query-cpus-fast reports them. DieID is
// reported only when the machine has more than one die per socket (HasDie).
type CPUProps struct {
	SocketID, DieID, CoreID, ThreadID int
	HasDie                            bool
}

// CPUInfo describes one possible CPU (MaxCPUs of them); Plugged ones have a thread.
type CPUInfo struct {
	Index    int
	ThreadID int    // OS thread id (gettid) of the vCPU thread; 0 when not plugged
	QOMPath  string // "/machine/unattached/device[N]"; "" when not plugged
	Props    CPUProps
	Type     string // QOM type, e.g. "qemu64-x86_64-cpu"
	Plugged  bool
}

// qomPath numbers CPUs as QEMU 7.2's pc/q35 boards do: CPU 0 is device[0], the board's
// next unattached device takes device[1], CPU n>0 is device[n+1].
func qomPath(i int) string {
	if i == 0 {
		return "/machine/unattached/device[0]"
	}
	return fmt.Sprintf("/machine/unattached/device[%d]", i+1)
}

func (m *Machine) topology(i int) CPUProps {
	c := m.cfg
	threads, cores, dies := max(c.Threads, 1), max(c.Cores, 1), max(c.Dies, 1)
	return CPUProps{
		ThreadID: i % threads,
		CoreID:   i / threads % cores,
		DieID:    i / (threads * cores) % dies,
		SocketID: i / (threads * cores * dies),
		HasDie:   dies > 1,
	}
}
