package machine

import (
	"encoding/json"
	"fmt"
)

// Snapshotter is one piece of device or CPU state that migrates as a section.
//
// SaveState returns a plain struct (json-tagged); the stream carries its JSON encoding,
// and LoadState receives those bytes with the version they were saved at. LoadState
// applies state to an already-constructed device (QEMU's model: the destination builds
// devices from its own command line first). Both require the vCPUs to be parked (the
// machine not running); they fail with ErrState otherwise.
//
// Version policy: cur is bumped when a field is added or its meaning changes; min is
// the oldest version LoadState still accepts. Versions outside [min, cur] are refused.
type Snapshotter interface {
	SectionID() string // stable across releases, e.g. "serial0", "cpu/0"
	StateVersion() (cur, min uint32)
	SaveState() (any, error)
	LoadState(raw []byte, version uint32) error
}

// Snapshotters returns the machine's sections in their stable save order: one "cpu/N"
// per vCPU, then "clock", "acpi", "fw_cfg", "serial0".
func (m *Machine) Snapshotters() []Snapshotter {
	var out []Snapshotter
	for _, v := range m.cpus() {
		out = append(out, cpuSection{v})
	}
	return append(out, clockSection{m}, acpiSection{m}, fwcfgSection{m}, serialSection{m})
}

// SaveDevices returns SaveState of every section keyed by SectionID.
func (m *Machine) SaveDevices() (map[string]any, error) {
	out := map[string]any{}
	for _, s := range m.Snapshotters() {
		st, err := s.SaveState()
		if err != nil {
			return nil, err
		}
		out[s.SectionID()] = st
	}
	return out, nil
}

// parked checks the vCPUs are not executing.
func (m *Machine) parked() error {
	m.ctl.mu.Lock()
	defer m.ctl.mu.Unlock()
	if m.ctl.run {
		return fmt.Errorf("%w: vCPUs are running", ErrState)
	}
	return nil
}

func loadJSON(id string, raw []byte, version uint32, cur, min uint32, dst any) error {
	if version < min || version > cur {
		return fmt.Errorf("%w: section %s version %d not in [%d, %d]", ErrState, id, version, min, cur)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%w: section %s: %v", ErrState, id, err)
	}
	return nil
}

type cpuSection struct{ v *vcpu }

var _ Snapshotter = cpuSection{}

func (s cpuSection) SectionID() string              { return fmt.Sprintf("cpu/%d", s.v.index) }
func (s cpuSection) StateVersion() (uint32, uint32) { return 2, 1 }
func (s cpuSection) SaveState() (any, error) {
	if err := s.v.m.parked(); err != nil {
		return nil, err
	}
	s.v.mu.Lock()
	defer s.v.mu.Unlock()
	return s.v.be.State(), nil
}
func (s cpuSection) LoadState(raw []byte, version uint32) error {
	if err := s.v.m.parked(); err != nil {
		return err
	}
	var st CPUState
	if err := loadJSON(s.SectionID(), raw, version, 2, 1, &st); err != nil {
		return err
	}
	if err := s.v.m.checkCPUState(&st); err != nil {
		return fmt.Errorf("%w: section %s: %v", ErrState, s.SectionID(), err)
	}
	s.v.mu.Lock()
	s.v.be.SetState(st)
	s.v.mu.Unlock()
	s.v.wakeup()
	return nil
}

type clockSection struct{ m *Machine }

var _ Snapshotter = clockSection{}

func (s clockSection) SectionID() string              { return "clock" }
func (s clockSection) StateVersion() (uint32, uint32) { return 1, 1 }
func (s clockSection) SaveState() (any, error) {
	if err := s.m.parked(); err != nil {
		return nil, err
	}
	return ClockState{NS: s.m.clock.Now()}, nil
}
func (s clockSection) LoadState(raw []byte, version uint32) error {
	if err := s.m.parked(); err != nil {
		return err
	}
	var st ClockState
	if err := loadJSON(s.SectionID(), raw, version, 1, 1, &st); err != nil {
		return err
	}
	s.m.clock.set(st.NS)
	return nil
}

type acpiSection struct{ m *Machine }

var _ Snapshotter = acpiSection{}

func (s acpiSection) SectionID() string              { return "acpi" }
func (s acpiSection) StateVersion() (uint32, uint32) { return 2, 1 }
func (s acpiSection) SaveState() (any, error) {
	if err := s.m.parked(); err != nil {
		return nil, err
	}
	return ACPIState{PowerButton: s.m.acpi.pending.Load(), Enabled: s.m.acpi.enabled.Load(),
		CPUHotplugModern: s.m.cpuhp.modern.Load()}, nil
}
func (s acpiSection) LoadState(raw []byte, version uint32) error {
	if err := s.m.parked(); err != nil {
		return err
	}
	var st ACPIState
	if err := loadJSON(s.SectionID(), raw, version, 2, 1, &st); err != nil {
		return err
	}
	s.m.acpi.pending.Store(st.PowerButton)
	s.m.acpi.enabled.Store(st.Enabled)
	s.m.cpuhp.modern.Store(st.CPUHotplugModern)
	return nil
}

type fwcfgSection struct{ m *Machine }

var _ Snapshotter = fwcfgSection{}

func (s fwcfgSection) SectionID() string              { return "fw_cfg" }
func (s fwcfgSection) StateVersion() (uint32, uint32) { return 1, 1 }
func (s fwcfgSection) SaveState() (any, error) {
	if err := s.m.parked(); err != nil {
		return nil, err
	}
	f := s.m.fwcfg
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st, nil
}
func (s fwcfgSection) LoadState(raw []byte, version uint32) error {
	if err := s.m.parked(); err != nil {
		return err
	}
	var st FwCfgState
	if err := loadJSON(s.SectionID(), raw, version, 1, 1, &st); err != nil {
		return err
	}
	f := s.m.fwcfg
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
	return nil
}

type serialSection struct{ m *Machine }

var _ Snapshotter = serialSection{}

func (s serialSection) SectionID() string              { return "serial0" }
func (s serialSection) StateVersion() (uint32, uint32) { return 1, 1 }
func (s serialSection) SaveState() (any, error) {
	if err := s.m.parked(); err != nil {
		return nil, err
	}
	sr := s.m.serial
	sr.mu.Lock()
	defer sr.mu.Unlock()
	sr.flushLocked()
	return sr.st, nil
}
func (s serialSection) LoadState(raw []byte, version uint32) error {
	if err := s.m.parked(); err != nil {
		return err
	}
	var st SerialState
	if err := loadJSON(s.SectionID(), raw, version, 1, 1, &st); err != nil {
		return err
	}
	sr := s.m.serial
	sr.mu.Lock()
	sr.st = st
	sr.mu.Unlock()
	return nil
}

// checkCPUState refuses register files the workload program cannot run safely: every
// address it will use must lie in RAM.
func (m *Machine) checkCPUState(st *CPUState) error {
	if st.Disk != nil {
		if err := st.Disk.check(); err != nil {
			return err
		}
	}
	switch st.RIP {
	case ripReset, ripIdle, ripOff:
		return nil
	case ripFill, ripLoop, ripFill2:
	case ripFillDIMM:
		return m.checkDIMMStage(st)
	default:
		return fmt.Errorf("rip %#x is not a workload stage", st.RIP)
	}
	low := m.phys[0].Size
	base, pages, idx, ctr := st.Regs[regBase], st.Regs[regPages], st.Regs[regIndex], st.Regs[regCounter]
	if st.RIP != ripLoop {
		// After the fill stages the working-set chunk is recomputed from these.
		ws, n := st.Regs[regWS], st.Regs[regNCPU]
		if low <= gpaWSBase || ws > low-gpaWSBase || n == 0 || st.Regs[regCPU] >= n {
			return fmt.Errorf("working set %d bytes over %d vCPUs (index %d) outside RAM", ws, n, st.Regs[regCPU])
		}
	}
	if st.RIP == ripFill2 { // the fill share is in RAM-offset space
		if base < gpaWSBase || base%PageSize != 0 || base >= m.ram.size || pages == 0 ||
			pages > (m.ram.size-base)/PageSize || idx >= pages {
			return fmt.Errorf("fill %#x+%d pages (index %d) outside RAM", base, pages, idx)
		}
	} else if base < gpaWSBase || base%PageSize != 0 || base >= low || pages == 0 || pages > (low-base)/PageSize || idx >= pages {
		return fmt.Errorf("working set %#x+%d pages (index %d) outside RAM", base, pages, idx)
	}
	return checkCounter(ctr)
}

// checkCounter refuses a counter address (regCounter) outside the counters' area or not
// on a vCPU's 16-byte slot: every stage that counts pages publishes there.
func checkCounter(ctr uint64) error {
	if ctr < gpaCounters || ctr+16 > gpaBootInfo || (ctr-gpaCounters)%16 != 0 {
		return fmt.Errorf("counter address %#x invalid", ctr)
	}
	return nil
}
