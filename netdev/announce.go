package netdev

import (
	"encoding/binary"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Self-announcement (net/announce.c): announce-self sends, for each NIC, a RARP request
// carrying the NIC's MAC through the NIC's back-end, in rounds spaced initial, initial+step,
// … ms (at most max), so that switches learn where the guest now is (after a migration).
// tlcvm's back-ends move no packets, except that a tap's descriptor is real: there the frame
// is written (behind a zeroed virtio-net header when the tap has IFF_VNET_HDR, as QEMU's
// tap_receive_raw prepends one). For user, socket and other peers the frame is dropped, as
// for a NIC without a peer or with its link down (qemu_send_packet_raw).
//
// The frame (announce_self_create), 60 bytes:
//
//	0  ff ff ff ff ff ff   destination: broadcast
//	6  MAC                 source
//	12 80 35               ethertype RARP
//	14 00 01  08 00  06 04 hardware Ethernet, protocol IPv4, address lengths
//	20 00 03               opcode: RARP request
//	22 MAC  00 00 00 00    sender hardware and protocol address
//	32 MAC  00 00 00 00    target hardware and protocol address
//	42 18 zero bytes       padding to the Ethernet minimum

// RARPFrame is announce_self_create's frame for mac.
func RARPFrame(mac MAC) []byte {
	b := make([]byte, 60)
	for i := 0; i < 6; i++ {
		b[i] = 0xff
	}
	copy(b[6:], mac[:])
	binary.BigEndian.PutUint16(b[12:], 0x8035)
	binary.BigEndian.PutUint16(b[14:], 1)
	binary.BigEndian.PutUint16(b[16:], 0x0800)
	b[18], b[19] = 6, 4
	binary.BigEndian.PutUint16(b[20:], 3)
	copy(b[22:], mac[:])
	copy(b[32:], mac[:])
	return b
}

// AnnounceParams is QAPI's AnnounceParameters (times in ms).
type AnnounceParams struct {
	Initial, Max, Rounds, Step int64
	Interfaces                 []string // nil: every NIC
	ID                         string   // "" for the unnamed timer
}

// announceOnce is qemu_foreach_nic(qemu_announce_self_iter): one frame per selected NIC.
// It returns how many frames reached a tap.
func (n *Net) announceOnce(interfaces []string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	sent := 0
	for _, c := range n.clients {
		if c.Type != TypeNIC || (interfaces != nil && !slices.Contains(interfaces, c.Name)) {
			continue
		}
		p := c.peer
		if !c.link || p == nil || p.Type != TypeTap {
			continue
		}
		if fd := tapFD(p); fd >= 0 && writeTap(fd, RARPFrame(c.nic.MAC)) == nil {
			sent++
		}
	}
	return sent
}

// tapFD is the first queue's descriptor of a tap back-end still open; -1 if none.
func tapFD(c *Client) int {
	for _, r := range c.res {
		switch f := r.(type) {
		case fdFile:
			return int(f)
		case *os.File:
			return int(f.Fd())
		}
	}
	return -1
}

// writeTap writes one frame, behind a zeroed virtio-net header of the tap's size when the
// tap carries one.
func writeTap(fd int, frame []byte) error {
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
		return err
	}
	if ifr.Uint16()&unix.IFF_VNET_HDR != 0 {
		size, err := unix.IoctlGetInt(fd, unix.TUNGETVNETHDRSZ)
		if err != nil || size <= 0 || size > 64 {
			size = 10 // sizeof(struct virtio_net_hdr)
		}
		frame = append(make([]byte, size), frame...)
	}
	_, err = unix.Write(fd, frame)
	return err
}

// Announcer runs announce-self's timers: the unnamed one and one per id (a new announcement
// with the same id replaces the running one; rounds 0 stops it).
type Announcer struct {
	net    *Net
	mu     sync.Mutex
	timers map[string]*announceTimer // +checklocks:mu
	// Sent, when set before use, is told the frames each round put on taps (for tests).
	Sent func(id string, frames int)
}

type announceTimer struct {
	p     AnnounceParams
	round int32 // int, as QEMU's timer->round
	t     *time.Timer
}

// NewAnnouncer returns the announcer of the network n.
func NewAnnouncer(n *Net) *Announcer {
	return &Announcer{net: n, timers: map[string]*announceTimer{}}
}

// Announce is qmp_announce_self: the first round at once, the others on the schedule.
func (a *Announcer) Announce(p AnnounceParams) {
	a.mu.Lock()
	if old := a.timers[p.ID]; old != nil {
		if old.t != nil {
			old.t.Stop()
		}
		delete(a.timers, p.ID)
	}
	if p.Rounds == 0 {
		a.mu.Unlock()
		return
	}
	t := &announceTimer{p: p, round: int32(p.Rounds)}
	a.timers[p.ID] = t
	a.mu.Unlock()
	a.once(t)
}

// once is qemu_announce_self_once.
func (a *Announcer) once(t *announceTimer) {
	frames := a.net.announceOnce(t.p.Interfaces)
	if a.Sent != nil {
		a.Sent(t.p.ID, frames)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.timers[t.p.ID] != t {
		return // replaced or stopped meanwhile
	}
	t.round--
	if t.round == 0 {
		delete(a.timers, t.p.ID)
		return
	}
	// qemu_announce_timer_step
	step := t.p.Initial + (t.p.Rounds-int64(t.round)-1)*t.p.Step
	if step < 0 || step > t.p.Max {
		step = t.p.Max
	}
	if step < 1 {
		step = 1 // QEMU re-arms in the past and spins; tlcvm waits a millisecond
	}
	t.t = time.AfterFunc(time.Duration(step)*time.Millisecond, func() { a.once(t) })
}

// Stop cancels every running announcement.
func (a *Announcer) Stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, t := range a.timers {
		if t.t != nil {
			t.t.Stop()
		}
		delete(a.timers, id)
	}
}
