package machine

import "fmt"

// PauseVCPUs parks every vCPU synchronously without changing the run state (a
// stop-the-world window, e.g. for a checkpoint's setup) and returns the function that
// releases them. The guest clock stops meanwhile. Do not change the run state while
// the world is stopped.
func (m *Machine) PauseVCPUs() (release func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	wasRunning := m.state == StateRunning
	m.ctl.pause()
	m.clock.stop()
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if wasRunning && m.state == StateRunning {
			m.clock.start()
			m.ctl.resume()
		}
	}
}

// EnterFinishMigrate is QEMU's vm_stop_force_state(RUN_STATE_FINISH_MIGRATE) at the
// start of a migration's last stage: a running VM stops (STOP) and EnterFinishMigrate
// returns once every vCPU is parked; any other state moves to finish-migrate silently.
// wasRunning tells LeaveFinishMigrate what to restore on failure.
func (m *Machine) EnterFinishMigrate() (wasRunning bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.finishFrom = m.state
	if m.state == StateRunning {
		m.vmStop(StateFinishMigrate)
		return true, nil
	}
	if err := m.tryTransition(StateFinishMigrate, true); err != nil {
		return false, err
	}
	m.ctl.pause()
	return false, nil
}

// LeaveFinishMigrate ends the last stage. resume=true starts the VM again (RESUME): the
// TLC checkpoint semantics, and QEMU's on a failed or cancelled migration of a VM that
// was running. resume=false moves to postmigrate (QEMU after a completed migration).
func (m *Machine) LeaveFinishMigrate(resume bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != StateFinishMigrate {
		return fmt.Errorf("%w: not in finish-migrate but %s", ErrInvalidTransition, m.state)
	}
	if resume {
		m.vmStart()
		return nil
	}
	m.transition(StatePostMigrate, false)
	return nil
}

// ReturnFromFinishMigrate ends the last stage of a checkpoint that keeps the VM (x-tlc):
// the VM goes back to the state it was in at EnterFinishMigrate — running again (RESUME),
// paused, or prelaunch. A state with no edge back from finish-migrate ends in postmigrate,
// as QEMU's does.
func (m *Machine) ReturnFromFinishMigrate() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != StateFinishMigrate {
		return fmt.Errorf("%w: not in finish-migrate but %s", ErrInvalidTransition, m.state)
	}
	switch m.finishFrom {
	case StateRunning:
		m.vmStart()
	case StatePaused, StatePrelaunch:
		m.transition(m.finishFrom, false)
	default:
		m.transition(StatePostMigrate, false)
	}
	return nil
}

// IncomingDone ends an incoming migration (QEMU's process_incoming_migration_bh). src
// is the run state the source saved (known=false when the stream carried none): a
// source that was running (or unknown) starts here if autostart (RESUME), else pauses;
// otherwise the destination takes the source's state (prelaunch for a never-started
// source, paused, postmigrate …).
func (m *Machine) IncomingDone(src RunState, known bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != StateInMigrate {
		return fmt.Errorf("%w: not in inmigrate but %s", ErrInvalidTransition, m.state)
	}
	if !known || src == StateRunning {
		if m.autostart {
			m.vmStart()
			return nil
		}
		m.transition(StatePaused, false)
		return nil
	}
	return m.tryTransition(src, false)
}
