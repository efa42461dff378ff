package netdev

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"tlcvm/compat/optval"
	"tlcvm/compat/qerror"
)

// Sentinels; every error is a *qerror.Error with QEMU 7.2's text wrapping one.
var (
	// ErrNotFound: no net client of that name (QMP class DeviceNotFound).
	ErrNotFound = errors.New("net client not found")
	// ErrInvalid: bad options, a duplicate id, a back-end this binary lacks.
	ErrInvalid = errors.New("invalid netdev")
	// ErrInUse: the back-end already has a peer.
	ErrInUse = errors.New("netdev in use")
	// ErrOpen: a host resource (tap, socket) could not be opened.
	ErrOpen = errors.New("cannot open network back-end")
)

func errf(kind error, format string, a ...any) error { return qerror.Errorf(kind, format, a...) }

// Client types (QAPI NetClientDriver).
const (
	TypeNIC     = "nic"
	TypeUser    = "user"
	TypeTap     = "tap"
	TypeSocket  = "socket"
	TypeStream  = "stream"
	TypeDgram   = "dgram"
	TypeHubport = "hubport"
)

// Client is one of QEMU's NetClientStates. Fields are guarded by the Net's lock.
type Client struct {
	Name  string
	Type  string // QAPI NetClientDriver: "user", "tap", "nic", "hubport", …
	Model string // nc->model: the back-end type, a NIC's device type
	info  string // nc->info_str, after "type=…,"
	peer  *Client
	link  bool // link up
	// netdev: made by -netdev or netdev_add (netdev_del may remove it); hub ports of -net
	// are not.
	netdev bool
	hub    *hub
	nic    *NIC
	res    []io.Closer // descriptors and sockets held; closed when the client goes
	// user: the hostfwd rules' host sockets (info usernet), and the guest address a rule
	// without one forwards to (slirp's DHCP start)
	fwds      []hostFwdSock
	guestAddr string
	mu        sync.Mutex // guards info (updated by socket goroutines)
}

func (c *Client) setInfo(s string) {
	c.mu.Lock()
	c.info = s
	c.mu.Unlock()
}

func (c *Client) infoStr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.info
}

func (c *Client) close() {
	for _, r := range c.res {
		_ = r.Close()
	}
	c.res = nil
}

type hub struct {
	id    int
	ports []*Client // creation order (QEMU lists them newest first)
}

// Net is the machine's net clients. Safe for concurrent use.
type Net struct {
	mu      sync.Mutex
	clients []*Client // QEMU's net_clients, creation order; +checklocks:mu
	hubs    []*hub    // creation order; +checklocks:mu
	macs    macTable  // +checklocks:mu
}

// New returns an empty network.
func New() *Net { return &Net{} }

// find is qemu_find_netdev-like: the listed client of that name that is not a NIC.
func (n *Net) find(name string) *Client {
	for _, c := range n.clients {
		if c.Name == name && c.Type != TypeNIC {
			return c
		}
	}
	return nil
}

// Add creates a back-end (-netdev, netdev_add), with QEMU's checks and texts.
func (n *Net) Add(cfg Config) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !cfg.GeneratedID && !optval.ID(cfg.ID) {
		return errf(ErrInvalid, "Parameter 'id' expects an identifier")
	}
	switch cfg.Type {
	case "nic", "none", "netmap":
		return errf(ErrInvalid, "network backend '%s' is not compiled into this binary", cfg.Type)
	}
	if n.find(cfg.ID) != nil {
		return errf(ErrInvalid, "Duplicate ID '%s'", cfg.ID)
	}
	c := &Client{Name: cfg.ID, Type: cfg.Type, Model: cfg.Type, link: true, netdev: true}
	if err := n.open(c, cfg); err != nil {
		c.close()
		return err
	}
	n.clients = append(n.clients, c)
	return nil
}

// Del is netdev_del: a back-end a NIC still uses stays (the NIC's peer) until the NIC goes,
// but leaves the list: its name is free again.
func (n *Net) Del(id string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.find(id)
	if c == nil {
		return errf(ErrNotFound, "Device '%s' not found", id)
	}
	if !c.netdev {
		return errf(ErrInvalid, "Device '%s' is not a netdev", id)
	}
	n.remove(c)
	return nil
}

// remove is qemu_del_net_client for a back-end or hub port.
func (n *Net) remove(c *Client) {
	n.clients = slices.DeleteFunc(n.clients, func(o *Client) bool { return o == c })
	if h := c.hub; h != nil {
		h.ports = slices.DeleteFunc(h.ports, func(o *Client) bool { return o == c })
	}
	c.close()
	if p := c.peer; p != nil {
		if p.Type == TypeNIC {
			// the NIC keeps it (peer_deleted), link down, until the NIC goes
			c.link = false
			return
		}
		p.peer, c.peer = nil, nil
	}
}

// SetLink is set_link: the client's link, and its peer's when that is a NIC.
func (n *Net) SetLink(name string, up bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var c *Client
	for _, o := range n.clients {
		if o.Name == name {
			c = o
			break
		}
	}
	if c == nil {
		return errf(ErrNotFound, "Device '%s' not found", name)
	}
	c.link = up
	if p := c.peer; p != nil && p.Type == TypeNIC {
		p.link = up
	}
	return nil
}

// LinkUp reports a client's link state (set_link), by name; ok false when there is none.
func (n *Net) LinkUp(name string) (up, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.clients {
		if c.Name == name {
			return c.link, true
		}
	}
	return false, false
}

// Info is HMP `info network`: the hubs with their ports, then every client not on a hub:
// back-ends without a NIC on their own, each NIC with its peer under it.
func (n *Net) Info() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var b strings.Builder
	for i := len(n.hubs) - 1; i >= 0; i-- {
		h := n.hubs[i]
		fmt.Fprintf(&b, "hub %d\n", h.id)
		for j := len(h.ports) - 1; j >= 0; j-- {
			p := h.ports[j]
			fmt.Fprintf(&b, " \\ %s", p.Name)
			if p.peer != nil {
				b.WriteString(": ")
				printClient(&b, p.peer)
			} else {
				b.WriteString("\n")
			}
		}
	}
	for _, c := range n.clients {
		if c.Type == TypeHubport || (c.peer != nil && c.peer.Type == TypeHubport) {
			continue
		}
		if c.peer == nil || c.Type == TypeNIC {
			printClient(&b, c)
		}
		if c.peer != nil && c.Type == TypeNIC {
			b.WriteString(" \\ ")
			printClient(&b, c.peer)
		}
	}
	return b.String()
}

func printClient(b *strings.Builder, c *Client) {
	fmt.Fprintf(b, "%s: index=0,type=%s,%s\n", c.Name, c.Type, c.infoStr())
}

// Close releases every client's host resources.
func (n *Net) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.clients {
		c.close()
		if c.peer != nil && c.peer.Type != TypeNIC {
			c.peer.close()
		}
	}
}

// Clients lists the listed clients' names and types, in creation order.
func (n *Net) Clients() []ClientInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]ClientInfo, 0, len(n.clients))
	for _, c := range n.clients {
		ci := ClientInfo{Name: c.Name, Type: c.Type, Model: c.Model, Link: c.link}
		if c.peer != nil {
			ci.Peer = c.peer.Name
		}
		out = append(out, ci)
	}
	return out
}

// ClientInfo describes a client for callers.
type ClientInfo struct {
	Name, Type, Model, Peer string
	Link                    bool
}

// CheckClients is net_check_clients' start-up warnings, in QEMU's order: each hub without a
// NIC or without a host back-end (and each peerless hub port), then each NIC and back-end
// without a peer. prog is the program name warn_report prefixes.
func (n *Net) CheckClients(prog string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for i := len(n.hubs) - 1; i >= 0; i-- {
		h := n.hubs[i]
		nic, host := false, false
		for j := len(h.ports) - 1; j >= 0; j-- {
			p := h.ports[j]
			if p.peer == nil {
				out = append(out, fmt.Sprintf("%s: warning: hub port %s has no peer", prog, p.Name))
				continue
			}
			switch p.peer.Type {
			case TypeNIC:
				nic = true
			case TypeUser, TypeTap, TypeSocket, TypeStream, TypeDgram, "vde", "vhost-user":
				host = true
			}
		}
		if host && !nic {
			out = append(out, fmt.Sprintf("%s: warning: hub %d with no nics", prog, h.id))
		}
		if nic && !host {
			out = append(out, fmt.Sprintf("%s: warning: hub %d is not connected to host network", prog, h.id))
		}
	}
	for _, c := range n.clients {
		if c.peer != nil { // a peerless hub port is a -netdev one: reported again as a netdev
			continue
		}
		kind := "netdev"
		if c.Type == TypeNIC {
			kind = "nic"
		}
		out = append(out, fmt.Sprintf("%s: warning: %s %s has no peer", prog, kind, c.Name))
	}
	return out
}
