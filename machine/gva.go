package machine

// VirtToPhys translates guest virtual address va by vCPU cpu's page tables, as the
// monitor's gva2gpa does (x86_cpu_get_phys_page_attrs_debug): with paging off virtual is
// physical; the result keeps the 52 bits of PG_ADDRESS_MASK and the page offset; ok is
// false for an unmapped address.
func (m *Machine) VirtToPhys(cpu int, va uint64) (pa uint64, ok bool, err error) {
	v := m.vcpu(cpu) // by index: with CPU hotplug the present vCPUs need not be 0…n-1
	if v == nil {
		return 0, false, qerr(ErrNoCPU, "Parameter 'cpu-index' expects a CPU number")
	}
	m.ramMu.RLock()
	defer m.ramMu.RUnlock()
	if !m.ramUsable() {
		return 0, false, nil
	}
	v.mu.Lock()
	st := v.be.State()
	v.mu.Unlock()
	pa, ok, err = m.translate(&st, va)
	return pa & (1<<52 - 1), ok, err
}
