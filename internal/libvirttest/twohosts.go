package libvirttest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// TwoHosts is the two-host libvirt bed of scripts/two-hosts.sh: hosts "a" and "b", each a
// libvirtd in namespaces of its own, joined by a veth pair, sharing a storage directory.
// A and B run virsh inside each host (qemu:///system there is that host's libvirtd).
type TwoHosts struct {
	Script string
	A, B   *Virsh
	// AAddr, BAddr are the hosts' addresses; AURI, BURI their qemu+tcp:// URIs; Shared is
	// the directory both see at the same path.
	AAddr, BAddr, AURI, BURI, Shared string
	// Dir holds the hosts' private files (TWOHOSTS_DIR).
	Dir string

	started bool
	unlock  func()
}

// TwoHostsLockPath is held (exclusive flock) by every user of the bed for as long as it
// uses it: two test or bench runs never share it.
const TwoHostsLockPath = "/run/lock/tlcvm-two-hosts.lock"

// StartTwoHosts takes the bed's lock, starts it unless it is up (then Stop leaves it up),
// and reads its facts. A bed of its own (TWOHOSTS_DIR set, as the script reads it) has its
// own lock, /run/lock/BASENAME.lock (the script's start and stop hold TWOHOSTS_DIR.lock):
// it shares nothing with the default one.
func StartTwoHosts(script string) (*TwoHosts, error) {
	lock := TwoHostsLockPath
	if dir := os.Getenv("TWOHOSTS_DIR"); dir != "" {
		lock = filepath.Join(filepath.Dir(TwoHostsLockPath), filepath.Base(dir)+".lock")
	}
	unlock, err := lockFile(lock)
	if err != nil {
		return nil, err
	}
	h := &TwoHosts{Script: script, unlock: unlock}
	if exec.Command(script, "status").Run() != nil {
		if out, err := exec.Command(script, "start").CombinedOutput(); err != nil {
			unlock()
			return nil, fmt.Errorf("%s start: %v\n%s", script, err, out)
		}
		h.started = true
	}
	out, err := exec.Command(script, "env").Output()
	if err != nil {
		h.Stop()
		return nil, fmt.Errorf("%s env: %v", script, err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	h.AAddr, h.BAddr = env["TWOHOSTS_A_ADDR"], env["TWOHOSTS_B_ADDR"]
	h.AURI, h.BURI, h.Shared = env["TWOHOSTS_A_URI"], env["TWOHOSTS_B_URI"], env["TWOHOSTS_SHARED"]
	h.Dir = env["TWOHOSTS_DIR"]
	h.A = &Virsh{Bin: script, Prefix: []string{"exec", "a", "virsh"}, Timeout: 180 * time.Second}
	h.B = &Virsh{Bin: script, Prefix: []string{"exec", "b", "virsh"}, Timeout: 180 * time.Second}
	return h, nil
}

// Stop stops the bed if StartTwoHosts started it, and releases the lock.
func (h *TwoHosts) Stop() error {
	defer h.unlock()
	if !h.started {
		return nil
	}
	out, err := exec.Command(h.Script, "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s stop: %v\n%s", h.Script, err, out)
	}
	return nil
}

// Exec runs a command inside host ("a" or "b") and returns its combined output.
func (h *TwoHosts) Exec(host string, args ...string) (string, error) {
	out, err := exec.Command(h.Script, append([]string{"exec", host}, args...)...).CombinedOutput()
	return string(out), err
}

// Link brings the veth link between the hosts up or down.
func (h *TwoHosts) Link(up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	out, err := exec.Command(h.Script, "link", state).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s link %s: %v\n%s", h.Script, state, err, out)
	}
	return nil
}

// Images is the directory of host-private images: /var/lib/libvirt/images inside each host.
const Images = "/var/lib/libvirt/images"

// HostPath is where path p under host's private /var/lib/libvirt (Images and the rest) is
// seen from outside the hosts.
func (h *TwoHosts) HostPath(host, p string) string {
	rel, err := filepath.Rel("/var/lib/libvirt", p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return p
	}
	return filepath.Join(h.Dir, host, "lib-libvirt", rel)
}

// DebugLog is where host's libvirtd writes its debug log (scripts/two-hosts.sh's
// log_outputs, /var/log/libvirt/libvirtd-debug.log inside the host), seen from outside.
func (h *TwoHosts) DebugLog(host string) string {
	return filepath.Join(h.Dir, host, "log-libvirt", "libvirtd-debug.log")
}

// Host returns the Virsh of host "a" or "b".
func (h *TwoHosts) Host(name string) *Virsh {
	if name == "a" {
		return h.A
	}
	return h.B
}

// lockWait bounds how long lockFile waits for another run to release a lock: every wait
// of a test has a deadline.
const lockWait = 10 * time.Minute

// lockFile takes an exclusive flock on path, waiting at most lockWait for another holder,
// and writes its pid into the file so that a run that gives up can name the holder.
func lockFile(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			f.Close()
			return nil, fmt.Errorf("flock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			holder, _ := os.ReadFile(path)
			f.Close()
			return nil, fmt.Errorf("flock %s: still held after %v by another run (pid %s)", path, lockWait, strings.TrimSpace(string(holder)))
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
