package cmds

import (
	"tlcvm/machine"
	"tlcvm/qmp"
)

// The platform's requests: inject-nmi (machine/nmi.go), system_wakeup and
// query-current-machine (ACPI S3 wake-up), rtc-reset-reinjection (the RTC's coalesced
// interrupts, reset after libvirt sets the guest's clock through the agent).

// Platform is what these handlers need of the VM.
type Platform interface {
	InjectNMI() error
	Status() (machine.RunState, bool)
}

// CurrentMachineParams is query-current-machine's reply.
type CurrentMachineParams struct {
	qmp.QAPIOrder
	WakeupSuspendSupport bool `json:"wakeup-suspend-support"`
}

func registerPlatform(r *qmp.Registry, d *Deps, p Platform) {
	// QEMU's qemu_wakeup_suspend_enabled: a pc or q35 board with ACPI registers wake-up
	// support (even with S3 disabled through PIIX4_PM/ICH9-LPC, as libvirt starts them).
	wakeup := d.ACPI && d.MachineType != "none"
	r.Register(
		qmp.Command{Name: "inject-nmi", Run: func(*qmp.Call) (any, error) { return nil, p.InjectNMI() }},
		qmp.Command{Name: "query-current-machine", Returns: CurrentMachineParams{},
			Run: func(*qmp.Call) (any, error) {
				return CurrentMachineParams{WakeupSuspendSupport: wakeup}, nil
			}},
		qmp.Command{Name: "system_wakeup", Run: func(*qmp.Call) (any, error) {
			if !wakeup {
				return nil, qmp.GenericError("wake-up from suspend is not supported by this guest")
			}
			// tlcvm's guest never enters S3 (its firmware offers no sleep state but S5), so
			// the VM is never suspended: QEMU's qemu_system_wakeup_request refuses.
			if s, _ := p.Status(); s != machine.StateSuspended {
				return nil, qmp.GenericError("Unable to wake up: guest is not in suspended state")
			}
			return nil, nil
		}},
		// QEMU resets every mc146818 RTC's count of coalesced interrupts; tlcvm's RTC
		// coalesces none (the guest clock does not tick by interrupts).
		qmp.Command{Name: "rtc-reset-reinjection", Run: func(*qmp.Call) (any, error) { return nil, nil }},
	)
}
