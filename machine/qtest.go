package machine

// The machine as QEMU's qtest accelerator and a qtest client see it (package qtest drives
// these through its own interface): guest memory written from outside like a DMA, the
// I/O ports of the devices tlcvm models, interrupt lines that can be intercepted, and a
// guest clock that only moves when it is told to.
//
// Under Config.QTest the vCPU threads exist (query-cpus-fast reports them, run states
// change as usual) but execute nothing, as QEMU's qtest accelerator's dummy vCPU threads,
// and the guest clock (QEMU_CLOCK_VIRTUAL) stands still until WarpClock moves it.

// COM1's ports (the 16550 at 0x3f8, present when serial port 0 has a chardev).
const (
	com1Base = 0x3f8
	com1End  = com1Base + 8
)

// ReadMemory reads guest-physical memory as a bus master sees it: what lies outside RAM
// (unassigned) reads as zeros. A failed RAM check (restore by mapping) is returned.
func (m *Machine) ReadMemory(addr uint64, p []byte) error {
	m.ramMu.RLock()
	defer m.ramMu.RUnlock()
	return m.readPhysZeroFill(addr, p)
}

// WriteMemory writes guest-physical memory as a bus master does: bytes of RAM are stored
// and their pages marked written and dirty (so the dirty log, pmemsave and the next
// checkpoint see them); bytes outside RAM are dropped, as QEMU drops writes to unassigned
// memory. A failed RAM check of a page restored by mapping is returned.
func (m *Machine) WriteMemory(addr uint64, p []byte) error {
	m.ramMu.RLock()
	defer m.ramMu.RUnlock()
	if !m.ramUsable() {
		return nil
	}
	return m.eachRAM(addr, len(p), func(b *RAMBlock, off uint64, i, n int) error {
		for end := i + n; i < end; {
			page := off >> pageShift
			k := int(min(uint64(end-i), PageSize-off%PageSize))
			if err := b.ensurePage(page); err != nil {
				return ramCheckError(err)
			}
			copy(b.mem[off:off+uint64(k)], p[i:i+k])
			b.noteWrite(page) // data first, then the bits (see RAMBlock)
			i, off = i+k, off+uint64(k)
		}
		return nil
	})
}

// PortIn is an in of size 1, 2 or 4 bytes. The devices tlcvm models are byte-wide, so a
// wider access reads consecutive ports, lowest first (QEMU splits it the same way);
// unassigned ports read as all ones.
func (m *Machine) PortIn(port uint16, size int) uint32 {
	var v uint32
	for i := 0; i < size; i++ {
		v |= uint32(m.portInb(port+uint16(i))) << (8 * i)
	}
	return v
}

// PortOut is an out of size 1, 2 or 4 bytes (see PortIn); unassigned ports ignore it.
func (m *Machine) PortOut(port uint16, size int, v uint32) {
	for i := 0; i < size; i++ {
		m.portOutb(port+uint16(i), byte(v>>(8*i)))
	}
}

func (m *Machine) portInb(port uint16) byte {
	switch {
	case port >= com1Base && port < com1End && m.cfg.Serial != nil:
		return m.serial.In(port - com1Base)
	case (port == i8042Data || port == i8042Status) && m.HasPS2():
		return m.kbc.In(port)
	}
	return 0xff
}

func (m *Machine) portOutb(port uint16, v byte) {
	switch {
	case port >= com1Base && port < com1End && m.cfg.Serial != nil:
		m.serial.Out(port-com1Base, v)
	case (port == i8042Data || port == i8042Status) && m.HasPS2():
		m.kbc.Out(port, v)
	}
}

// InterceptIRQs makes fn see every change of an ISA interrupt line's level (the I/O
// APIC's inputs: 1 the keyboard, 12 the mouse), before the line reaches vCPU 0 (qtest's
// irq_intercept_in). fn runs on the goroutine that raises the line; nil stops it.
func (m *Machine) InterceptIRQs(fn func(line, level int)) {
	if fn == nil {
		m.irqHook.Store(nil)
		return
	}
	m.irqHook.Store(&fn)
}

// SetIRQ sets an I/O APIC input to level (qtest's set_irq_in): an intercepted line is
// reported, a raised one reaches vCPU 0 as the device's interrupt would.
func (m *Machine) SetIRQ(line, level int) {
	if line < 0 || line >= 32 {
		return
	}
	if level != 0 {
		m.raiseIRQ(line)
		return
	}
	m.noteIRQLevel(line, 0)
}

// noteIRQLevel reports a line's level to the interceptor, if any.
func (m *Machine) noteIRQLevel(line, level int) {
	if fn := m.irqHook.Load(); fn != nil {
		(*fn)(line, level)
	}
}

// ClockManual reports whether the guest clock moves only by WarpClock (the qtest
// accelerator).
func (m *Machine) ClockManual() bool { return m.cfg.QTest }

// WarpClock advances the guest clock to dest nanoseconds (nothing when it is already
// past) and returns its value; only under the qtest accelerator (ClockManual), otherwise
// it returns the clock untouched. The machine arms no timer on the guest clock that could
// fire on the way, so the warp is one step (QEMU's qtest_clock_warp runs the timers due
// at each deadline up to dest).
func (m *Machine) WarpClock(dest uint64) uint64 {
	if m.cfg.QTest {
		m.clock.warp(dest)
	}
	return m.clock.Now()
}

// ClockDeadline is the guest clock's next timer deadline in nanoseconds from now, or -1
// when no timer is armed on it (QEMU's qemu_clock_deadline_ns_all): none is.
func (m *Machine) ClockDeadline() int64 { return -1 }
