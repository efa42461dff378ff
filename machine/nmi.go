package machine

import "fmt"

// NMIs, as QEMU 7.2's x86 machines deliver the monitor's inject-nmi (x86_nmi): to every
// vCPU's local APIC at once. A vCPU takes the NMI at its next run, halted or not (an NMI
// ends HLT), and tlcvm's guest handles it as Linux handles an NMI nobody claims: one line
// on the serial port, then back to what it was doing:
//
//	tlcvm guest: NMI received on CPU 1
//
// An AP still waiting for its start-up IPI, and the bootstrap processor before its boot,
// hold the NMI pending until they run the guest's kernel (the NMI is latched, as in
// wait-for-SIPI). A paused VM takes it when it resumes. A pending NMI is not part of the
// vCPU's checkpoint state (QEMU's TCG does not migrate one either).

// InjectNMI is QMP inject-nmi. A machine without CPUs (-machine none) has no NMI
// interface: QEMU's "this feature or command is not currently supported".
func (m *Machine) InjectNMI() error {
	vcpus := m.cpus()
	if len(vcpus) == 0 {
		return qerr(ErrUnsupported, "this feature or command is not currently supported")
	}
	for _, v := range vcpus {
		v.mu.Lock()
		v.be.Interrupt(irqNMI)
		v.mu.Unlock()
		v.wakeup()
	}
	return nil
}

// takeNMI is the guest's NMI handler: called by Run with an NMI pending; false while the
// vCPU cannot take it yet (the NMI stays pending).
func (c *synthCPU) takeNMI() bool {
	if c.st.RIP == ripReset {
		return false // not booted: held pending
	}
	c.irq &^= 1 << irqNMI
	c.out(fmt.Sprintf("tlcvm guest: NMI received on CPU %d\r\n", c.index))
	return true
}
