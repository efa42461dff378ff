package cmds

import (
	"io"

	"tlcvm/blockdev"
	"tlcvm/qmp"
)

// The block layer's I/O controls: block_set_io_throttle (I/O limits and throttle groups)
// and block-set-write-threshold with its BLOCK_WRITE_THRESHOLD event, calling package
// blockdev; query-block shows the limits (BlockDeviceInfo's bps… group members) and
// query-named-block-nodes the thresholds.

// BlockIOThrottle is block_set_io_throttle's argument (qapi/block.json).
type BlockIOThrottle struct {
	Device *string `json:"device,omitempty" qapi:"deprecated"`
	ID     *string `json:"id,omitempty"`
	Bps    int64   `json:"bps"`
	BpsRd  int64   `json:"bps_rd"`
	BpsWr  int64   `json:"bps_wr"`
	Iops   int64   `json:"iops"`
	IopsRd int64   `json:"iops_rd"`
	IopsWr int64   `json:"iops_wr"`
	ThrottleBursts
}

// ThrottleBursts are the optional members BlockIOThrottle and BlockDeviceInfo share, in
// their order: the burst rates and lengths, iops_size and the group.
type ThrottleBursts struct {
	BpsMax          *int64  `json:"bps_max,omitempty"`
	BpsRdMax        *int64  `json:"bps_rd_max,omitempty"`
	BpsWrMax        *int64  `json:"bps_wr_max,omitempty"`
	IopsMax         *int64  `json:"iops_max,omitempty"`
	IopsRdMax       *int64  `json:"iops_rd_max,omitempty"`
	IopsWrMax       *int64  `json:"iops_wr_max,omitempty"`
	BpsMaxLength    *int64  `json:"bps_max_length,omitempty"`
	BpsRdMaxLength  *int64  `json:"bps_rd_max_length,omitempty"`
	BpsWrMaxLength  *int64  `json:"bps_wr_max_length,omitempty"`
	IopsMaxLength   *int64  `json:"iops_max_length,omitempty"`
	IopsRdMaxLength *int64  `json:"iops_rd_max_length,omitempty"`
	IopsWrMaxLength *int64  `json:"iops_wr_max_length,omitempty"`
	IopsSize        *int64  `json:"iops_size,omitempty"`
	Group           *string `json:"group,omitempty"`
}

// QemuIOArgs are x-tlcvm-qemu-io's arguments (HMP qemu-io: no QMP twin in QEMU 7.2).
type QemuIOArgs struct {
	Device  string `json:"device"`
	Qdev    bool   `json:"qdev"`
	Command string `json:"command"`
}

// QemuIOInfo is what x-tlcvm-qemu-io leaves for the monitor (the command's own output goes
// to the process's stdout, as QEMU's).
type QemuIOInfo struct {
	Text string `json:"text"`
}

// BlockSetWriteThresholdArgs are block-set-write-threshold's arguments.
type BlockSetWriteThresholdArgs struct {
	NodeName       string `json:"node-name"`
	WriteThreshold uint64 `json:"write-threshold"`
}

// BlockWriteThresholdData is BLOCK_WRITE_THRESHOLD's data.
type BlockWriteThresholdData struct {
	qmp.QAPIOrder
	NodeName       string `json:"node-name"`
	AmountExceeded uint64 `json:"amount-exceeded"`
	WriteThreshold uint64 `json:"write-threshold"`
}

// ioControls is what the I/O control commands need of the block layer: a backend's
// throttling, a node's write threshold, and HMP qemu-io's commands on a backend.
type ioControls interface {
	SetIOThrottle(a blockdev.ThrottleArgs) error
	SetWriteThreshold(nodeName string, v uint64) error
	QemuIO(device string, qdev bool, command string, out io.Writer) (monitor string, err error)
}

func registerBlockIO(r *qmp.Registry, d *Deps) {
	if d.Block == nil {
		return
	}
	blockIOCommands(r, d.Block, d.Stdout)
}

// blockIOCommands registers the I/O control commands on g; qemu-io prints to stdout (nil:
// discarded).
func blockIOCommands(r *qmp.Registry, g ioControls, stdout io.Writer) {
	r.RegisterEvent("BLOCK_WRITE_THRESHOLD", BlockWriteThresholdData{})
	r.Register(
		qmp.Command{Name: "block_set_io_throttle", Args: &BlockIOThrottle{},
			Run: func(c *qmp.Call) (any, error) {
				return nil, g.SetIOThrottle(ThrottleArgs(c.Args.(*BlockIOThrottle)))
			}},
		qmp.Command{Name: "x-tlcvm-qemu-io", Internal: true, Args: &QemuIOArgs{}, Returns: QemuIOInfo{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*QemuIOArgs)
				out := stdout
				if out == nil {
					out = io.Discard
				}
				text, err := g.QemuIO(a.Device, a.Qdev, a.Command, out)
				return QemuIOInfo{Text: text}, err
			}},
		qmp.Command{Name: "block-set-write-threshold", Args: &BlockSetWriteThresholdArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*BlockSetWriteThresholdArgs)
				return nil, g.SetWriteThreshold(a.NodeName, a.WriteThreshold)
			}},
	)
}

// ThrottleArgs converts block_set_io_throttle's argument as qmp_block_set_io_throttle
// fills its ThrottleConfig (the QAPI ints stored in unsigned fields, as C converts them).
func ThrottleArgs(a *BlockIOThrottle) blockdev.ThrottleArgs {
	c := blockdev.NewThrottleConfig()
	b := &c.Buckets
	avg := []int64{a.Bps, a.BpsRd, a.BpsWr, a.Iops, a.IopsRd, a.IopsWr}
	maxes := []*int64{a.BpsMax, a.BpsRdMax, a.BpsWrMax, a.IopsMax, a.IopsRdMax, a.IopsWrMax}
	lengths := []*int64{a.BpsMaxLength, a.BpsRdMaxLength, a.BpsWrMaxLength, a.IopsMaxLength, a.IopsRdMaxLength, a.IopsWrMaxLength}
	for i := range b {
		b[i].Avg = uint64(avg[i])
		if maxes[i] != nil {
			b[i].Max = uint64(*maxes[i])
		}
		if lengths[i] != nil {
			b[i].BurstLength = uint64(*lengths[i])
		}
	}
	if a.IopsSize != nil {
		c.OpSize = uint64(*a.IopsSize)
	}
	return blockdev.ThrottleArgs{Device: deref(a.Device), ID: deref(a.ID), Config: c, Group: a.Group}
}

// throttleInfo fills BlockDeviceInfo's limits from a backend's throttling, as
// bdrv_block_device_info does: the averages always, a burst rate and its length only when
// set, iops_size when set, the group name while throttled.
func throttleInfo(info *BlockDeviceInfo, t blockdev.ThrottleInfo) {
	if !t.Enabled {
		return
	}
	b := t.Config.Buckets
	avg := []*int64{&info.Bps, &info.BpsRd, &info.BpsWr, &info.Iops, &info.IopsRd, &info.IopsWr}
	maxes := []**int64{&info.BpsMax, &info.BpsRdMax, &info.BpsWrMax, &info.IopsMax, &info.IopsRdMax, &info.IopsWrMax}
	lengths := []**int64{&info.BpsMaxLength, &info.BpsRdMaxLength, &info.BpsWrMaxLength, &info.IopsMaxLength,
		&info.IopsRdMaxLength, &info.IopsWrMaxLength}
	for i := range b {
		*avg[i] = int64(b[i].Avg)
		if b[i].Max != 0 {
			m, l := int64(b[i].Max), int64(b[i].BurstLength)
			*maxes[i], *lengths[i] = &m, &l
		}
	}
	if t.Config.OpSize != 0 {
		s := int64(t.Config.OpSize)
		info.IopsSize = &s
	}
	group := t.Group
	info.Group = &group
}
