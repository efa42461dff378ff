package cmds

import (
	"tlcvm/migration"
	"tlcvm/qmp"
)

// The commands that steer a migration around its switchover (qapi/migration.json):
// migrate-continue (pause-before-switchover).

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
	)
}
