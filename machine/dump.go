package machine

// What dump-guest-memory reads of the machine: the guest-physical memory map as QEMU
// 7.2's memory API shows it (its GuestPhysBlocks), the vCPUs' state, and the stop and
// restart around the dump.

// Displays whose video RAM QEMU maps (a PCI BAR SeaBIOS assigns at the top of the PCI
// hole, the biggest BAR first): the model and where the firmware puts it.
var displayVRAM = map[string]struct{ base, size uint64 }{
	"VGA":        {0xfd000000, 16 << 20}, // std VGA: vgamem_mb 16
	"virtio-vga": {0xfe000000, 8 << 20},  // vgamem_mb 8
}

// PhysBlock is one block of guest-physical memory that QEMU's dump would write: RAM (a
// range of a RAM block) or memory tlcvm does not model (the ROMs' images, video RAM),
// which reads as zero and was never written.
type PhysBlock struct {
	GPA, Size uint64
	Name      string    // QEMU's region: "pc.ram", "pc.rom", "isa-bios", "pc.bios", "vga.vram"
	RAM       *RAMBlock // nil for ROM and video RAM
	Offset    uint64    // offset in RAM of GPA
}

// GuestPhysBlocks returns the blocks a dump writes, in address order, as QEMU 7.2's pc and
// q35 machines map them (checked with dump-guest-memory against the real binary):
//
//	before the firmware runs (reset, -S)        after it (PAM set to RAM, BARs assigned)
//	0        pc.ram  (to 0xa0000 with a VGA)      0        pc.ram (to 0xa0000 with a VGA)
//	0xc0000  pc.rom     128 KiB                   0xc0000  pc.ram (merged without VGA)
//	0xe0000  isa-bios   128 KiB
//	1 MiB    pc.ram  to the low-memory limit      0xfd000000 vga.vram (std VGA; virtio-vga:
//	                                                         0xfe000000, 8 MiB)
//	0xfffc0000 pc.bios 256 KiB                    0xfffc0000 pc.bios
//	4 GiB    pc.ram above 4G                      4 GiB    pc.ram above 4G
//
// The firmware has run once vCPU 0 has left the reset vector. The machine "none" has its
// RAM at 0 and nothing else.
func (m *Machine) GuestPhysBlocks() []PhysBlock {
	if m.ram == nil {
		return nil
	}
	if m.cfg.Type == "none" {
		return []PhysBlock{{GPA: 0, Size: m.ram.size, Name: m.ram.name, RAM: m.ram}}
	}
	low := m.phys[0].Size
	vga := m.cfg.Display != ""
	booted := false
	if v := m.vcpu(0); v != nil {
		v.mu.Lock()
		booted = v.be.State().RIP != ripReset
		v.mu.Unlock()
	}
	var out []PhysBlock
	ram := func(from, to uint64) {
		if to > from {
			out = append(out, PhysBlock{GPA: from, Size: to - from, Name: m.ram.name, RAM: m.ram, Offset: from})
		}
	}
	rom := func(gpa, size uint64, name string) { out = append(out, PhysBlock{GPA: gpa, Size: size, Name: name}) }
	holeEnd := uint64(0xc0000) // the VGA window 0xa0000-0xbffff is I/O when a VGA exists
	if vga {
		holeEnd = 0xa0000
	}
	switch {
	case !booted:
		ram(0, min(holeEnd, low))
		rom(0xc0000, 0x20000, "pc.rom")
		rom(0xe0000, 0x20000, "isa-bios")
		ram(0x100000, low)
	case vga:
		ram(0, min(0xa0000, low))
		ram(0xc0000, low)
	default:
		ram(0, low)
	}
	if v, ok := displayVRAM[m.cfg.Display]; ok && booted {
		rom(v.base, v.size, "vga.vram")
	}
	rom(0xfffc0000, 0x40000, "pc.bios")
	if len(m.phys) > 1 {
		s := m.phys[1]
		out = append(out, PhysBlock{GPA: s.GPA, Size: s.Size, Name: m.ram.name, RAM: m.ram, Offset: s.Offset})
	}
	return out
}

// CPUStates returns every vCPU's architectural state, in index order.
func (m *Machine) CPUStates() []CPUState {
	vcpus := m.cpus()
	out := make([]CPUState, len(vcpus))
	for i, v := range vcpus {
		v.mu.Lock()
		out[i] = v.be.State()
		v.mu.Unlock()
	}
	return out
}

// StopForDump is dump-guest-memory's vm_stop(RUN_STATE_SAVE_VM): a running VM stops
// (STOP, state save-vm) and the returned function restarts it (RESUME) unless something
// else moved it on meanwhile; nil when the VM was not running.
func (m *Machine) StopForDump() (resume func()) { return m.stopFor(StateSaveVM) }

// StopForSnapshot is savevm's vm_stop(RUN_STATE_SAVE_VM), or loadvm's
// vm_stop(RUN_STATE_RESTORE_VM) when load: a running VM stops (STOP, that state) and the
// returned function starts it again (RESUME) unless something else moved it on meanwhile;
// nil when the VM was not running (its vCPUs are parked already, its state stays).
func (m *Machine) StopForSnapshot(load bool) (resume func()) {
	if load {
		return m.stopFor(StateRestoreVM)
	}
	return m.stopFor(StateSaveVM)
}

func (m *Machine) stopFor(to RunState) (resume func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != StateRunning {
		return nil
	}
	m.vmStop(to)
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.state == to && !m.exiting && !m.closed {
			m.vmStart()
		}
	}
}
