package netdev

import (
	"fmt"
	"slices"
	"strconv"
)

// MAC is an Ethernet address.
type MAC [6]byte

func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// ParseMAC reads "52:54:00:12:34:56" (':' or '-' between the six hex pairs), as the "mac"
// property takes it.
func ParseMAC(s string) (MAC, bool) {
	var m MAC
	if len(s) != 17 {
		return m, false
	}
	for i := 0; i < 6; i++ {
		if i > 0 && s[3*i-1] != ':' && s[3*i-1] != '-' {
			return m, false
		}
		v, err := strconv.ParseUint(s[3*i:3*i+2], 16, 8)
		if err != nil {
			return m, false
		}
		m[i] = byte(v)
	}
	return m, true
}

// macTable is QEMU's mac_table: how many NICs use 52:54:00:12:34:XX, per XX from 0x56.
type macTable [256]int

var macBase = MAC{0x52, 0x54, 0x00, 0x12, 0x34, 0}

func (t *macTable) hasBase(m MAC) bool {
	return m[0] == 0x52 && m[1] == 0x54 && m[2] == 0 && m[3] == 0x12 && m[4] == 0x34
}

// assign is qemu_macaddr_default_if_unset: an address given marks its index used (when it
// is one of QEMU's); none takes the lowest free index.
func (t *macTable) assign(m *MAC, given bool) {
	if given {
		if t.hasBase(*m) && m[5] >= 0x56 && m[5] < 0xff {
			t[m[5]]++
		}
		return
	}
	*m = macBase
	m[5] = 0xff // QEMU's -1 when all are taken
	for i := 0x56; i < 0xff; i++ {
		if t[i] == 0 {
			m[5] = byte(i)
			break
		}
	}
	if m[5] != 0xff {
		t[m[5]]++
	}
}

// free is qemu_macaddr_set_free.
func (t *macTable) free(m MAC) {
	if t.hasBase(m) && m[5] >= 0x56 && m[5] < 0xff {
		t[m[5]]--
	}
}

// NIC is a NIC's own state: its address and, for virtio-net, its receive filter.
type NIC struct {
	MAC      MAC
	RxFilter bool // the NIC answers query-rx-filter (virtio-net)
}

// NICSpec describes a NIC being created by a device.
type NICSpec struct {
	ID     string // the device's id; "" names the NIC "<model>.<n>"
	Model  string // the device type, e.g. "e1000", "virtio-net-pci"
	Owner  string // the type QEMU names in the netdev property's errors
	MAC    string // the mac property ("" for a default address); already checked
	Netdev string // the netdev property ("" for none)
	// RxFilter: the NIC keeps a receive filter (virtio-net).
	RxFilter bool
}

// CheckPeer is the netdev property's setter check: the back-end exists and is free.
func (n *Net) CheckPeer(owner, netdev string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, err := n.peerFor(owner, netdev)
	return err
}

func (n *Net) peerFor(owner, netdev string) (*Client, error) {
	if netdev == "" {
		return nil, nil
	}
	p := n.find(netdev)
	if p == nil {
		return nil, errf(ErrInvalid, "Property '%s.netdev' can't find value '%s'", owner, netdev)
	}
	if p.peer != nil {
		return nil, errf(ErrInUse, "Property '%s.netdev' can't take value '%s', it's in use", owner, netdev)
	}
	return p, nil
}

// AddNIC creates a NIC's client (qemu_new_nic): named after the device id or its model,
// with its MAC address (given or QEMU's default) and peered with its back-end.
func (n *Net) AddNIC(s NICSpec) (*Client, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	peer, err := n.peerFor(s.Owner, s.Netdev)
	if err != nil {
		return nil, err
	}
	nic := &NIC{RxFilter: s.RxFilter}
	given := false
	if s.MAC != "" {
		if nic.MAC, given = ParseMAC(s.MAC); !given {
			return nil, errf(ErrInvalid, "Property '%s.mac' doesn't take value '%s'", s.Owner, s.MAC)
		}
	}
	n.macs.assign(&nic.MAC, given)
	name := s.ID
	if name == "" {
		id := 0
		for _, c := range n.clients {
			if c.Model == s.Model {
				id++
			}
		}
		name = fmt.Sprintf("%s.%d", s.Model, id)
	}
	c := &Client{Name: name, Type: TypeNIC, Model: s.Model, link: true, nic: nic,
		info: fmt.Sprintf("model=%s,macaddr=%s", s.Model, nic.MAC)}
	if peer != nil {
		c.peer, peer.peer = peer, c
	}
	n.clients = append(n.clients, c)
	return c, nil
}

// MAC returns a NIC client's address.
func (c *Client) MAC() MAC {
	if c.nic == nil {
		return MAC{}
	}
	return c.nic.MAC
}

// RemoveNIC is qemu_del_nic: the NIC goes, its address is free again, and a back-end that
// netdev_del removed while the NIC used it goes with it; another back-end stays, unpeered.
func (n *Net) RemoveNIC(c *Client) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !slices.Contains(n.clients, c) {
		return
	}
	n.clients = slices.DeleteFunc(n.clients, func(o *Client) bool { return o == c })
	n.macs.free(c.nic.MAC)
	if p := c.peer; p != nil {
		p.peer, c.peer = nil, nil
		if !slices.Contains(n.clients, p) {
			p.close()
		}
	}
}

// RxFilterInfo is query-rx-filter's answer for one NIC.
type RxFilterInfo struct {
	Name              string
	Promiscuous       bool
	Multicast         string // normal, none, all
	Unicast           string
	VLAN              string
	BroadcastAllowed  bool
	MulticastOverflow bool
	UnicastOverflow   bool
	MainMAC           string
	VLANTable         []int64
	UnicastTable      []string
	MulticastTable    []string
}

// RxFilter is query-rx-filter: every virtio-net NIC's filter, or the one named.
func (n *Net) RxFilter(name string) ([]RxFilterInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := []RxFilterInfo{}
	for _, c := range n.clients {
		if name != "" && c.Name != name {
			continue
		}
		if c.Type != TypeNIC {
			if name != "" {
				return nil, errf(ErrInvalid, "net client(%s) isn't a NIC", name)
			}
			continue
		}
		if c.nic.RxFilter {
			out = append(out, resetFilter(c))
		} else if name != "" {
			return nil, errf(ErrInvalid, "net client(%s) doesn't support rx-filter querying", name)
		}
		if name != "" {
			break
		}
	}
	if len(out) == 0 && name != "" {
		return nil, errf(ErrInvalid, "invalid net client name: %s", name)
	}
	return out, nil
}

// resetFilter is virtio-net's filter after reset with no driver (no VIRTIO_NET_F_CTRL_VLAN
// negotiated, so every VLAN passes; QEMU reports nobcast as broadcast-allowed).
func resetFilter(c *Client) RxFilterInfo {
	vlans := make([]int64, 4096)
	for i := range vlans {
		vlans[i] = int64(4095 - i)
	}
	return RxFilterInfo{Name: c.Name, Promiscuous: true, Multicast: "normal", Unicast: "normal", VLAN: "all",
		MainMAC: c.nic.MAC.String(), VLANTable: vlans, UnicastTable: []string{}, MulticastTable: []string{}}
}
