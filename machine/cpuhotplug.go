package machine

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
)

// CPU hotplug, as QEMU 7.2's pc and q35 machines do it (hw/i386/x86.c x86_cpu_pre_plug,
// hw/i386/pc.c pc_cpu_plug and pc_cpu_unplug_request_cb, hw/acpi/cpu.c):
//
// Plug (device_add of the machine's CPU type, or -device on the command line): CPUSlot
// finds the slot from socket-id, die-id, core-id and thread-id with QEMU's checks; PlugCPU
// creates the vCPU in its reset state with a thread of its own ("CPU N/TCG" with
// debug-threads), parked or running as the others are. A CPU plugged while the machine
// runs (hotplugged) is announced to the guest through the ACPI CPU hotplug GPE; vCPU 0's
// handler logs it and the guest keeps it offline (it sends no start-up IPI), as an OS
// without an onlining policy does:
//
//	tlcvm guest: CPU 1 hot-added
//
// At the next boot it is one of the boot CPUs (the bitmap of present CPUs the bootstrap
// processor writes at boot, program.go) and runs the workload with the others.
//
// Unplug (device_del): never the boot CPU ("Boot CPU is unpluggable"). QEMU's ACPI CPU
// hotplug block starts in its legacy mode, which refuses unplug ("acpi: device unplug
// request for not supported device type: TYPE"), until the guest's ACPI code switches it
// to the modern interface, as an OS does at boot; tlcvm's guest does when it boots, and
// the switch stays over resets (QEMU keeps it) and in checkpoints (section "acpi",
// version 2). In modern mode the request goes to the guest through the same GPE; vCPU 0's
// handler logs and ejects it:
//
//	tlcvm guest: ACPI eject CPU 1
//
// and the vCPU leaves: every vCPU parks for the moment it takes (no run-state change, no
// event), the thread returns and is joined, the slot is free again, and done runs (on
// the machine's guest-request goroutine, without the machine's lock) so the caller can
// report DEVICE_DELETED. A paused guest ejects when it resumes. A CPU ejected while it
// runs the workload leaves its working-set chunk unwritten until the next boot (the guest
// does not rebalance). Requests the guest has not handled are not carried in checkpoints.

// CPUAddress is a CPU device's topology properties; -1 for a property not given.
type CPUAddress struct{ SocketID, DieID, CoreID, ThreadID int }

// ErrCPUSlot wraps a CPU device that names no free slot (the texts are QEMU's).
var ErrCPUSlot = errors.New("machine: no such CPU slot")

// CPUSlot returns the index of the slot a CPU device names (x86_cpu_pre_plug's checks,
// in its order) and its APIC ID. A slot already taken is an error.
func (m *Machine) CPUSlot(a CPUAddress) (int, error) {
	c := m.cfg
	threads, cores, dies := max(c.Threads, 1), max(c.Cores, 1), max(c.Dies, 1)
	maxSocket := (m.cfg.MaxCPUs - 1) / threads / cores / dies
	if a.DieID < 0 && dies == 1 {
		a.DieID = 0 // die-id is optional with one die per socket (QEMU 4.0 and older)
	}
	switch {
	case a.SocketID < 0:
		return 0, qerr(ErrCPUSlot, "CPU socket-id is not set")
	case a.SocketID > maxSocket:
		return 0, qerr(ErrCPUSlot, "Invalid CPU socket-id: %d must be in range 0:%d", a.SocketID, maxSocket)
	case a.DieID < 0:
		return 0, qerr(ErrCPUSlot, "CPU die-id is not set")
	case a.DieID > dies-1:
		return 0, qerr(ErrCPUSlot, "Invalid CPU die-id: %d must be in range 0:%d", a.DieID, dies-1)
	case a.CoreID < 0:
		return 0, qerr(ErrCPUSlot, "CPU core-id is not set")
	case a.CoreID > cores-1:
		return 0, qerr(ErrCPUSlot, "Invalid CPU core-id: %d must be in range 0:%d", a.CoreID, cores-1)
	case a.ThreadID < 0:
		return 0, qerr(ErrCPUSlot, "CPU thread-id is not set")
	case a.ThreadID > threads-1:
		return 0, qerr(ErrCPUSlot, "Invalid CPU thread-id: %d must be in range 0:%d", a.ThreadID, threads-1)
	}
	apic := m.apicID(a)
	idx := ((a.SocketID*dies+a.DieID)*cores+a.CoreID)*threads + a.ThreadID
	if idx >= m.cfg.MaxCPUs {
		return 0, qerr(ErrCPUSlot, "Invalid CPU [socket: %d, die: %d, core: %d, thread: %d] with APIC ID %d, valid index range 0:%d",
			a.SocketID, a.DieID, a.CoreID, a.ThreadID, apic, m.cfg.MaxCPUs-1)
	}
	if m.vcpu(idx) != nil {
		return 0, qerr(ErrCPUSlot, "CPU[%d] with APIC ID %d exists", idx, apic)
	}
	return idx, nil
}

// apicID is x86_apicid_from_topo_ids: each level's field as wide as its count needs.
func (m *Machine) apicID(a CPUAddress) int {
	width := func(n int) int {
		if n <= 1 {
			return 0
		}
		return bits.Len(uint(n - 1))
	}
	c := m.cfg
	tw, cw, dw := width(max(c.Threads, 1)), width(max(c.Cores, 1)), width(max(c.Dies, 1))
	return a.SocketID<<(tw+cw+dw) | a.DieID<<(tw+cw) | a.CoreID<<tw | a.ThreadID
}

// cpuHotplug is the ACPI CPU hotplug block: its mode and the insertions the guest has
// not taken yet (removals are eject requests in the GPE block, hotplug.go).
type cpuHotplug struct {
	modern atomic.Bool // the guest switched from the legacy interface (at its boot)

	mu       sync.Mutex
	inserted []int // +checklocks:mu; CPU indexes
}

func (h *cpuHotplug) post(index int) {
	h.mu.Lock()
	h.inserted = append(h.inserted, index)
	h.mu.Unlock()
}

func (h *cpuHotplug) take() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.inserted
	h.inserted = nil
	return out
}

func (h *cpuHotplug) latched() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.inserted) > 0
}

// PlugCPU creates the vCPU of a free slot (see CPUSlot) with its QOM path. hotplugged
// says the machine is running its firmware or guest (device_add, not -device): the guest
// is told.
func (m *Machine) PlugCPU(index int, qomPath string, hotplugged bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if index < 0 || index >= m.cfg.MaxCPUs || m.vcpu(index) != nil {
		return fmt.Errorf("%w: slot %d", ErrCPUSlot, index)
	}
	v := m.newVCPU(index, qomPath)
	old := m.cpus()
	list := make([]*vcpu, 0, len(old)+1)
	list = append(list, old...)
	list = append(list, v)
	slices.SortFunc(list, func(a, b *vcpu) int { return a.index - b.index })
	m.ctl.mu.Lock()
	m.ctl.alive++
	m.ctl.mu.Unlock()
	ensureProcs(len(list))
	m.vcpuList.Store(&list)
	v.start()
	if hotplugged {
		m.cpuhp.post(index)
		m.wakeBSP()
	}
	m.log.Debug().Int("cpu", index).Str("qom-path", qomPath).Msg("vCPU plugged")
	return nil
}

// UnplugCPU asks the guest to eject the vCPU of index (see above); done runs once it
// has left. The errors are QEMU's.
func (m *Machine) UnplugCPU(index int, done func()) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.vcpu(index) == nil {
		return fmt.Errorf("%w: slot %d", ErrCPUSlot, index)
	}
	if index == 0 {
		return qerr(ErrUnsupported, "Boot CPU is unpluggable")
	}
	if !m.cpuhp.modern.Load() {
		return qerr(ErrUnsupported, "acpi: device unplug request for not supported device type: %s", m.CPUType())
	}
	// The guest's eject comes back on the guest-request goroutine (hotplugEvent.ejected),
	// which may take the machine's lock.
	m.latch(hotplugEvent{what: fmt.Sprintf("CPU %d", index), done: func() {
		m.mu.Lock()
		ok := m.removeCPU(index)
		m.mu.Unlock()
		if ok && done != nil {
			done()
		}
	}})
	return nil
}

// removeCPU makes the vCPU of index leave: every vCPU parks, the thread returns and is
// joined, the slot is freed, and the vCPUs run again if they ran. Caller holds m.mu.
func (m *Machine) removeCPU(index int) bool {
	v := m.vcpu(index)
	if v == nil || m.closed {
		return false
	}
	m.ctl.mu.Lock()
	wasRunning := m.ctl.run // not paused by another stop-the-world (PauseVCPUs)
	m.ctl.mu.Unlock()
	m.ctl.pause()
	m.ctl.mu.Lock()
	v.gone = true
	m.ctl.released.Broadcast()
	m.ctl.mu.Unlock()
	<-v.done
	list := slices.DeleteFunc(slices.Clone(m.cpus()), func(o *vcpu) bool { return o == v })
	m.vcpuList.Store(&list)
	if wasRunning {
		m.ctl.resume()
	}
	m.log.Debug().Int("cpu", index).Msg("vCPU unplugged")
	return true
}

// cpuHotplugHandler is the guest's GPE handler for CPU insertions (vCPU 0): a CPU that is
// not a boot CPU is logged and kept offline. Removals are ejects (gpeHandler).
func (c *synthCPU) cpuHotplugHandler() {
	for _, i := range c.m.cpuhp.take() {
		if v := c.m.vcpu(i); v != nil && !c.inBootMask(i) {
			c.out(fmt.Sprintf("tlcvm guest: CPU %d hot-added\r\n", i))
		}
	}
}

// inBootMask reports whether CPU index is in the guest's boot bitmap (program.go).
func (c *synthCPU) inBootMask(index int) bool {
	if index >= 64*bootMaskWords {
		return false
	}
	return c.m.ram.load64(gpaBootMask+8*uint64(index/64))&(1<<(index%64)) != 0
}
