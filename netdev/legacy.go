package netdev

import "fmt"

// The legacy network options' clients (-net, and -nic's back-end): hub ports made for -net
// and back-ends made by -net, which are not netdevs (netdev_del refuses them: "Device 'X'
// is not a netdev").

// AddHubPort is net_hub_add_port without a name: a port of hub id (made on first use) named
// hub<id>port<n>, n counting the hub's ports. It returns the port's name.
func (n *Net) AddHubPort(id int) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := &Client{link: true}
	n.addHubPort(c, id)
	c.Name = fmt.Sprintf("hub%dport%d", id, len(c.hub.ports)-1)
	n.clients = append(n.clients, c)
	return c.Name
}

// AddLegacy creates a back-end of -net (net_client_init with is_netdev false), named cfg.ID
// (QEMU generates "#net…" ids for -net options without one), peered with the hub port named
// port ("" for none), with QEMU's checks and texts.
func (n *Net) AddLegacy(cfg Config, port string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch cfg.Type {
	case "nic", "none", "netmap", "hubport":
		return errf(ErrInvalid, "network backend '%s' is not compiled into this binary", cfg.Type)
	}
	if n.find(cfg.ID) != nil {
		return errf(ErrInvalid, "Duplicate ID '%s'", cfg.ID)
	}
	c := &Client{Name: cfg.ID, Type: cfg.Type, Model: cfg.Type, link: true}
	if err := n.open(c, cfg); err != nil {
		c.close()
		return err
	}
	if p := n.find(port); p != nil && port != "" {
		c.peer, p.peer = p, c
	}
	n.clients = append(n.clients, c)
	return nil
}

// Has reports whether a back-end (a client other than a NIC) of that name exists.
func (n *Net) Has(name string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.find(name) != nil
}
