package machine

import (
	"fmt"
	"slices"
)

// Memory hotplug (pc-dimm), as QEMU 7.2's pc and q35 boards do it:
//
//   - With -m …,slots=N,maxmem=M the board reserves the device-memory region from
//     ROUND_UP(4 GiB + the RAM above 4 GiB, 1 GiB), (M - RAM) + N GiB long
//     (DeviceMemory); a DIMM's RAM block is mapped there at its address (PlugDIMM).
//   - A DIMM plugged while the machine exists is announced to the guest through ACPI
//     memory hotplug (the GPE block, as an eject is: hotplug.go). tlcvm's guest onlines
//     it on vCPU 0: it prints "tlcvm guest: ACPI memory online …", calls _OST (source 1,
//     status 0, as Linux does after a device check) and, with the workload item dimm=,
//     writes the DIMM's pages once (below). DIMMs present at boot are onlined by the boot.
//   - Unplug: the guest offlines the range (drops the fill it had queued for it), calls
//     _OST (3, 0x84: eject in progress), ejects it (the machine's requester then removes
//     the device and UnplugDIMM unmaps the block) and calls _OST (3, 0) again.
//
// The DIMM fill is vCPU 0's work, interrupting its workload stage: the stage's RIP,
// chunk base, pages and index are saved in guest RAM (gpaHotplug), a queue of
// (guest-physical address, pages) follows; vCPU 0 fills the queue's head at RIP
// ripFillDIMM (RSI, RCX, RBX describe the head), paced like the fill, and once the queue
// is empty restores the saved stage. Everything is in registers and guest RAM, so a
// checkpoint or a migration carries it mid-way; a destination whose DIMMs differ skips
// the entries it has no RAM for.

// Guest memory for the DIMM work (within the boot-info page).
const (
	gpaHotplug    = gpaBootInfo + 0x100 // saved RIP (0: none), base, pages, index; queue length
	gpaDIMMQueue  = gpaHotplug + 0x40   // queue entries: u64 guest-physical address, u64 pages
	maxDIMMQueue  = (PageSize - (gpaDIMMQueue - gpaBootInfo)) / 16
	gpaDIMMFill   = gpaBootInfo + 32 // u64 bytes of each onlined DIMM to write (^0: all)
	ripFillDIMM   = 0x1000a0
	dimmFillAll   = ^uint64(0)
	deviceMemGiB  = 1 << 30
	ostDeviceChk  = 1    // _OST source: device check (an insertion)
	ostEjectReq   = 3    // _OST source: eject request
	ostInProgress = 0x84 // _OST status: ejection in progress (ACPI 6.4 table 6.209; 0x80-0x83 are refusals)
)

// OST is a guest's _OST call for a DIMM slot: source event and status, as QEMU's
// ACPI_DEVICE_OST reports them.
type OST func(source, status uint32)

// dimm is a plugged DIMM's RAM.
type dimm struct {
	gpa   uint64
	block *RAMBlock
	seq   uint64 // plug order (RAMBlocks lists equal sizes in it)
}

// DeviceMemory is the guest-physical region memory devices are placed in: base and size
// (size 0: the machine has none, maxmem was not above the RAM size).
func (m *Machine) DeviceMemory() (base, size uint64) {
	c := m.cfg
	if c.MaxMem <= c.RAMSize || len(m.phys) == 0 {
		return 0, 0
	}
	var above uint64
	if len(m.phys) > 1 {
		above = m.phys[1].Size
	}
	base = (1<<32 + above + deviceMemGiB - 1) &^ (deviceMemGiB - 1)
	return base, c.MaxMem - c.RAMSize + deviceMemGiB*uint64(c.Slots)
}

// dimmList is the DIMMs in guest-physical order (never nil once read).
func (m *Machine) dimmList() []dimm {
	if p := m.dimms.Load(); p != nil {
		return *p
	}
	return nil
}

// dimmAt returns the DIMM holding guest-physical address gpa.
func (m *Machine) dimmAt(gpa uint64) (dimm, bool) {
	for _, d := range m.dimmList() {
		if gpa >= d.gpa && gpa-d.gpa < d.block.size {
			return d, true
		}
	}
	return dimm{}, false
}

// lookupPhys is physMap.lookup over the board's RAM and the DIMMs.
func (m *Machine) lookupPhys(gpa uint64) (b *RAMBlock, off, avail uint64, ok bool) {
	if b, off, avail, ok = m.phys.lookup(gpa); ok {
		return b, off, avail, ok
	}
	if d, ok := m.dimmAt(gpa); ok {
		off = gpa - d.gpa
		return d.block, off, d.block.size - off, true
	}
	return nil, 0, 0, false
}

// PlugDIMM maps a new RAM block of size bytes, named name (QEMU names a DIMM's block after
// its memory back-end's id), at guest-physical gpa inside the device-memory region. With
// announce the guest is told (ACPI memory hotplug: see the top of this file) and ost
// receives its _OST calls for the slot; a cold-plugged DIMM (-device) is found by the
// guest's boot instead. The block is new and zero; nothing of it is touched.
func (m *Machine) PlugDIMM(name string, gpa, size uint64, announce bool, what string, ost OST) (*RAMBlock, error) {
	base, region := m.DeviceMemory()
	if region == 0 || gpa < base || size > region || gpa-base > region-size {
		return nil, fmt.Errorf("%w: DIMM [%#x:%#x] is outside the device memory region", ErrConfig, gpa, size)
	}
	b, err := newRAMBlock(name, size)
	if err != nil {
		return nil, err
	}
	m.ramMu.Lock()
	list := slices.Clone(m.dimmList())
	m.dimmSeq++
	list = append(list, dimm{gpa: gpa, block: b, seq: m.dimmSeq})
	slices.SortFunc(list, func(a, b dimm) int {
		switch {
		case a.gpa < b.gpa:
			return -1
		case a.gpa > b.gpa:
			return 1
		}
		return 0
	})
	m.dimms.Store(&list)
	m.ramMu.Unlock()
	if announce {
		m.latch(hotplugEvent{what: what, insert: true, gpa: gpa, size: size, ost: ost})
	}
	return b, nil
}

// UnplugDIMM unmaps a DIMM's block (after the guest ejected it, or when its plug failed
// before the guest was told).
func (m *Machine) UnplugDIMM(b *RAMBlock) {
	m.ramMu.Lock()
	defer m.ramMu.Unlock()
	list := slices.DeleteFunc(slices.Clone(m.dimmList()), func(d dimm) bool { return d.block == b })
	m.dimms.Store(&list)
	_ = b.close()
}

// RequestDIMMEject latches the ACPI eject request of the DIMM whose block is b: the
// guest offlines and ejects it (ost gets its _OST calls), then done is called, on the
// machine's guest-request goroutine.
func (m *Machine) RequestDIMMEject(b *RAMBlock, what string, ost OST, done func()) {
	for _, d := range m.dimmList() {
		if d.block == b {
			m.latch(hotplugEvent{what: what, gpa: d.gpa, size: b.size, mem: true, ost: ost, done: done})
			return
		}
	}
}

// onlineDIMM is the guest's memory hotplug handler for an inserted DIMM (and its boot's
// scan): print, queue the dimm= fill, _OST.
func (c *synthCPU) onlineDIMM(e hotplugEvent) {
	c.out(fmt.Sprintf("tlcvm guest: ACPI memory online %s: %d MiB at %#x\r\n", e.what, e.size>>20, e.gpa))
	r := c.m.ram
	fill := r.load64(gpaDIMMFill)
	if fill != 0 {
		pages := min(fill, e.size) / PageSize
		n := r.load64(gpaHotplug + 32)
		if pages > 0 && n < maxDIMMQueue {
			r.store64(gpaDIMMQueue+16*n, e.gpa)
			r.store64(gpaDIMMQueue+16*n+8, pages)
			r.store64(gpaHotplug+32, n+1)
			if c.st.RIP != ripFillDIMM {
				s := &c.st
				r.store64(gpaHotplug, s.RIP)
				r.store64(gpaHotplug+8, s.Regs[regBase])
				r.store64(gpaHotplug+16, s.Regs[regPages])
				r.store64(gpaHotplug+24, s.Regs[regIndex])
				c.nextDIMMFill()
			}
		}
	}
	if e.ost != nil {
		e.ost(ostDeviceChk, 0)
	}
}

// offlineDIMM drops the queued fills inside an ejected DIMM's range; when the one in
// progress goes, the next starts (or the saved stage resumes).
func (c *synthCPU) offlineDIMM(e hotplugEvent) {
	r := c.m.ram
	n := min(r.load64(gpaHotplug+32), maxDIMMQueue)
	headGone := false
	var k uint64
	for i := uint64(0); i < n; i++ {
		gpa, pages := r.load64(gpaDIMMQueue+16*i), r.load64(gpaDIMMQueue+16*i+8)
		if gpa >= e.gpa && gpa-e.gpa < e.size {
			headGone = headGone || i == 0
			continue
		}
		if k != i {
			r.store64(gpaDIMMQueue+16*k, gpa)
			r.store64(gpaDIMMQueue+16*k+8, pages)
		}
		k++
	}
	if k == n {
		return
	}
	r.store64(gpaHotplug+32, k)
	if headGone && c.st.RIP == ripFillDIMM {
		c.nextDIMMFill()
	}
}

// nextDIMMFill starts the queue's head, or restores the saved stage once it is empty.
// Entries without RAM (a destination without that DIMM) are dropped.
func (c *synthCPU) nextDIMMFill() {
	r := c.m.ram
	s := &c.st
	for {
		n := r.load64(gpaHotplug + 32)
		if n == 0 || n > maxDIMMQueue {
			c.restoreStage()
			return
		}
		gpa, pages := r.load64(gpaDIMMQueue), r.load64(gpaDIMMQueue+8)
		if d, ok := c.m.dimmAt(gpa); ok && gpa%PageSize == 0 && pages > 0 && pages <= (d.block.size-(gpa-d.gpa))/PageSize {
			s.RIP, s.Regs[regBase], s.Regs[regPages], s.Regs[regIndex] = ripFillDIMM, gpa, pages, 0
			s.Halted = false
			return
		}
		c.popDIMMFill()
	}
}

// popDIMMFill removes the queue's head.
func (c *synthCPU) popDIMMFill() {
	r := c.m.ram
	n := r.load64(gpaHotplug + 32)
	for i := uint64(1); i < n && i < maxDIMMQueue; i++ {
		r.store64(gpaDIMMQueue+16*(i-1), r.load64(gpaDIMMQueue+16*i))
		r.store64(gpaDIMMQueue+16*(i-1)+8, r.load64(gpaDIMMQueue+16*i+8))
	}
	r.store64(gpaHotplug+32, n-1)
}

// restoreStage returns to the stage the DIMM work interrupted (halting when it is not a
// stage the program can resume safely).
func (c *synthCPU) restoreStage() {
	r := c.m.ram
	s := &c.st
	st := *s
	st.RIP = r.load64(gpaHotplug)
	st.Regs[regBase], st.Regs[regPages], st.Regs[regIndex] = r.load64(gpaHotplug+8), r.load64(gpaHotplug+16), r.load64(gpaHotplug+24)
	r.store64(gpaHotplug, 0)
	r.store64(gpaHotplug+32, 0)
	if st.RIP == ripFillDIMM || c.m.checkCPUState(&st) != nil {
		st.RIP = ripIdle
	}
	s.RIP, s.Regs[regBase], s.Regs[regPages], s.Regs[regIndex] = st.RIP, st.Regs[regBase], st.Regs[regPages], st.Regs[regIndex]
}

// dimmFillPage writes one whole page of the DIMM fill's head; its content depends on the
// page's guest-physical address only.
func (c *synthCPU) dimmFillPage() {
	s := &c.st
	gpa := s.Regs[regBase] + s.Regs[regIndex]*PageSize
	d, ok := c.m.dimmAt(gpa)
	if !ok {
		c.popDIMMFill()
		c.nextDIMMFill()
		return
	}
	b, off := d.block, gpa-d.gpa
	if b.lazyLeft.Load() != 0 {
		if err := b.Ensure(off>>pageShift, 1); err != nil {
			c.fault = err
			return
		}
	}
	words := (*[PageSize / 8]uint64)(ptr(b.mem, off))
	for w := range words {
		words[w] = DIMMWord(gpa, uint64(w))
	}
	c.dirty(b.noteWrite(off >> pageShift))
	if c.pageDone() {
		c.popDIMMFill()
		c.nextDIMMFill()
		c.publishCounters()
	}
}

// DIMMWord is word w (0…511) of the page at guest-physical gpa as the dimm= fill writes it.
func DIMMWord(gpa, w uint64) uint64 { return 0xd1d1d1d100000000 ^ (gpa>>3 + w) }

// bootDIMMs is the boot's scan of the memory devices: every DIMM present is onlined
// (its pending insertions are consumed: the scan found them).
func (c *synthCPU) bootDIMMs(fill uint64) {
	r := c.m.ram
	r.store64(gpaDIMMFill, fill)
	r.store64(gpaHotplug, 0)
	r.store64(gpaHotplug+32, 0)
	osts := c.m.acpi.gpe.takeInserts()
	for i, d := range c.m.dimmList() {
		e := hotplugEvent{what: fmt.Sprintf("DIMM %d", i), gpa: d.gpa, size: d.block.size}
		for _, p := range osts {
			if p.gpa == d.gpa {
				e = p
			}
		}
		c.onlineDIMM(e)
	}
}

// checkDIMMStage checks a DIMM fill stage's registers against the DIMMs present.
func (m *Machine) checkDIMMStage(st *CPUState) error {
	base, pages, idx := st.Regs[regBase], st.Regs[regPages], st.Regs[regIndex]
	d, ok := m.dimmAt(base)
	if !ok || base%PageSize != 0 || pages == 0 || pages > (d.block.size-(base-d.gpa))/PageSize || idx >= pages {
		return fmt.Errorf("DIMM fill %#x+%d pages (index %d) outside the DIMMs", base, pages, idx)
	}
	return checkCounter(st.Regs[regCounter]) // the fill's end publishes the counters
}
