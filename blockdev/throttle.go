package blockdev

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// I/O throttling as QEMU 7.2's util/throttle.c and block/throttle-groups.c: six leaky
// buckets (bytes and operations: total, read, write) per throttle group, shared by every
// backend in the group. A request waits until every bucket of its direction has room,
// then pours its bytes (and operations: size/iops_size when bigger) into them; the buckets
// leak at their average rate. A bucket holds avg/10 (a 100 ms burst) when no burst rate is
// set, else max*max_length, and with max_length > 1 a second level keeps the burst itself
// at max per second. Waiting requests of one direction go in turn (first come, first
// served, across the group's members), as QEMU's round robin lets one request per
// direction hold the group's timer.

// Bucket indexes (BucketType).
const (
	BpsTotal = iota
	BpsRead
	BpsWrite
	OpsTotal
	OpsRead
	OpsWrite
	buckets
)

// throttleValueMax is THROTTLE_VALUE_MAX.
const throttleValueMax = 1000000000000000

// BucketConfig is one leaky bucket's limits (LeakyBucket's avg, max, burst_length).
type BucketConfig struct {
	Avg, Max    uint64 // units per second; Max: the burst rate (0: none)
	BurstLength uint64 // seconds the burst rate may last (default 1)
}

// ThrottleConfig is a group's limits (ThrottleConfig); OpSize is iops_size.
type ThrottleConfig struct {
	Buckets [buckets]BucketConfig
	OpSize  uint64
}

// NewThrottleConfig is throttle_config_init: no limits, burst lengths 1.
func NewThrottleConfig() ThrottleConfig {
	var c ThrottleConfig
	for i := range c.Buckets {
		c.Buckets[i].BurstLength = 1
	}
	return c
}

// Enabled is throttle_enabled: some average limit is set.
func (c *ThrottleConfig) Enabled() bool {
	for _, b := range c.Buckets {
		if b.Avg > 0 {
			return true
		}
	}
	return false
}

// Validate is throttle_is_valid, with its texts.
func (c *ThrottleConfig) Validate() error {
	b := &c.Buckets
	conflict := func(avg func(BucketConfig) uint64) bool {
		return avg(b[BpsTotal]) != 0 && (avg(b[BpsRead]) != 0 || avg(b[BpsWrite]) != 0) ||
			avg(b[OpsTotal]) != 0 && (avg(b[OpsRead]) != 0 || avg(b[OpsWrite]) != 0)
	}
	if conflict(func(x BucketConfig) uint64 { return x.Avg }) || conflict(func(x BucketConfig) uint64 { return x.Max }) {
		return errf(ErrInvalid, "bps/iops/max total values and read/write values cannot be used at the same time")
	}
	if c.OpSize != 0 && b[OpsTotal].Avg == 0 && b[OpsRead].Avg == 0 && b[OpsWrite].Avg == 0 {
		return errf(ErrInvalid, "iops size requires an iops value to be set")
	}
	for _, k := range b {
		switch {
		case k.Avg > throttleValueMax || k.Max > throttleValueMax:
			return errf(ErrInvalid, "bps/iops/max values must be within [0, %d]", int64(throttleValueMax))
		case k.BurstLength == 0:
			return errf(ErrInvalid, "the burst length cannot be 0")
		case k.BurstLength > 1 && k.Max == 0:
			return errf(ErrInvalid, "burst length set without burst rate")
		case k.Max != 0 && k.BurstLength > throttleValueMax/k.Max:
			return errf(ErrInvalid, "burst length too high for this burst rate")
		case k.Max != 0 && k.Avg == 0:
			return errf(ErrInvalid, "bps_max/iops_max require corresponding bps/iops values")
		case k.Max != 0 && k.Max < k.Avg:
			return errf(ErrInvalid, "bps_max/iops_max cannot be lower than bps/iops")
		}
	}
	return nil
}

// throttleGroup is a ThrottleGroup: the config, the bucket levels and the queues of
// waiting requests, shared by its members.
type throttleGroup struct {
	name    string
	members int // +checklocks: Graph.tgMu

	mu       sync.Mutex
	cfg      ThrottleConfig     // +checklocks:mu
	level    [buckets]float64   // +checklocks:mu
	burst    [buckets]float64   // +checklocks:mu
	prevLeak int64              // +checklocks:mu; clock ns of the last leak
	queue    [2][]*throttleWait // +checklocks:mu; per direction (0 read, 1 write), FIFO
}

// throttleWait is one request waiting in a group's queue.
type throttleWait struct{ wake chan struct{} }

// throttleMember ties a backend to its group (nil: no limits).
type throttleMember = atomic.Pointer[throttleGroup]

// clockNS is the throttle clock (QEMU_CLOCK_REALTIME): monotonic nanoseconds.
var clockEpoch = time.Now()

func clockNS() int64 { return int64(time.Since(clockEpoch)) }

// configure is throttle_config: the limits change and every level empties.
func (g *throttleGroup) configure(c ThrottleConfig) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cfg = c
	g.level, g.burst = [buckets]float64{}, [buckets]float64{}
	g.prevLeak = clockNS()
	g.kick()
}

// kick wakes the first waiter of each direction to recompute. Caller holds g.mu.
func (g *throttleGroup) kick() {
	for _, q := range g.queue {
		if len(q) > 0 {
			select {
			case q[0].wake <- struct{}{}:
			default:
			}
		}
	}
}

// leak is throttle_do_leak. Caller holds g.mu.
func (g *throttleGroup) leak(now int64) {
	delta := now - g.prevLeak
	g.prevLeak = now
	if delta <= 0 {
		return
	}
	for i, b := range g.cfg.Buckets {
		g.level[i] = max(g.level[i]-float64(b.Avg)*float64(delta)/1e9, 0)
		if b.BurstLength > 1 {
			g.burst[i] = max(g.burst[i]-float64(b.Max)*float64(delta)/1e9, 0)
		}
	}
}

// bucketWait is throttle_compute_wait for bucket i. Caller holds g.mu.
func (g *throttleGroup) bucketWait(i int) int64 {
	b := g.cfg.Buckets[i]
	if b.Avg == 0 {
		return 0
	}
	size, burstSize := float64(b.Avg)/10, 0.0
	if b.Max != 0 {
		size, burstSize = float64(b.Max)*float64(b.BurstLength), float64(b.Max)/10
	}
	if extra := g.level[i] - size; extra > 0 {
		return int64(extra * 1e9 / float64(b.Avg))
	}
	if b.BurstLength > 1 {
		if extra := g.burst[i] - burstSize; extra > 0 {
			return int64(extra * 1e9 / float64(b.Max))
		}
	}
	return 0
}

// waitFor is throttle_compute_wait_for: the longest wait of the direction's buckets.
// Caller holds g.mu.
func (g *throttleGroup) waitFor(write bool) int64 {
	idx := [2][4]int{{BpsTotal, OpsTotal, BpsRead, OpsRead}, {BpsTotal, OpsTotal, BpsWrite, OpsWrite}}
	w := 0
	if write {
		w = 1
	}
	var most int64
	for _, i := range idx[w] {
		most = max(most, g.bucketWait(i))
	}
	return most
}

// account is throttle_account. Caller holds g.mu.
func (g *throttleGroup) account(write bool, size uint64) {
	units := 1.0
	if g.cfg.OpSize != 0 && size > g.cfg.OpSize {
		units = float64(size) / float64(g.cfg.OpSize)
	}
	sizes, ops := [2]int{BpsTotal, BpsRead}, [2]int{OpsTotal, OpsRead}
	if write {
		sizes[1], ops[1] = BpsWrite, OpsWrite
	}
	for k := 0; k < 2; k++ {
		for _, x := range []struct {
			i int
			v float64
		}{{sizes[k], float64(size)}, {ops[k], units}} {
			g.level[x.i] += x.v
			if g.cfg.Buckets[x.i].BurstLength > 1 {
				g.burst[x.i] += x.v
			}
		}
	}
}

// throttle waits until b's group lets a request of size bytes through (nothing to wait
// for without limits). It returns ctx's error, having taken nothing, when ctx ends first.
func (b *Backend) throttle(ctx context.Context, write bool, size int64) error {
	for {
		g := b.tg.Load()
		if g == nil {
			return nil
		}
		done, err := g.wait(ctx, b, write, uint64(size))
		if err != nil || done {
			return err
		}
	}
}

// wait queues the request and returns once it is through (true), or false when b left
// the group meanwhile (the caller looks again).
func (g *throttleGroup) wait(ctx context.Context, b *Backend, write bool, size uint64) (bool, error) {
	d := 0
	if write {
		d = 1
	}
	w := &throttleWait{wake: make(chan struct{}, 1)}
	g.mu.Lock()
	g.queue[d] = append(g.queue[d], w)
	leave := func() {
		q := g.queue[d]
		for i, x := range q {
			if x == w {
				g.queue[d] = append(q[:i:i], q[i+1:]...)
				break
			}
		}
		g.kick()
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if b.tg.Load() != g {
			leave()
			g.mu.Unlock()
			return false, nil
		}
		var tc <-chan time.Time
		if g.queue[d][0] == w {
			now := clockNS()
			g.leak(now)
			wait := g.waitFor(write)
			if wait == 0 {
				g.account(write, size)
				leave()
				g.mu.Unlock()
				return true, nil
			}
			if timer == nil {
				timer = time.NewTimer(time.Duration(wait))
			} else {
				timer.Reset(time.Duration(wait))
			}
			tc = timer.C
		}
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			g.mu.Lock()
			leave()
			g.mu.Unlock()
			return false, ctx.Err()
		case <-w.wake:
		case <-tc:
		}
		g.mu.Lock()
	}
}

// ThrottleInfo is a backend's throttling as query-block shows it: the group's config and
// name; Enabled false when the backend has no limits.
type ThrottleInfo struct {
	Enabled bool
	Config  ThrottleConfig
	Group   string
}

// Throttle returns the backend's throttling.
func (b *Backend) Throttle() ThrottleInfo {
	g := b.tg.Load()
	if g == nil {
		return ThrottleInfo{Config: NewThrottleConfig()}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return ThrottleInfo{Enabled: true, Config: g.cfg, Group: g.name}
}

// ThrottleArgs is block_set_io_throttle's request: the backend (by drive name or by a
// device's qdev id), the limits and the group (nil: the backend's own, or its current).
type ThrottleArgs struct {
	Device, ID string
	Config     ThrottleConfig
	Group      *string
}

// SetIOThrottle is block_set_io_throttle (qmp_block_set_io_throttle): validate the limits,
// then enable throttling in the named group (default: the drive name or the id given),
// move the backend to another group when one is named, set the group's limits (they
// apply to every member), or leave the group when every limit is 0.
func (g *Graph) SetIOThrottle(a ThrottleArgs) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, err := g.qmpBackend(a.Device, a.ID)
	if err != nil {
		return err
	}
	if b.Root == nil {
		return errf(ErrInvalid, "Device has no medium")
	}
	if err := a.Config.Validate(); err != nil {
		return err
	}
	g.tgMu.Lock()
	defer g.tgMu.Unlock()
	cur := b.tg.Load()
	if !a.Config.Enabled() {
		if cur != nil {
			g.leaveGroup(b, cur)
		}
		return nil
	}
	name := ""
	switch {
	case a.Group != nil:
		name = *a.Group
	case a.Device != "":
		name = a.Device
	default:
		name = a.ID
	}
	if cur != nil && a.Group != nil && cur.name != name {
		g.leaveGroup(b, cur)
		cur = nil
	}
	if cur == nil {
		cur = g.joinGroup(b, name)
	}
	cur.configure(a.Config)
	return nil
}

// joinGroup registers b in the group called name, creating it. Caller holds g.tgMu.
func (g *Graph) joinGroup(b *Backend, name string) *throttleGroup {
	if g.groups == nil {
		g.groups = map[string]*throttleGroup{}
	}
	tg, ok := g.groups[name]
	if !ok {
		tg = &throttleGroup{name: name, cfg: NewThrottleConfig(), prevLeak: clockNS()}
		g.groups[name] = tg
	}
	tg.members++
	b.tg.Store(tg)
	return tg
}

// leaveGroup unregisters b; its waiting requests look again (and go through). The group
// goes away with its last member. Caller holds g.tgMu.
func (g *Graph) leaveGroup(b *Backend, tg *throttleGroup) {
	b.tg.Store(nil)
	tg.mu.Lock()
	for _, q := range tg.queue {
		for _, w := range q {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
	tg.mu.Unlock()
	if tg.members--; tg.members == 0 {
		delete(g.groups, tg.name)
	}
}

// qmpBackend is qmp_get_blk: exactly one of a drive name and a device's qdev id.
// Caller holds g.mu.
func (g *Graph) qmpBackend(device, id string) (*Backend, error) {
	if (device == "") == (id == "") {
		return nil, errf(ErrInvalid, "Need exactly one of 'device' and 'id'")
	}
	if id != "" {
		// find_device_state: a qdev id, or a QOM path. A virtio-blk-pci proxy has no
		// backend of its own: its virtio-backend child has.
		for _, d := range g.devices {
			virtio := d.Driver == "virtio-blk-pci"
			switch {
			case virtio && id == d.Path+"/virtio-backend", !virtio && (id == d.Path || id == d.ID):
				return d.Backend, nil
			case virtio && (id == d.Path || id == d.ID):
				return nil, errf(ErrInvalid, "Device does not have a block device backend")
			}
		}
		return nil, errf(ErrDeviceNotFound, "Device '%s' not found", id)
	}
	b := g.backend(device)
	if b == nil {
		return nil, errf(ErrDeviceNotFound, "Device '%s' not found", device)
	}
	return b, nil
}

// SetWriteThreshold is block-set-write-threshold: node-name's threshold (0 disarms; a
// value past the int64 range is never reached).
func (g *Graph) SetWriteThreshold(nodeName string, v uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.node(nodeName)
	if n == nil {
		return errf(ErrNotFound, "Device '%s' not found", nodeName)
	}
	n.SetWriteThreshold(int64(v))
	return nil
}
