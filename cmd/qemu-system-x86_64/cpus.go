package main

import (
	"fmt"
	"math"
	"strconv"

	"github.com/tidwall/gjson"

	"tlcvm/compat"
	"tlcvm/compat/optval"
	"tlcvm/compat/qerror"
	"tlcvm/machine"
	"tlcvm/machine/catalog"
)

// plugCPUs plugs the vCPUs the command line adds with -device (libvirt starts a domain
// whose vCPUs were hot-plugged, and restores one, with -smp for the boot CPUs and one
// -device per other vCPU), in command-line order, with QEMU's errors under the option.
func (v *vm) plugCPUs() error {
	cfg := v.plan.cfg
	for i, d := range cfg.Devices {
		if !catalog.IsA(d.Driver, "x86_64-cpu") {
			continue
		}
		addr, err := cpuAddress(d)
		if err != nil {
			return failAt(cfg, d.Loc, err)
		}
		if d.Driver != v.machine.CPUType() {
			return failf(cfg, d.Loc, "Invalid CPU type, expected cpu type: '%s'", v.machine.CPUType())
		}
		slot, err := v.machine.CPUSlot(addr)
		if err != nil {
			return failAt(cfg, d.Loc, err)
		}
		path := "/machine/peripheral/" + d.ID
		if d.ID == "" {
			path = fmt.Sprintf("/machine/peripheral-anon/device[%d]", anonIndex(cfg, i))
		}
		if err := v.machine.PlugCPU(slot, path, false); err != nil {
			return failAt(cfg, d.Loc, err)
		}
	}
	return nil
}

// cpuAddress reads a CPU -device's topology properties (-1 when absent), with the texts
// of QEMU's visitors for a value that is no int32.
func cpuAddress(d compat.Device) (machine.CPUAddress, error) {
	a := machine.CPUAddress{SocketID: -1, DieID: -1, CoreID: -1, ThreadID: -1}
	fields := []struct {
		name string
		f    *int
	}{{"socket-id", &a.SocketID}, {"die-id", &a.DieID}, {"core-id", &a.CoreID}, {"thread-id", &a.ThreadID}}
	for _, fl := range fields {
		switch {
		case d.JSON != nil:
			r := d.JSON.Get(fl.name)
			if !r.Exists() {
				continue
			}
			n, err := strconv.ParseInt(r.Raw, 10, 32)
			if r.Type != gjson.Number || err != nil {
				return a, qerror.Errorf(nil, "Invalid parameter type for '%s', expected: integer", fl.name)
			}
			*fl.f = int(n)
		case d.Opts != nil:
			s, ok := d.Opts.Get(fl.name)
			if !ok {
				continue
			}
			n, err := optval.Int64(s)
			if err != nil || n < math.MinInt32 || n > math.MaxInt32 {
				return a, qerror.Errorf(nil, "Parameter '%s' expects integer", fl.name)
			}
			*fl.f = int(n)
		}
	}
	return a, nil
}
