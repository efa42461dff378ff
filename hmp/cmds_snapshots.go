package hmp

import (
	"fmt"
	"time"

	"tlcvm/compat/optval"
)

// HMP's savevm, loadvm, delvm and `info snapshots` (migration/savevm.c hmp_info_snapshots), formatted from the
// internal x-tlcvm-snapshots report, and the snapshot table of `info block -v` images; the
// rows are block/qapi.c bdrv_snapshot_dump's.

type hmpSnapshot struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	VMStateSize int64  `json:"vm-state-size"`
	DateSec     int64  `json:"date-sec"`
	VMClockSec  int64  `json:"vm-clock-sec"`
	VMClockNsec int64  `json:"vm-clock-nsec"`
	ICount      *int64 `json:"icount"`
}

type hmpSnapshotReport struct {
	Error   string        `json:"error"`
	None    bool          `json:"none"`
	Global  []hmpSnapshot `json:"global"`
	Partial []struct {
		Image     string        `json:"image"`
		Snapshots []hmpSnapshot `json:"snapshots"`
	} `json:"partial"`
}

func snapshotCommands() []Command {
	return []Command{
		{Info: true, Name: "snapshots", Params: "", Help: "show the currently saved VM snapshots",
			Run: infoSnapshots},
		// savevm, loadvm and delvm call the operations of QMP's snapshot-save, -load and
		// -delete synchronously, as QEMU's hmp_savevm calls save_snapshot (no job).
		{Name: "savevm", Args: "name:s?", Params: "tag",
			Help: "save a VM snapshot. If no tag is provided, a new snapshot is created",
			Run: func(c *Call) {
				args := map[string]any{}
				if name, ok := c.Args.Str("name"); ok {
					args["name"] = name
				}
				c.Do("x-tlcvm-savevm", args)
			}},
		{Name: "loadvm", Args: "name:s", Params: "tag", Help: "restore a VM snapshot from its tag",
			Run: func(c *Call) { snapshotByName(c, "x-tlcvm-loadvm") }},
		{Name: "delvm", Args: "name:s", Params: "tag", Help: "delete a VM snapshot from its tag",
			Run: func(c *Call) { snapshotByName(c, "x-tlcvm-delvm") }},
		{Name: "snapshot_blkdev_internal", Args: "device:B,name:s", Params: "device name",
			Help: "take an internal snapshot of device.\n\t\t\tThe format of the image used by device must\n\t\t\tsupport it, such as qcow2.\n\t\t\t",
			Run: func(c *Call) {
				device, _ := c.Args.Str("device")
				name, _ := c.Args.Str("name")
				c.Do("blockdev-snapshot-internal-sync", map[string]any{"device": device, "name": name})
			}},
		{Name: "snapshot_delete_blkdev_internal", Args: "device:B,name:s,id:s?", Params: "device name [id]",
			Help: "delete an internal snapshot of device.\n\t\t\tIf id is specified, qemu will try delete\n\t\t\tthe snapshot matching both id and name.\n\t\t\tThe format of the image used by device must\n\t\t\tsupport it, such as qcow2.\n\t\t\t",
			Run: func(c *Call) {
				device, _ := c.Args.Str("device")
				name, _ := c.Args.Str("name")
				args := map[string]any{"device": device, "name": name}
				if id, ok := c.Args.Str("id"); ok {
					args["id"] = id
				}
				c.Do("blockdev-snapshot-delete-internal-sync", args)
			}},
	}
}

// snapshotByName runs the internal command of loadvm or delvm for the tag given.
func snapshotByName(c *Call, cmd string) {
	name, _ := c.Args.Str("name")
	c.Do(cmd, map[string]any{"name": name})
}

func infoSnapshots(c *Call) {
	var r hmpSnapshotReport
	if c.Fail(c.Query("x-tlcvm-snapshots", nil, &r)) {
		return
	}
	switch {
	case r.Error != "":
		c.Printf("%s\n", r.Error) // error_report_err: no "Error: " prefix
		return
	case r.None:
		c.Print("There is no snapshot available.\n")
		return
	}
	c.Print("List of snapshots present on all disks:\n")
	if len(r.Global) == 0 {
		c.Print("None\n")
	} else {
		snapshotTable(c, r.Global)
	}
	for _, p := range r.Partial {
		if len(p.Snapshots) == 0 {
			continue
		}
		c.Printf("\nList of partial (non-loadable) snapshots on '%s':\n", p.Image)
		snapshotTable(c, p.Snapshots)
	}
}

// snapshotTable is bdrv_snapshot_dump's header and one row per snapshot, each followed by
// the caller's newline.
func snapshotTable(c *Call, list []hmpSnapshot) {
	c.Printf("%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT")
	for _, s := range list {
		secs := s.VMClockSec
		clock := fmt.Sprintf("%02d:%02d:%02d.%03d", secs/3600, (secs/60)%60, secs%60, s.VMClockNsec/1000000)
		icount := ""
		if s.ICount != nil {
			icount = fmt.Sprint(*s.ICount)
		}
		date := time.Unix(s.DateSec, 0).Local().Format("2006-01-02 15:04:05")
		c.Printf("%-9s %-16s %8s%20s%13s%11s\n", s.ID, s.Name, optval.SizeString(uint64(s.VMStateSize)), date, clock, icount)
	}
}
