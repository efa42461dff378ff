package machine

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// vcpu is one virtual CPU: a goroutine locked to its own OS thread, which is never the
// process's main thread (libvirt ignores vCPU thread ids equal to the pid), running a
// backend (backend.go) until the vCPUs are parked.
type vcpu struct {
	m       *Machine
	index   int           // the CPU's index (QEMU's cpu_index): its topology slot
	qomPath string        // "/machine/unattached/device[N]", or the device_add path
	tid     atomic.Int32  // the thread's id (gettid), set once before start returns
	wake    chan struct{} // buffered(1): an interrupt for a halted vCPU (see wakeup)
	done    chan struct{} // closed when the thread has returned
	// gone makes the thread return instead of running again (hot unplug); set with
	// vcpuCtl.mu held, read by the vCPU under it.
	gone bool

	// mu guards be's state. The vCPU thread holds it around each Run; monitors
	// (Registers, snapshots, reset) take it to see or set a consistent state between runs.
	mu sync.Mutex
	be backend // +checklocks:mu (Kick excepted)

	ranSince time.Time // the vCPU thread only: start of the current throttle timeslice
}

// Parking and waking rules.
//
// A vCPU thread is in one of three places, and each has exactly one thing that moves it
// on. Nothing else wakes it, so a stopped VM's threads sleep (no CPU at all), whatever
// the number of vCPUs:
//
//	place       sleeps on                 woken by (and only by)
//	parked      vcpuCtl.released          resume (run becomes true), shutdown (exit)
//	halted      kick, v.wake, a timer     pause/shutdown closing kick; wakeup (an
//	                                      interrupt: SIPI, power button, reset, restore);
//	                                      the guest's own timer (pacing) expiring
//	running     nothing: it polls         vcpuCtl.stop between runs (at most one quantum,
//	            ctl.stop between runs     ~30 µs, late); Kick ends a Run at once
//
// Duties of each transition:
//   - pause: run=false, stop=true, close(kick), Kick every backend — every halted vCPU
//     leaves its select, every running one sees stop after its Run — then wait on
//     settled until parked == alive.
//   - a vCPU entering parked: parked++, broadcast settled (pause may be waiting), sleep on
//     released. It never broadcasts released: its peers' wake-up is not its business.
//   - resume: run=true, a new kick channel, stop=false, broadcast released.
//   - shutdown: exit=true (and as pause), broadcast released; wait on settled until
//     alive == 0. A vCPU leaving for good decrements alive and broadcasts settled.
//   - wakeup: a non-blocking send on the vCPU's own buffered(1) wake channel; a vCPU that
//     is running at that moment finds the token at its next halt and runs on (an
//     interrupt that arrives while running is not lost, it ends the next HLT at once).
//   - hot unplug (cpuhotplug.go): with every vCPU parked, gone=true and broadcast
//     released; the unplugged vCPU leaves like a shutdown does (alive--, broadcast
//     settled), its peers find run still false and sleep on. Hot plug: alive++ before
//     the new thread starts; it parks (or runs, when run is true) like the others.
//
// Lock order: Machine.mu, then vcpuCtl.mu, then vcpu.mu. A vCPU thread never takes
// Machine.mu (guest requests go to guestLoop through channels).

// vcpuCtl parks and releases all vCPUs together (QEMU's pause_all_vcpus /
// resume_all_vcpus): pause returns only once every vCPU goroutine is parked.
type vcpuCtl struct {
	mu       sync.Mutex
	released *sync.Cond    // parked vCPUs sleep here (see the rules above)
	settled  *sync.Cond    // pause and shutdown sleep here
	run      bool          // vCPUs may execute; +checklocks:mu
	exit     bool          // goroutines must return; +checklocks:mu
	parked   int           // goroutines parked in wait(); +checklocks:mu
	alive    int           // goroutines not yet returned; +checklocks:mu
	kick     chan struct{} // closed by pause/exit to wake halted vCPUs; +checklocks:mu
	stop     atomic.Bool   // == !run, read by running vCPUs between runs
	kickAll  func()        // Kick every backend (set once by New, before any vCPU runs)
}

func newVCPUCtl() *vcpuCtl {
	c := &vcpuCtl{kick: make(chan struct{}), kickAll: func() {}}
	c.released = sync.NewCond(&c.mu)
	c.settled = sync.NewCond(&c.mu)
	c.stop.Store(true)
	return c
}

// pause parks every vCPU and returns when all of them are parked (or gone).
func (c *vcpuCtl) pause() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.run {
		c.stopLocked()
	}
	for c.parked < c.alive {
		c.settled.Wait()
	}
}

// stopLocked ends the run period: running vCPUs see stop (and are kicked), halted ones
// leave their select. Caller holds c.mu and c.run is true.
func (c *vcpuCtl) stopLocked() {
	c.run = false
	c.stop.Store(true)
	close(c.kick)
	c.kickAll()
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
			c.stopLocked()
		}
		c.released.Broadcast()
	}
	for c.alive > 0 {
		c.settled.Wait()
	}
}

// wait parks v's thread until it may run; it returns the kick channel of the run period,
// or ok=false when the goroutine must return (shutdown, or v unplugged).
func (c *vcpuCtl) wait(v *vcpu) (kick chan struct{}, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parked++
	c.settled.Broadcast()
	for !c.run && !c.exit && !v.gone {
		c.released.Wait()
	}
	c.parked--
	if c.exit || v.gone {
		c.alive--
		c.settled.Broadcast()
		return nil, false
	}
	return c.kick, true
}

// wakeup delivers an interrupt to a halted vCPU (see the rules above).
func (v *vcpu) wakeup() {
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// threadName is QEMU's vCPU thread name with -name debug-threads=on.
func (v *vcpu) threadName() string { return fmt.Sprintf("CPU %d/TCG", v.index) }

// start starts the vCPU's thread and returns once it exists (its tid recorded, named).
func (v *vcpu) start() {
	started := make(chan struct{})
	go v.loop(started)
	<-started
}

// loop is the vCPU goroutine.
func (v *vcpu) loop(started chan<- struct{}) {
	runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
	if unix.Gettid() == unix.Getpid() {
		// The scheduler put us on the main thread. Leave it locked and return: the Go
		// runtime then parks the main thread for good (it never exits it), and a new
		// goroutine gets a thread of its own.
		go v.loop(started)
		return
	}
	v.tid.Store(int32(unix.Gettid()))
	if v.m.cfg.DebugThreads {
		name := append([]byte(v.threadName()), 0)
		_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0)
	}
	close(started)
	defer close(v.done)
	for {
		kick, ok := v.m.ctl.wait(v)
		if !ok {
			return
		}
		if v.m.cfg.QTest {
			<-kick // the qtest accelerator executes nothing: sleep until the pause
			continue
		}
		v.runPeriod(kick)
	}
}

// quantum bounds the work of one Run, so that a stop request is seen within ~30 µs at
// the workload's maximum rate even without Kick.
const quantum = 1024

// runPeriod runs the backend until the vCPUs are told to stop: one exit at a time. An
// exit with more set is completed (Run again) before the vCPU may park, as KVM requires
// a KVM_RUN after an I/O exit before the vCPU's state is read.
func (v *vcpu) runPeriod(kick chan struct{}) {
	m := v.m
	more := false
	for more || !m.ctl.stop.Load() {
		if !more && v.index == 0 && m.acpi.enabled.Load() {
			if m.acpi.pending.CompareAndSwap(true, false) {
				v.mu.Lock()
				v.be.Interrupt(irqSCI)
				v.mu.Unlock()
			}
			if m.acpi.gpe.latched() || m.cpuhp.latched() {
				v.mu.Lock()
				v.be.Interrupt(irqGPE)
				v.mu.Unlock()
			}
		}
		if !more && v.index == 0 {
			v.deliverIRQs(m.pendingIRQs())
		}
		v.mu.Lock()
		ex := v.be.Run(quantum)
		v.mu.Unlock()
		v.throttle(kick)    // a dirty limit (dirtyrate.go)
		v.cpuThrottle(kick) // auto-converge (throttle.go)
		more = ex.more
		switch ex.reason {
		case exitFault:
			if errors.Is(ex.err, ErrRAMRetry) {
				continue // the page is not there yet: again, unless the VM stops meanwhile
			}
			// The guest must not see the data: park until the VM stops (internal-error).
			m.ramFault(ex.err, false)
			<-kick
			return
		case exitHalt:
			v.halt(kick, ex.wakeAt)
		case exitDisk:
			// A completed request is taken by the next Run before the vCPU parks (its
			// cursor is vCPU state); one a pause ended is made again after the resume.
			more = v.diskIO(kick, ex.disk) || more
		default:
			v.deliver(ex)
		}
	}
}

// deliverIRQs hands the raised device interrupt lines (bit n: line n) to the backend.
func (v *vcpu) deliverIRQs(lines uint32) {
	if lines == 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for l := 0; l < 32; l++ {
		if lines&(1<<l) != 0 {
			v.be.Interrupt(l)
		}
	}
}

// deliver carries out a device or inter-processor exit.
func (v *vcpu) deliver(ex exit) {
	switch ex.reason {
	case exitIO:
		if ex.port == COM1Base {
			// The guest's console lock (a kernel's console spinlock): one vCPU's line at a
			// time, now that every vCPU's disk driver may report on the console.
			v.m.console.Lock()
			v.m.serial.puts(string(ex.data))
			v.m.console.Unlock()
		}
	case exitIPI:
		for _, o := range v.m.cpus() {
			if o != v {
				o.wakeup()
			}
		}
	case exitShutdown:
		v.m.requestGuestShutdown()
	case exitEject:
		v.m.ejects <- ex.eject // guestLoop drains it at once
	case exitLockTrays:
		if v.m.cfg.Media != nil {
			v.m.cfg.Media.LockTrays()
		}
	}
}

// halt sleeps until an interrupt (wakeup), the end of the run period (kick), or the
// guest's timer at wakeAt (guest ns; 0: no timer). The guest clock runs at wall-clock
// speed while the vCPUs run.
func (v *vcpu) halt(kick chan struct{}, wakeAt uint64) {
	var tc <-chan time.Time
	if wakeAt != 0 {
		now := v.m.clock.Now()
		if wakeAt <= now {
			return
		}
		t := time.NewTimer(time.Duration(wakeAt - now))
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-kick:
	case <-v.wake:
	case <-tc:
	}
}

// CPUProps are a CPU's topology properties as query-cpus-fast reports them. DieID is
// reported only when the machine has more than one die per socket (HasDie).
type CPUProps struct {
	SocketID, DieID, CoreID, ThreadID int
	HasDie                            bool
	NodeID                            int // the NUMA node; -1 without NUMA (Config.CPUNodes)
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
	node := -1
	if i < len(c.CPUNodes) {
		node = c.CPUNodes[i]
	}
	return CPUProps{
		ThreadID: i % threads,
		CoreID:   i / threads % cores,
		DieID:    i / (threads * cores) % dies,
		SocketID: i / (threads * cores * dies),
		HasDie:   dies > 1,
		NodeID:   node,
	}
}

// newVCPU makes the vCPU of slot index (its thread is started by start).
func (m *Machine) newVCPU(index int, qomPath string) *vcpu {
	return &vcpu{m: m, index: index, qomPath: qomPath, wake: make(chan struct{}, 1), done: make(chan struct{}),
		be: newSynthCPU(m, index)}
}

// cpus returns the present vCPUs in index order (do not modify the slice).
func (m *Machine) cpus() []*vcpu {
	if p := m.vcpuList.Load(); p != nil {
		return *p
	}
	return nil
}

// vcpu returns the present vCPU of index i, or nil.
func (m *Machine) vcpu(i int) *vcpu {
	for _, v := range m.cpus() {
		if v.index == i {
			return v
		}
	}
	return nil
}

// wakeBSP wakes vCPU 0, which takes the machine's ACPI interrupts.
func (m *Machine) wakeBSP() {
	if v := m.vcpu(0); v != nil {
		v.wakeup()
	}
}
