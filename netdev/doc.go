// Package netdev is tlcvm's network layer, as QEMU 7.2's net/ is: the net clients (back-ends
// made by -netdev and netdev_add, the NICs devices create, the ports of -net hubs), how they
// pair up as peers, their names, link state and MAC addresses, the NICs' receive filters,
// and `info network`. It imports neither qmp nor qdev: the composition root gives NIC
// devices their clients, and QMP handlers call it with decoded options.
//
// # Clients
//
//	-netdev user,id=hostnet0 ──▶ Client{Name: hostnet0, Type: user, Info: "net=10.0.2.0,restrict=off"}
//	                                   ▲ peer
//	-device virtio-net-pci,netdev=hostnet0,id=net0 ──▶ Client{Name: net0, Type: nic,
//	                                   Model: virtio-net-pci, Info: "model=…,macaddr=52:54:00:…"}
//	-net nic -net user ──▶ hub 0: hub0port0 ◀─peer─ NIC, hub0port1 ◀─peer─ user.0
//
// Back-ends hold what QEMU would hold: a tap's descriptor (fd=, fds= from getfd or the
// command line, or a tap opened by ifname=; TUNGETIFF checks it is one), the sockets of
// socket, stream and dgram back-ends (listening, connected, or failed as QEMU shows it);
// user networking validates its options as slirp does but has no slirp behind it (its
// hostfwd rules, from -netdev or HMP hostfwd_add, bind real host sockets that accept and
// close connections; hostfwd.go), and no back-end moves packets: tlcvm's guest has no network driver. netdev_del of a back-end a
// NIC still uses keeps it, hidden from names, until the NIC goes (qemu_del_net_client).
//
// # MAC addresses
//
// QEMU's mac_table: a NIC without mac= gets 52:54:00:12:34:XX with the lowest XX from 0x56
// not in use; a NIC given an address in that range marks it used; a NIC leaving frees it.
//
// # Receive filters
//
// Only virtio-net NICs have one (query-rx-filter lists them); it is virtio-net's reset
// state, which is what QEMU reports until a guest driver changes it: promiscuous, all VLANs,
// no broadcast, the NIC's MAC as main-mac. tlcvm's guest drives no NIC, so
// NIC_RX_FILTER_CHANGED is never due, as with a QEMU guest without a driver.
package netdev
