package machine

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"tlcvm/compat/qerror"
)

// ChunkPages is the number of pages one lazy-check unit covers (1 MiB).
const ChunkPages = 256

const chunkWords = ChunkPages / 64 // bitmap words per chunk

// ErrRAMCheck marks a guest RAM page that failed its integrity check (restore by
// mapping): errors from ReadPhys, ReadVirt and SaveMemory wrap it, with the check's own
// text as their message.
var ErrRAMCheck = errors.New("machine: guest RAM check failed")

// ErrRAMRetry is what a MapCheck returns when the chunk's data is not there yet (a
// postcopy destination waiting for pages from its source): the chunk stays lazy, and the
// access is retried. A vCPU makes no progress meanwhile and parks when the VM stops; other
// accesses (monitor reads, Ensure, Populate) retry until the check passes or fails.
var ErrRAMRetry = errors.New("machine: guest RAM not available yet")

// MapCheck verifies the present pages of the chunk that starts at page first of the block;
// mem is that chunk's memory (through the mapping; len = min(ChunkPages, pages left)*PageSize).
// It returns an error naming the first bad page.
type MapCheck func(first uint64, mem []byte) error

// Chunk states of a mapped block (lazyMap.state).
const (
	chunkClean    uint32 = iota // checked, or holds no present page: free to access
	chunkLazy                   // holds present pages not yet checked
	chunkChecking               // one goroutine is checking it; others wait on lazyMap.cond
	chunkBad                    // the check failed: every access fails with lazyMap.errs[c]
)

// lazyMap is the restore-by-mapping state of a block. It is built by MapFile while the
// vCPUs are parked and published by the atomic store of RAMBlock.lazyLeft; afterwards
// only state, errs and the counters change.
type lazyMap struct {
	check   MapCheck
	present []uint16        // present pages per chunk; immutable
	total   uint64          // present pages in the block; immutable
	state   []atomic.Uint32 // per chunk: chunkClean … chunkBad; leaves chunkChecking under mu

	mu   sync.Mutex
	cond *sync.Cond       // signalled (under mu) when a chunk leaves chunkChecking
	errs map[uint64]error // +checklocks:mu; chunk → its check's error (state chunkBad)

	eager, lazy atomic.Uint64 // present pages populated by Populate / by an access
	prefault    bool          // make the chunk's private copies before the check (MapFile's)
}

// MapFile backs the block with a private (copy-on-write) mapping of fd at file offset off
// (page aligned, Size() bytes long): mmap MAP_PRIVATE|MAP_FIXED over the block's own address
// (unix.MmapPtr), so slices already handed out stay valid; PROT_READ|PROT_WRITE. present
// (BitmapWords words, bit p = page p) lists the pages that hold data: they become written;
// the others read as zero in the file and stay never-written. Every chunk holding a present
// page becomes lazy. The vCPUs must be parked (an incoming migration). Returns an error
// wrapping ErrConfig on mmap failure, with the block untouched.
//
// A file shorter than off+Size() is mapped up to its end (rounded up to a page: the
// kernel reads the partial page's tail as zeros); the block's tail keeps its anonymous
// memory, and a present page beyond the end of the file is refused (it would fault with
// SIGBUS on first touch).
func (b *RAMBlock) MapFile(fd int, off int64, present []uint64, check MapCheck) error {
	switch {
	case b.mem == nil:
		return fmt.Errorf("%w: map %s: RAM block is closed", ErrConfig, b.name)
	case b.restoreLM != nil:
		return fmt.Errorf("%w: map %s: RAM block is already mapped from a file", ErrConfig, b.name)
	case off < 0 || off%PageSize != 0:
		return fmt.Errorf("%w: map %s: file offset %d is not a multiple of %d", ErrConfig, b.name, off, PageSize)
	case len(present) < len(b.written):
		return fmt.Errorf("%w: map %s: present bitmap has %d words, want %d", ErrConfig, b.name, len(present), len(b.written))
	case check == nil:
		return fmt.Errorf("%w: map %s: no check function", ErrConfig, b.name)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%w: map %s: fstat fd %d: %v", ErrConfig, b.name, fd, err)
	}
	mapLen := b.size
	if avail := st.Size - off; avail < int64(b.size) {
		mapLen = 0
		if avail > 0 {
			mapLen = (uint64(avail) + PageSize - 1) &^ (PageSize - 1)
		}
	}
	pages := b.Pages()
	if p, ok := firstSetFrom(present, mapLen/PageSize, pages); ok {
		return fmt.Errorf("%w: map %s: present page %d lies beyond the end of the file (%d bytes, offset %d)",
			ErrConfig, b.name, p, st.Size, off)
	}
	if mapLen > 0 {
		if err := b.mapFixed(fd, off, mapLen); err != nil {
			return err
		}
	}
	lm := &lazyMap{check: check, errs: map[uint64]error{}}
	lm.cond = sync.NewCond(&lm.mu)
	nchunks := (pages + ChunkPages - 1) / ChunkPages
	lm.present = make([]uint16, nchunks)
	lm.state = make([]atomic.Uint32, nchunks)
	var lazy int64
	for c := uint64(0); c < nchunks; c++ {
		var n int
		for w := c * chunkWords; w < min((c+1)*chunkWords, uint64(len(b.written))); w++ {
			bitsIn := present[w] & validMask(w, pages)
			n += bits.OnesCount64(bitsIn)
			// The mapped pages' memory is now the file's: written = present there.
			if mm := validMask(w, mapLen/PageSize); mm != 0 {
				atomic.StoreUint64(&b.written[w], atomic.LoadUint64(&b.written[w])&^mm|bitsIn&mm)
			}
		}
		lm.present[c] = uint16(n)
		lm.total += uint64(n)
		if n > 0 {
			lm.state[c].Store(chunkLazy)
			lazy++
		}
	}
	lm.prefault = true
	b.restoreLM = lm
	b.lm.Store(lm)
	b.mapped.Store(true)
	b.lazyLeft.Store(lazy) // publishes lm to Ensure's readers
	return nil
}

// mapFixed replaces [0, length) of the block by a private mapping of fd at off. A trial
// mapping first lets the kernel validate the descriptor (access mode, mmap support) so
// that the MAP_FIXED call, which discards the old pages, does not fail on those grounds.
func (b *RAMBlock) mapFixed(fd int, off int64, length uint64) error {
	const prot = unix.PROT_READ | unix.PROT_WRITE
	const flags = unix.MAP_PRIVATE | unix.MAP_NORESERVE
	trial, err := unix.MmapPtr(fd, off, nil, PageSize, prot, flags)
	if err != nil {
		return fmt.Errorf("%w: map %s: mmap fd %d at %d: %v", ErrConfig, b.name, fd, off, err)
	}
	_ = unix.MunmapPtr(trial, PageSize)
	addr := unsafe.Pointer(unsafe.SliceData(b.mem))
	got, err := unix.MmapPtr(fd, off, addr, uintptr(length), prot, flags|unix.MAP_FIXED)
	if err == nil && got != addr {
		err = fmt.Errorf("mapped at %p, not %p", got, addr)
	}
	if err != nil {
		// Put anonymous zero pages back rather than leave a hole in guest RAM.
		_, _ = unix.MmapPtr(-1, 0, addr, uintptr(length), prot,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE|unix.MAP_FIXED)
		return fmt.Errorf("%w: map %s: mmap fd %d at %d (%d bytes): %v", ErrConfig, b.name, fd, off, length, err)
	}
	return nil
}

// validMask is the mask of bitmap word w's bits that name pages of the block.
func validMask(w, pages uint64) uint64 {
	if (w+1)*64 <= pages {
		return ^uint64(0)
	}
	if w*64 >= pages {
		return 0
	}
	return uint64(1)<<(pages-w*64) - 1
}

// firstSetFrom returns the first page in [from, pages) whose bit is set in bm.
func firstSetFrom(bm []uint64, from, pages uint64) (uint64, bool) {
	for p := from; p < pages; {
		w := bm[p/64] & validMask(p/64, pages) &^ (uint64(1)<<(p%64) - 1)
		if w != 0 {
			return p/64*64 + uint64(bits.TrailingZeros64(w)), true
		}
		p = (p/64 + 1) * 64
	}
	return 0, false
}

// Mapped reports whether the block is backed by a file mapping (MapFile succeeded).
func (b *RAMBlock) Mapped() bool { return b.mapped.Load() }

// Ensure makes pages [first, first+n) of the block safe to read: the lazy chunks among them
// are checked now (their present pages count as populated lazily). The error is the check's
// (the chunk stays lazy and every later access fails the same way).
func (b *RAMBlock) Ensure(first, n uint64) error {
	for {
		err := b.tryEnsure(first, n)
		if !errors.Is(err, ErrRAMRetry) {
			return err
		}
	}
}

// tryEnsure is Ensure that returns ErrRAMRetry instead of retrying (the vCPUs: a vCPU
// must be able to park while it waits).
func (b *RAMBlock) tryEnsure(first, n uint64) error {
	if n == 0 || b.lazyLeft.Load() == 0 {
		return nil
	}
	last := min(first+n, b.Pages())
	for c := first / ChunkPages; c*ChunkPages < last; c++ {
		if err := b.ensureChunk(c, false); err != nil {
			return err
		}
	}
	return nil
}

// Populate checks every remaining lazy chunk, from the last down (the background populate; its pages count
// as populated eagerly), returning early when stop is closed. Safe concurrently with Ensure and
// with running vCPUs: a chunk is checked exactly once, by whoever moves it from lazy to
// checking; a vCPU touching a chunk being checked by the populater waits for it.
func (b *RAMBlock) Populate(stop <-chan struct{}) error {
	if b.lazyLeft.Load() == 0 {
		return nil
	}
	// From the end down: a guest that walks its memory upwards meets the populater
	// instead of queueing behind it, and the two share the work.
	for c := len(b.lm.Load().state) - 1; c >= 0; c-- {
		select {
		case <-stop:
			return nil
		default:
		}
		err := b.ensureChunk(uint64(c), true)
		for errors.Is(err, ErrRAMRetry) {
			err = b.ensureChunk(uint64(c), true)
		}
		if err != nil {
			return err
		}
		if b.lazyLeft.Load() == 0 {
			return nil
		}
	}
	return nil
}

// PopulateStats: pages of present data populated eagerly (by Populate) and lazily (by an
// access), and present pages not yet populated.
func (b *RAMBlock) PopulateStats() (eager, lazy, left uint64) {
	if !b.mapped.Load() {
		return 0, 0, 0
	}
	lm := b.restoreLM
	eager, lazy = lm.eager.Load(), lm.lazy.Load()
	return eager, lazy, lm.total - eager - lazy
}

// ensureChunk makes chunk c clean, checking it if it is lazy, or waiting for the
// goroutine that is checking it. eager tells which counter its present pages go to.
func (b *RAMBlock) ensureChunk(c uint64, eager bool) error {
	lm := b.lm.Load()
	for {
		switch lm.state[c].Load() {
		case chunkClean:
			return nil
		case chunkLazy:
			if !lm.state[c].CompareAndSwap(chunkLazy, chunkChecking) {
				continue
			}
			return b.checkChunk(c, eager)
		default: // checking or bad
			lm.mu.Lock()
			for lm.state[c].Load() == chunkChecking {
				lm.cond.Wait()
			}
			err := lm.errs[c]
			lm.mu.Unlock()
			if err != nil {
				return err
			}
		}
	}
}

// checkChunk runs the check on chunk c, which the caller moved to chunkChecking.
func (b *RAMBlock) checkChunk(c uint64, eager bool) error {
	lm := b.lm.Load()
	first := c * ChunkPages
	end := min(first+ChunkPages, b.Pages())
	if lm.prefault {
		b.prefault(first, end)
	}
	err := lm.check(first, b.mem[first<<pageShift:end<<pageShift])
	lm.mu.Lock()
	defer lm.mu.Unlock()
	defer lm.cond.Broadcast()
	if errors.Is(err, ErrRAMRetry) {
		lm.state[c].Store(chunkLazy) // not there yet: the next access checks again
		return err
	}
	if err != nil {
		lm.errs[c] = err
		lm.state[c].Store(chunkBad)
		return err
	}
	if eager {
		lm.eager.Add(uint64(lm.present[c]))
	} else {
		lm.lazy.Add(uint64(lm.present[c]))
	}
	lm.state[c].Store(chunkClean)
	b.lazyLeft.Add(-1)
	return nil
}

// prefault makes the private copies of the present pages of [first, end) now, with
// MADV_POPULATE_WRITE (one kernel call per run of present pages) before the check reads
// them: whoever populates a chunk (the background thread, or the vCPU that touches it
// first) takes the copy-on-write faults in one batch, and the guest's first writes to
// the chunk then cost nothing (without it: a 2-4 µs fault per page, on the vCPU). Pages
// absent from the file stay untouched; a kernel without it (before 5.14) faults as before.
func (b *RAMBlock) prefault(first, end uint64) { b.populateRuns(first, end, true) }

// populateRuns makes the pages of [first, end) whose written bit equals written present,
// with MADV_POPULATE_WRITE, one kernel call per run of them; a kernel that refuses it
// (before 5.14) is remembered and not asked again.
func (b *RAMBlock) populateRuns(first, end uint64, written bool) {
	if b.noPrefault.Load() {
		return
	}
	for p := first; p < end; {
		if b.Written(p) != written {
			p++
			continue
		}
		q := p + 1
		for q < end && b.Written(q) == written {
			q++
		}
		if err := unix.Madvise(b.mem[p<<pageShift:q<<pageShift], unix.MADV_POPULATE_WRITE); err != nil {
			b.noPrefault.Store(true) // EINVAL: an older kernel
			return
		}
		p = q
	}
}

// ensurePage is the hot-path hook: one atomic load when nothing is lazy.
func (b *RAMBlock) ensurePage(page uint64) error {
	if b.lazyLeft.Load() == 0 {
		return nil
	}
	return b.Ensure(page, 1)
}

// ramCheckError wraps a check failure met by a monitor read: the check's text, ErrRAMCheck.
func ramCheckError(err error) error {
	return qerror.Wrapf(ErrRAMCheck, err, "%s", err.Error())
}

// StartPopulate starts the background populate of every mapped block on its own goroutine
// (after the guest is allowed to run). A check error stops the guest as a vCPU's does
// (internal-error, one line on stderr). Idempotent; Close stops it.
func (m *Machine) StartPopulate() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.populating || m.closed {
		return
	}
	m.populating = true
	m.loopWG.Add(1)
	go func() {
		defer m.loopWG.Done()
		for _, b := range m.RAMBlocks() {
			if !b.Mapped() {
				continue
			}
			if err := b.Populate(m.quit); err != nil {
				m.ramFault(err, true)
				return
			}
		}
		m.log.Debug().Msg("guest RAM populated")
	}()
}

// ramFault is a guest RAM check failure met by a vCPU (which then parks) or by the
// populater; guestLoop stops the VM with internal-error.
func (m *Machine) ramFault(err error, populate bool) {
	select {
	case m.faults <- ramFaultReq{err, populate}:
	default: // one is pending: it stops the VM
	}
}

type ramFaultReq struct {
	err      error
	populate bool
}

// handleRAMFault runs on guestLoop: a running VM stops in internal-error (STOP), as QEMU
// stops on a vCPU's internal error, after one line on stderr. Caller holds m.mu.
func (m *Machine) handleRAMFault(f ramFaultReq) {
	if m.closed || m.exiting {
		return
	}
	running := m.state == StateRunning
	if !running && (!f.populate || m.state == StateInternalError) {
		return // a vCPU that faulted while being stopped: it retries on resume
	}
	m.log.Error().Err(f.err).Bool("populate", f.populate).Msg("guest RAM check failed")
	var w io.Writer = os.Stderr
	if m.cfg.Stderr != nil {
		w = m.cfg.Stderr
	}
	fmt.Fprintf(w, "tlcvm: guest RAM check failed: %v\n", f.err)
	if running {
		m.vmStop(StateInternalError)
	}
}

// ErrGuardBusy is Guard on a block whose restore by mapping still has unchecked chunks.
var ErrGuardBusy = errors.New("machine: RAM block still being populated")

// Guard makes lazy again every chunk (ChunkPages pages) that holds a page set in pages
// (bit p of word p/64: page p), with fn as its check: before anything in the machine
// touches a page of such a chunk, fn runs on the chunk, once, on the goroutine that
// touches it first (a vCPU about to write it, a monitor read) or on Populate's. A
// checkpoint uses it to copy its final pages after the guest has resumed, each before the
// guest can change it (copy on first touch). The vCPUs must be parked; a block whose
// restore by mapping is still lazy fails with ErrGuardBusy. An error from fn fails the
// access as a failed restore check does.
func (b *RAMBlock) Guard(pages []uint64, fn MapCheck) error {
	if b.lazyLeft.Load() != 0 {
		return ErrGuardBusy
	}
	if len(pages) < len(b.written) || fn == nil {
		return fmt.Errorf("%w: guard %s: page bitmap of %d words, want %d", ErrConfig, b.name, len(pages), len(b.written))
	}
	nchunks := (b.Pages() + ChunkPages - 1) / ChunkPages
	lm := &lazyMap{check: fn, errs: map[uint64]error{},
		present: make([]uint16, nchunks), state: make([]atomic.Uint32, nchunks)}
	lm.cond = sync.NewCond(&lm.mu)
	var n int64
	for c := uint64(0); c < nchunks; c++ {
		for w := c * chunkWords; w < min((c+1)*chunkWords, uint64(len(b.written))); w++ {
			if pages[w] != 0 {
				lm.state[c].Store(chunkLazy)
				n++
				break
			}
		}
	}
	if n == 0 {
		return nil
	}
	b.lm.Store(lm)
	b.lazyLeft.Store(n) // publishes lm
	return nil
}
