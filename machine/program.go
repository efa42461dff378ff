package machine

import (
	"fmt"
	"math/bits"
	"sync/atomic"
	"time"
)

// Guest-physical layout used by the workload program (see doc.go).
const (
	gpaCounters = 0x500  // vCPU i: pass counter at 0x500+16*i, pages written at 0x508+16*i
	gpaBootInfo = 0x4000 // u64 APs released, u64 working-set bytes, u64 rate, u64 fill bytes
	gpaBootMask = 0x5000 // bitmap of the CPU indexes present at boot (bootMaskWords u64s)
	// bootMaskWords bounds the boot bitmap: 1024 CPU indexes, beyond q35's 288.
	bootMaskWords = 16
	gpaPML4       = 0x10000 // PML4, then PDPT, then the page directories (2 MiB pages)
	gpaWSBase     = 2 << 20 // the working set starts here, as in the bench guest
	maxPDs        = 64      // identity map covers up to 64 GiB of guest-physical space

	// sysPages: everything the program touches below the working set (counters, boot
	// info, page tables) lies in these pages; with restore by mapping they are ensured
	// once per batch, the working-set and fill pages one by one.
	sysPages = gpaWSBase >> pageShift
)

// Program counter values: the stage a vCPU's program is in.
const (
	ripReset = 0xfff0
	ripFill  = 0x100040
	ripFill2 = 0x100060 // fill=: the extra resident pages, written once
	ripLoop  = 0x100080
	ripIdle  = 0x1000c0
	ripOff   = 0x100100
)

// Register roles of the workload program.
const (
	regPass    = RAX // pass number (1 while filling)
	regIndex   = RBX // page index within this vCPU's chunk
	regPages   = RCX // pages in this vCPU's chunk
	regHash    = RDX // hash accumulator mixed into every store
	regBase    = RSI // guest-physical base of this vCPU's chunk (ripFill2: RAM offset of its fill share)
	regCounter = RDI // guest-physical address of this vCPU's counters
	regWritten = R8  // pages written by this vCPU since boot
	regPaced   = R9  // pages written since the pacing epoch
	regEpoch   = R10 // pacing epoch, guest ns
	regReport  = R11 // next status line, guest ns (vCPU 0)
	regWS      = R12 // working-set bytes, all vCPUs
	regRate    = R13 // bytes/s, all vCPUs (0 = max)
	regCPU     = R14 // this vCPU's index
	regNCPU    = R15 // number of vCPUs
)

const reportEveryNS = 5e9 // status line period in guest time

// synthCPU is the synthetic workload's backend (backend.go): an x86 vCPU whose entire
// state is its registers (CPUState) and guest RAM, executing the deterministic program
// described in doc.go one step at a time (boot, one page filled, one page rewritten).
type synthCPU struct {
	m      *Machine
	index  int
	st     CPUState
	fault  error  // a failed guest RAM check met by the last step(s)
	irq    uint32 // pending interrupt lines (bits irqSCI, irqNMI, irqGPE, irqKeyboard, irqMouse)
	queued []exit // exits of the last step not yet returned by Run (in order)
	kicked atomic.Bool
	// dirtied counts the pages this vCPU's stores took from clean to dirty (what KVM's
	// dirty ring of the vCPU records); written by the vCPU, read by dirtyrate.go.
	dirtied atomic.Uint64

	// The disk driver's runtime (disk.go); its state is st.Disk.
	disks   []Disk       // st.Disk.Names resolved (again after SetState)
	diskBuf []byte       // the request buffer
	pending *diskRequest // the last exitDisk, completed at the next Run
}

var _ backend = (*synthCPU)(nil)

func newSynthCPU(m *Machine, index int) *synthCPU {
	return &synthCPU{m: m, index: index, st: resetCPUState(index, m.cfg.CPUModel)}
}

// State implements backend.
func (c *synthCPU) State() CPUState {
	st := c.st
	st.Disk = st.Disk.clone()
	return st
}

// SetState implements backend; pending exits, interrupts and disk requests belong to the
// old state and are dropped.
func (c *synthCPU) SetState(st CPUState) {
	c.st = st
	c.st.Disk = st.Disk.clone()
	c.queued = c.queued[:0]
	c.irq = 0
	c.pending, c.disks = nil, nil
}

// Kick implements backend.
func (c *synthCPU) Kick() { c.kicked.Store(true) }

// Interrupt implements backend: the guest takes the NMI (nmi.go) and the SCI (its
// power-button handler) at the next Run.
func (c *synthCPU) Interrupt(irq int) { c.irq |= 1 << irq }

// queue appends an exit to return once the current step is over.
func (c *synthCPU) queue(ex exit) { c.queued = append(c.queued, ex) }

// out is the guest's serial driver: one string output to COM1 (KVM_EXIT_IO, count > 1).
func (c *synthCPU) out(s string) { c.queue(exit{reason: exitIO, port: COM1Base, data: []byte(s)}) }

func (c *synthCPU) dequeue() exit {
	ex := c.queued[0]
	c.queued = c.queued[1:]
	ex.more = len(c.queued) > 0
	return ex
}

// Run implements backend: pending exits first, then the SCI handler, then up to quantum
// steps as the workload's pacing allows; vCPU 0 also prints its status line when due.
func (c *synthCPU) Run(quantum int) exit {
	c.completeDisk()
	if len(c.queued) > 0 {
		return c.dequeue()
	}
	if c.kicked.Swap(false) {
		return exit{reason: exitKicked}
	}
	if c.irq&(1<<irqNMI) != 0 && c.takeNMI() {
		return c.dequeue()
	}
	if c.irq&(1<<irqSCI) != 0 {
		c.irq &^= 1 << irqSCI
		c.powerButton()
		return c.dequeue()
	}
	if c.irq&(1<<irqGPE) != 0 {
		c.irq &^= 1 << irqGPE
		if !c.ensure(0, sysPages) {
			c.irq |= 1 << irqGPE
			return c.faultExit()
		}
		c.cpuHotplugHandler()
		if c.gpeHandler(); len(c.queued) > 0 {
			return c.dequeue()
		}
	}
	if c.irq&(1<<irqKeyboard|1<<irqMouse) != 0 {
		if c.guestInput(); len(c.queued) > 0 {
			return c.dequeue()
		}
	}
	if !c.ensure(0, sysPages) {
		return c.faultExit()
	}
	n, wakeAt := c.budget(quantum)
	active := true
	if n > 0 {
		active = c.execute(n)
	}
	if c.fault != nil {
		c.queued = c.queued[:0] // the step that faulted did nothing
		return c.faultExit()
	}
	if c.index == 0 && c.st.working() {
		if now := c.m.clock.Now(); now >= c.st.Regs[regReport] {
			c.out(c.statusLine(now))
			c.st.Regs[regReport] = now + reportEveryNS
		}
	}
	if c.irq&(1<<irqNMI) != 0 {
		c.takeNMI() // one that came before the boot, taken once the kernel runs
	}
	due, diskAt := c.diskDue()
	switch {
	case due:
		c.queue(c.diskExit()) // the driver's doorbell
	case !active:
		c.queue(exit{reason: exitHalt, wakeAt: diskAt}) // HLT, until an interrupt (or the driver's timer)
	case n == 0:
		if diskAt != 0 {
			wakeAt = min(wakeAt, diskAt)
		}
		c.queue(exit{reason: exitHalt, wakeAt: wakeAt}) // the pacing timer
	}
	if len(c.queued) > 0 {
		return c.dequeue()
	}
	return exit{reason: exitQuantum}
}

func (c *synthCPU) faultExit() exit {
	err := c.fault
	c.fault = nil
	return exit{reason: exitFault, err: err}
}

// execute runs up to n steps; false when the vCPU halted. It stops early after a step
// that queued an exit (the boot's banner and SIPI) or met a RAM check failure.
func (c *synthCPU) execute(n int) bool {
	if c.st.RIP == ripLoop {
		c.loopPages(n)
		return true
	}
	for i := 0; i < n; i++ {
		if !c.step() {
			return false
		}
		if c.fault != nil || len(c.queued) > 0 {
			return true
		}
		if c.st.RIP == ripLoop {
			if n-i-1 > 0 {
				c.loopPages(n - i - 1)
			}
			return true
		}
	}
	return true
}

// working reports whether the program is in a paced stage (filling or looping).
func (s *CPUState) working() bool {
	return s.RIP == ripLoop || s.RIP == ripFill || s.RIP == ripFill2 || s.RIP == ripFillDIMM
}

// minPace is the shortest pacing sleep: a vCPU ahead of its rate sleeps at least this
// long and then writes the pages that fell due meanwhile in one burst. Each sleep is a
// thread wake-up; at 1 ms the default workload (4 MiB/s on 2 vCPUs) cost 5 % of a core
// per VM, at 10 ms 1 %, and the rate over any window of 100 ms or more is unchanged.
const minPace = 10 * time.Millisecond

// budget returns how many steps (at most quantum) the rate allows now, or 0 and the guest
// time at which the next page is due.
func (c *synthCPU) budget(quantum int) (int, uint64) {
	s := &c.st
	rate := s.Regs[regRate]
	if !s.working() || rate == 0 {
		return quantum, 0
	}
	now := c.m.clock.Now()
	elapsed := now - s.Regs[regEpoch]
	if now < s.Regs[regEpoch] {
		elapsed = 0
	}
	per := PageSize * max(s.Regs[regNCPU], 1) // bytes per page, times vCPUs sharing the rate
	due := mulDiv(elapsed, rate, per*1e9)
	if done := s.Regs[regPaced]; done < due {
		return int(min(due-done, uint64(quantum))), 0
	}
	next := mulDiv(s.Regs[regPaced]+1, per*1e9, rate) // guest ns at which the next page is due
	wait := max(time.Duration(next-elapsed), minPace)
	return 0, now + uint64(wait)
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

// powerButton is the guest's ACPI SCI handler: print, power off (S5).
func (c *synthCPU) powerButton() {
	c.st.RIP = ripOff
	c.st.Halted = true
	c.out("tlcvm guest: ACPI power button pressed, powering off\r\n")
	c.queue(exit{reason: exitShutdown})
}

func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// step runs one step of v's program: boot, one page filled, one page rewritten.
// It returns false when the vCPU is halted (nothing to do until woken).
// Caller holds the vcpu's mu.
func (c *synthCPU) step() bool {
	s := &c.st
	switch s.RIP {
	case ripReset:
		if c.index == 0 {
			c.boot()
			return true
		}
		if atomic.LoadUint64((*uint64)(ptr(c.m.ram.mem, gpaBootInfo))) == 0 {
			return false // waiting for the bootstrap processor (SIPI)
		}
		if _, _, ok := c.bootRank(); !ok {
			return false // hot-added after the boot: the guest keeps it offline (no SIPI)
		}
		c.enterWorkload(c.m.ram.load64(gpaBootInfo+8), c.m.ram.load64(gpaBootInfo+16))
		return true
	case ripFill:
		c.fillPage()
		return true
	case ripFill2:
		c.fill2Page()
		return true
	case ripFillDIMM:
		c.dimmFillPage()
		return true
	case ripLoop:
		c.loopPages(1)
		return true
	default: // ripIdle, ripOff: HLT
		s.Halted = true
		return false
	}
}

// boot is the bootstrap processor's firmware + kernel entry: read the workload from
// fw_cfg, build identity page tables, print the banner, release the APs, go.
func (c *synthCPU) boot() {
	m := c.m
	w := m.workload
	if raw, ok := m.fwcfg.read(WorkloadKey); ok {
		if pw, err := ParseWorkload(string(raw)); err == nil {
			w = pw
		}
	}
	low := m.phys[0].Size
	ws := w.WS
	if low <= gpaWSBase {
		ws = 0
	} else if ws > low-gpaWSBase {
		ws = (low - gpaWSBase) &^ (PageSize - 1)
	}
	c.buildPageTables()
	m.cpuhp.modern.Store(true) // the DSDT's CPU hotplug code switches to the modern interface
	m.kbc.guestInit()
	m.acpi.enabled.Store(true)
	m.acpi.pending.Store(false)
	fill := min(w.Fill, (m.ram.size-gpaWSBase-ws)&^(PageSize-1))
	if m.ram.size <= gpaWSBase+ws {
		fill = 0
	}
	cfg := Workload{WS: ws, Rate: w.Rate, Fill: fill, DIMM: w.DIMM, CDLock: w.CDLock, DiskWorkload: m.workload.DiskWorkload}
	vcpus := m.cpus()
	c.out(fmt.Sprintf("tlcvm guest: %d vCPU(s), %d MiB RAM, workload %s\r\n",
		len(vcpus), m.ram.size>>20, cfg))
	var mask [bootMaskWords]uint64
	for _, v := range vcpus {
		if v.index < 64*bootMaskWords {
			mask[v.index/64] |= 1 << (v.index % 64)
		}
	}
	for i, w := range mask {
		m.ram.store64(gpaBootMask+8*uint64(i), w)
	}
	m.ram.store64(gpaBootInfo+8, ws)
	m.ram.store64(gpaBootInfo+16, w.Rate)
	m.ram.store64(gpaBootInfo+24, fill)
	atomic.StoreUint64((*uint64)(ptr(m.ram.mem, gpaBootInfo)), 1)
	c.dirty(m.ram.noteWrite(gpaBootInfo >> pageShift))
	c.enterWorkload(ws, w.Rate)
	c.bootDIMMs(w.DIMM)
	if w.CDLock {
		c.queue(exit{reason: exitLockTrays})
	}
	c.queue(exit{reason: exitIPI})
}

// buildPageTables writes a 4-level identity map of guest-physical space with 2 MiB pages.
func (c *synthCPU) buildPageTables() {
	r := c.m.ram
	top := c.m.phys.top()
	if base, size := c.m.DeviceMemory(); size > 0 {
		top = max(top, base+size) // DIMMs plugged later are mapped too
	}
	npd := min((top+(1<<30)-1)>>30, maxPDs)
	pdpt := uint64(gpaPML4 + PageSize)
	r.store64(gpaPML4, pdpt|3)
	for i := uint64(0); i < npd; i++ {
		pd := pdpt + PageSize*(1+i)
		r.store64(pdpt+8*i, pd|3)
		for j := uint64(0); j < 512; j++ {
			r.store64(pd+8*j, (i<<30|j<<21)|0x83) // present, writable, 2 MiB
		}
	}
}

// enterWorkload switches to long mode and sets the program's registers.
func (c *synthCPU) enterWorkload(ws, rate uint64) {
	s := &c.st
	i, n, _ := c.bootRank()
	s.enterLongMode(gpaPML4)
	s.Regs = [16]uint64{}
	s.Regs[regHash] = 0x9e3779b97f4a7c15 * (i + 1)
	s.Regs[regCounter] = gpaCounters + 16*i
	s.Regs[regEpoch] = c.m.clock.Now()
	s.Regs[regReport] = s.Regs[regEpoch] + reportEveryNS
	s.Regs[regWS] = ws
	s.Regs[regRate] = rate
	s.Regs[regCPU] = i
	s.Regs[regNCPU] = n
	s.Regs[RSP] = 0x9f000 - 0x1000*i
	s.Regs[regPass] = 1
	s.Regs[regBase], s.Regs[regPages] = c.wsShare()
	s.RIP = ripFill
	c.startDisks(c.m.workload.DiskWorkload)
	if s.Regs[regPages] == 0 {
		c.enterFill2()
	}
}

// wsShare is this vCPU's chunk of the working set: guest-physical base and pages.
func (c *synthCPU) wsShare() (base, pages uint64) {
	s := &c.st
	n, i := max(s.Regs[regNCPU], 1), s.Regs[regCPU]
	total := s.Regs[regWS] / PageSize
	first, last := total*i/n, total*(i+1)/n
	return gpaWSBase + first*PageSize, last - first
}

// fill2Share is this vCPU's share of the fill= pages, which follow the working set in
// RAM-offset order (above the low-memory limit they continue from 4 GiB): RAM offset of
// the first page and pages. The fill size is read from the boot info in guest RAM.
func (c *synthCPU) fill2Share() (base, pages uint64) {
	s := &c.st
	r := c.m.ram
	start := gpaWSBase + s.Regs[regWS]
	if start >= r.size {
		return 0, 0
	}
	total := min(r.load64(gpaBootInfo+24), r.size-start) / PageSize
	n, i := max(s.Regs[regNCPU], 1), s.Regs[regCPU]
	first, last := total*i/n, total*(i+1)/n
	return start + first*PageSize, last - first
}

// enterFill2 starts the fill= stage after the working set's fill (or the loop, or HLT,
// when there is nothing to fill).
func (c *synthCPU) enterFill2() {
	s := &c.st
	if base, pages := c.fill2Share(); pages > 0 {
		s.Regs[regBase], s.Regs[regPages], s.Regs[regIndex] = base, pages, 0
		s.RIP = ripFill2
		return
	}
	c.enterLoop()
}

// enterLoop starts the rewrite loop over this vCPU's working-set chunk (HLT if empty).
func (c *synthCPU) enterLoop() {
	s := &c.st
	s.Regs[regBase], s.Regs[regPages] = c.wsShare()
	s.Regs[regIndex] = 0
	s.RIP = ripLoop
	if s.Regs[regPages] == 0 {
		s.RIP = ripIdle
	}
}

// ensure is the vCPU's guest RAM check hook (restore by mapping): false when page's
// chunk failed its check; the fault is then in c.fault and the step makes no progress.
func (c *synthCPU) ensure(first, n uint64) bool {
	r := c.m.ram
	if r.lazyLeft.Load() == 0 {
		return true
	}
	if err := r.tryEnsure(first, n); err != nil {
		c.fault = err // ErrRAMRetry: no progress, the vCPU runs the step again (vcpu.go)
		return false
	}
	return true
}

// fillPage writes a whole page of the chunk (so no page of the working set is zero),
// like the bench guest's initial fill.
func (c *synthCPU) fillPage() {
	s := &c.st
	r := c.m.ram
	off := s.Regs[regBase] + s.Regs[regIndex]*PageSize
	if !c.ensure(off>>pageShift, 1) {
		return
	}
	g := (off - gpaWSBase) / PageSize << 9
	words := (*[PageSize / 8]uint64)(ptr(r.mem, off))
	for w := range words {
		words[w] = 0xa5a5a5a500000000 ^ (g + uint64(w)) ^ s.Regs[regHash]
	}
	c.dirty(r.noteWrite(off >> pageShift))
	if c.pageDone() {
		c.enterFill2()
		c.publishCounters()
	}
}

// pageDone counts a whole page written by a fill stage and reports whether it was the
// stage's last.
func (c *synthCPU) pageDone() bool {
	s := &c.st
	s.Regs[regWritten]++
	s.Regs[regPaced]++
	s.Regs[regIndex]++
	return s.Regs[regIndex] == s.Regs[regPages]
}

// fill2Page writes one whole page of the vCPU's fill= share, once. The content depends on
// the page's RAM offset only, so it is the same whatever the vCPU count or timing.
func (c *synthCPU) fill2Page() {
	s := &c.st
	r := c.m.ram
	off := s.Regs[regBase] + s.Regs[regIndex]*PageSize
	if !c.ensure(off>>pageShift, 1) {
		return
	}
	words := (*[PageSize / 8]uint64)(ptr(r.mem, off))
	for w := range words {
		words[w] = 0x5a5a5a5a00000000 ^ (off>>3 + uint64(w))
	}
	c.dirty(r.noteWrite(off >> pageShift))
	if c.pageDone() {
		c.enterLoop()
		c.publishCounters()
	}
}

// loopPages rewrites n pages (fewer when a page fails its RAM check: c.fault): one 8-byte word per page (at (pass%512)*8), the word a hash
// of its old value, of the word the previous pass wrote in that page, of the accumulator
// and of the pass, so corrupted memory changes all later values from the next pass on.
// The dirty and written bits of a run of pages sharing a bitmap word are set with one
// atomic OR after the data of all of them is stored.
func (c *synthCPU) loopPages(n int) {
	s := &c.st
	r := c.m.ram
	mem := r.mem
	pass, idx, pages, hash := s.Regs[regPass], s.Regs[regIndex], s.Regs[regPages], s.Regs[regHash]
	base := s.Regs[regBase]
	curW, mask := ^uint64(0), uint64(0)
	counted := 0 // steps already added to the counters
	// Chunks become lazy only while the vCPUs are parked (MapFile): one load per batch.
	// A chunk once clean stays clean while they run: remember the last one ensured.
	lazy, clean := r.lazyLeft.Load() != 0, ^uint64(0)
	for k := 0; k < n; k++ {
		pg := base + idx<<pageShift
		if lazy && pg>>pageShift/ChunkPages != clean {
			if !c.ensure(pg>>pageShift, 1) {
				n = k // no progress on this page; the fault parks the vCPU
				break
			}
			clean = pg >> pageShift / ChunkPages
		}
		off := pg + (pass&511)<<3
		p := (*uint64)(ptr(mem, off))
		last := *(*uint64)(ptr(mem, pg+((pass-1)&511)<<3)) // written one pass ago
		val := mix(*p ^ last ^ hash ^ pass)
		*p = val
		hash = mix(hash + val)
		page := off >> pageShift
		if page>>6 != curW {
			if mask != 0 {
				c.dirty(r.noteWrites(curW, mask))
			}
			curW, mask = page>>6, 0
		}
		mask |= 1 << (page & 63)
		idx++
		if idx == pages {
			idx = 0
			pass++
			c.dirty(r.noteWrites(curW, mask))
			curW, mask = ^uint64(0), 0
			s.Regs[regPass] = pass
			s.Regs[regWritten] += uint64(k + 1 - counted)
			s.Regs[regPaced] += uint64(k + 1 - counted)
			counted = k + 1
			c.publishCounters()
		}
	}
	if mask != 0 {
		c.dirty(r.noteWrites(curW, mask))
	}
	s.Regs[regPass], s.Regs[regIndex], s.Regs[regHash] = pass, idx, hash
	s.Regs[regWritten] += uint64(n - counted)
	s.Regs[regPaced] += uint64(n - counted)
}

// publishCounters stores the pass and pages-written counters in guest RAM.
func (c *synthCPU) publishCounters() {
	s := &c.st
	r := c.m.ram
	a := s.Regs[regCounter]
	if checkCounter(a) != nil {
		// Only a loaded stage that never counts is let through without a checked address
		// (idle: checkCPUState stops there); a DIMM fill started from it has nowhere to
		// publish, and publishes nothing.
		return
	}
	atomic.StoreUint64((*uint64)(ptr(r.mem, a)), s.Regs[regPass])
	atomic.StoreUint64((*uint64)(ptr(r.mem, a+8)), s.Regs[regWritten])
	c.dirty(r.noteWrite(a >> pageShift))
}

// statusLine is vCPU 0's periodic report.
func (c *synthCPU) statusLine(now uint64) string {
	var pages uint64
	for i := range c.m.cpus() {
		pages += atomic.LoadUint64((*uint64)(ptr(c.m.ram.mem, gpaCounters+16*uint64(i)+8)))
	}
	return fmt.Sprintf("tlcvm guest: t=%ds pass=%d pages=%d\r\n", now/1e9, c.st.Regs[regPass], pages)
}

// RunSteps single-steps vCPU cpu's program n times on the caller's goroutine (a debug
// and test facility: the same steps the vCPU thread runs, without pacing; their exits are
// delivered as the vCPU thread delivers them). The vCPUs must be parked. It returns the
// steps executed before the vCPU halted, or before a guest RAM check failed (restore by
// mapping: the check's error, and that step is not done).
func (m *Machine) RunSteps(cpu, n int) (int, error) {
	v := m.vcpu(cpu)
	if v == nil {
		return 0, qerr(ErrNoCPU, "Parameter 'cpu-index' expects a CPU number")
	}
	if err := m.parked(); err != nil {
		return 0, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	c := v.be.(*synthCPU)
	for i := 0; i < n; i++ {
		ok := c.ensure(0, sysPages) && c.step() && c.fault == nil
		for len(c.queued) > 0 {
			v.deliver(c.dequeue())
		}
		if !ok {
			err := c.fault
			c.fault = nil
			return i, err
		}
	}
	return n, nil
}

// bootRank is the guest's logical number of this vCPU among those present at boot (the
// boot bitmap in guest RAM, written by the bootstrap processor): its rank i and the count
// n. ok is false for a CPU hot-added after the boot (not in the bitmap). A bitmap of
// zeros (a checkpoint older than the bitmap) counts every present vCPU.
func (c *synthCPU) bootRank() (i, n uint64, ok bool) {
	var mask [bootMaskWords]uint64
	zero := true
	for w := range mask {
		mask[w] = c.m.ram.load64(gpaBootMask + 8*uint64(w))
		zero = zero && mask[w] == 0
	}
	if zero {
		return uint64(c.index), uint64(len(c.m.cpus())), true
	}
	for w, bitsW := range mask {
		if w < c.index/64 {
			i += uint64(bits.OnesCount64(bitsW))
		} else if w == c.index/64 {
			i += uint64(bits.OnesCount64(bitsW & (1<<(c.index%64) - 1)))
		}
		n += uint64(bits.OnesCount64(bitsW))
	}
	return i, n, c.index < 64*bootMaskWords && mask[c.index/64]&(1<<(c.index%64)) != 0
}
