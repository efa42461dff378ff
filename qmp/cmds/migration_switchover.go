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

// switchover is what the switchover commands need of the migration engine.
type switchover interface {
	Continue(state migration.Status) error
	StartPostcopy() error
	Pause() error
	Recover(uri string, o migration.IncomingOptions) error
}

func registerMigrationSwitchover(r *qmp.Registry, d *Deps) {
	if d.Migration == nil {
		return
	}
	switchoverCommands(r, d.Migration)
}

func switchoverCommands(r *qmp.Registry, e switchover) {
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
