package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"tlcvm/compat"
	"tlcvm/machine/catalog"
	"tlcvm/netdev"
	"tlcvm/qdev"
	"tlcvm/qmp"
	"tlcvm/qmp/cmds"
)

// buildNet creates the -netdev back-ends in command-line order (net_init_clients), before
// the devices whose netdev= names them.
func (v *vm) buildNet(emit func(string, any)) error {
	cfg := v.plan.cfg
	v.net = netdev.New()
	for _, nd := range cfg.Netdevs {
		a, err := netdevArgs(nd)
		if err != nil {
			return failAt(cfg, nd.Loc, err)
		}
		if err := v.net.Add(v.netdevConfig(a, emit)); err != nil {
			return failAt(cfg, nd.Loc, err)
		}
	}
	return v.buildLegacyNet(emit)
}

// netdevConfig is a command-line back-end's configuration: descriptors by number, its
// events through emit.
func (v *vm) netdevConfig(a *cmds.Netdev, emit func(string, any)) netdev.Config {
	c := cmds.NetdevConfig(a)
	var noMonitor *qmp.Session // the command line names descriptors by number only
	c.FD = noMonitor.FDParam
	c.Chardev = func(id string) bool { _, ok := v.chardevs.Get(id); return ok }
	c.Event = func(name string, data any) { emit(name, cmds.NetEvent(data)) }
	return c
}

// netdevArgs decodes a -netdev: the JSON form as netdev_add's arguments, the key=value form
// as QEMU's opts visitor reads it.
func netdevArgs(nd compat.Netdev) (*cmds.Netdev, error) {
	if nd.JSON != nil {
		val, err := qmp.ParseValue([]byte(nd.JSON.Raw))
		if err != nil {
			return nil, err
		}
		a, err := qmp.DecodeArgs(val, &cmds.Netdev{})
		if err != nil {
			return nil, err
		}
		return a.(*cmds.Netdev), nil
	}
	kvs := []cmds.KV{{Key: "id", Value: nd.ID}}
	for _, o := range nd.Opts.List {
		kvs = append(kvs, cmds.KV{Key: o.Name, Value: o.Value})
	}
	return cmds.NetdevFromOpts(kvs)
}

// warnPeerless prints QEMU's net_check_clients warnings; qemu_machine_creation_done skips
// them under the default network.
func (v *vm) warnPeerless(w io.Writer) {
	if v.plan.cfg.DefaultNet {
		return
	}
	for _, l := range v.net.CheckClients(v.plan.cfg.Prog) {
		fmt.Fprintln(w, l)
	}
}

// isNIC reports whether a device type is a network card: it has QEMU's NIC properties.
func isNIC(typ string) bool {
	props, err := catalog.DeviceProperties(typ)
	if err != nil {
		return false
	}
	has := map[string]bool{}
	for _, p := range props {
		has[p.Name] = true
	}
	return has["netdev"] && has["mac"]
}

// nicModel gives a NIC device its net client (qemu_new_nic): its name, MAC address (the
// mac property, or QEMU's default, which qom-get then shows) and peer (netdev=).
type nicModel struct{ net *netdev.Net }

func (m nicModel) Check(d *qdev.Device) error {
	return m.net.CheckPeer(d.PropOwner("netdev"), d.PropString("netdev"))
}

func (m nicModel) Realize(d *qdev.Device) error {
	c, err := m.net.AddNIC(netdev.NICSpec{ID: d.ID, Model: d.Type, Owner: d.PropOwner("netdev"),
		MAC: d.PropString("mac"), Netdev: d.PropString("netdev"), RxFilter: strings.HasPrefix(d.Type, "virtio-net-")})
	if err != nil {
		return err
	}
	mac, _ := json.Marshal(c.MAC().String())
	d.Props["mac"] = mac
	d.State = c
	return nil
}

func (m nicModel) Unrealize(d *qdev.Device) {
	if c, ok := d.State.(*netdev.Client); ok {
		m.net.RemoveNIC(c)
	}
}
