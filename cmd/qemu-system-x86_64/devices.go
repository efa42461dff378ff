package main

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"tlcvm/blockdev"
	"tlcvm/compat"
	"tlcvm/compat/qerror"
	"tlcvm/qdev"
	"tlcvm/qmp/cmds"
)

// buildDevices makes the device tree (package qdev): the board's devices, the key=value
// -devices in command-line order, then the JSON ones, then an anonymous virtio-blk-pci per
// -drive if=virtio, as QEMU creates them; each type with behaviour gets it from the model registered for it (devices*.go).
// emit sends DEVICE_DELETED.
func (v *vm) buildDevices(emit func(string, any)) error {
	p, cfg := v.plan, v.plan.cfg
	v.devices = qdev.New(qdev.Config{
		Machine:   p.machine.Name,
		Guest:     v.machine,
		VGA:       cfg.VGA == "std",
		Floppies:  v.boardFloppies(),
		Disks:     v.boardDisks(),
		NoACPI:    !hasACPI(cfg),
		NoHPET:    machineOff(cfg, "hpet"),
		NoVMPort:  machineOff(cfg, "vmport"),
		CPUs:      p.mcfg.CPUs,
		USB:       !strings.Contains(p.machine.Name, "q35") && machineOn(cfg, "usb"),
		Serials:   countPorts(cfg.Serials),
		Parallels: countPorts(cfg.Parallels),
		RAM:       uint64(p.mcfg.RAMSize),
		Deleted:   func(id, path string) { emit("DEVICE_DELETED", cmds.DeviceDeletedData{Device: id, Path: path}) },
		Migrating: func() bool { return v.migration != nil && !v.migration.Idle() },
	})
	if v.block != nil {
		v.devices.Register(blockdev.IsDisk, diskModel{v.block})
	}
	v.devices.Register(isNIC, nicModel{v.net})
	v.devices.Register(isCPU, cpuModel{v.machine})
	v.devices.Register(hasChardevProp, v.chardevHP)
	v.memHP = newMemHotplug(v, emit, v.numaNodes)
	v.devices.Register(isMemoryDevice, v.memHP)
	v.devices.Register(isVMGenID, &vmgenidModel{machine: p.machine.Name})
	if err := v.boardNICs(); err != nil {
		return err
	}
	// qemu_create_cli_devices: the key=value -devices first, then the JSON ones.
	for _, json := range []bool{false, true} {
		for _, d := range cfg.Devices {
			if (d.JSON != nil) != json {
				continue
			}
			s := qdev.Spec{Driver: d.Driver, ID: d.ID, Bus: deviceProp(d, "bus"), Props: deviceProps(d)}
			if _, err := v.devices.Add(s); err != nil {
				return failAt(cfg, d.Loc, err)
			}
		}
	}
	if v.block != nil {
		for _, drive := range virtioDrives(v.block) {
			s := qdev.Spec{Driver: "virtio-blk-pci", Props: []qdev.Prop{{Name: "drive", Str: drive}}}
			if _, err := v.devices.Add(s); err != nil {
				return failf(cfg, "", "%v", err)
			}
		}
	}
	return nil
}

// boardDisks are the devices the board made for its floppy and IDE drives, in index order.
func (v *vm) boardDisks() []qdev.BoardDisk {
	if v.block == nil {
		return nil
	}
	g := v.block
	g.Lock()
	var out []qdev.BoardDisk
	var hds []*blockdev.Backend
	for _, b := range g.BackendsLocked() {
		if b.Drive == nil || b.Device == nil || (b.Drive.Interface != "floppy" && b.Drive.Interface != "ide") {
			continue
		}
		out = append(out, qdev.BoardDisk{Type: b.Device.Driver, Bus: b.Drive.Bus, Unit: b.Drive.Unit, Drive: b.Name})
		hds = append(hds, b)
	}
	g.Unlock()
	for i, b := range hds {
		if out[i].Type == "ide-hd" {
			out[i].Props = geometryProps("ide-hd", b) // blkconf_geometry, as for a -device
		}
	}
	slices.SortStableFunc(out, func(a, b qdev.BoardDisk) int { return cmp.Compare(a.Bus*2+a.Unit, b.Bus*2+b.Unit) })
	return out
}

// countPorts counts the board's ports of -serial or -parallel (not "none").
func countPorts(args []string) int {
	n := 0
	for _, s := range args {
		if s != "none" {
			n++
		}
	}
	return n
}

// boardFloppies are the units of the board's floppy drives (none without a block graph).
func (v *vm) boardFloppies() []int {
	if v.block == nil {
		return nil
	}
	return boardFloppyUnits(v.block)
}

// deviceProps are a -device's properties: strings from the key=value form (QEMU's string
// visitor reads them), typed JSON from the JSON form.
func deviceProps(d compat.Device) []qdev.Prop {
	var out []qdev.Prop
	skip := func(k string) bool { return k == "driver" || k == "id" || k == "bus" }
	if d.Opts != nil {
		for _, kv := range d.Opts.List {
			if !skip(kv.Name) {
				out = append(out, qdev.Prop{Name: kv.Name, Str: kv.Value})
			}
		}
	}
	if d.JSON != nil {
		for _, k := range d.JSON.Keys() {
			if !skip(k) {
				out = append(out, qdev.Prop{Name: k, JSON: []byte(d.JSON.Get(k).Raw)})
			}
		}
	}
	return out
}

// diskModel links the disk devices (virtio-blk-pci, ide-hd, ide-cd, scsi-hd, scsi-cd,
// floppy) to the block graph through their drive property.
type diskModel struct{ g *blockdev.Graph }

// errDriveNotSet is the realize error of a disk that needs a medium.
var errDriveNotSet = qerror.New(qdev.ErrProperty, "drive property not set")

func (diskModel) Check(*qdev.Device) error { return nil }

// Realize links the device to its drive; ide-cd, scsi-cd and floppy without one realize
// with an empty drive of their own (an anonymous backend with an open tray or slot), as
// QEMU's do.
func (m diskModel) Realize(d *qdev.Device) error {
	share, _ := d.Prop("share-rw")
	dev := &blockdev.Device{ID: d.ID, Driver: d.Type, Path: d.Path, ShareRW: string(share) == "true", Hotplugged: d.Hotplugged}
	dev.Werror, dev.Rerror = blockdev.OnError(d.PropString("werror")), blockdev.OnError(d.PropString("rerror"))
	drive := d.PropString("drive")
	switch {
	case drive != "":
		if err := m.g.AttachDevice(dev, drive); err != nil {
			return err
		}
	case blockdev.IsRemovable(d.Type):
		if err := m.g.AttachEmpty(dev); err != nil {
			return err
		}
	default: // virtio-blk-pci, scsi-hd, ide-hd
		return errDriveNotSet
	}
	d.State = dev
	setGeometry(d, dev)
	return nil
}

// setGeometry is blkconf_geometry: a disk given no geometry gets hd_geometry_guess's, which
// qom-get and info qtree then show (ide-hd also its BIOS translation).
func setGeometry(d *qdev.Device, dev *blockdev.Device) {
	if d.Type != "ide-hd" && d.Type != "scsi-hd" && d.Type != "virtio-blk-pci" {
		return
	}
	for _, p := range []string{"cyls", "heads", "secs"} {
		if v, ok := d.Prop(p); ok && string(v) != "0" {
			return
		}
	}
	_, trans := d.Prop("bios-chs-trans")
	for k, v := range geometryProps(d.Type, dev.Backend) {
		if k != "bios-chs-trans" || !trans {
			d.Props[k] = v
		}
	}
}

// geometryProps are the properties hd_geometry_guess gives a disk of type typ on backend b.
func geometryProps(typ string, b *blockdev.Backend) map[string]json.RawMessage {
	g := blockdev.GuessGeometry(b.Size(), b.FirstSector())
	m := map[string]json.RawMessage{"cyls": json.RawMessage(strconv.Itoa(g.Cyls)),
		"heads": json.RawMessage(strconv.Itoa(g.Heads)), "secs": json.RawMessage(strconv.Itoa(g.Secs))}
	if typ == "ide-hd" {
		m["bios-chs-trans"], _ = json.Marshal(g.Trans)
	}
	return m
}

func (m diskModel) Unrealize(d *qdev.Device) {
	if dev, ok := d.State.(*blockdev.Device); ok {
		m.g.DetachDevice(dev)
	}
}
