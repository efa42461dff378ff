package main

import (
	"encoding/json"
	"strconv"

	"tlcvm/compat"
	"tlcvm/compat/optval"
	"tlcvm/objects"
	"tlcvm/qmp"
	"tlcvm/qmp/cmds"
)

// buildObjects creates the -object objects in command-line order, then the board's RAM
// back-end ("pc.ram") unless -object made it (libvirt's memory-backend=pc.ram). Errors of
// the options carry the -object location; errors of the object's creation do not, as in
// QEMU, which creates the objects after reading the command line.
func (v *vm) buildObjects() error {
	p, cfg := v.plan, v.plan.cfg
	dump := true
	if s, ok := cfg.Machine.Prop("dump-guest-core"); ok {
		dump, _ = optval.Bool(s, optval.QAPIWords)
	}
	v.objects = objects.New(objects.Config{
		Chardev:       func(id string) bool { _, ok := v.chardevs.Get(id); return ok },
		DumpGuestCore: dump,
	})
	for _, ob := range cfg.Objects {
		a, err := objectArgs(ob)
		if err != nil {
			return failAt(cfg, ob.Loc, err)
		}
		if err := cmds.AddObject(v.objects, a); err != nil {
			return failf(cfg, "", "%v", err)
		}
	}
	nodes, numaRAM, err := v.buildNUMA()
	if err != nil {
		return err
	}
	v.numaNodes = nodes
	id := p.machine.DefaultRAMID
	if id == "" || p.mcfg.RAMSize == 0 || numaRAM {
		return nil
	}
	if mb, ok := cfg.Machine.Prop("memory-backend"); ok {
		// -machine memory-backend= names the back-end: the board makes no "pc.ram".
		o, ok := v.objects.Get(mb)
		if !ok {
			return failf(cfg, "", "Memory backend '%s' not found", mb)
		}
		v.objects.Use(o)
		return nil
	}
	if _, ok := v.objects.Get(id); !ok {
		size := json.RawMessage(strconv.FormatUint(p.mcfg.RAMSize, 10))
		if err := v.objects.Add(id, "memory-backend-ram", map[string]json.RawMessage{"size": size}); err != nil {
			return failf(cfg, "", "%v", err)
		}
	}
	if o, ok := v.objects.Get(id); ok {
		v.objects.Use(o) // the machine's RAM
	}
	return nil
}

// objectArgs decodes a -object: the JSON form as object-add's arguments, the key=value
// form as QEMU's -object reads it.
func objectArgs(ob compat.Object) (*cmds.ObjectOptions, error) {
	if ob.JSON != nil {
		val, err := qmp.ParseValue([]byte(ob.JSON.Raw))
		if err != nil {
			return nil, err
		}
		a, err := qmp.DecodeArgs(val, &cmds.ObjectOptions{})
		if err != nil {
			return nil, err
		}
		return a.(*cmds.ObjectOptions), nil
	}
	var kvs []cmds.KV
	for _, p := range ob.Keyval.Pairs {
		kvs = append(kvs, cmds.KV{Key: p.Name, Value: p.Value})
	}
	return cmds.ObjectFromOpts(kvs, false)
}
