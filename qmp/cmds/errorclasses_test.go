package cmds

import (
	"errors"
	"fmt"
	"testing"

	"tlcvm/blockdev"
	"tlcvm/compat/qerror"
	"tlcvm/machine/catalog"
	"tlcvm/migration"
	"tlcvm/nbd"
	"tlcvm/netdev"
	"tlcvm/objects"
	"tlcvm/qdev"
	"tlcvm/qmp"
)

// TestErrorClasses: the one table maps the sentinels of the packages the handlers call to
// QEMU's classes however they are wrapped (qerror with QEMU's text, fmt.Errorf's %w, twice
// over), keeps the text, and leaves every other error a GenericError; a QMP error made by a
// handler passes unchanged.
func TestErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		err         error
		class, desc string
	}{
		{qerror.Errorf(blockdev.ErrDeviceNotFound, "Device '%s' not found", "d"), qmp.ClassDeviceNotFound, "Device 'd' not found"},
		{fmt.Errorf("Block job 'j' not found: %w", blockdev.ErrJobNotActive), qmp.ClassDeviceNotActive,
			"Block job 'j' not found: " + blockdev.ErrJobNotActive.Error()},
		{fmt.Errorf("outer: %w", qerror.Errorf(blockdev.ErrJobNotActive, "Block job 'j' not found")), qmp.ClassDeviceNotActive,
			"outer: Block job 'j' not found"},
		{qerror.Errorf(catalog.ErrNotFound, "Device '%s' not found", "x"), qmp.ClassDeviceNotFound, "Device 'x' not found"},
		{qerror.Errorf(qdev.ErrDeviceNotFound, "Device '%s' not found", "x"), qmp.ClassDeviceNotFound, "Device 'x' not found"},
		{qerror.Errorf(netdev.ErrNotFound, "Device '%s' not found", "n"), qmp.ClassDeviceNotFound, "Device 'n' not found"},
		{qerror.Errorf(objects.ErrDeviceNotFound, "Device '%s' not found", "c"), qmp.ClassDeviceNotFound, "Device 'c' not found"},
		// the other sentinels of the block layer, the engine and the NBD server: GenericError
		{qerror.New(blockdev.ErrNotFound, "Job not found"), qmp.ClassGenericError, "Job not found"},
		{qerror.New(blockdev.ErrInUse, "Tray of device 'cd0' is not open"), qmp.ClassGenericError, "Tray of device 'cd0' is not open"},
		{qerror.New(migration.ErrActive, "There's a migration process in progress"), qmp.ClassGenericError,
			"There's a migration process in progress"},
		{qerror.New(nbd.ErrNotRunning, "NBD server not running"), qmp.ClassGenericError, "NBD server not running"},
		{errors.New("plain"), qmp.ClassGenericError, "plain"},
		{qmp.Errorf(qmp.ClassMigrationExpected, "guest expects an incoming migration"), qmp.ClassMigrationExpected,
			"guest expects an incoming migration"},
		{fmt.Errorf("wrapped: %w", qmp.DeviceNotFound("z")), qmp.ClassDeviceNotFound, "Device 'z' not found"},
	} {
		got := ErrorClasses().ToError(tc.err)
		if got.Class != tc.class || got.Desc != tc.desc {
			t.Errorf("%v: got %s %q, want %s %q", tc.err, got.Class, got.Desc, tc.class, tc.desc)
		}
	}
}
