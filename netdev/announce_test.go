package netdev

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestRARPFrame(t *testing.T) {
	mac, _ := ParseMAC("52:54:00:12:34:56")
	want := "ffffffffffff" + "525400123456" + "8035" + "0001" + "0800" + "06" + "04" + "0003" +
		"525400123456" + "00000000" + "525400123456" + "00000000" + "000000000000000000000000000000000000"
	if got := hex.EncodeToString(RARPFrame(mac)); got != want {
		t.Errorf("frame\n got %s\nwant %s", got, want)
	}
}

// inNetns runs f on an OS thread moved into a network namespace of its own (the thread is
// thrown away afterwards): the tap the test makes is seen by no one else.
func inNetns(t *testing.T, f func()) {
	t.Helper()
	done := make(chan string, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- "unshare: " + err.Error()
			return
		}
		f()
		done <- ""
	}()
	select {
	case msg := <-done:
		if msg != "" {
			t.Skip(msg)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("namespace goroutine did not finish")
	}
}

// TestAnnounceTap makes a tap in a private namespace, gives its descriptor to a tap
// back-end (as libvirt does with fd=), and reads the RARP frames announce-self puts on the
// interface with a packet socket bound to it.
func TestAnnounceTap(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	var fail []string
	var frames [][]byte
	inNetns(t, func() {
		tun, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			fail = append(fail, "skip: "+err.Error())
			return
		}
		ifr, _ := unix.NewIfreq("tlcvmtap0")
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
		if err := unix.IoctlIfreq(tun, unix.TUNSETIFF, ifr); err != nil {
			fail = append(fail, "skip: TUNSETIFF: "+err.Error())
			return
		}
		ctl, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		defer unix.Close(ctl)
		up, _ := unix.NewIfreq("tlcvmtap0")
		up.SetUint16(unix.IFF_UP)
		if err := unix.IoctlIfreq(ctl, unix.SIOCSIFFLAGS, up); err != nil {
			fail = append(fail, "SIOCSIFFLAGS: "+err.Error())
			return
		}
		idx, _ := unix.NewIfreq("tlcvmtap0")
		if err := unix.IoctlIfreq(ctl, unix.SIOCGIFINDEX, idx); err != nil {
			fail = append(fail, "SIOCGIFINDEX: "+err.Error())
			return
		}
		proto := uint16(unix.ETH_P_ALL>>8 | (unix.ETH_P_ALL&0xff)<<8) // htons
		ps, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			fail = append(fail, "packet socket: "+err.Error())
			return
		}
		defer unix.Close(ps)
		if err := unix.Bind(ps, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: int(idx.Uint32())}); err != nil {
			fail = append(fail, "bind: "+err.Error())
			return
		}
		_ = unix.SetsockoptTimeval(ps, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})

		n := New()
		defer n.Close()
		cfg := Config{ID: "hostnet0", Type: TypeTap, Tap: &Tap{FD: "tapfd"},
			FD: func(string) (int, error) { return tun, nil }}
		if err := n.Add(cfg); err != nil {
			fail = append(fail, "tap: "+err.Error())
			return
		}
		for _, s := range []NICSpec{
			{ID: "net0", Model: "e1000", Owner: "e1000", MAC: "52:54:00:aa:bb:cc", Netdev: "hostnet0"},
			{ID: "net1", Model: "e1000", Owner: "e1000"}, // no peer: dropped
		} {
			if _, err := n.AddNIC(s); err != nil {
				fail = append(fail, "nic: "+err.Error())
				return
			}
		}
		a := NewAnnouncer(n)
		sent := make(chan int, 16)
		a.Sent = func(_ string, frames int) { sent <- frames }
		a.Announce(AnnounceParams{Initial: 1, Max: 5, Rounds: 3, Step: 1})
		for i := 0; i < 3; i++ {
			select {
			case k := <-sent:
				if k != 1 {
					fail = append(fail, fmt.Sprintf("a round put %d frames on taps", k))
				}
			case <-time.After(10 * time.Second):
				fail = append(fail, "announcement rounds did not come")
				return
			}
		}
		// an announcement for other interfaces only sends nothing here
		a.Announce(AnnounceParams{Initial: 1, Max: 5, Rounds: 1, Step: 1, Interfaces: []string{"net1"}})
		if k := <-sent; k != 0 {
			fail = append(fail, "net1 has no tap peer, yet a frame was written")
		}
		buf := make([]byte, 2048)
		for len(frames) < 3 {
			k, _, err := unix.Recvfrom(ps, buf, 0)
			if err != nil {
				fail = append(fail, "recv: "+err.Error())
				return
			}
			if k >= 14 && buf[12] == 0x80 && buf[13] == 0x35 {
				frames = append(frames, append([]byte{}, buf[:k]...))
			}
		}
	})
	for _, f := range fail {
		if len(f) > 5 && f[:5] == "skip:" {
			t.Skip(f)
		}
		t.Error(f)
	}
	mac, _ := ParseMAC("52:54:00:aa:bb:cc")
	for _, f := range frames {
		if !bytes.Equal(f, RARPFrame(mac)) {
			t.Errorf("frame on the wire % x", f)
		}
	}
}
