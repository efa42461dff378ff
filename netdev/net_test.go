package netdev_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"tlcvm/netdev"
)

func mustAdd(t *testing.T, n *netdev.Net, cfg netdev.Config) {
	t.Helper()
	if err := n.Add(cfg); err != nil {
		t.Fatalf("Add(%+v): %v", cfg, err)
	}
}

func nic(t *testing.T, n *netdev.Net, s netdev.NICSpec) *netdev.Client {
	t.Helper()
	c, err := n.AddNIC(s)
	if err != nil {
		t.Fatalf("AddNIC(%+v): %v", s, err)
	}
	return c
}

// TestMACTable: QEMU's mac_table (net/net.c qemu_macaddr_default_if_unset), as observed on
// the binary: defaults from :56 up, given ones in the range taken, freed on removal.
func TestMACTable(t *testing.T) {
	n := netdev.New()
	a := nic(t, n, netdev.NICSpec{ID: "a", Model: "e1000", Owner: "e1000"})
	b := nic(t, n, netdev.NICSpec{ID: "b", Model: "e1000", Owner: "e1000", MAC: "52:54:00:12:34:57"})
	c := nic(t, n, netdev.NICSpec{ID: "c", Model: "e1000", Owner: "e1000"})
	d := nic(t, n, netdev.NICSpec{ID: "d", Model: "e1000", Owner: "e1000", MAC: "02:00:00:00:00:01"})
	for _, tc := range []struct {
		c    *netdev.Client
		want string
	}{{a, "52:54:00:12:34:56"}, {b, "52:54:00:12:34:57"}, {c, "52:54:00:12:34:58"}, {d, "02:00:00:00:00:01"}} {
		if got := tc.c.MAC().String(); got != tc.want {
			t.Errorf("%s: MAC %s, want %s", tc.c.Name, got, tc.want)
		}
	}
	n.RemoveNIC(a)
	if e := nic(t, n, netdev.NICSpec{Model: "e1000", Owner: "e1000"}); e.MAC().String() != "52:54:00:12:34:56" || e.Name != "e1000.3" {
		t.Errorf("after a freed :56: %s %s", e.Name, e.MAC())
	}
	if _, err := n.AddNIC(netdev.NICSpec{Model: "e1000", Owner: "e1000", MAC: "zz"}); err == nil {
		t.Error("a bad MAC was taken")
	}
}

func TestPeersAndDel(t *testing.T) {
	n := netdev.New()
	mustAdd(t, n, netdev.Config{ID: "h0", Type: "user"})
	if err := n.CheckPeer("virtio-net-device", "nope"); err == nil || err.Error() != "Property 'virtio-net-device.netdev' can't find value 'nope'" {
		t.Errorf("CheckPeer nope: %v", err)
	}
	c := nic(t, n, netdev.NICSpec{ID: "net0", Model: "virtio-net-pci", Owner: "virtio-net-device", Netdev: "h0", RxFilter: true})
	if err := n.CheckPeer("e1000", "h0"); err == nil || !errors.Is(err, netdev.ErrInUse) ||
		err.Error() != "Property 'e1000.netdev' can't take value 'h0', it's in use" {
		t.Errorf("CheckPeer in use: %v", err)
	}
	// netdev_del of a back-end in use: gone from the names, still the NIC's peer
	if err := n.Del("h0"); err != nil {
		t.Fatal(err)
	}
	if err := n.Del("h0"); !errors.Is(err, netdev.ErrNotFound) || err.Error() != "Device 'h0' not found" {
		t.Errorf("second netdev_del: %v", err)
	}
	mustAdd(t, n, netdev.Config{ID: "h0", Type: "user", User: &netdev.User{Net: "10.0.5.0/24", Restrict: true}})
	want := "net0: index=0,type=nic,model=virtio-net-pci,macaddr=52:54:00:12:34:56\n \\ h0: index=0,type=user,net=10.0.2.0,restrict=off\n" +
		"h0: index=0,type=user,net=10.0.5.0,restrict=on\n"
	if got := n.Info(); got != want {
		t.Errorf("info network:\n%s\nwant\n%s", got, want)
	}
	if err := n.SetLink("net0", false); err != nil {
		t.Fatal(err)
	}
	if up, _ := n.LinkUp("net0"); up {
		t.Error("net0 still up")
	}
	f, err := n.RxFilter("net0")
	if err != nil || len(f) != 1 || f[0].MainMAC != "52:54:00:12:34:56" || !f[0].Promiscuous || len(f[0].VLANTable) != 4096 {
		t.Errorf("RxFilter: %+v %v", f, err)
	}
	n.RemoveNIC(c)
	if got := n.Info(); got != "h0: index=0,type=user,net=10.0.5.0,restrict=on\n" {
		t.Errorf("after the NIC left: %q", got)
	}
}

func TestHubs(t *testing.T) {
	n := netdev.New()
	mustAdd(t, n, netdev.Config{ID: "u1", Type: "user"})
	mustAdd(t, n, netdev.Config{ID: "hp", Type: "hubport", Hubport: &netdev.Hubport{HubID: 1, Netdev: "u1"}})
	mustAdd(t, n, netdev.Config{ID: "hp2", Type: "hubport", Hubport: &netdev.Hubport{HubID: 1}})
	want := "hub 1\n \\ hp2\n \\ hp: u1: index=0,type=user,net=10.0.2.0,restrict=off\n"
	if got := n.Info(); got != want {
		t.Errorf("info network:\n%s\nwant\n%s", got, want)
	}
	w := strings.Join(n.CheckClients("q"), "|")
	if w != "q: warning: hub port hp2 has no peer|q: warning: hub 1 with no nics|q: warning: netdev hp2 has no peer" {
		t.Errorf("warnings %q", w)
	}
}

func TestBackendErrors(t *testing.T) {
	n := netdev.New()
	for _, tc := range []struct {
		cfg  netdev.Config
		want string
	}{
		{netdev.Config{ID: "9x", Type: "user"}, "Parameter 'id' expects an identifier"},
		{netdev.Config{ID: "x", Type: "netmap"}, "network backend 'netmap' is not compiled into this binary"},
		{netdev.Config{ID: "x", Type: "user", User: &netdev.User{Net: "10.0.9.0/33"}}, "Invalid netmask provided (must be in range 4-32)"},
		{netdev.Config{ID: "x", Type: "user", User: &netdev.User{Net: "bad"}}, "Failed to parse netmask"},
		{netdev.Config{ID: "x", Type: "user", User: &netdev.User{Host: "10.0.3.2"}}, "Host doesn't belong to network"},
		{netdev.Config{ID: "x", Type: "user", User: &netdev.User{HostFwd: []string{"bogus"}}}, "Invalid host forwarding rule 'bogus' (No : separators)"},
		{netdev.Config{ID: "x", Type: "tap", Tap: &netdev.Tap{FD: "3", IfName: "t"}}, "ifname=, script=, downscript=, vnet_hdr=, helper=, queues=, fds=, and vhostfds= are invalid with fd="},
		{netdev.Config{ID: "x", Type: "socket", Socket: &netdev.Socket{}}, "exactly one of listen=, connect=, mcast= or udp= is required"},
		{netdev.Config{ID: "x", Type: "socket", Socket: &netdev.Socket{Listen: "bad"}}, "host address 'bad' doesn't contain ':' separating host from port"},
		{netdev.Config{ID: "x", Type: "dgram"}, "dgram requires local= parameter"},
	} {
		if err := n.Add(tc.cfg); err == nil || err.Error() != tc.want {
			t.Errorf("Add(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestHostFwdBinds: a forwarding rule holds its host port, as slirp's does: a port another
// socket holds fails the back-end, and netdev_del frees it.
func TestHostFwdBinds(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	rule := fmt.Sprintf("tcp:127.0.0.1:%d-:22", port)
	n := netdev.New()
	err = n.Add(netdev.Config{ID: "u", Type: "user", User: &netdev.User{HostFwd: []string{rule}}})
	if err == nil || err.Error() != "Could not set up host forwarding rule '"+rule+"'" {
		t.Fatalf("busy port: %v", err)
	}
	l.Close()
	mustAdd(t, n, netdev.Config{ID: "u", Type: "user", User: &netdev.User{HostFwd: []string{rule}}})
	if _, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		t.Fatal("the rule does not hold its port")
	}
	if err := n.Del("u"); err != nil {
		t.Fatal(err)
	}
	l2, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("netdev_del kept the port: %v", err)
	}
	l2.Close()
}

// TestLegacyClients: -net's hub ports and back-ends (QEMU's "hub0portN" names, not netdevs,
// listed under their hub) and a -nic back-end with a generated id.
func TestLegacyClients(t *testing.T) {
	n := netdev.New()
	p0 := n.AddHubPort(0)
	nic(t, n, netdev.NICSpec{Model: "e1000", Owner: "e1000", Netdev: p0})
	p1 := n.AddHubPort(0)
	if p0 != "hub0port0" || p1 != "hub0port1" {
		t.Fatalf("ports %q %q", p0, p1)
	}
	if err := n.AddLegacy(netdev.Config{ID: "#net142", Type: "user", User: &netdev.User{}}, p1); err != nil {
		t.Fatal(err)
	}
	if err := n.AddLegacy(netdev.Config{ID: "#net142", Type: "user", User: &netdev.User{}}, ""); err == nil || err.Error() != "Duplicate ID '#net142'" {
		t.Fatalf("duplicate: %v", err)
	}
	if err := n.Del("#net142"); err == nil || err.Error() != "Device '#net142' is not a netdev" {
		t.Fatalf("netdev_del of a -net back-end: %v", err)
	}
	if err := n.Add(netdev.Config{ID: "#net201", Type: "user", User: &netdev.User{}}); err == nil {
		t.Fatal("netdev_add took a generated id")
	}
	mustAdd(t, n, netdev.Config{ID: "#net201", Type: "user", User: &netdev.User{}, GeneratedID: true})
	want := "hub 0\n \\ hub0port1: #net142: index=0,type=user,net=10.0.2.0,restrict=off\n" +
		" \\ hub0port0: e1000.0: index=0,type=nic,model=e1000,macaddr=52:54:00:12:34:56\n" +
		"#net201: index=0,type=user,net=10.0.2.0,restrict=off\n"
	if got := n.Info(); got != want {
		t.Fatalf("info network:\n%s\nwant\n%s", got, want)
	}
	if !n.Has("hub0port0") || n.Has("e1000.0") {
		t.Fatal("Has: a hub port is a back-end, a NIC is not")
	}
}
