package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"tlcvm/compat"
	"tlcvm/compat/optval"
	"tlcvm/compat/qerror"
	"tlcvm/machine/catalog"
	"tlcvm/netdev"
	"tlcvm/qdev"
	"tlcvm/qmp/cmds"
)

// The legacy network options, as QEMU 7.2's net_init_clients handles them after the
// -netdevs: each -nic makes a back-end (named by its id or a generated "#net…" id) and an
// entry of the board's NIC table; each -net nic makes a table entry whose peer is a port
// of hub 0 (or its netdev=); each other -net makes a back-end on a port of hub 0. The board
// creates the table's NICs before the -device devices (pc_nic_init): anonymous, on the root
// PCI bus, of the entry's model or the board's default (e1000 on pc, e1000e on q35).
// Without -nodefaults QEMU's default is "-net nic -net user".

// maxNICs is QEMU's MAX_NICS.
const maxNICs = 8

// ndEntry is one of QEMU's nd_table entries.
type ndEntry struct {
	netdev           string // the peer: a back-end or a hub port
	model, mac, addr string
	vectors          string
}

// netIDs generates QEMU's id_generate(ID_NET) ids: "#net", a counter, two random digits.
type netIDs struct{ n int }

func (g *netIDs) next() string {
	id := fmt.Sprintf("#net%d%02d", g.n, rand.IntN(99))
	g.n++
	return id
}

// buildLegacyNet runs -nic (net_param_nic) then -net (net_init_client) in command-line order.
func (v *vm) buildLegacyNet(emit func(string, any)) error {
	cfg := v.plan.cfg
	var ids netIDs
	for _, o := range cfg.Nics {
		typ, _ := o.Get("type")
		if typ == "none" {
			continue
		}
		if len(v.nics) >= maxNICs {
			return failf(cfg, o.Loc, "no more on-board/default NIC slots available")
		}
		if typ == "" {
			typ = "user"
		}
		id := o.ID
		if id == "" {
			id = ids.next()
		}
		nd := ndEntry{netdev: id, vectors: "0"} // net_param_nic zeroes the entry: nvectors 0
		kvs := []cmds.KV{{Key: "id", Value: id}, {Key: "type", Value: typ}}
		for _, kv := range o.List {
			switch kv.Name {
			case "model":
				nd.model = kv.Value
			case "mac":
				nd.mac = kv.Value
			case "type":
			default:
				kvs = append(kvs, cmds.KV{Key: kv.Name, Value: kv.Value})
			}
		}
		if err := checkNICMAC(nd.mac, "NIC cannot have multicast MAC address"); err != nil {
			return failAt(cfg, o.Loc, err)
		}
		a, err := cmds.NetdevFromOpts(kvs)
		if err == nil {
			c := v.netdevConfig(a, emit)
			c.GeneratedID = o.ID == ""
			err = v.net.Add(c)
		}
		if err != nil {
			return failAt(cfg, o.Loc, err)
		}
		v.nics = append(v.nics, nd)
	}
	for _, o := range cfg.Nets {
		typ, _ := o.Get("type")
		if typ == "none" {
			continue
		}
		id := o.ID
		if id == "" {
			id = ids.next()
		}
		if typ == "hubport" {
			return failf(cfg, o.Loc, "network backend 'hubport' is only supported with -netdev/-nic")
		}
		if typ != "nic" {
			kvs := []cmds.KV{{Key: "id", Value: id}}
			for _, kv := range o.List {
				kvs = append(kvs, cmds.KV{Key: kv.Name, Value: kv.Value})
			}
			a, err := cmds.NetdevFromOpts(kvs)
			if err != nil {
				return failAt(cfg, o.Loc, err)
			}
			if err := v.net.AddLegacy(v.netdevConfig(a, emit), v.net.AddHubPort(0)); err != nil {
				return failAt(cfg, o.Loc, err)
			}
			continue
		}
		nd, err := v.legacyNIC(o)
		if err != nil {
			return failAt(cfg, o.Loc, err)
		}
		v.nics = append(v.nics, nd)
	}
	return nil
}

// legacyNIC is net_init_nic: a -net nic's table entry.
func (v *vm) legacyNIC(o *compat.Opts) (ndEntry, error) {
	var nd ndEntry
	netdevName := ""
	for _, kv := range o.List {
		switch kv.Name {
		case "type":
		case "netdev":
			netdevName = kv.Value
		case "macaddr":
			nd.mac = kv.Value
		case "model":
			nd.model = kv.Value
		case "addr":
			nd.addr = kv.Value
		case "vectors":
			n, err := optval.Uint64(kv.Value)
			if err != nil {
				return nd, qerror.Errorf(netdev.ErrInvalid, "Parameter 'vectors' expects a uint64 value")
			}
			if n > 0xffffffff {
				return nd, qerror.Errorf(netdev.ErrInvalid, "Parameter 'vectors' expects uint32_t")
			}
			if n > 0x7ffffff {
				return nd, qerror.Errorf(netdev.ErrInvalid, "invalid # of vectors: %d", n)
			}
			nd.vectors = kv.Value
		default:
			return nd, qerror.Errorf(netdev.ErrInvalid, "Invalid parameter '%s'", kv.Name)
		}
	}
	if len(v.nics) >= maxNICs {
		return nd, qerror.Errorf(netdev.ErrInvalid, "too many NICs")
	}
	if netdevName != "" {
		if !v.net.Has(netdevName) {
			return nd, qerror.Errorf(netdev.ErrInvalid, "netdev '%s' not found", netdevName)
		}
		nd.netdev = netdevName
	} else {
		nd.netdev = v.net.AddHubPort(0)
	}
	if err := checkNICMAC(nd.mac, "NIC cannot have multicast MAC address (odd 1st byte)"); err != nil {
		return nd, err
	}
	return nd, nil
}

// checkNICMAC is net_parse_macaddr and the multicast check of a table entry's address.
func checkNICMAC(mac, multicast string) error {
	if mac == "" {
		return nil
	}
	m, ok := netdev.ParseMAC(mac)
	if !ok {
		return qerror.Errorf(netdev.ErrInvalid, "invalid syntax for ethernet address")
	}
	if m[0]&1 != 0 {
		return qerror.Errorf(netdev.ErrInvalid, "%s", multicast)
	}
	return nil
}

// nicModels is qemu_get_nic_models(TYPE_PCI_DEVICE): the user-creatable PCI devices with a
// netdev property, sorted ("-net nic,model=help" lists them).
func nicModels() []string {
	var out []string
	for _, d := range catalog.Devices() {
		if d.Bus != "PCI" {
			continue
		}
		if hasProp(d.Name, "netdev") {
			out = append(out, d.Name)
		}
	}
	slices.Sort(out)
	return out
}

// hasProp reports whether a device type has a property.
func hasProp(typ, name string) bool {
	props, err := catalog.DeviceProperties(typ)
	return err == nil && slices.ContainsFunc(props, func(p catalog.Property) bool { return p.Name == name })
}

// pciAddrOK is pci_parse_devaddr's syntax for a -net nic,addr= on the root bus: slot[.fn]
// in hex.
func pciAddrOK(s string) bool {
	slot, fn, hasFn := strings.Cut(s, ".")
	sv, err := strconv.ParseUint(slot, 16, 8)
	if err != nil || sv > 0x1f {
		return false
	}
	if hasFn {
		fv, err := strconv.ParseUint(fn, 16, 8)
		return err == nil && fv <= 7
	}
	return true
}

// nicModelsHelp is what "-net nic,model=help" and "-nic …,model=help" print.
func nicModelsHelp() string {
	return "Supported NIC models:\n" + strings.Join(nicModels(), "\n") + "\n"
}

// boardNICs is pc_nic_init: the table's NICs, before the -device devices.
func (v *vm) boardNICs() error {
	cfg := v.plan.cfg
	def, bus := "e1000", "pci.0"
	if strings.Contains(v.plan.machine.Name, "q35") {
		def, bus = "e1000e", "pcie.0"
	}
	for _, nd := range v.nics {
		model := nd.model
		switch model {
		case "":
			model = def
		case "virtio":
			model = "virtio-net-pci"
		}
		s := qdev.Spec{Driver: model, Bus: bus, Board: true, Props: []qdev.Prop{{Name: "netdev", Str: nd.netdev}}}
		if model == "ne2k_isa" {
			s.Bus = ""
		} else if !slices.Contains(nicModels(), model) {
			return failf(cfg, "", "Unsupported NIC model: %s", model)
		}
		if nd.mac != "" {
			s.Props = append(s.Props, qdev.Prop{Name: "mac", Str: nd.mac})
		}
		if nd.vectors != "" && hasProp(model, "vectors") {
			s.Props = append(s.Props, qdev.Prop{Name: "vectors", Str: nd.vectors})
		}
		if nd.addr != "" {
			if !pciAddrOK(nd.addr) {
				return failf(cfg, "", "Invalid PCI device address %s for device %s", nd.addr, model)
			}
			s.Props = append(s.Props, qdev.Prop{Name: "addr", Str: nd.addr})
		}
		if _, err := v.devices.Add(s); err != nil {
			return failf(cfg, "", "%v", err)
		}
	}
	return nil
}
