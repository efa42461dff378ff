package blockdev

import (
	"errors"
	"sync"
	"syscall"

	"tlcvm/compat/qerror"
)

// A guest device's failed request (QEMU 7.2's block-backend.c: blk_get_error_action,
// blk_error_action, send_qmp_error_event). The device's werror/rerror (auto: the drive's
// -drive werror=/rerror=, else enospc for writes and report for reads) give the action:
//
//	stop     io-status failed (nospace for ENOSPC), BLOCK_IO_ERROR, then the VM stops in
//	         io-error (STOP); the request is made again once it runs (cont resets the
//	         io-status of named backends only)
//	enospc   stop on ENOSPC, report otherwise
//	report   BLOCK_IO_ERROR, the guest sees the error
//	ignore   BLOCK_IO_ERROR, the guest sees success
//
// BLOCK_IO_ERROR {"device": backend name ("" for an anonymous one), "node-name": the root
// node, "operation": "read"|"write", "action", "nospace" (when the device has an
// io-status), "reason": strerror}.

// EventBlockIOError is BLOCK_IO_ERROR.
const EventBlockIOError = "BLOCK_IO_ERROR"

// IOErrorEvent is BLOCK_IO_ERROR's data.
type IOErrorEvent struct {
	Device, NodeName    string
	Operation           string // "read" or "write"
	Action              ErrorAction
	HasNospace, Nospace bool
	Reason              string
}

// ioStatus is a backend's BlockDeviceIoStatus ("" is ok).
type ioStatus struct {
	mu     sync.Mutex
	status string
}

// actionFor is the action policy asks for an error (blk_get_error_action).
func actionFor(policy OnError, nospace bool) ErrorAction {
	switch policy {
	case OnErrorStop:
		return ActionStop
	case OnErrorIgnore:
		return ActionIgnore
	case OnErrorEnospc, OnErrorAuto, "":
		if nospace {
			return ActionStop
		}
	}
	return ActionReport
}

// errorPolicy is the policy of the backend's reads or writes: its device's rerror/werror,
// else its drive's, else QEMU's defaults.
func (b *Backend) errorPolicy(read bool) OnError {
	if b.reportErrors { // drive_del: blk_set_on_error(report, report)
		return OnErrorReport
	}
	if d := b.Device; d != nil {
		p := d.Werror
		if read {
			p = d.Rerror
		}
		if p != "" && p != OnErrorAuto {
			return p
		}
	}
	if d := b.Drive; d != nil {
		p := d.Werror
		if read {
			p = d.Rerror
		}
		if p != "" {
			return OnError(p)
		}
	}
	if read {
		return OnErrorReport
	}
	return OnErrorEnospc
}

// IOError is blk_get_error_action and blk_error_action for a guest request on b that
// failed with err: it returns the action and emits BLOCK_IO_ERROR, setting the io-status
// first with stop. The caller stops the VM (stop), fails the request (report) or
// completes it (ignore).
func (g *Graph) IOError(b *Backend, read bool, err error) ErrorAction {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		errno = syscall.EIO
	}
	nospace := errno == syscall.ENOSPC
	a := actionFor(b.errorPolicy(read), nospace)
	if a == ActionStop && b.IOStatus() {
		b.ios.mu.Lock()
		if b.ios.status == "" {
			b.ios.status = "failed"
			if nospace {
				b.ios.status = "nospace"
			}
		}
		b.ios.mu.Unlock()
	}
	ev := IOErrorEvent{Device: b.Name, Operation: "write", Action: a, HasNospace: b.IOStatus(), Nospace: nospace,
		Reason: qerror.Strerror(errno)}
	if read {
		ev.Operation = "read"
	}
	if r := b.Root; r != nil {
		ev.NodeName = r.Name
	}
	g.emit(EventBlockIOError, ev)
	return a
}

// IOStatusValue is query-block's io-status of a backend that has one: ok, failed or
// nospace.
func (b *Backend) IOStatusValue() string {
	b.ios.mu.Lock()
	defer b.ios.mu.Unlock()
	if b.ios.status == "" {
		return "ok"
	}
	return b.ios.status
}

// ResetIOStatus is qmp_cont's blk_iostatus_reset over blk_next: the monitor's backends,
// those with a name (-drive); a device's anonymous backend (drive= naming a node, as
// libvirt's -blockdev disks are) keeps its io-status after cont, as in QEMU 7.2.
func (g *Graph) ResetIOStatus() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range g.backends {
		if b.Name == "" {
			continue
		}
		b.ios.mu.Lock()
		b.ios.status = ""
		b.ios.mu.Unlock()
	}
}
