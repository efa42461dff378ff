package machine

import "sync"

// Hot-unplug requests, as QEMU's ACPI hotplug blocks deliver them (PIIX4/ICH9 PCI hotplug,
// the PCIe slots of a root port, ACPI memory hotplug): the host latches a request in the
// GPE block and raises the SCI; the guest OS's handler ejects the device (writes the slot's
// or the DIMM's eject register) and only then does the device leave. tlcvm's guest does
// that in its SCI handler on vCPU 0, as Linux's acpiphp and acpi_memhotplug do:
//
//	RequestEject ─▶ GPE latched ─▶ vCPU 0 (running, ACPI enabled by its boot) takes the
//	SCI, prints "tlcvm guest: ACPI eject <what>" on the serial port, ejects ─▶ done()
//	on the machine's guest-request goroutine
//
// A paused guest ejects when it resumes; one that has not booted yet, once it has. done
// runs on a goroutine of the machine's that holds none of its locks, one request after
// another in the order the guest ejected them.

// eject is one latched hot-unplug request.
type eject struct {
	what string
	done func()
}

// gpe is the hotplug part of the ACPI GPE block.
type gpe struct {
	mu      sync.Mutex
	pending []eject // +checklocks:mu
}

func (g *gpe) take() []eject {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := g.pending
	g.pending = nil
	return out
}

func (g *gpe) latched() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending) > 0
}

// RequestEject latches a hot-unplug request (what names it on the guest's console, e.g.
// "PCI 03.0 e1000"); done is called once the guest has ejected the device.
func (m *Machine) RequestEject(what string, done func()) {
	m.acpi.gpe.mu.Lock()
	m.acpi.gpe.pending = append(m.acpi.gpe.pending, eject{what, done})
	m.acpi.gpe.mu.Unlock()
	if len(m.vcpus) > 0 {
		m.vcpus[0].wakeup()
	}
}

// ejectHandler is the guest's GPE handler for hotplug events: each request is ejected, in
// order, and reported to the machine.
func (c *synthCPU) ejectHandler() {
	for _, e := range c.m.acpi.gpe.take() {
		c.out("tlcvm guest: ACPI eject " + e.what + "\r\n")
		c.queue(exit{reason: exitEject, eject: e})
	}
}
