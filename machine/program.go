package machine

import (
	"fmt"
	"sync/atomic"
)

// Guest-physical layout used by the workload program (see doc.go).
const (
	gpaCounters = 0x500   // vCPU i: pass counter at 0x500+16*i, pages written at 0x508+16*i
	gpaBootInfo = 0x4000  // u64 APs released, u64 working-set bytes, u64 rate, u64 fill bytes
	gpaPML4     = 0x10000 // PML4, then PDPT, then the page directories (2 MiB pages)
	gpaWSBase   = 2 << 20 // the working set starts here, as in the bench guest
	maxPDs      = 64      // identity map covers up to 64 GiB of guest-physical space

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

func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// step runs one step of v's program: boot, one page filled, one page rewritten.
// It returns false when the vCPU is halted (nothing to do until woken).
// Caller holds v.mu.
func (v *vcpu) step() bool {
	s := &v.st
	switch s.RIP {
	case ripReset:
		if v.index == 0 {
			v.boot()
			return true
		}
		if atomic.LoadUint64((*uint64)(ptr(v.m.ram.mem, gpaBootInfo))) == 0 {
			return false // waiting for the bootstrap processor (SIPI)
		}
		v.enterWorkload(v.m.ram.load64(gpaBootInfo+8), v.m.ram.load64(gpaBootInfo+16))
		return true
	case ripFill:
		v.fillPage()
		return true
	case ripFill2:
		v.fill2Page()
		return true
	case ripLoop:
		v.loopPages(1)
		return true
	default: // ripIdle, ripOff: HLT
		s.Halted = true
		return false
	}
}

// boot is the bootstrap processor's firmware + kernel entry: read the workload from
// fw_cfg, build identity page tables, print the banner, release the APs, go.
func (v *vcpu) boot() {
	m := v.m
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
	v.buildPageTables()
	m.acpi.enabled.Store(true)
	m.acpi.pending.Store(false)
	fill := min(w.Fill, (m.ram.size-gpaWSBase-ws)&^(PageSize-1))
	if m.ram.size <= gpaWSBase+ws {
		fill = 0
	}
	cfg := Workload{WS: ws, Rate: w.Rate, Fill: fill}
	m.serial.puts(fmt.Sprintf("tlcvm guest: %d vCPU(s), %d MiB RAM, workload %s\r\n",
		len(m.vcpus), m.ram.size>>20, cfg))
	m.ram.store64(gpaBootInfo+8, ws)
	m.ram.store64(gpaBootInfo+16, w.Rate)
	m.ram.store64(gpaBootInfo+24, fill)
	atomic.StoreUint64((*uint64)(ptr(m.ram.mem, gpaBootInfo)), 1)
	m.ram.noteWrite(gpaBootInfo >> pageShift)
	v.enterWorkload(ws, w.Rate)
	for _, o := range m.vcpus[1:] {
		o.wakeup()
	}
}

// buildPageTables writes a 4-level identity map of guest-physical space with 2 MiB pages.
func (v *vcpu) buildPageTables() {
	r := v.m.ram
	top := v.m.phys.top()
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
func (v *vcpu) enterWorkload(ws, rate uint64) {
	s := &v.st
	n := uint64(len(v.m.vcpus))
	i := uint64(v.index)
	s.enterLongMode(gpaPML4)
	s.Regs = [16]uint64{}
	s.Regs[regHash] = 0x9e3779b97f4a7c15 * (i + 1)
	s.Regs[regCounter] = gpaCounters + 16*i
	s.Regs[regEpoch] = v.m.clock.Now()
	s.Regs[regReport] = s.Regs[regEpoch] + reportEveryNS
	s.Regs[regWS] = ws
	s.Regs[regRate] = rate
	s.Regs[regCPU] = i
	s.Regs[regNCPU] = n
	s.Regs[RSP] = 0x9f000 - 0x1000*i
	s.Regs[regPass] = 1
	s.Regs[regBase], s.Regs[regPages] = v.wsShare()
	s.RIP = ripFill
	if s.Regs[regPages] == 0 {
		v.enterFill2()
	}
}

// wsShare is this vCPU's chunk of the working set: guest-physical base and pages.
func (v *vcpu) wsShare() (base, pages uint64) {
	s := &v.st
	n, i := max(s.Regs[regNCPU], 1), s.Regs[regCPU]
	total := s.Regs[regWS] / PageSize
	first, last := total*i/n, total*(i+1)/n
	return gpaWSBase + first*PageSize, last - first
}

// fill2Share is this vCPU's share of the fill= pages, which follow the working set in
// RAM-offset order (above the low-memory limit they continue from 4 GiB): RAM offset of
// the first page and pages. The fill size is read from the boot info in guest RAM.
func (v *vcpu) fill2Share() (base, pages uint64) {
	s := &v.st
	r := v.m.ram
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
func (v *vcpu) enterFill2() {
	s := &v.st
	if base, pages := v.fill2Share(); pages > 0 {
		s.Regs[regBase], s.Regs[regPages], s.Regs[regIndex] = base, pages, 0
		s.RIP = ripFill2
		return
	}
	v.enterLoop()
}

// enterLoop starts the rewrite loop over this vCPU's working-set chunk (HLT if empty).
func (v *vcpu) enterLoop() {
	s := &v.st
	s.Regs[regBase], s.Regs[regPages] = v.wsShare()
	s.Regs[regIndex] = 0
	s.RIP = ripLoop
	if s.Regs[regPages] == 0 {
		s.RIP = ripIdle
	}
}

// ensure is the vCPU's guest RAM check hook (restore by mapping): false when page's
// chunk failed its check; the fault is then in v.fault and the step makes no progress.
func (v *vcpu) ensure(first, n uint64) bool {
	r := v.m.ram
	if r.lazyLeft.Load() == 0 {
		return true
	}
	if err := r.Ensure(first, n); err != nil {
		v.fault = err
		return false
	}
	return true
}

// fillPage writes a whole page of the chunk (so no page of the working set is zero),
// like the bench guest's initial fill.
func (v *vcpu) fillPage() {
	s := &v.st
	r := v.m.ram
	off := s.Regs[regBase] + s.Regs[regIndex]*PageSize
	if !v.ensure(off>>pageShift, 1) {
		return
	}
	g := (off - gpaWSBase) / PageSize << 9
	words := (*[PageSize / 8]uint64)(ptr(r.mem, off))
	for w := range words {
		words[w] = 0xa5a5a5a500000000 ^ (g + uint64(w)) ^ s.Regs[regHash]
	}
	r.noteWrite(off >> pageShift)
	s.Regs[regWritten]++
	s.Regs[regPaced]++
	s.Regs[regIndex]++
	if s.Regs[regIndex] == s.Regs[regPages] {
		v.enterFill2()
		v.publishCounters()
	}
}

// fill2Page writes one whole page of the vCPU's fill= share, once. The content depends on
// the page's RAM offset only, so it is the same whatever the vCPU count or timing.
func (v *vcpu) fill2Page() {
	s := &v.st
	r := v.m.ram
	off := s.Regs[regBase] + s.Regs[regIndex]*PageSize
	if !v.ensure(off>>pageShift, 1) {
		return
	}
	words := (*[PageSize / 8]uint64)(ptr(r.mem, off))
	for w := range words {
		words[w] = 0x5a5a5a5a00000000 ^ (off>>3 + uint64(w))
	}
	r.noteWrite(off >> pageShift)
	s.Regs[regWritten]++
	s.Regs[regPaced]++
	s.Regs[regIndex]++
	if s.Regs[regIndex] == s.Regs[regPages] {
		v.enterLoop()
		v.publishCounters()
	}
}

// loopPages rewrites n pages (fewer when a page fails its RAM check: v.fault): one 8-byte word per page (at (pass%512)*8), the word a hash
// of its old value, of the word the previous pass wrote in that page, of the accumulator
// and of the pass, so corrupted memory changes all later values from the next pass on.
// The dirty and written bits of a run of pages sharing a bitmap word are set with one
// atomic OR after the data of all of them is stored.
func (v *vcpu) loopPages(n int) {
	s := &v.st
	r := v.m.ram
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
			if !v.ensure(pg>>pageShift, 1) {
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
				r.noteWrites(curW, mask)
			}
			curW, mask = page>>6, 0
		}
		mask |= 1 << (page & 63)
		idx++
		if idx == pages {
			idx = 0
			pass++
			r.noteWrites(curW, mask)
			curW, mask = ^uint64(0), 0
			s.Regs[regPass] = pass
			s.Regs[regWritten] += uint64(k + 1 - counted)
			s.Regs[regPaced] += uint64(k + 1 - counted)
			counted = k + 1
			v.publishCounters()
		}
	}
	if mask != 0 {
		r.noteWrites(curW, mask)
	}
	s.Regs[regPass], s.Regs[regIndex], s.Regs[regHash] = pass, idx, hash
	s.Regs[regWritten] += uint64(n - counted)
	s.Regs[regPaced] += uint64(n - counted)
}

// publishCounters stores the pass and pages-written counters in guest RAM.
func (v *vcpu) publishCounters() {
	s := &v.st
	r := v.m.ram
	a := s.Regs[regCounter]
	atomic.StoreUint64((*uint64)(ptr(r.mem, a)), s.Regs[regPass])
	atomic.StoreUint64((*uint64)(ptr(r.mem, a+8)), s.Regs[regWritten])
	r.noteWrite(a >> pageShift)
}

// statusLine is vCPU 0's periodic report.
func (v *vcpu) statusLine(now uint64) string {
	var pages uint64
	for i := range v.m.vcpus {
		pages += atomic.LoadUint64((*uint64)(ptr(v.m.ram.mem, gpaCounters+16*uint64(i)+8)))
	}
	return fmt.Sprintf("tlcvm guest: t=%ds pass=%d pages=%d\r\n", now/1e9, v.st.Regs[regPass], pages)
}

// RunSteps single-steps vCPU cpu's program n times on the caller's goroutine (a debug
// and test facility: the same steps the vCPU thread runs, without pacing). The vCPUs
// must be parked. It returns the steps executed before the vCPU halted, or before a guest
// RAM check failed (restore by mapping: the check's error, and that step is not done).
func (m *Machine) RunSteps(cpu, n int) (int, error) {
	if cpu < 0 || cpu >= len(m.vcpus) {
		return 0, qerr(ErrNoCPU, "Parameter 'cpu-index' expects a CPU number")
	}
	if err := m.parked(); err != nil {
		return 0, err
	}
	v := m.vcpus[cpu]
	v.mu.Lock()
	defer v.mu.Unlock()
	for i := 0; i < n; i++ {
		if !v.ensure(0, sysPages) || !v.step() || v.fault != nil {
			err := v.fault
			v.fault = nil
			return i, err
		}
	}
	return n, nil
}
