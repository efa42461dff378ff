package cmds

import "tlcvm/qmp"

// HMP drive_del (hmp_drive_del) has no QMP twin; tlcvm's HMP reaches package blockdev's
// DriveDel through this internal command.

// DriveDelArgs names the drive (a -drive id) or node.
type DriveDelArgs struct {
	ID string `json:"id"`
}

func registerDriveDel(r *qmp.Registry, d *Deps) {
	if d.Block == nil {
		return
	}
	r.Register(qmp.Command{Name: "x-tlcvm-drive-del", Internal: true, Args: &DriveDelArgs{},
		Run: func(c *qmp.Call) (any, error) { return nil, d.Block.DriveDel(c.Args.(*DriveDelArgs).ID) }})
}
