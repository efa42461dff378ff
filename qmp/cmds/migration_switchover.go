package cmds

import (
	"tlcvm/migration"
	"tlcvm/qmp"
)

// The commands that steer a migration around its switchover (qapi/migration.json):
// migrate-continue (pause-before-switchover), migrate-start-postcopy, migrate-pause and
// migrate-recover (postcopy and its recovery).

// MigrateRecoverArgs are migrate-recover's arguments.
type MigrateRecoverArgs struct {
	URI string `json:"uri"`
}

// MigrateContinueArgs are migrate-continue's arguments.
type MigrateContinueArgs struct {
	State migration.Status `json:"state"`
}

func registerMigrationSwitchover(r *qmp.Registry, d *Deps) {
	e := d.Migration
	if e == nil {
		return
	}
	r.Register(
		qmp.Command{Name: "migrate-continue", Args: &MigrateContinueArgs{}, Run: func(c *qmp.Call) (any, error) {
			return nil, e.Continue(c.Args.(*MigrateContinueArgs).State)
		}},
		qmp.Command{Name: "migrate-start-postcopy", Run: func(*qmp.Call) (any, error) {
			return nil, e.StartPostcopy()
		}},
		qmp.Command{Name: "migrate-pause", Run: func(*qmp.Call) (any, error) {
			return nil, e.Pause()
		}},
		qmp.Command{Name: "migrate-recover", Args: &MigrateRecoverArgs{}, Run: func(c *qmp.Call) (any, error) {
			var o migration.IncomingOptions
			if c.Session != nil {
				o.LookupFD = c.Session.FDParam
			}
			return nil, e.Recover(c.Args.(*MigrateRecoverArgs).URI, o)
		}},
	)
}
