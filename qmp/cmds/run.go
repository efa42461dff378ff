package cmds

import (
	"tlcvm/machine"
	"tlcvm/qmp"
)

// StatusInfo is query-status's reply.
type StatusInfo struct {
	qmp.QAPIOrder
	Running    bool   `json:"running"`
	Singlestep bool   `json:"singlestep"`
	Status     string `json:"status"`
}

// ioStatusResetter is what cont needs of the block layer: every device's io-status back to
// ok (blk_iostatus_reset).
type ioStatusResetter interface{ ResetIOStatus() }

func registerRun(r *qmp.Registry, d *Deps) {
	m := d.Machine
	r.Register(
		qmp.Command{Name: "query-status", Returns: StatusInfo{}, AllowPreconfig: true,
			Run: func(*qmp.Call) (any, error) {
				s, running := m.Status()
				return StatusInfo{Status: s.String(), Running: running}, nil
			}},
		qmp.Command{Name: "stop", Run: func(*qmp.Call) (any, error) { return nil, m.Stop() }},
		qmp.Command{Name: "cont", Run: func(*qmp.Call) (any, error) {
			// qmp_cont refuses while a dump runs (the guest must not change under it),
			// then resets the devices' io-status (blk_iostatus_reset) once it goes on.
			if d.Dumper != nil {
				if err := d.Dumper.Busy(); err != nil {
					return nil, err
				}
			}
			switch s, _ := m.Status(); s {
			case machine.StateShutdown, machine.StateInternalError, machine.StateSuspended, machine.StateFinishMigrate:
			default:
				if d.Block != nil {
					d.Block.ResetIOStatus()
				}
			}
			return nil, m.Cont()
		}},
		qmp.Command{Name: "system_reset", Run: func(*qmp.Call) (any, error) {
			m.Reset("host-qmp-system-reset")
			return nil, nil
		}},
		qmp.Command{Name: "system_powerdown", Run: func(*qmp.Call) (any, error) {
			m.Powerdown()
			return nil, nil
		}},
		qmp.Command{Name: "quit", AllowPreconfig: true, Run: func(*qmp.Call) (any, error) {
			// SHUTDOWN precedes the reply, as QEMU 7.2 sends them.
			m.Quit()
			return nil, nil
		}},
	)
}
