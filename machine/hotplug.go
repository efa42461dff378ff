package machine

import "sync"

// Hot-unplug requests, as QEMU's ACPI hotplug blocks deliver them (PIIX4/ICH9 PCI hotplug,
// the PCIe slots of a root port, ACPI memory hotplug, ACPI CPU hotplug: cpuhotplug.go): the
// host latches a request in the GPE block and raises the SCI; the guest OS's handler ejects
// the device (writes the slot's, the DIMM's or the CPU's eject register) and only then does
// the device leave. tlcvm's guest does
// that in its SCI handler on vCPU 0, as Linux's acpiphp and acpi_memhotplug do:
//
//	RequestEject ─▶ GPE latched ─▶ vCPU 0 (running, ACPI enabled by its boot) takes the
//	SCI, prints "tlcvm guest: ACPI eject <what>" on the serial port, ejects ─▶ done()
//	on the machine's guest-request goroutine
//
// A paused guest ejects when it resumes; one that has not booted yet, once it has. done
// runs on a goroutine of the machine's that holds none of its locks, one request after
// another in the order the guest ejected them.

// hotplugEvent is one latched hotplug request: an eject (PCI slot or DIMM) or a DIMM's
// insertion (insert).
type hotplugEvent struct {
	what      string
	insert    bool   // a DIMM was plugged: the guest onlines it
	mem       bool   // an eject of a DIMM (gpa, size): the guest offlines it first
	gpa, size uint64 // the DIMM's range (insert, mem)
	ost       OST    // the guest's _OST calls for a DIMM slot; nil: none
	done      func() // eject: called once the guest has ejected the device
}

// gpe is the hotplug part of the ACPI GPE block.
type gpe struct {
	mu      sync.Mutex
	pending []hotplugEvent // +checklocks:mu
}

func (g *gpe) take() []hotplugEvent {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := g.pending
	g.pending = nil
	return out
}

// takeInserts takes the pending insertions, leaving the ejects.
func (g *gpe) takeInserts() []hotplugEvent {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out, keep []hotplugEvent
	for _, e := range g.pending {
		if e.insert {
			out = append(out, e)
		} else {
			keep = append(keep, e)
		}
	}
	g.pending = keep
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
	m.latch(hotplugEvent{what: what, done: done})
}

func (m *Machine) latch(e hotplugEvent) {
	m.acpi.gpe.mu.Lock()
	m.acpi.gpe.pending = append(m.acpi.gpe.pending, e)
	m.acpi.gpe.mu.Unlock()
	m.wakeBSP()
}

// gpeHandler is the guest's GPE handler for hotplug events, in order: a DIMM inserted is
// onlined (dimm.go); an eject request is carried out (a DIMM offlined first) and
// reported to the machine.
func (c *synthCPU) gpeHandler() {
	for _, e := range c.m.acpi.gpe.take() {
		if e.insert {
			c.onlineDIMM(e)
			continue
		}
		if e.mem {
			c.offlineDIMM(e)
			if e.ost != nil {
				e.ost(ostEjectReq, ostInProgress)
			}
		}
		c.out("tlcvm guest: ACPI eject " + e.what + "\r\n")
		c.queue(exit{reason: exitEject, eject: e})
	}
}

// ejected completes an eject on the guest-request goroutine: the requester's done, then
// the guest's closing _OST of a DIMM's eject (the slot is empty by then).
func (e hotplugEvent) ejected() {
	if e.done != nil {
		e.done()
	}
	if e.mem && e.ost != nil {
		e.ost(ostEjectReq, 0)
	}
}
