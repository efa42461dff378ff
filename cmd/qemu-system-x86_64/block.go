package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"tlcvm/blockdev"
	"tlcvm/compat"
	"tlcvm/compat/optval"
	"tlcvm/machine"
	"tlcvm/qmp"
	"tlcvm/qmp/cmds"
)

// buildBlock opens the block graph as QEMU's configure_blockdev does: every -blockdev in
// order, then every -drive (the defaults last), then the board's devices for if=floppy and
// if=ide drives.
// The disk -devices and the virtio-blk-pci of if=virtio drives are linked to it when the
// device tree creates them (devices.go).
func buildBlock(p *plan, stderr io.Writer, emit func(string, any)) (*blockdev.Graph, error) {
	cfg := p.cfg
	g := blockdev.New(blockdev.Config{Warn: stderr, Stdout: os.Stdout, Events: cmds.BlockEvents(emit)})
	// Under -incoming the images open inactive (QEMU's BDRV_O_INACTIVE in inmigrate): the
	// source still owns them until the migration completes.
	g.SetIncoming(cfg.Incoming != "")
	fail := func(loc string, err error) (*blockdev.Graph, error) {
		g.Close()
		return nil, failAt(cfg, loc, err)
	}
	for _, b := range cfg.Blockdevs {
		o, err := blockdevOptions(b)
		if err != nil {
			return fail(b.Loc, err)
		}
		if _, err := g.Add(o); err != nil {
			return fail(b.Loc, err)
		}
	}
	q35 := strings.HasPrefix(p.machine.Name, "pc-q35-")
	lim := blockdev.DriveLimits{IDEUnitsPerBus: 2}
	if q35 {
		lim.IDEUnitsPerBus = 1
	}
	var boardDrives []*blockdev.Backend
	type orphan struct {
		loc   string
		drive *blockdev.Drive
	}
	var orphans []orphan
	for _, d := range cfg.Drives {
		var kvs []blockdev.KV
		for _, kv := range d.List {
			kvs = append(kvs, blockdev.KV{Key: kv.Name, Value: kv.Value})
		}
		if d.ID != "" {
			kvs = append(kvs, blockdev.KV{Key: "id", Value: d.ID})
		}
		b, err := g.AddDrive(kvs, lim)
		if d.Default && errors.Is(err, blockdev.ErrDriveSlot) {
			continue // vl.c default_drive: the command line's drive holds its index
		}
		if err != nil {
			return fail(d.Loc, err)
		}
		if boardUses(p.machine.Name, b.Drive) {
			boardDrives = append(boardDrives, b)
		} else if !d.Default {
			orphans = append(orphans, orphan{d.Loc, b.Drive})
		}
	}
	// drive_check_orphaned: a drive of an interface the board has no device for (or
	// beyond its units) is an error, every one reported; a default drive is not.
	for i, o := range orphans {
		err := fmt.Errorf("machine type does not support if=%s,bus=%d,unit=%d", o.drive.Interface, o.drive.Bus, o.drive.Unit)
		if i == len(orphans)-1 {
			return fail(o.loc, err)
		}
		fmt.Fprintln(stderr, failAt(cfg, o.loc, err))
	}
	// The board plugs floppy and IDE devices for its drives: the floppies in unit order
	// (pc_superio_init), the IDE ones in index order (pci_ide_create_devs). Their QOM paths
	// are numbered among the board's other devices, known once the device tree is built
	// (placeBoardDrives); -drive if=virtio becomes an anonymous virtio-blk-pci created
	// after the -device list (virtioDrives).
	{
		slices.SortStableFunc(boardDrives, func(a, b *blockdev.Backend) int {
			return cmp.Compare(a.Drive.Index, b.Drive.Index)
		})
		for _, iface := range []string{"floppy", "ide"} {
			for _, b := range boardDrives {
				if b.Drive.Interface != iface {
					continue
				}
				drv := iface
				if iface == "ide" {
					drv = map[bool]string{false: "ide-hd", true: "ide-cd"}[b.Drive.Media == "cdrom"]
				}
				if err := g.AttachDevice(&blockdev.Device{Driver: drv}, b.Name); err != nil {
					g.Close()
					return nil, failf(cfg, "", "%s", err.Error())
				}
			}
		}
	}
	return g, nil
}

// boardUses reports whether the board makes a device for a -drive: pc_superio_init a
// floppy for units 0 and 1, pc_init1 an IDE device on the PIIX3's two buses of two units,
// pc_q35_init on the AHCI's six ports; any bus for if=none and if=virtio (a -device or
// the anonymous virtio-blk-pci takes them).
func boardUses(machine string, d *blockdev.Drive) bool {
	switch {
	case d.Interface == "none" || d.Interface == "virtio":
		return true
	case machine == "none":
		return false
	case d.Interface == "floppy":
		return d.Unit < 2
	case d.Interface == "ide":
		return d.Bus < 2 || (strings.HasPrefix(machine, "pc-q35-") && d.Bus < 6)
	case d.Interface == "pflash":
		return true // the system firmware's flash (tlcvm's board has no pflash device)
	}
	return false
}

// placeBoardDrives gives the devices the board made for its floppy and IDE drives their
// QOM paths: the board numbers /machine/unattached/device[N] in creation order
// (memtree.Board.UnattachedDevices), the floppies after the isa-fdc, the IDE drives after
// the IDE controller, so where they sit depends on the devices the board made before them
// (displays, serial and parallel ports, HPET, -net nic NICs).
func (v *vm) placeBoardDrives() {
	if v.block == nil || v.plan.machine.Name == "none" {
		return
	}
	owners := v.board().UnattachedDevices()
	g := v.block
	g.Lock()
	defer g.Unlock()
	drives := map[string][]*blockdev.Backend{}
	for _, b := range g.BackendsLocked() {
		if b.Drive != nil && b.Device != nil && (b.Drive.Interface == "floppy" || b.Drive.Interface == "ide") {
			drives[b.Drive.Interface] = append(drives[b.Drive.Interface], b)
		}
	}
	for iface, key := range map[string]string{"floppy": "floppy", "ide": "ide-drive"} {
		list := drives[iface]
		slices.SortStableFunc(list, func(a, b *blockdev.Backend) int { return cmp.Compare(a.Drive.Index, b.Drive.Index) })
		for i, b := range list {
			k := key
			if len(list) > 1 {
				k = fmt.Sprintf("%s#%d", key, i)
			}
			if o := owners[k]; o != nil {
				b.Device.Path = o.Path
			}
		}
	}
}

// boardFloppyUnits are the units of the board's -drive if=floppy drives, which the device
// tree's floppy bus holds before any -device floppy.
func boardFloppyUnits(g *blockdev.Graph) []int {
	g.Lock()
	defer g.Unlock()
	var out []int
	for _, b := range g.BackendsLocked() {
		if b.Drive != nil && b.Drive.Interface == "floppy" && b.Device != nil {
			out = append(out, b.Drive.Unit)
		}
	}
	return out
}

// guestMedia is the guest's side of the block layer's removable media (machine.Media):
// the graph is built after the machine, and the guest only reaches it once it runs.
type guestMedia struct{ v *vm }

func (m guestMedia) LockTrays() {
	if m.v.block != nil {
		m.v.block.LockTrays()
	}
}

// virtioDrives names the -drive if=virtio backends, in order: each becomes an anonymous
// virtio-blk-pci.
func virtioDrives(g *blockdev.Graph) []string {
	g.Lock()
	defer g.Unlock()
	var out []string
	for _, b := range g.BackendsLocked() {
		if b.Drive != nil && b.Drive.Interface == "virtio" {
			out = append(out, b.Name)
		}
	}
	return out
}

// blockdevOptions decodes a -blockdev: the JSON form as QMP's blockdev-add arguments, the
// keyval form with its string values typed by the member they set (QEMU's keyval visitor).
func blockdevOptions(b compat.Blockdev) (*blockdev.Options, error) {
	var v *qmp.Value
	if b.JSON != nil {
		pv, err := qmp.ParseValue([]byte(b.JSON.Raw))
		if err != nil {
			return nil, err
		}
		v = pv
	} else {
		root := qmp.Object()
		for _, kv := range b.Keyval.Pairs {
			parts := strings.Split(kv.Name, ".")
			obj := root
			for _, p := range parts[:len(parts)-1] {
				next := obj.Get(p)
				if next == nil || next.Kind() != qmp.KindObject {
					next = qmp.Object()
					obj.Set(p, next)
				}
				obj = next
			}
			val, err := keyvalScalar(kv.Name, parts[len(parts)-1], kv.Value)
			if err != nil {
				return nil, err
			}
			obj.Set(parts[len(parts)-1], val)
		}
		v = root
	}
	a, err := qmp.DecodeArgs(v, &cmds.BlockdevOptions{})
	if err != nil {
		return nil, err
	}
	return cmds.BlockOptions(a.(*cmds.BlockdevOptions)), nil
}

var (
	keyvalBools = map[string]bool{"read-only": true, "auto-read-only": true, "force-share": true, "direct": true,
		"no-flush": true, "lazy-refcounts": true, "read-zeroes": true, "drop-cache": true, "x-check-cache-dropped": true}
	keyvalInts = map[string]bool{"offset": true, "size": true, "latency-ns": true, "cache-size": true, "aio-max-batch": true}
)

// keyvalScalar types a keyval string as the member it sets expects, as QEMU's keyval input
// visitor does (qapi_bool_parse, qemu_strtoi64).
func keyvalScalar(full, key, s string) (*qmp.Value, error) {
	switch {
	case keyvalBools[key]:
		if b, ok := optval.Bool(s, optval.QAPIWords); ok {
			return qmp.Bool(b), nil
		}
		return nil, qmp.GenericError("Parameter '%s' expects 'on' or 'off'", full)
	case keyvalInts[key]:
		n, err := optval.Int64(s)
		if err != nil {
			return nil, qmp.GenericError("Parameter '%s' expects integer", full)
		}
		return qmp.Int(n), nil
	}
	return qmp.String(s), nil
}

// guestDisk resolves a disk= name of the guest workload: a disk device's id, else a
// drive's name (machine.DiskResolver).
func (v *vm) guestDisk(name string) (machine.Disk, bool) {
	if v.block == nil {
		return nil, false
	}
	if b, ok := v.block.DeviceBackend(name); ok {
		return guestDisk{v, b}, true
	}
	if b, ok := v.block.Backend(name); ok {
		return guestDisk{v, b}, true
	}
	return nil, false
}

// guestDisk adapts a block backend to the guest's disk driver: its writes go through the
// backend as a device's do (throttled, accounted), and a failed request follows the
// device's werror/rerror as QEMU's virtio-blk does (blockdev's IOError).
type guestDisk struct {
	v *vm
	b *blockdev.Backend
}

func (d guestDisk) WriteAt(ctx context.Context, p []byte, off int64) error {
	return d.failed(ctx, false, d.b.Write(ctx, p, off))
}
func (d guestDisk) ReadAt(ctx context.Context, p []byte, off int64) error {
	return d.failed(ctx, true, d.b.Read(ctx, p, off))
}

// failed applies the error policy to a request's result: report returns the error,
// ignore success; stop stops the VM in io-error and waits for the pause to end the
// request (ctx), so that the guest makes it again once the VM runs.
func (d guestDisk) failed(ctx context.Context, read bool, err error) error {
	if err == nil || ctx.Err() != nil {
		return err
	}
	switch d.v.block.IOError(d.b, read, err) {
	case blockdev.ActionIgnore:
		return nil
	case blockdev.ActionStop:
		if d.v.machine != nil {
			go d.v.machine.StopForIOError()
			<-ctx.Done()
			return ctx.Err()
		}
	}
	return err
}
func (d guestDisk) Size() int64 { return d.b.Size() }
