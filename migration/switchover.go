package migration

import (
	"errors"
	"io"
)

// Switchover: what happens around the moment the guest moves from source to destination.
//
//	source   active ─ STOP ─┬─ pause-before-switchover: pre-switchover, waits for
//	                        │  migrate-continue (or a cancel) ─> device
//	                        └─ disks inactivated (QEMU mode), last pages, device state,
//	                           the end of the stream; with a return path the source waits
//	                           for the destination's SHUT before it completes
//	                           (any failure: disks activated again, the guest resumed)
//	dest     stream verified ─ device state ─ disks activated (unless late-block-activate
//	         and the guest does not start: cont does it) ─ run state ─ completed ─ SHUT 0
//
// Disks is how the engine hands the images over; the composition root adapts the block
// graph to it (migration never imports blockdev).

// Disks is the block layer as a migration sees it (QEMU's bdrv_inactivate_all and
// bdrv_activate_all): a source hands its images over by inactivating them once the guest
// is stopped for good; a destination opened them inactive and activates them to run.
type Disks interface {
	Inactivate() error
	Activate() error
	// EndIncoming tells that the machine left inmigrate: images opened from now on are
	// active.
	EndIncoming()
}

// noDisks is the Disks of a machine without images.
type noDisks struct{}

func (noDisks) Inactivate() error { return nil }
func (noDisks) Activate() error   { return nil }
func (noDisks) EndIncoming()      {}

// Continue is migrate-continue: a migration paused in pre-switchover (the
// pause-before-switchover capability) goes on. state must be the current status.
func (e *Engine) Continue(state Status) error {
	e.mu.Lock()
	j := e.out
	e.mu.Unlock()
	cur := StatusNone
	if j != nil {
		cur = j.status()
	}
	if cur != state {
		return errorf(ErrState, "Migration not in expected state: %s", cur)
	}
	select {
	case j.resume <- struct{}{}:
	default: // already asked
	}
	return nil
}

// maybePause is QEMU's migration_maybe_pause: with pause-before-switchover the stopped
// source waits in pre-switchover for migrate-continue, then moves to next (device or
// postcopy-active); a cancel meanwhile ends it.
func (j *job) maybePause(from, next Status) error {
	if !j.pause {
		return nil
	}
	if !j.setStatus(StatusPreSwitchover, from) {
		return errCancelled
	}
	select {
	case <-j.resume:
	case <-j.cancelCh:
		return errCancelled
	}
	if !j.setStatus(next, StatusPreSwitchover) {
		return errCancelled
	}
	return nil
}

// awaitShut waits for the destination's SHUT after the stream's end (QEMU's
// await_return_path_close_on_source): a SHUT with an error, or a return path that ends
// without one, fails the migration. Without a return path there is nothing to wait for.
func (j *job) awaitShut() error {
	if j.rp == nil {
		return nil
	}
	select {
	case err := <-j.rp.shut:
		return err
	case <-j.cancelCh:
		return errCancelled
	}
}

// errNoShut is a return path that ended before the destination's SHUT.
var errNoShut = errorf(errNoDesc, "return path closed before SHUT")

// errNoDesc marks a failure QEMU 7.2 reports without error-desc (the return path's, printed
// on stderr by its own thread, if at all).
var errNoDesc = errors.New("migration: failed without error-desc")

// shutErr turns a return-path read error into the job's: the destination went away.
func shutErr(err error) error {
	if errors.Is(err, io.EOF) {
		return errNoShut
	}
	return err
}

// inactivateDisks hands the source's images over (stage 3, QEMU mode, the guest stopped):
// QEMU's error text when it fails.
func (j *job) inactivateDisks() error {
	if err := j.disks.Inactivate(); err != nil {
		return wrapf(ErrSave, err, "%v", err)
	}
	j.inactive = true
	return nil
}

// activateDisks takes the images back after a failed or cancelled switchover; a failure
// is reported as QEMU's error_report_err does and leaves them inactive (cont retries).
func (j *job) activateDisks() {
	if !j.inactive {
		return
	}
	if err := j.disks.Activate(); err != nil {
		j.e.report("%v", err)
		return
	}
	j.inactive = false
}
