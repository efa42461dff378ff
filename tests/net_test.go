package tests_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"tlcvm/tests/harness"
)

// tapInNetns creates a tap device in a network namespace of its own (never the host's) and
// returns its descriptor, as libvirt opens one and passes it to QEMU; the namespace lives
// while the returned descriptors are open.
func tapInNetns(t *testing.T) *os.File {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("creating a tap needs root (CAP_NET_ADMIN)")
	}
	type result struct {
		tap, ns *os.File
		err     error
	}
	ch := make(chan result, 1)
	go func() {
		// This thread enters the new namespace and is never unlocked: it dies with the
		// goroutine, so no other goroutine ever runs in that namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{err: err}
			return
		}
		ns, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- result{err: err}
			return
		}
		tap, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
		if err != nil {
			ns.Close()
			ch <- result{err: err}
			return
		}
		ifr, _ := unix.NewIfreq("tap0")
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
		if err := unix.IoctlIfreq(int(tap.Fd()), unix.TUNSETIFF, ifr); err != nil {
			tap.Close()
			ns.Close()
			ch <- result{err: err}
			return
		}
		ch <- result{tap: tap, ns: ns}
	}()
	r := <-ch
	if r.err != nil {
		t.Skipf("cannot create a tap in a private network namespace: %v", r.err)
	}
	t.Cleanup(func() { r.tap.Close(); r.ns.Close() })
	return r.tap
}

// tapFlow runs libvirt's hotplug of a tap NIC on bin: the tap descriptor by getfd (the
// same sendmsg), netdev_add tap fd=NAME vhost=off, device_add, info network; and a pipe
// where a tap is wanted. Descriptor numbers are masked (they are each process's own).
func tapFlow(t *testing.T, bin string, tap *os.File) []string {
	t.Helper()
	_, q, _ := startVM(t, bin, "-machine", "pc", "-accel", "tcg", "-m", "64", "-S")
	var out []string
	fdNum := regexp.MustCompile(`(FD |fd=)\d+`)
	rec := func(m harness.Message, err error) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fdNum.ReplaceAllString(string(m.Raw), "${1}N"))
	}
	if err := q.SendWithFiles([]byte(`{"execute":"getfd","arguments":{"fdname":"hostnet0-fd"}}`), tap); err != nil {
		t.Fatal(err)
	}
	rec(q.Recv())
	rec(q.Execute("netdev_add", map[string]any{"type": "tap", "id": "hostnet0", "fd": "hostnet0-fd", "vhost": false}))
	rec(q.Execute("device_add", map[string]any{"driver": "virtio-net-pci", "netdev": "hostnet0", "id": "net0",
		"mac": "52:54:00:6a:1b:2c", "bus": "pci.0", "addr": "0x3"}))
	rec(q.Execute("human-monitor-command", map[string]any{"command-line": "info network"}))
	rec(q.Execute("set_link", map[string]any{"name": "net0", "up": false}))
	rec(q.Execute("netdev_add", map[string]any{"type": "tap", "id": "again", "fd": "hostnet0-fd"}))
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if err := q.SendWithFiles([]byte(`{"execute":"getfd","arguments":{"fdname":"p"}}`), pr); err != nil {
		t.Fatal(err)
	}
	rec(q.Recv())
	rec(q.Execute("netdev_add", map[string]any{"type": "tap", "id": "notap", "fd": "p"}))
	rec(q.Execute("netdev_del", map[string]any{"id": "hostnet0"}))
	rec(q.Execute("human-monitor-command", map[string]any{"command-line": "info network"}))
	return out
}

// TestTapByFD: a tap NIC hot-plugged with libvirt's descriptor passing behaves as on QEMU
// 7.2 (same replies, same info network), with a tap that lives in a private namespace.
func TestTapByFD(t *testing.T) {
	ref, cand := requireReference(t), requireCandidate(t)
	parallel(t)
	tap := tapInNetns(t)
	want := tapFlow(t, ref, tap)
	got := tapFlow(t, cand, tap)
	if d := harness.Diff(want, got); d != "" {
		t.Errorf("tap flow differs (- QEMU, + tlcvm):\n%s", d)
	}
	t.Logf("transcript:\n%s", strings.Join(got, "\n"))
	if !strings.Contains(strings.Join(got, "\n"), `type=tap,fd=N`) {
		t.Errorf("no tap client in info network:\n%s", strings.Join(got, "\n"))
	}
}

// TestNICMigration: NICs travel as device state (their link state, set_link on the source,
// holds on the destination); a destination started without one of them refuses the stream,
// naming the NIC's section by its PCI path as QEMU names vmstate sections.
func TestNICMigration(t *testing.T) {
	bin := requireCandidate(t)
	parallel(t)
	dir := shortDir(t)
	chk := filepath.Join(dir, "nic.chk")
	nics := []string{"-netdev", "user,id=h0", "-device", "virtio-net-pci,netdev=h0,id=net0",
		"-netdev", "user,id=h1", "-device", "e1000,netdev=h1,id=net1"}
	src := startMigVM(t, bin, dir, "src", migArgs("idle", nics...)...)
	src.do("set_link", map[string]any{"name": "net0", "up": false})
	src.do("migrate", map[string]any{"uri": "file:" + chk})
	src.waitMigration("completed")
	src.quit()

	dst := startMigVM(t, bin, dir, "dst", migArgs("idle", append(nics, "-S", "-incoming", "file:"+chk)...)...)
	dst.waitMigration("completed")
	dst.quit()

	lone := harness.Start(t, harness.Config{Bin: bin, Dir: dir, Args: append([]string{"-nodefaults", "-display", "none"},
		migArgs("idle", append(nics[:4], "-incoming", "file:"+chk)...)...)})
	if _, err := lone.Wait(harness.DefaultTimeout); err != nil {
		t.Fatal(err)
	}
	if e := string(lone.Stderr.Bytes()); !strings.Contains(e, "Unknown savevm section or instance '0000:00:03.0/e1000' 0") {
		t.Fatalf("stderr %q", e)
	}
}

// TestHostFwdRuntime: HMP hostfwd_add binds a real host port that accepts connections (slirp
// closes them with no guest behind the rule), and hostfwd_remove closes it again — on QEMU
// and on tlcvm alike.
func TestHostFwdRuntime(t *testing.T) {
	bins := []string{requireReference(t), requireCandidate(t)}
	parallel(t)
	for _, bin := range bins {
		_, q, _ := startVM(t, bin, "-machine", "pc", "-accel", "tcg", "-m", "64", "-S", "-netdev", "user,id=u0")
		hmp := func(line string) string {
			m, err := q.Execute("human-monitor-command", map[string]any{"command-line": line})
			if err != nil {
				t.Fatal(err)
			}
			r, ok := m.Value.Get("return")
			if !ok {
				t.Fatalf("%s: %s", line, m.Raw)
			}
			return r.Str()
		}
		// a port free a moment ago; another process taking it meanwhile fails the add, not the test
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if out := hmp(fmt.Sprintf("hostfwd_add u0 tcp:127.0.0.1:%d-:22", port)); out != "" {
			t.Skipf("%s: port %d taken meanwhile: %q", bin, port, out)
		}
		c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), harness.DefaultTimeout)
		if err != nil {
			t.Fatalf("%s: the forwarded port does not accept: %v", bin, err)
		}
		c.Close()
		want := fmt.Sprintf("host forwarding rule for tcp:127.0.0.1:%d removed\r\n", port)
		if out := hmp(fmt.Sprintf("hostfwd_remove u0 tcp:127.0.0.1:%d", port)); out != want {
			t.Fatalf("%s: hostfwd_remove: %q, want %q", bin, out, want)
		}
		if c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), harness.DefaultTimeout); err == nil {
			c.Close()
			t.Errorf("%s: port %d still accepts after hostfwd_remove", bin, port)
		}
	}
}
