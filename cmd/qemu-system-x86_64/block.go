package main

import (
	"context"
	"fmt"
	"io"
	"os"
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
	for _, d := range cfg.Drives {
		var kvs []blockdev.KV
		for _, kv := range d.List {
			kvs = append(kvs, blockdev.KV{Key: kv.Name, Value: kv.Value})
		}
		if d.ID != "" {
			kvs = append(kvs, blockdev.KV{Key: "id", Value: d.ID})
		}
		b, err := g.AddDrive(kvs, lim)
		if err != nil {
			return fail(d.Loc, err)
		}
		if i := b.Drive.Interface; i == "scsi" || (i == "floppy" && b.Drive.Unit >= 2) {
			return fail(d.Loc, fmt.Errorf("machine type does not support if=%s,bus=%d,unit=%d", i, b.Drive.Bus, b.Drive.Unit))
		}
		boardDrives = append(boardDrives, b)
	}
	// The board plugs floppy and IDE devices for its drives (in bus/unit order); -drive
	// if=virtio becomes an anonymous virtio-blk-pci created after the -device list
	// (virtioDrives).
	if p.machine.Name != "none" {
		unattached := p.mcfg.CPUs + 17
		if q35 {
			unattached = p.mcfg.CPUs + 15
		}
		var err error
		if unattached, err = boardFloppies(g, boardDrives, p.mcfg.CPUs, q35, unattached); err != nil {
			return fail("", err)
		}
		for _, b := range boardDrives {
			if b.Drive.Interface != "ide" {
				continue
			}
			drv := "ide-hd"
			if b.Drive.Media == "cdrom" {
				drv = "ide-cd"
			}
			dev := &blockdev.Device{Driver: drv, Path: fmt.Sprintf("/machine/unattached/device[%d]", unattached)}
			unattached++
			if err := g.AttachDevice(dev, b.Name); err != nil {
				g.Close()
				return nil, failf(cfg, "", "%s", err.Error())
			}
		}
	}
	return g, nil
}

// boardFloppies plugs a floppy device into the board's isa-fdc for each -drive if=floppy
// (units 0 and 1), as pc_superio_init does: the isa-fdc comes right after the PC speaker
// (always on pc, on q35 only when there is a floppy drive), then its floppies, and every
// board device after them (the IDE ones from ide) moves up. It returns the new ide index.
// The device tree places the same floppies on its floppy bus (boardFloppyUnits).
func boardFloppies(g *blockdev.Graph, drives []*blockdev.Backend, cpus int, q35 bool, ide int) (int, error) {
	fdc := cpus + 11 // isa-fdc's device[N]
	if q35 {
		fdc = cpus + 10
	}
	next := fdc + 1
	for unit := 0; unit < 2; unit++ {
		for _, b := range drives {
			if b.Drive.Interface != "floppy" || b.Drive.Unit != unit {
				continue
			}
			dev := &blockdev.Device{Driver: "floppy", Path: fmt.Sprintf("/machine/unattached/device[%d]", next)}
			next++
			if err := g.AttachDevice(dev, b.Name); err != nil {
				return 0, err
			}
		}
	}
	if n := next - fdc - 1; n > 0 {
		ide += n
		if q35 {
			ide++ // the isa-fdc itself
		}
	}
	return ide, nil
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
