package machine

// The vCPU backend seam.
//
// A backend executes one vCPU's guest code. The vCPU thread (vcpu.go) owns everything
// around it: parking and release, sleeping while the guest halts, dispatching device
// exits, faults, the run state. Its shape is KVM's (and gokvm's RunOnce): run until an
// exit, then one switch on the exit's reason.
//
//	for the vCPU's run period:                    vcpu.runPeriod
//	    deliver pending interrupts                b.Interrupt (the ACPI SCI to vCPU 0)
//	    ex := b.Run(quantum)                      one KVM_RUN
//	    switch ex.reason { halt, io, ipi, ... }   one exit at a time
//
// The synthetic workload (program.go, synthCPU) is the first backend. A KVM backend is a
// new file implementing the same interface: Run is KVM_RUN on the vCPU fd with the
// kvm_run exit mapped to an exit, State and SetState are KVM_GET/SET_REGS and SREGS
// converted to CPUState, Kick signals the vCPU thread (or sets immediate_exit), and the
// RAM block's dirty log comes from KVM_GET_DIRTY_LOG through a dirtySource (ram.go).
// Nothing outside the backend needs to change.

// backend is one vCPU's guest-code executor.
//
// Run, Interrupt, State and SetState are called with the vcpu's mu held: Run by the
// vCPU's own thread only; State and SetState by anyone, between runs or while parked
// (reset, restore, monitors). Kick may be called from any goroutine at any time.
type backend interface {
	// Run executes guest code on the calling thread until an exit, doing at most
	// quantum units of work (for the synthetic workload: pages written), so that the
	// vCPU thread sees a stop request within a bounded time even without Kick.
	Run(quantum int) exit
	// Interrupt raises an interrupt line for this vCPU (irqSCI, and the ISA lines of
	// devices: irqKeyboard, irqMouse); the guest takes it at its next Run.
	Interrupt(irq int)
	// State returns the architectural state; SetState replaces it (and leaves HLT if
	// the new state is not halted).
	State() CPUState
	SetState(CPUState)
	// Kick makes a Run in progress return soon with exitKicked.
	Kick()
}

// Interrupt lines a backend may be given.
const (
	irqSCI = 9 // ACPI system control interrupt (the power button), to vCPU 0
	irqNMI = 2 // non-maskable interrupt (inject-nmi), to every vCPU (nmi.go)
	// irqGPE is the SCI raised for a hotplug GPE (an eject request, a CPU's or a DIMM's
	// insertion), to vCPU 0; a line of its own here so that the guest knows which handler
	// to run.
	irqGPE = 10
)

// exitReason says why Run returned.
type exitReason uint8

const (
	exitQuantum   exitReason = iota // the quantum is used up; run again
	exitKicked                      // Kick
	exitHalt                        // HLT: sleep until woken, or until wakeAt (guest ns) when not 0
	exitIO                          // port output (string I/O): data to port
	exitIPI                         // INIT-SIPI-SIPI: release the other vCPUs (they wake)
	exitShutdown                    // the guest powered itself off (ACPI sleep state S5)
	exitFault                       // a guest RAM check failed (err); the vCPU made no progress
	exitEject                       // the guest ejected a hot-unplugged device (eject)
	exitDisk                        // a disk request (disk.go): carry it out, then Run again
	exitLockTrays                   // the guest locks the CD-ROM trays (Config.Media)
)

// exit is what Run returns: the reason and its operands.
type exit struct {
	reason exitReason
	port   uint16       // exitIO
	data   []byte       // exitIO: the bytes written, in order
	wakeAt uint64       // exitHalt: guest-clock deadline of the armed timer (0: none)
	err    error        // exitFault
	eject  hotplugEvent // exitEject
	disk   *diskRequest // exitDisk: the request; the vCPU thread marks it done
	more   bool         // Run has further exits of the same step: call it again before parking
}

func (r exitReason) String() string {
	switch r {
	case exitQuantum:
		return "quantum"
	case exitKicked:
		return "kicked"
	case exitHalt:
		return "hlt"
	case exitIO:
		return "io"
	case exitIPI:
		return "ipi"
	case exitShutdown:
		return "shutdown"
	case exitFault:
		return "fault"
	case exitEject:
		return "eject"
	case exitDisk:
		return "disk"
	case exitLockTrays:
		return "lock-trays"
	}
	return "exit?"
}
