package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"tlcvm/blockdev"
	"tlcvm/compat"
	"tlcvm/qmp"
	"tlcvm/qmp/cmds"
)

// buildBlock opens the block graph as QEMU's configure_blockdev does: every -blockdev in
// order, then every -drive (the defaults last), then the board's devices for if=ide drives.
// The disk -devices and the virtio-blk-pci of if=virtio drives are linked to it when the
// device tree creates them (devices.go).
func buildBlock(p *plan, stderr io.Writer, emit func(string, any)) (*blockdev.Graph, error) {
	cfg := p.cfg
	g := blockdev.New(blockdev.Config{Warn: stderr, Events: cmds.BlockEvents(emit)})
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
		if b.Drive.Interface == "scsi" {
			return fail(d.Loc, fmt.Errorf("machine type does not support if=scsi,bus=%d,unit=%d", b.Drive.Bus, b.Drive.Unit))
		}
		boardDrives = append(boardDrives, b)
	}
	// The board plugs IDE and floppy devices for its drives (in bus/unit order); -drive
	// if=virtio becomes an anonymous virtio-blk-pci created after the -device list
	// (virtioDrives).
	if p.machine.Name != "none" {
		unattached := p.mcfg.CPUs + 17
		if q35 {
			unattached = p.mcfg.CPUs + 15
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
		"no-flush": true, "lazy-refcounts": true, "drop-cache": true, "x-check-cache-dropped": true}
	keyvalInts = map[string]bool{"offset": true, "size": true, "cache-size": true, "aio-max-batch": true}
)

// keyvalScalar types a keyval string as the member it sets expects.
func keyvalScalar(full, key, s string) (*qmp.Value, error) {
	switch {
	case keyvalBools[key]:
		switch s {
		case "on", "yes", "true":
			return qmp.Bool(true), nil
		case "off", "no", "false":
			return qmp.Bool(false), nil
		}
		return nil, qmp.GenericError("Parameter '%s' expects 'on' or 'off'", full)
	case keyvalInts[key]:
		n, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			return nil, qmp.GenericError("Parameter '%s' expects integer", full)
		}
		return qmp.Int(n), nil
	}
	return qmp.String(s), nil
}
