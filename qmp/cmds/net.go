package cmds

import (
	"tlcvm/netdev"
	"tlcvm/qmp"
)

// The network commands (qapi/net.json): netdev_add, netdev_del, set_link, query-rx-filter,
// through package netdev. The Netdev union is QEMU 7.2's, member for member, so that
// libvirt's probe finds what it looks for (netdev_add/arg-type/type/^dgram: JSON -netdev;
// +stream; +vhost-vdpa).

// NetClientDriver is QAPI's enum of net client types.
type NetClientDriver string

// EnumValues implements qmp.Enum.
func (NetClientDriver) EnumValues() []string {
	return []string{"none", "nic", "user", "tap", "l2tpv3", "socket", "stream", "dgram", "vde", "bridge",
		"hubport", "netmap", "vhost-user", "vhost-vdpa"}
}

// Netdev is netdev_add's argument: id, type and the type's members.
type Netdev struct {
	ID      string          `json:"id"`
	Type    NetClientDriver `json:"type"`
	Variant any             `json:"-" qapi:"variant"`
}

// UnionTag implements qmp.Union.
func (Netdev) UnionTag() string { return "type" }

// UnionVariants implements qmp.Union.
func (Netdev) UnionVariants() map[string]any {
	return map[string]any{
		"nic": NetLegacyNicOptions{}, "user": NetdevUserOptions{}, "tap": NetdevTapOptions{},
		"l2tpv3": NetdevL2TPv3Options{}, "socket": NetdevSocketOptions{}, "stream": NetdevStreamOptions{},
		"dgram": NetdevDgramOptions{}, "vde": NetdevVdeOptions{}, "bridge": NetdevBridgeOptions{},
		"hubport": NetdevHubPortOptions{}, "netmap": NetdevNetmapOptions{}, "vhost-user": NetdevVhostUserOptions{},
		"vhost-vdpa": NetdevVhostVDPAOptions{},
	}
}

// String is QAPI's String wrapper ({"str": …}).
type String struct {
	Str string `json:"str"`
}

// NetLegacyNicOptions is the nic variant.
type NetLegacyNicOptions struct {
	Netdev  *string `json:"netdev,omitempty"`
	Macaddr *string `json:"macaddr,omitempty"`
	Model   *string `json:"model,omitempty"`
	Addr    *string `json:"addr,omitempty"`
	Vectors *int64  `json:"vectors,omitempty"`
}

// NetdevUserOptions is the user variant.
type NetdevUserOptions struct {
	Hostname       *string  `json:"hostname,omitempty"`
	Restrict       *bool    `json:"restrict,omitempty"`
	IPv4           *bool    `json:"ipv4,omitempty"`
	IPv6           *bool    `json:"ipv6,omitempty"`
	IP             *string  `json:"ip,omitempty"`
	Net            *string  `json:"net,omitempty"`
	Host           *string  `json:"host,omitempty"`
	TFTP           *string  `json:"tftp,omitempty"`
	Bootfile       *string  `json:"bootfile,omitempty"`
	DHCPStart      *string  `json:"dhcpstart,omitempty"`
	DNS            *string  `json:"dns,omitempty"`
	DNSSearch      []String `json:"dnssearch,omitempty"`
	DomainName     *string  `json:"domainname,omitempty"`
	IPv6Prefix     *string  `json:"ipv6-prefix,omitempty"`
	IPv6PrefixLen  *int64   `json:"ipv6-prefixlen,omitempty"`
	IPv6Host       *string  `json:"ipv6-host,omitempty"`
	IPv6DNS        *string  `json:"ipv6-dns,omitempty"`
	SMB            *string  `json:"smb,omitempty"`
	SMBServer      *string  `json:"smbserver,omitempty"`
	HostFwd        []String `json:"hostfwd,omitempty"`
	GuestFwd       []String `json:"guestfwd,omitempty"`
	TFTPServerName *string  `json:"tftp-server-name,omitempty"`
}

// NetdevTapOptions is the tap variant.
type NetdevTapOptions struct {
	IfName     *string `json:"ifname,omitempty"`
	FD         *string `json:"fd,omitempty"`
	FDs        *string `json:"fds,omitempty"`
	Script     *string `json:"script,omitempty"`
	DownScript *string `json:"downscript,omitempty"`
	Br         *string `json:"br,omitempty"`
	Helper     *string `json:"helper,omitempty"`
	SndBuf     *uint64 `json:"sndbuf,omitempty"`
	VnetHdr    *bool   `json:"vnet_hdr,omitempty"`
	Vhost      *bool   `json:"vhost,omitempty"`
	VhostFD    *string `json:"vhostfd,omitempty"`
	VhostFDs   *string `json:"vhostfds,omitempty"`
	VhostForce *bool   `json:"vhostforce,omitempty"`
	Queues     *uint32 `json:"queues,omitempty"`
	PollUs     *uint32 `json:"poll-us,omitempty"`
}

// NetdevL2TPv3Options is the l2tpv3 variant.
type NetdevL2TPv3Options struct {
	Src        string  `json:"src"`
	Dst        string  `json:"dst"`
	SrcPort    *string `json:"srcport,omitempty"`
	DstPort    *string `json:"dstport,omitempty"`
	IPv6       *bool   `json:"ipv6,omitempty"`
	UDP        *bool   `json:"udp,omitempty"`
	Cookie64   *bool   `json:"cookie64,omitempty"`
	Counter    *bool   `json:"counter,omitempty"`
	PinCounter *bool   `json:"pincounter,omitempty"`
	TxCookie   *uint64 `json:"txcookie,omitempty"`
	RxCookie   *uint64 `json:"rxcookie,omitempty"`
	TxSession  uint32  `json:"txsession"`
	RxSession  *uint32 `json:"rxsession,omitempty"`
	Offset     *uint32 `json:"offset,omitempty"`
}

// NetdevSocketOptions is the socket variant.
type NetdevSocketOptions struct {
	FD        *string `json:"fd,omitempty"`
	Listen    *string `json:"listen,omitempty"`
	Connect   *string `json:"connect,omitempty"`
	Mcast     *string `json:"mcast,omitempty"`
	LocalAddr *string `json:"localaddr,omitempty"`
	UDP       *string `json:"udp,omitempty"`
}

// NetdevStreamOptions is the stream variant.
type NetdevStreamOptions struct {
	Addr   SocketAddress `json:"addr"`
	Server *bool         `json:"server,omitempty"`
}

// NetdevDgramOptions is the dgram variant.
type NetdevDgramOptions struct {
	Local  *SocketAddress `json:"local,omitempty"`
	Remote *SocketAddress `json:"remote,omitempty"`
}

// NetdevVdeOptions is the vde variant.
type NetdevVdeOptions struct {
	Sock  *string `json:"sock,omitempty"`
	Port  *uint16 `json:"port,omitempty"`
	Group *string `json:"group,omitempty"`
	Mode  *uint16 `json:"mode,omitempty"`
}

// NetdevBridgeOptions is the bridge variant.
type NetdevBridgeOptions struct {
	Br     *string `json:"br,omitempty"`
	Helper *string `json:"helper,omitempty"`
}

// NetdevHubPortOptions is the hubport variant.
type NetdevHubPortOptions struct {
	HubID  int32   `json:"hubid"`
	Netdev *string `json:"netdev,omitempty"`
}

// NetdevNetmapOptions is the netmap variant.
type NetdevNetmapOptions struct {
	IfName  string  `json:"ifname"`
	DevName *string `json:"devname,omitempty"`
}

// NetdevVhostUserOptions is the vhost-user variant.
type NetdevVhostUserOptions struct {
	Chardev    string `json:"chardev"`
	VhostForce *bool  `json:"vhostforce,omitempty"`
	Queues     *int64 `json:"queues,omitempty"`
}

// NetdevVhostVDPAOptions is the vhost-vdpa variant.
type NetdevVhostVDPAOptions struct {
	VhostDev *string `json:"vhostdev,omitempty"`
	VhostFD  *string `json:"vhostfd,omitempty"`
	Queues   *int64  `json:"queues,omitempty"`
	XSVQ     *bool   `json:"x-svq,omitempty" qapi:"unstable"`
}

// SocketAddressType is QAPI's SocketAddressType.
type SocketAddressType string

// EnumValues implements qmp.Enum.
func (SocketAddressType) EnumValues() []string { return []string{"inet", "unix", "vsock", "fd"} }

// SocketAddress is QAPI's SocketAddress union.
type SocketAddress struct {
	Type    SocketAddressType `json:"type"`
	Variant any               `json:"-" qapi:"variant"`
}

// UnionTag implements qmp.Union.
func (SocketAddress) UnionTag() string { return "type" }

// UnionVariants implements qmp.Union.
func (SocketAddress) UnionVariants() map[string]any {
	return map[string]any{"inet": InetSocketAddress{}, "unix": UnixSocketAddress{}, "vsock": VsockSocketAddress{}, "fd": String{}}
}

// InetSocketAddress is QAPI's InetSocketAddress.
type InetSocketAddress struct {
	Host      string  `json:"host"`
	Port      string  `json:"port"`
	Numeric   *bool   `json:"numeric,omitempty"`
	To        *uint16 `json:"to,omitempty"`
	IPv4      *bool   `json:"ipv4,omitempty"`
	IPv6      *bool   `json:"ipv6,omitempty"`
	KeepAlive *bool   `json:"keep-alive,omitempty"`
	MPTCP     *bool   `json:"mptcp,omitempty"`
}

// UnixSocketAddress is QAPI's UnixSocketAddress.
type UnixSocketAddress struct {
	Path     string `json:"path"`
	Abstract *bool  `json:"abstract,omitempty"`
	Tight    *bool  `json:"tight,omitempty"`
}

// VsockSocketAddress is QAPI's VsockSocketAddress.
type VsockSocketAddress struct {
	CID  string `json:"cid"`
	Port string `json:"port"`
}

// NetdevDelArgs is netdev_del's argument.
type NetdevDelArgs struct {
	ID string `json:"id"`
}

// SetLinkArgs are set_link's arguments.
type SetLinkArgs struct {
	Name string `json:"name"`
	Up   bool   `json:"up"`
}

// QueryRxFilterArgs is query-rx-filter's argument.
type QueryRxFilterArgs struct {
	Name *string `json:"name,omitempty"`
}

// RxState is QAPI's RxState.
type RxState string

// EnumValues implements qmp.Enum.
func (RxState) EnumValues() []string { return []string{"normal", "none", "all"} }

// RxFilterInfo is one element of query-rx-filter.
type RxFilterInfo struct {
	qmp.QAPIOrder
	Name              string   `json:"name"`
	Promiscuous       bool     `json:"promiscuous"`
	Multicast         RxState  `json:"multicast"`
	Unicast           RxState  `json:"unicast"`
	VLAN              RxState  `json:"vlan"`
	BroadcastAllowed  bool     `json:"broadcast-allowed"`
	MulticastOverflow bool     `json:"multicast-overflow"`
	UnicastOverflow   bool     `json:"unicast-overflow"`
	MainMAC           string   `json:"main-mac"`
	VLANTable         []int64  `json:"vlan-table"`
	UnicastTable      []string `json:"unicast-table"`
	MulticastTable    []string `json:"multicast-table"`
}

// NicRxFilterChangedData is NIC_RX_FILTER_CHANGED's data.
type NicRxFilterChangedData struct {
	qmp.QAPIOrder
	Name *string `json:"name,omitempty"`
	Path string  `json:"path"`
}

// NetdevStreamConnectedData is NETDEV_STREAM_CONNECTED's data.
type NetdevStreamConnectedData struct {
	qmp.QAPIOrder
	NetdevID string        `json:"netdev-id"`
	Addr     SocketAddress `json:"addr"`
}

// NetdevStreamDisconnectedData is NETDEV_STREAM_DISCONNECTED's data.
type NetdevStreamDisconnectedData struct {
	qmp.QAPIOrder
	NetdevID string `json:"netdev-id"`
}

func registerNet(r *qmp.Registry, d *Deps) {
	n := d.Net
	if n == nil {
		return
	}
	// QEMU emits NIC_RX_FILTER_CHANGED when a guest driver changes a filter; tlcvm's guest
	// has no network driver, so it is declared and never due.
	r.RegisterEvent("NIC_RX_FILTER_CHANGED", NicRxFilterChangedData{})
	r.RegisterEvent("NETDEV_STREAM_CONNECTED", NetdevStreamConnectedData{})
	r.RegisterEvent("NETDEV_STREAM_DISCONNECTED", NetdevStreamDisconnectedData{})
	r.Register(
		qmp.Command{Name: "netdev_add", Args: &Netdev{},
			Run: func(c *qmp.Call) (any, error) { return nil, d.addNetdev(c, c.Args.(*Netdev)) }},
		// HMP netdev_add: QemuOpts strings, read as -netdev's key=value form.
		qmp.Command{Name: "x-tlcvm-netdev-add-opts", Internal: true, Args: &struct{}{}, OpenArgs: true,
			Run: func(c *qmp.Call) (any, error) {
				var kvs []KV
				for _, m := range c.Args.(*qmp.Value).Members() {
					v, _ := m.Value.AsString()
					kvs = append(kvs, KV{m.Key, v})
				}
				a, err := NetdevFromOpts(kvs)
				if err != nil {
					return nil, err
				}
				return nil, d.addNetdev(c, a)
			}},
		// HMP info network (hmp_info_network reads net_clients itself).
		qmp.Command{Name: "x-tlcvm-info-network", Internal: true, Returns: TextInfo{},
			Run: func(*qmp.Call) (any, error) { return TextInfo{Text: n.Info()}, nil }},
		qmp.Command{Name: "netdev_del", Args: &NetdevDelArgs{},
			Run: func(c *qmp.Call) (any, error) { return nil, n.Del(c.Args.(*NetdevDelArgs).ID) }},
		qmp.Command{Name: "set_link", Args: &SetLinkArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*SetLinkArgs)
				return nil, n.SetLink(a.Name, a.Up)
			}},
		qmp.Command{Name: "query-rx-filter", Args: &QueryRxFilterArgs{}, Returns: []RxFilterInfo{},
			Run: func(c *qmp.Call) (any, error) {
				filters, err := n.RxFilter(deref(c.Args.(*QueryRxFilterArgs).Name))
				if err != nil {
					return nil, err
				}
				out := []RxFilterInfo{}
				for _, f := range filters {
					out = append(out, RxFilterInfo{Name: f.Name, Promiscuous: f.Promiscuous, Multicast: RxState(f.Multicast),
						Unicast: RxState(f.Unicast), VLAN: RxState(f.VLAN), BroadcastAllowed: f.BroadcastAllowed,
						MulticastOverflow: f.MulticastOverflow, UnicastOverflow: f.UnicastOverflow, MainMAC: f.MainMAC,
						VLANTable: f.VLANTable, UnicastTable: f.UnicastTable, MulticastTable: f.MulticastTable})
				}
				return out, nil
			}},
	)
}

// addNetdev creates a back-end for a call: fd= names come from the call's monitor.
func (d *Deps) addNetdev(c *qmp.Call, a *Netdev) error {
	cfg := NetdevConfig(a)
	cfg.FD = c.Session.FDParam
	cfg.Chardev = d.hasChardev
	cfg.Event = func(name string, data any) { c.Server().Emit(name, NetEvent(data)) }
	return d.Net.Add(cfg)
}

func (d *Deps) hasChardev(id string) bool {
	if d.Chardevs == nil {
		return false
	}
	for _, c := range d.Chardevs() {
		if c.Label == id {
			return true
		}
	}
	return false
}

// NetEvent turns the network layer's event data into QMP's.
func NetEvent(data any) any {
	if s, ok := data.(netdev.StreamConnected); ok {
		return NetdevStreamConnectedData{NetdevID: s.ID, Addr: SocketAddress{Type: "inet",
			Variant: &InetSocketAddress{Host: s.Host, Port: s.Port, IPv4: ptr(true)}}}
	}
	return data
}

func ptr[T any](v T) *T { return &v }

// NetdevConfig turns decoded netdev_add arguments into the network layer's options.
func NetdevConfig(a *Netdev) netdev.Config {
	cfg := netdev.Config{ID: a.ID, Type: string(a.Type)}
	strs := func(l []String) []string {
		var out []string
		for _, s := range l {
			out = append(out, s.Str)
		}
		return out
	}
	addr := func(sa *SocketAddress) *netdev.SocketAddress {
		if sa == nil {
			return nil
		}
		out := &netdev.SocketAddress{Type: string(sa.Type)}
		switch v := sa.Variant.(type) {
		case *InetSocketAddress:
			out.Host, out.Port = v.Host, v.Port
		case *UnixSocketAddress:
			out.Path = v.Path
		case *String:
			out.FD = v.Str
		}
		return out
	}
	switch v := a.Variant.(type) {
	case *NetdevUserOptions:
		cfg.User = &netdev.User{Net: deref(v.Net), Host: deref(v.Host), DHCPStart: deref(v.DHCPStart), DNS: deref(v.DNS),
			Restrict: v.Restrict != nil && *v.Restrict, IPv4: v.IPv4, IPv6: v.IPv6,
			HostFwd: strs(v.HostFwd), GuestFwd: strs(v.GuestFwd)}
	case *NetdevTapOptions:
		t := &netdev.Tap{IfName: deref(v.IfName), FD: deref(v.FD), FDs: deref(v.FDs), Script: deref(v.Script),
			DownScript: deref(v.DownScript), Helper: deref(v.Helper), VhostFD: deref(v.VhostFD),
			VhostFDs: deref(v.VhostFDs), VnetHdr: v.VnetHdr, Vhost: v.Vhost}
		if v.Queues != nil {
			q := int64(*v.Queues)
			t.Queues = &q
		}
		cfg.Tap = t
	case *NetdevSocketOptions:
		cfg.Socket = &netdev.Socket{FD: deref(v.FD), Listen: deref(v.Listen), Connect: deref(v.Connect),
			Mcast: deref(v.Mcast), LocalAddr: deref(v.LocalAddr), UDP: deref(v.UDP)}
	case *NetdevStreamOptions:
		cfg.Stream = &netdev.Stream{Addr: *addr(&v.Addr), Server: v.Server != nil && *v.Server}
	case *NetdevDgramOptions:
		cfg.Dgram = &netdev.Dgram{Local: addr(v.Local), Remote: addr(v.Remote)}
	case *NetdevHubPortOptions:
		cfg.Hubport = &netdev.Hubport{HubID: int64(v.HubID), Netdev: deref(v.Netdev)}
	case *NetdevVhostUserOptions:
		cfg.VhostUser = &netdev.VhostUser{Chardev: v.Chardev}
	}
	return cfg
}
