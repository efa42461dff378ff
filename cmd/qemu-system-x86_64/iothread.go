package main

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/tidwall/gjson"

	"tlcvm/compat"
	"tlcvm/compat/optval"
	"tlcvm/iothread"
	"tlcvm/qmp"
	"tlcvm/qmp/cmds"
)

// iothreadProps reads one -object iothread's parameters, with QEMU's errors under the
// option's location: an unknown member ("Invalid parameter 'x'" in key=value form,
// "Parameter 'x' is unexpected" in JSON), a value that is no int64. The range checks come
// when the thread is created (startIOThreads), without a location, as QEMU reports them.
func iothreadProps(cfg *compat.Config, ob compat.Object) ([]iothread.Prop, error) {
	known := map[string]bool{}
	for _, n := range iothread.Params {
		known[n] = true
	}
	var out []iothread.Prop
	if ob.JSON != nil {
		for _, m := range ob.JSON.Members {
			if m.Key == "qom-type" || m.Key == "id" {
				continue
			}
			if !known[m.Key] {
				return nil, failf(cfg, ob.Loc, "Parameter '%s' is unexpected", m.Key)
			}
			r := gjson.ParseBytes(m.Value)
			v, err := strconv.ParseInt(r.Raw, 10, 64)
			if r.Type != gjson.Number || err != nil {
				return nil, failf(cfg, ob.Loc, "Invalid parameter type for '%s', expected: integer", m.Key)
			}
			out = append(out, iothread.Prop{Name: m.Key, Value: v})
		}
		return out, nil
	}
	for _, kv := range ob.Keyval.Pairs {
		if kv.Name == "qom-type" || kv.Name == "id" {
			continue
		}
		if !known[kv.Name] {
			return nil, failf(cfg, ob.Loc, "Invalid parameter '%s'", kv.Name)
		}
		v, err := optval.Int64(kv.Value)
		if err != nil {
			return nil, failf(cfg, ob.Loc, "Parameter '%s' expects an int64 value", kv.Name)
		}
		out = append(out, iothread.Prop{Name: kv.Name, Value: v})
	}
	return out, nil
}

// checkIOThreads reads every -object iothread's parameters (plan time).
func checkIOThreads(cfg *compat.Config) error {
	for _, ob := range cfg.Objects {
		if ob.QomType != "iothread" {
			continue
		}
		if _, err := iothreadProps(cfg, ob); err != nil {
			return err
		}
	}
	return nil
}

// startIOThreads starts the -object iothread threads, in command-line order.
func (v *vm) startIOThreads() error {
	cfg := v.plan.cfg
	v.iothreads = iothread.NewSet(cfg.Name.DebugThreads)
	for _, ob := range cfg.Objects {
		if ob.QomType != "iothread" {
			continue
		}
		props, err := iothreadProps(cfg, ob)
		if err != nil {
			return err
		}
		if _, err := v.iothreads.Add(ob.ID, props); err != nil {
			return failf(cfg, "", "%v", err)
		}
	}
	return nil
}

// iothreadQOM gives an /objects iothread its parameters as live properties.
func iothreadQOM(o *cmds.Object, t *iothread.Thread) {
	for _, n := range iothread.Params {
		o.AddProp(&cmds.Prop{Name: n, Type: "int",
			Get: func() any { v, _ := t.Get(n); return v },
			Set: func(raw json.RawMessage) error {
				v, err := strconv.ParseInt(string(raw), 10, 64)
				if err != nil {
					return qmp.GenericError("Invalid parameter type for '%s', expected: integer", n)
				}
				if err := t.Set(n, v); err != nil {
					if errors.Is(err, iothread.ErrParam) {
						return qmp.GenericError("%s", err.Error())
					}
					return err
				}
				return nil
			}})
	}
}
