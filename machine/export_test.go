package machine

// Test hooks (compiled only into this package's tests).

// LoopPages runs n page rewrites of vCPU cpu's loop stage directly (benchmarks).
func (m *Machine) LoopPages(cpu, n int) {
	v := m.vcpu(cpu)
	v.mu.Lock()
	v.be.(*synthCPU).loopPages(n)
	v.mu.Unlock()
}

// SetState forces the run state through the one transition function.
func (m *Machine) SetState(to RunState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.transition(to, false)
}

// GuestStore64 is the guest's store path (data, then bits) at guest-physical gpa.
func (m *Machine) GuestStore64(gpa, v uint64) {
	b, off, _, ok := m.phys.lookup(gpa)
	if !ok {
		panic("GuestStore64 outside RAM")
	}
	b.store64(off, v)
}

// CPUStateOf returns a copy of vCPU cpu's registers.
func (m *Machine) CPUStateOf(cpu int) CPUState {
	v := m.vcpu(cpu)
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.be.State()
}

var ResetCPUState = resetCPUState
