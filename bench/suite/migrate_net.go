package suite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNet means the migration benchmark's veth pair could not be made or measured.
var ErrNet = errors.New("suite: migration network")

// MigNet is the link the migration benchmark measures over: two network namespaces joined by a
// veth pair, with a /30 whose addresses exist only inside them.
//
//	netns Src (SrcAddr/30) ── veth ── netns Dst (DstAddr/30)
//
// The source emulator runs in Src, the destination in Dst (`ip netns exec`); migrate sends to
// tcp:DstAddr:port.
type MigNet struct {
	Src, Dst         string // namespace names
	SrcAddr, DstAddr string // e.g. 10.213.77.1 and 10.213.77.2
}

// DefaultMigNet is the pair the benchmark creates (and deletes).
var DefaultMigNet = MigNet{Src: "tlcvm-bm-src", Dst: "tlcvm-bm-dst", SrcAddr: "10.213.77.1", DstAddr: "10.213.77.2"}

func ipCmd(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: ip %s: %v: %s", ErrNet, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Create makes both namespaces, the veth pair and the addresses, with lo up; a pair left by an
// earlier run is deleted first.
func (n MigNet) Create(ctx context.Context) error {
	n.Delete()
	steps := [][]string{
		{"netns", "add", n.Src},
		{"netns", "add", n.Dst},
		{"link", "add", "bm-veth-s", "netns", n.Src, "type", "veth", "peer", "name", "bm-veth-d", "netns", n.Dst},
		{"-n", n.Src, "addr", "add", n.SrcAddr + "/30", "dev", "bm-veth-s"},
		{"-n", n.Dst, "addr", "add", n.DstAddr + "/30", "dev", "bm-veth-d"},
		{"-n", n.Src, "link", "set", "lo", "up"},
		{"-n", n.Dst, "link", "set", "lo", "up"},
		{"-n", n.Src, "link", "set", "bm-veth-s", "up"},
		{"-n", n.Dst, "link", "set", "bm-veth-d", "up"},
	}
	for _, s := range steps {
		if err := ipCmd(ctx, s...); err != nil {
			n.Delete()
			return err
		}
	}
	return nil
}

// Delete removes both namespaces (and with them the veth pair); errors are ignored.
func (n MigNet) Delete() {
	for _, ns := range []string{n.Src, n.Dst} {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

// Wrap returns the command line that runs bin with args inside namespace ns.
func Wrap(ns, bin string, args []string) (string, []string) {
	return "ip", append([]string{"netns", "exec", ns, bin}, args...)
}

// inNetns runs f on a thread moved into namespace ns; sockets f creates stay in ns.
func inNetns(ns string, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return err
	}
	defer self.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNet, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("%w: setns %s: %v", ErrNet, ns, err)
	}
	ferr := f()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread cannot go back: leave it locked so that the runtime ends it.
		runtime.LockOSThread()
		return fmt.Errorf("%w: setns back: %v", ErrNet, err)
	}
	return ferr
}

// measureConn runs one TCP connection from Src to Dst: recv reads it in Dst (on a goroutine
// of its own) and returns the bytes it counted and the time from its first byte, send writes
// it in Src, after which the connection is closed (the receiver then sees EOF). Each end's
// deadline, and the wait for the receiver after the sender, is limit. It returns MB/s
// (10^6 bytes) as the receiver counted.
func (n MigNet) measureConn(ctx context.Context, port int, limit time.Duration,
	recv func(c net.Conn) (int64, time.Duration, error), send func(c net.Conn) error) (float64, error) {
	addr := fmt.Sprintf("%s:%d", n.DstAddr, port)
	var ln net.Listener
	if err := inNetns(n.Dst, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		return 0, err
	}
	defer ln.Close()
	type result struct {
		bytes int64
		took  time.Duration
		err   error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(limit))
		b, took, err := recv(c)
		got <- result{bytes: b, took: took, err: err}
	}()
	var c net.Conn
	dialer := net.Dialer{Timeout: 10 * time.Second}
	if err := inNetns(n.Src, func() (err error) { c, err = dialer.DialContext(ctx, "tcp", addr); return err }); err != nil {
		return 0, err
	}
	_ = c.SetDeadline(time.Now().Add(limit))
	err := send(c)
	c.Close()
	if err != nil {
		return 0, fmt.Errorf("%w: send: %v", ErrNet, err)
	}
	select {
	case r := <-got:
		if r.err != nil {
			return 0, fmt.Errorf("%w: receive: %v", ErrNet, r.err)
		}
		return float64(r.bytes) / r.took.Seconds() / 1e6, nil
	case <-time.After(limit):
		return 0, fmt.Errorf("%w: receiver did not finish", ErrNet)
	}
}

// sendBuffer is what the measurements send: 1 MiB of a pattern, written again and again.
func sendBuffer() []byte {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	return buf
}

// LinkThroughput measures the link's own TCP throughput: one connection from Src to Dst
// carrying as much as it can for d, read into one reused buffer; it returns MB/s (10^6
// bytes) as the receiver counted.
func (n MigNet) LinkThroughput(ctx context.Context, port int, d time.Duration) (float64, error) {
	recv := func(c net.Conn) (int64, time.Duration, error) {
		buf := make([]byte, 1<<20)
		var total int64
		var t0 time.Time
		for {
			k, err := c.Read(buf)
			if total == 0 && k > 0 {
				t0 = time.Now()
			}
			total += int64(k)
			if err == io.EOF {
				return total, time.Since(t0), nil
			}
			if err != nil {
				return 0, 0, err
			}
		}
	}
	send := func(c net.Conn) error {
		buf := sendBuffer()
		for end := time.Now().Add(d); time.Now().Before(end) && ctx.Err() == nil; {
			if _, err := c.Write(buf); err != nil {
				return err
			}
		}
		return nil
	}
	return n.measureConn(ctx, port, d+30*time.Second, recv, send)
}

// PopulateThroughput is the rate (MB/s) at which this host makes fresh anonymous memory
// present, zeroed: size bytes mapped as a destination maps guest RAM, populated with one
// MADV_POPULATE_WRITE, unmapped. A destination places every page it receives in such
// memory, so its precopy cannot go faster than this however fast the link.
func PopulateThroughput(size int) (float64, error) {
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return 0, fmt.Errorf("%w: mmap %d bytes: %v", ErrNet, size, err)
	}
	defer unix.Munmap(mem) //nolint:errcheck // measurement only
	t0 := time.Now()
	if err := unix.Madvise(mem, unix.MADV_POPULATE_WRITE); err != nil {
		return 0, fmt.Errorf("%w: MADV_POPULATE_WRITE: %v", ErrNet, err)
	}
	return float64(size) / 1e6 / time.Since(t0).Seconds(), nil
}

// FreshThroughput measures what the link carries into fresh memory: one connection from
// Src to Dst sending size bytes, which the receiver reads in 1 MiB steps straight into a
// fresh anonymous mapping of size bytes (as a destination maps guest RAM), never reusing a
// byte of it, while a goroutine makes the mapping present ahead of the reader with
// MADV_POPULATE_WRITE in 4 MiB steps (as tlcvm's destination does). It is the most a
// destination can receive per second on this host without a copy of its own and without
// populating its RAM before the migration starts: the bound of a precopy's throughput,
// where LinkThroughput (a receiver reading into one reused buffer) pays for no new memory.
// It returns MB/s (10^6 bytes) as the receiver counted.
func (n MigNet) FreshThroughput(ctx context.Context, port int, size int) (float64, error) {
	const step, ahead = 1 << 20, 4 << 20
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return 0, fmt.Errorf("%w: mmap %d bytes: %v", ErrNet, size, err)
	}
	defer unix.Munmap(mem) //nolint:errcheck // measurement only
	recv := func(c net.Conn) (int64, time.Duration, error) {
		// The populator stays two 4 MiB chunks ahead of the reader: chunks 0 and 1 at once,
		// chunk i+2 when the reader enters chunk i.
		chunks := (size + ahead - 1) / ahead
		entered := make(chan int, chunks)
		go func() {
			populate := func(i int) {
				if i < chunks {
					_ = unix.Madvise(mem[i*ahead:min((i+1)*ahead, size)], unix.MADV_POPULATE_WRITE)
				}
			}
			populate(0)
			populate(1)
			for i := range entered {
				populate(i + 2)
			}
		}()
		defer close(entered)
		var t0 time.Time
		for off := 0; off < size; {
			k, err := c.Read(mem[off:min(off+step, size)])
			if off == 0 && k > 0 {
				t0 = time.Now()
			}
			if (off+k)/ahead > off/ahead {
				entered <- (off + k) / ahead
			}
			off += k
			if err != nil && off < size {
				return 0, 0, err
			}
		}
		return int64(size), time.Since(t0), nil
	}
	send := func(c net.Conn) error {
		buf := sendBuffer()
		for sent := 0; sent < size && ctx.Err() == nil; sent += step {
			if _, err := c.Write(buf[:min(step, size-sent)]); err != nil {
				return err
			}
		}
		return nil
	}
	return n.measureConn(ctx, port, time.Minute, recv, send)
}
