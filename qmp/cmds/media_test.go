package cmds

import (
	"testing"

	"tlcvm/blockdev"
	"tlcvm/compat/qerror"
	"tlcvm/qmp"
)

// TestMediaCommands: the removable-media commands' arguments as the block layer gets them,
// QEMU 7.2's texts for bad arguments, and the block layer's errors under their QMP classes
// (blk_by_qdev_id's "Device does not have a block device backend" for an id that names a
// device without one).
func TestMediaCommands(t *testing.T) {
	notFound := func(id string) error { return qerror.Errorf(blockdev.ErrDeviceNotFound, "Device '%s' not found", id) }
	trayClosed := qerror.Errorf(blockdev.ErrInUse, "Tray of device 'cd0' is not open")
	locked := qerror.Errorf(blockdev.ErrLocked, "Device 'ide1-cd0' is locked and force was not specified, wait for tray to open and try again")
	cases := []handlerCase{
		{cmd: `{"execute":"blockdev-open-tray","arguments":{"id":"cd0"}}`,
			calls: `OpenTray "" "cd0" false`, want: `{}`},
		{cmd: `{"execute":"blockdev-open-tray","arguments":{"device":"ide1-cd0","force":true}}`,
			calls: `OpenTray "ide1-cd0" "" true`, want: `{}`},
		{cmd: `{"execute":"blockdev-open-tray","arguments":{"id":"cd0","force":1}}`,
			want: `GenericError: Invalid parameter type for 'force', expected: boolean`},
		{cmd: `{"execute":"blockdev-open-tray","arguments":{"id":"cd9"}}`, err: notFound("cd9"),
			calls: `OpenTray "" "cd9" false`, want: `DeviceNotFound: Device 'cd9' not found`},
		{cmd: `{"execute":"blockdev-open-tray","arguments":{"id":"net0"}}`, err: notFound("net0"),
			calls: `OpenTray "" "net0" false`, want: `GenericError: Device does not have a block device backend`},
		{cmd: `{"execute":"blockdev-open-tray","arguments":{"device":"net0"}}`, err: notFound("net0"),
			calls: `OpenTray "net0" "" false`, want: `DeviceNotFound: Device 'net0' not found`},
		{cmd: `{"execute":"blockdev-open-tray","arguments":{"device":"ide1-cd0"}}`, err: locked,
			calls: `OpenTray "ide1-cd0" "" false`, want: `GenericError: ` + locked.Error()},
		{cmd: `{"execute":"blockdev-close-tray","arguments":{"id":"cd0"}}`,
			calls: `CloseTray "" "cd0"`, want: `{}`},
		{cmd: `{"execute":"blockdev-close-tray","arguments":{"id":"net0"}}`, err: notFound("net0"),
			calls: `CloseTray "" "net0"`, want: `GenericError: Device does not have a block device backend`},
		{cmd: `{"execute":"blockdev-close-tray","arguments":{"id":"cd0","force":true}}`,
			want: `GenericError: Parameter 'force' is unexpected`},
		{cmd: `{"execute":"blockdev-remove-medium"}`, want: `GenericError: Parameter 'id' is missing`},
		{cmd: `{"execute":"blockdev-remove-medium","arguments":{"id":"cd0"}}`, err: trayClosed,
			calls: `RemoveMedium "cd0"`, want: `GenericError: Tray of device 'cd0' is not open`},
		{cmd: `{"execute":"blockdev-remove-medium","arguments":{"id":"net0"}}`, err: notFound("net0"),
			calls: `RemoveMedium "net0"`, want: `GenericError: Device does not have a block device backend`},
		{cmd: `{"execute":"blockdev-insert-medium","arguments":{"id":"cd0","node-name":"img"}}`,
			calls: `InsertMedium "cd0" "img"`, want: `{}`},
		{cmd: `{"execute":"blockdev-insert-medium","arguments":{"id":"cd0"}}`,
			want: `GenericError: Parameter 'node-name' is missing`},
		{cmd: `{"execute":"blockdev-insert-medium","arguments":{"id":"cd9","node-name":"img"}}`, err: notFound("cd9"),
			calls: `InsertMedium "cd9" "img"`, want: `DeviceNotFound: Device 'cd9' not found`},
		{cmd: `{"execute":"blockdev-change-medium","arguments":{"id":"cd0","filename":"/a.iso","format":"raw","force":true,"read-only-mode":"read-only"}}`,
			calls: `ChangeMedium "" "cd0" {Filename:/a.iso Format:raw Force:true ReadOnly:read-only}`, want: `{}`},
		{cmd: `{"execute":"blockdev-change-medium","arguments":{"device":"ide1-cd0","filename":"/a.iso"}}`,
			calls: `ChangeMedium "ide1-cd0" "" {Filename:/a.iso Format: Force:false ReadOnly:}`, want: `{}`},
		{cmd: `{"execute":"blockdev-change-medium","arguments":{"id":"cd0","filename":"f","read-only-mode":"bad"}}`,
			want: `GenericError: Parameter 'read-only-mode' does not accept value 'bad'`},
		{cmd: `{"execute":"blockdev-change-medium","arguments":{"id":"cd0"}}`,
			want: `GenericError: Parameter 'filename' is missing`},
		{cmd: `{"execute":"blockdev-change-medium","arguments":{"id":"net0","filename":"f"}}`, err: notFound("net0"),
			calls: `ChangeMedium "" "net0" {Filename:f Format: Force:false ReadOnly:}`,
			want:  `GenericError: Device does not have a block device backend`},
		{cmd: `{"execute":"eject","arguments":{"id":"cd0","force":true}}`,
			calls: `Eject "" "cd0" true`, want: `{}`},
		{cmd: `{"execute":"eject","arguments":{"id":"x","bogus":1}}`,
			want: `GenericError: Parameter 'bogus' is unexpected`},
		{cmd: `{"execute":"eject","arguments":{"device":"ide1-cd0"}}`, err: locked,
			calls: `Eject "ide1-cd0" "" false`, want: `GenericError: ` + locked.Error()},
		{cmd: `{"execute":"eject","arguments":{"id":"net0"}}`, err: notFound("net0"),
			calls: `Eject "" "net0" false`, want: `GenericError: Device does not have a block device backend`},
	}
	hasDevice := func(id string) bool { return id == "net0" }
	runHandlerCases(t, cases, newFakeBlock, func(r *qmp.Registry, f *fakeBlock) { mediaCommands(r, f, hasDevice) })
}
