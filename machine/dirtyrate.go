package machine

import (
	"fmt"
	"hash/crc32"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// The dirty log's other clients: dirty-rate measurement and dirty limits.
//
// QEMU keeps a dirty bitmap per client and, while a dirty-rate measurement runs, counts in
// total_dirty_pages every page a log sync takes from KVM, whoever asked for the sync (the
// measurement or a migration); with KVM's dirty ring each vCPU also counts the pages its
// ring recorded (cpu->dirty_pages), a page entering the ring when the vCPU first writes it
// after the last reap. tlcvm keeps the same three figures:
//
//	harvested   per RAM block: every page taken from the block's dirty source, by
//	            SyncDirtyLog, StartDirtyLog or SyncDirtyRate (QEMU's total_dirty_pages)
//	kept        per RAM block: the pages SyncDirtyRate took, kept for SyncDirtyLog
//	dirtied     per vCPU: pages its stores took from clean to dirty (its dirty ring's
//	            entries); a page counts again once a sync has taken it (the reap)
//
// Coexistence with checkpoints: SyncDirtyRate takes pages from the dirty source but keeps
// them, and SyncDirtyLog returns them with the ones it harvests itself, so a measurement
// or a dirty limit running beside a checkpoint (or between two incremental checkpoints of
// one file, whose dirty log accumulates while logging is off) never hides a page from it.
// StartDirtyLog forgets the kept pages too, after counting what it harvested.
//
// Locking: keptMu guards kept's words; keptAny is set after bits are put in kept, so
// that SyncDirtyLog looks at kept only when something may be there.

var keptMu sync.Mutex // guards RAMBlock.kept of every block (syncs are rare: ≤ a few per s)

// harvest takes the source's dirty pages into dst and counts them.
func (b *RAMBlock) harvest(dst []uint64) uint64 {
	n := b.src.harvest(dst)
	if n != 0 {
		b.harvested.Add(n)
	}
	return n
}

// keep harvests the source into kept (SyncDirtyRate).
func (b *RAMBlock) keep() {
	keptMu.Lock()
	n := b.harvest(b.kept)
	keptMu.Unlock()
	if n != 0 {
		b.keptAny.Store(true)
	}
}

// takeKept moves the kept pages into dst and returns how many of them dst did not have.
func (b *RAMBlock) takeKept(dst []uint64) (n uint64) {
	keptMu.Lock()
	defer keptMu.Unlock()
	for i, w := range b.kept {
		if w != 0 {
			n += uint64(bits.OnesCount64(w &^ dst[i]))
			dst[i] |= w
			b.kept[i] = 0
		}
	}
	return n
}

// forget drops every page dirtied so far (StartDirtyLog), counting those it harvests.
func (b *RAMBlock) forget() {
	keptMu.Lock()
	defer keptMu.Unlock()
	b.harvest(b.kept)
	clear(b.kept)
	b.keptAny.Store(false)
}

// Harvested is the number of pages taken from the block's dirty log so far, by any
// client (QEMU's total_dirty_pages, which counts while its dirty-rate flag is set).
func (b *RAMBlock) Harvested() uint64 { return b.harvested.Load() }

// SyncDirtyRate is QEMU's memory_global_dirty_log_sync on behalf of a dirty-rate
// measurement or a dirty limit: every block's dirty source is harvested (counted in
// Harvested, kept for SyncDirtyLog), and each page harvested counts again in its writer's
// DirtiedPages when next written, as a KVM dirty-ring reap re-arms pages.
func (m *Machine) SyncDirtyRate() {
	for _, b := range m.RAMBlocks() {
		b.keep()
	}
}

// DirtyPagesHarvested is the sum of Harvested over the RAM blocks.
func (m *Machine) DirtyPagesHarvested() (n uint64) {
	for _, b := range m.RAMBlocks() {
		n += b.Harvested()
	}
	return n
}

// dirtyCounter is implemented by backends that count the pages each vCPU dirtied (the
// synthetic workload; a KVM backend with a dirty ring: the ring entries it reaped).
type dirtyCounter interface{ dirtiedPages() uint64 }

func (c *synthCPU) dirtiedPages() uint64 { return c.dirtied.Load() }

// dirty adds n newly dirtied pages to the vCPU's count.
func (c *synthCPU) dirty(n uint64) {
	if n != 0 {
		c.dirtied.Add(n)
	}
}

// DirtiedPages returns, per present vCPU in index order, the pages it took from clean to
// dirty since it was created (QEMU's cpu->dirty_pages).
func (m *Machine) DirtiedPages() []uint64 {
	vcpus := m.cpus()
	out := make([]uint64, len(vcpus))
	for i, v := range vcpus {
		if d, ok := v.be.(dirtyCounter); ok { // be is set once by New
			out[i] = d.dirtiedPages()
		}
	}
	return out
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// zeroPageHash is PageHashes' value for a page the guest never wrote (all zeros).
var zeroPageHash = crc32.Checksum(make([]byte, PageSize), castagnoli)

// PageHashes hashes the given pages of b into out (len(out) >= len(pages)): the
// page-sampling dirty-rate measurement's fingerprints (QEMU hashes sampled pages with
// xxhash; any 32-bit digest of the content serves). A page the guest never wrote is
// not read (its hash is the zero page's); a page of a chunk restored by mapping is
// checked first (Ensure). A page whose check fails gets ok[i] == false.
func (m *Machine) PageHashes(b *RAMBlock, pages []uint64, out []uint32, ok []bool) error {
	m.ramMu.RLock()
	defer m.ramMu.RUnlock()
	if b.mem == nil {
		return fmt.Errorf("%w: RAM block %s is closed", ErrConfig, b.name)
	}
	for i, p := range pages {
		ok[i] = p < b.Pages()
		if !ok[i] {
			continue
		}
		if !b.Written(p) {
			out[i] = zeroPageHash
			continue
		}
		if err := b.Ensure(p, 1); err != nil {
			ok[i] = false
			continue
		}
		out[i] = crc32.Checksum(b.mem[p<<pageShift:(p+1)<<pageShift], castagnoli)
	}
	return nil
}

// Dirty limits (QEMU's dirtylimit_vcpu_execute): a vCPU under a limit sleeps for its
// throttle each time its dirty ring is full, i.e. after every ring pages it dirtied.
// The vCPU thread checks after each backend Run (vcpu.runPeriod calls throttle); the
// sleep ends early when the run period ends (pause, shutdown), so a throttled VM still
// stops at once.

// vcpuThrottle is one vCPU's limit. sleep and ring are set by SetDirtyThrottle; next is
// owned by the vCPU thread.
type vcpuThrottle struct {
	sleep atomic.Int64  // ns to sleep per full ring; 0: not throttled
	ring  atomic.Uint64 // pages per ring
	next  uint64        // dirtied count at which the ring is next full (vCPU thread only)
}

// SetDirtyThrottle makes vCPU cpu sleep for d each time it has dirtied ring more pages
// (d == 0 lifts the throttle). Invalid cpu indexes are ignored.
func (m *Machine) SetDirtyThrottle(cpu int, d time.Duration, ring uint64) {
	if cpu < 0 || cpu >= m.cfg.MaxCPUs {
		return
	}
	t := m.throttles()[cpu]
	t.ring.Store(max(ring, 1))
	t.sleep.Store(int64(max(d, 0)))
}

// throttles returns the per-vCPU throttles, creating them on first use.
func (m *Machine) throttles() []*vcpuThrottle {
	if p := m.dirtyLimits.Load(); p != nil {
		return *p
	}
	ts := make([]*vcpuThrottle, m.cfg.MaxCPUs) // by CPU index: hotplugged vCPUs too
	for i := range ts {
		ts[i] = &vcpuThrottle{}
	}
	if m.dirtyLimits.CompareAndSwap(nil, &ts) {
		return ts
	}
	return *m.dirtyLimits.Load()
}

// throttle is called by the vCPU thread after each Run: when the vCPU's ring is full and
// it is under a limit, the ring is reaped (SyncDirtyRate) and the vCPU sleeps for its
// throttle, or until the run period ends (kick closed).
func (v *vcpu) throttle(kick <-chan struct{}) {
	p := v.m.dirtyLimits.Load()
	if p == nil {
		return
	}
	t := (*p)[v.index]
	d := t.sleep.Load()
	if d == 0 {
		return
	}
	c, ok := v.be.(dirtyCounter)
	if !ok {
		return
	}
	n := c.dirtiedPages()
	if t.next == 0 {
		t.next = n + t.ring.Load() // the ring starts filling now
	}
	if n < t.next {
		return
	}
	t.next = n + t.ring.Load()
	v.m.SyncDirtyRate() // a full ring exits to the VMM, which reaps every ring
	tm := time.NewTimer(time.Duration(d))
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-kick:
	}
}
