package cmds

import (
	"errors"

	"tlcvm/blockdev"
	"tlcvm/qmp"
)

// The removable-media commands (qapi/block.json): the tray (blockdev-open-tray,
// blockdev-close-tray), the medium (blockdev-remove-medium, blockdev-insert-medium), both at
// once (blockdev-change-medium) and the legacy eject, with the DEVICE_TRAY_MOVED event. The
// state machine is blockdev's (media.go); these handlers decode, resolve "id" as QEMU's
// blk_by_qdev_id does and call it.

// OpenTrayArgs are blockdev-open-tray's arguments.
type OpenTrayArgs struct {
	Device *string `json:"device,omitempty" qapi:"deprecated"`
	ID     *string `json:"id,omitempty"`
	Force  *bool   `json:"force,omitempty"`
}

// CloseTrayArgs are blockdev-close-tray's arguments.
type CloseTrayArgs struct {
	Device *string `json:"device,omitempty" qapi:"deprecated"`
	ID     *string `json:"id,omitempty"`
}

// EjectArgs are eject's arguments.
type EjectArgs struct {
	Device *string `json:"device,omitempty" qapi:"deprecated"`
	ID     *string `json:"id,omitempty"`
	Force  *bool   `json:"force,omitempty"`
}

// RemoveMediumArgs are blockdev-remove-medium's arguments.
type RemoveMediumArgs struct {
	ID string `json:"id"`
}

// InsertMediumArgs are blockdev-insert-medium's arguments.
type InsertMediumArgs struct {
	ID       string `json:"id"`
	NodeName string `json:"node-name"`
}

// ReadOnlyMode is BlockdevChangeReadOnlyMode.
type ReadOnlyMode string

// EnumValues implements qmp.Enum.
func (ReadOnlyMode) EnumValues() []string { return []string{"retain", "read-only", "read-write"} }

// ChangeMediumArgs are blockdev-change-medium's arguments.
type ChangeMediumArgs struct {
	Device       *string      `json:"device,omitempty" qapi:"deprecated"`
	ID           *string      `json:"id,omitempty"`
	Filename     string       `json:"filename"`
	Format       *string      `json:"format,omitempty"`
	Force        *bool        `json:"force,omitempty"`
	ReadOnlyMode ReadOnlyMode `json:"read-only-mode,omitempty"`
}

// DeviceTrayMovedData is DEVICE_TRAY_MOVED's data.
type DeviceTrayMovedData struct {
	qmp.QAPIOrder
	Device   string `json:"device"`
	ID       string `json:"id"`
	TrayOpen bool   `json:"tray-open"`
}

// mediaDrives is what the removable-media commands need of the block layer: the tray and
// medium state machine of a backend named by drive name (device) or qdev id.
type mediaDrives interface {
	OpenTray(device, id string, force bool) error
	CloseTray(device, id string) error
	RemoveMedium(id string) error
	InsertMedium(id, nodeName string) error
	ChangeMedium(device, id string, o blockdev.ChangeOptions) error
	Eject(device, id string, force bool) error
}

func registerMedia(r *qmp.Registry, d *Deps) {
	if d.Block == nil {
		return
	}
	mediaCommands(r, d.Block, d.hasDevice)
}

// mediaCommands registers the removable-media commands on g; hasDevice reports whether a
// qdev id names a device (with or without a block backend).
func mediaCommands(r *qmp.Registry, g mediaDrives, hasDevice func(id string) bool) {
	r.RegisterEvent("DEVICE_TRAY_MOVED", DeviceTrayMovedData{})
	// byID refines blockdev's "not found" for an id naming a device that exists but holds no
	// block backend, as blk_by_qdev_id does.
	byID := func(id *string, err error) error {
		if id == nil || !errors.Is(err, blockdev.ErrDeviceNotFound) {
			return err
		}
		if hasDevice(*id) {
			return qmp.GenericError("Device does not have a block device backend")
		}
		return err
	}
	r.Register(
		qmp.Command{Name: "blockdev-open-tray", Args: &OpenTrayArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*OpenTrayArgs)
				return nil, byID(a.ID, g.OpenTray(deref(a.Device), deref(a.ID), derefBool(a.Force)))
			}},
		qmp.Command{Name: "blockdev-close-tray", Args: &CloseTrayArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*CloseTrayArgs)
				return nil, byID(a.ID, g.CloseTray(deref(a.Device), deref(a.ID)))
			}},
		qmp.Command{Name: "blockdev-remove-medium", Args: &RemoveMediumArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*RemoveMediumArgs)
				return nil, byID(&a.ID, g.RemoveMedium(a.ID))
			}},
		qmp.Command{Name: "blockdev-insert-medium", Args: &InsertMediumArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*InsertMediumArgs)
				return nil, byID(&a.ID, g.InsertMedium(a.ID, a.NodeName))
			}},
		qmp.Command{Name: "blockdev-change-medium", Args: &ChangeMediumArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*ChangeMediumArgs)
				return nil, byID(a.ID, g.ChangeMedium(deref(a.Device), deref(a.ID), blockdev.ChangeOptions{
					Filename: a.Filename, Format: deref(a.Format), Force: derefBool(a.Force),
					ReadOnly: blockdev.ReadOnlyMode(a.ReadOnlyMode)}))
			}},
		qmp.Command{Name: "eject", Args: &EjectArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*EjectArgs)
				return nil, byID(a.ID, g.Eject(deref(a.Device), deref(a.ID), derefBool(a.Force)))
			}},
	)
}

func derefBool(b *bool) bool { return b != nil && *b }
