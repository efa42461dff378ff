package cmds

import (
	"tlcvm/blockdev"
	"tlcvm/qmp"
)

// Internal snapshots of qcow2 images: SnapshotInfo, as query-block and
// query-named-block-nodes list them in an image's info, and the internal command behind
// HMP's `info snapshots`, which has no QMP twin in QEMU.

// SnapshotInfo is one internal snapshot (qapi/block-core.json).
type SnapshotInfo struct {
	qmp.QAPIOrder
	ID          string `json:"id"`
	Name        string `json:"name"`
	VMStateSize int64  `json:"vm-state-size"`
	DateSec     int64  `json:"date-sec"`
	DateNsec    int64  `json:"date-nsec"`
	VMClockSec  int64  `json:"vm-clock-sec"`
	VMClockNsec int64  `json:"vm-clock-nsec"`
	ICount      *int64 `json:"icount,omitempty"`
}

func snapshotInfos(list []blockdev.Snapshot) []SnapshotInfo {
	out := make([]SnapshotInfo, 0, len(list))
	for _, s := range list {
		si := SnapshotInfo{ID: s.ID, Name: s.Name, VMStateSize: int64(s.VMStateSize), DateSec: s.DateSec,
			DateNsec: s.DateNsec, VMClockSec: int64(s.VMClockNsec / 1e9), VMClockNsec: int64(s.VMClockNsec % 1e9)}
		if s.ICount != -1 {
			ic := s.ICount
			si.ICount = &ic
		}
		out = append(out, si)
	}
	return out
}

// imageSnapshots is the "snapshots" member of n's ImageInfo: present when it has any.
func imageSnapshots(n *blockdev.Node) []SnapshotInfo {
	list, err := n.Snapshots()
	if err != nil || len(list) == 0 {
		return nil
	}
	return snapshotInfos(list)
}

// SnapshotReportInfo is x-tlcvm-snapshots' answer: Error (printed as it is), or None, or
// the global and partial snapshots of `info snapshots`.
type SnapshotReportInfo struct {
	Error   string               `json:"error,omitempty"`
	None    bool                 `json:"none,omitempty"`
	Global  []SnapshotInfo       `json:"global"`
	Partial []ImageSnapshotsInfo `json:"partial"`
}

// ImageSnapshotsInfo is one image's partial snapshots.
type ImageSnapshotsInfo struct {
	Image     string         `json:"image"`
	Snapshots []SnapshotInfo `json:"snapshots"`
}

// snapshotReporter is what `info snapshots` needs of the block layer.
type snapshotReporter interface {
	SnapshotReport() blockdev.SnapshotReport
}

func snapshotCommands(d *Deps) []qmp.Command {
	if d.Block == nil {
		return nil
	}
	return snapshotReportCommands(d.Block)
}

func snapshotReportCommands(g snapshotReporter) []qmp.Command {
	return []qmp.Command{
		{Name: "x-tlcvm-snapshots", Internal: true, Returns: SnapshotReportInfo{},
			Run: func(*qmp.Call) (any, error) {
				r := g.SnapshotReport()
				out := SnapshotReportInfo{None: r.None, Global: snapshotInfos(r.Global), Partial: []ImageSnapshotsInfo{}}
				if r.Err != nil {
					out.Error = r.Err.Error()
				}
				for _, p := range r.Partial {
					out.Partial = append(out.Partial, ImageSnapshotsInfo{Image: p.Image, Snapshots: snapshotInfos(p.Snapshots)})
				}
				return out, nil
			}},
	}
}
