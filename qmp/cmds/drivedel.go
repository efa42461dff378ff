package cmds

import (
	"fmt"
	"strings"

	"tlcvm/blockdev"
	"tlcvm/compat"
	"tlcvm/qmp"
)

// HMP drive_del and drive_add (hmp_drive_del, hmp_drive_add) have no QMP twin; tlcvm's
// HMP reaches package blockdev's DriveDel and AddDrive through these internal commands.

// legacyDrives is what drive_add and drive_del need of the block layer.
type legacyDrives interface {
	DriveDel(id string) error
	AddDrive(kvs []blockdev.KV, lim blockdev.DriveLimits) (*blockdev.Backend, error)
}

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

// DriveAddArgs is HMP drive_add's option string (-drive's syntax).
type DriveAddArgs struct {
	Opts string `json:"opts"`
}

// blockInterfaceType is QEMU's BlockInterfaceType number, which drive_add prints.
var blockInterfaceType = map[string]int{"none": 0, "ide": 1, "scsi": 2, "floppy": 3, "pflash": 4,
	"mtd": 5, "sd": 6, "virtio": 7, "xen": 8}

func registerDriveAdd(r *qmp.Registry, d *Deps) {
	if d.Block == nil {
		return
	}
	// hmp_drive_add: a -drive made at run time; only if=none stays ("OK").
	r.Register(qmp.Command{Name: "x-tlcvm-drive-add", Internal: true, Args: &DriveAddArgs{}, Returns: TextInfo{},
		Run: func(c *qmp.Call) (any, error) {
			o, err := compat.ParseOpts(c.Args.(*DriveAddArgs).Opts, "")
			if err != nil {
				return nil, err
			}
			kvs := make([]blockdev.KV, 0, len(o.List)+1)
			for _, kv := range o.List {
				kvs = append(kvs, blockdev.KV{Key: kv.Name, Value: kv.Value})
			}
			if o.ID != "" {
				kvs = append(kvs, blockdev.KV{Key: "id", Value: o.ID})
			}
			lim := blockdev.DriveLimits{IDEUnitsPerBus: 2}
			if strings.HasPrefix(d.MachineType, "pc-q35-") {
				lim.IDEUnitsPerBus = 1
			}
			b, err := d.Block.AddDrive(kvs, lim)
			if err != nil {
				return nil, err
			}
			if b.Drive.Interface == "none" {
				return TextInfo{Text: "OK\n"}, nil
			}
			_ = d.Block.DriveDel(b.Name)
			return TextInfo{Text: fmt.Sprintf("Can't hot-add drive to type %d\n", blockInterfaceType[b.Drive.Interface])}, nil
		}})
}
