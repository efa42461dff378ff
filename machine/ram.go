package machine

import (
	"fmt"
	"math/bits"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// PageSize is the guest page size the dirty log and bitmaps count in.
const PageSize = 4096

const pageShift = 12

// RAMBlock is one mmap'd region of guest RAM (QEMU's RAMBlock: "pc.ram" for pc/q35).
//
// Pages the guest never wrote are never touched by tlcvm: the mapping is
// MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, so an idle 4 GiB guest costs no RSS.
//
// Two bitmaps, one bit per page, bit i of word i/64 is page i:
//   - written: set the first time a page is written (by the guest or a loader); never
//     cleared while the block lives. It tells a checkpoint which pages can be non-zero.
//   - dirty: set on every guest write, taken-and-cleared by SyncDirtyLog.
//
// Ordering contract (the checkpoint engine relies on it): a writer stores the data FIRST
// and THEN sets the dirty bit with an atomic OR (a full barrier on amd64). A reader that
// atomically swaps a bitmap word to zero and then copies the page therefore either sees
// the new data, or leaves the bit set for the next sync. No write is ever lost. The dirty
// bit is maintained at all times (not only while logging) so that no write can slip
// between a writer's "is logging on?" check and StartDirtyLog.
type RAMBlock struct {
	name    string
	size    uint64 // bytes, a multiple of PageSize; immutable
	mem     []byte // the mapping; immutable until Close
	written []uint64
	dirty   []uint64    // the synthetic backend's dirty bits (noteWrite sets them)
	src     dirtySource // where SyncDirtyLog takes the dirty log from; immutable
	logging atomic.Bool

	// The dirty log's other clients (dirtyrate.go): a dirty-rate measurement or a dirty
	// limit harvests src too, and keeps what it took here for SyncDirtyLog, so that a
	// checkpoint never loses a page to them. keptAny is set after bits are ORed in.
	kept      []uint64
	keptAny   atomic.Bool
	harvested atomic.Uint64 // pages ever taken from src, by any client (QEMU's total_dirty_pages)

	// Restore by mapping (mapram.go). lazyLeft counts the chunks not yet checked
	// (failed ones included): the hot paths load it once per page and call Ensure only
	// when it is not zero. lm is set by MapFile before lazyLeft is stored, then immutable.
	lazyLeft   atomic.Int64
	mapped     atomic.Bool
	noPrefault atomic.Bool // MADV_POPULATE_WRITE refused: do without
	restoreLM  *lazyMap    // MapFile's, for PopulateStats; immutable once mapped is set
	// lm is the chunk map in force: MapFile's, or a Guard's (a checkpoint's copy on first
	// touch). Replaced only while the vCPUs are parked and nothing is lazy, and stored
	// before lazyLeft, whose load publishes it.
	lm atomic.Pointer[lazyMap]
}

func newRAMBlock(name string, size uint64) (*RAMBlock, error) {
	if size == 0 || size%PageSize != 0 {
		return nil, fmt.Errorf("%w: RAM block %q size %d is not a positive multiple of %d", ErrConfig, name, size, PageSize)
	}
	mem, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("%w: mmap %s (%d bytes): %v", ErrConfig, name, size, err)
	}
	words := (size/PageSize + 63) / 64
	b := &RAMBlock{name: name, size: size, mem: mem,
		written: make([]uint64, words), dirty: make([]uint64, words), kept: make([]uint64, words)}
	b.src = bitmapLog(b.dirty)
	return b, nil
}

// dirtySource is where a RAM block's dirty log comes from, asked by SyncDirtyLog (part of
// the vCPU backend seam, backend.go). The synthetic backend's stores set bits in the
// block's own bitmap (bitmapLog); a KVM backend would harvest KVM_GET_DIRTY_LOG (or the
// dirty ring) for the block's memory slot, OR the pages into the written bitmap as well,
// and return them.
type dirtySource interface {
	// harvest takes and clears the pages dirtied since the last harvest, ORs them into
	// dst (len >= BitmapWords) and returns how many it took.
	harvest(dst []uint64) uint64
}

// bitmapLog is the synthetic backend's dirty log: one bit per page, set by the writer
// with an atomic OR after its data (noteWrite), taken with an atomic swap per word.
type bitmapLog []uint64

func (l bitmapLog) harvest(dst []uint64) (n uint64) {
	for i := range l {
		if atomic.LoadUint64(&l[i]) == 0 {
			continue
		}
		w := atomic.SwapUint64(&l[i], 0)
		dst[i] |= w
		n += uint64(bits.OnesCount64(w))
	}
	return n
}

func (b *RAMBlock) close() error {
	if b.mem == nil {
		return nil
	}
	err := unix.Munmap(b.mem)
	b.mem = nil
	return err
}

// Name is QEMU's RAM block id ("pc.ram").
func (b *RAMBlock) Name() string { return b.name }

// Size is the block's length in bytes (QEMU's used_length).
func (b *RAMBlock) Size() uint64 { return b.size }

// Pages is Size/PageSize.
func (b *RAMBlock) Pages() uint64 { return b.size / PageSize }

// BitmapWords is the length in uint64 words of the block's bitmaps.
func (b *RAMBlock) BitmapWords() int { return len(b.dirty) }

// Host is the block's memory. Reading a page the guest never wrote faults in a zero page
// (costly on ballooned hosts): consult Written first. Writers other than the guest must
// use WritePage or call MarkWritten. On a block restored by mapping (Mapped), call
// Ensure for the pages first: a lazy chunk's bytes are not yet checked.
func (b *RAMBlock) Host() []byte { return b.mem }

// Written reports whether page was ever written.
func (b *RAMBlock) Written(page uint64) bool {
	return atomic.LoadUint64(&b.written[page/64])&(1<<(page%64)) != 0
}

// NextWritten is the first page in [page, end) that was ever written, or end: a word of
// the bitmap at a time.
func (b *RAMBlock) NextWritten(page, end uint64) uint64 {
	for page < end {
		w := atomic.LoadUint64(&b.written[page/64]) >> (page % 64)
		if w != 0 {
			return min(end, page+uint64(bits.TrailingZeros64(w)))
		}
		page = (page/64 + 1) * 64
	}
	return end
}

// WrittenBitmap copies the written-ever bitmap into dst (len >= BitmapWords) and returns
// the number of pages set.
func (b *RAMBlock) WrittenBitmap(dst []uint64) (n uint64) {
	for i := range b.written {
		w := atomic.LoadUint64(&b.written[i])
		dst[i] = w
		n += uint64(bits.OnesCount64(w))
	}
	return n
}

// MarkWritten records that page holds data written by someone other than the guest
// (an incoming migration). It does not mark the page dirty.
func (b *RAMBlock) MarkWritten(page uint64) {
	w, m := &b.written[page/64], uint64(1)<<(page%64)
	if atomic.LoadUint64(w)&m == 0 {
		atomic.OrUint64(w, m)
	}
}

// WritePage copies data (at most PageSize bytes) to the start of page and marks it
// written; used by loaders. It does not mark the page dirty.
func (b *RAMBlock) WritePage(page uint64, data []byte) {
	copy(b.mem[page<<pageShift:(page+1)<<pageShift], data)
	b.MarkWritten(page)
}

// PrefaultPages makes the never-written pages among [first, first+n) present now, zero,
// with one kernel call (MADV_POPULATE_WRITE) for each run of them, so that a loader about
// to fill them takes no page fault per page (a fault and its zeroing cost 2-5 µs a page
// here, more than the copy: loading 1 GiB of a stream page by page spent ~0.8 s in
// faults, populated 2 MiB at a time 0.3-0.5 s). Their written bits are unchanged: a populated page
// that never arrives stays zero and unwritten, only resident. Nothing on a block restored
// by mapping (its pages are the file's) or where the kernel refuses (before Linux 5.14).
func (b *RAMBlock) PrefaultPages(first, n uint64) {
	if end := min(first+n, b.Pages()); first < end && !b.mapped.Load() {
		b.populateRuns(first, end, false)
	}
}

// StartDirtyLog clears the dirty bitmap and turns logging on: every page written from now
// on will be reported by SyncDirtyLog. The pages it forgets still count for a dirty-rate
// measurement in progress (harvestFor).
func (b *RAMBlock) StartDirtyLog() {
	b.forget()
	b.logging.Store(true)
}

// StopDirtyLog turns logging off (SyncDirtyLog then reports nothing).
func (b *RAMBlock) StopDirtyLog() { b.logging.Store(false) }

// DirtyLogging reports whether StartDirtyLog is in effect.
func (b *RAMBlock) DirtyLogging() bool { return b.logging.Load() }

// SyncDirtyLog atomically takes and clears the dirty bitmap, word by word (atomic swap),
// ORing the taken bits into dst (len >= BitmapWords). It returns the number of pages
// newly taken. Without logging it takes nothing.
func (b *RAMBlock) SyncDirtyLog(dst []uint64) (n uint64) {
	if !b.logging.Load() {
		return 0
	}
	n = b.harvest(dst)
	if b.keptAny.Swap(false) {
		n += b.takeKept(dst)
	}
	return n
}

// noteWrite records a write to page; called AFTER the data is stored. It returns 1 when
// the page went from clean to dirty (a KVM dirty ring's new entry), else 0.
func (b *RAMBlock) noteWrite(page uint64) uint64 {
	i, m := page/64, uint64(1)<<(page%64)
	old := atomic.OrUint64(&b.dirty[i], m) // full barrier: publishes the data written before
	if atomic.LoadUint64(&b.written[i])&m == 0 {
		atomic.OrUint64(&b.written[i], m)
	}
	return (^old & m) >> (page % 64)
}

// store64 is the guest's 8-byte store: data first, then the bits.
func (b *RAMBlock) store64(off uint64, v uint64) {
	*(*uint64)(ptr(b.mem, off)) = v
	b.noteWrite(off >> pageShift)
}

// load64 is the guest's 8-byte load.
func (b *RAMBlock) load64(off uint64) uint64 { return *(*uint64)(ptr(b.mem, off)) }

// ramSegment maps guest-physical [GPA, GPA+Size) to block offset Offset.
type ramSegment struct {
	GPA, Size, Offset uint64
	Block             *RAMBlock
}

// physMap is the machine's guest-physical RAM layout, as QEMU's pc/q35 boards lay out
// "pc.ram": below 4 GiB up to the board's limit, the rest from 4 GiB.
type physMap []ramSegment

// pcLowMem is QEMU 7.2's below-4G split (hw/i386/pc_piix.c, pc_q35.c, with
// gigabyte_align): pc keeps up to 3.5 GiB low unless RAM reaches 0xe0000000, then 3 GiB;
// q35 keeps up to 2.75 GiB low unless RAM reaches 0xb0000000, then 2 GiB.
func pcLowMem(machineType string, ram uint64) uint64 {
	if isQ35(machineType) {
		if ram >= 0xb0000000 {
			return 0x80000000
		}
		return ram
	}
	if ram >= 0xe0000000 {
		return 0xc0000000
	}
	return ram
}

func buildPhysMap(machineType string, b *RAMBlock) physMap {
	if b == nil {
		return nil
	}
	low := b.size
	if machineType != "none" {
		low = pcLowMem(machineType, b.size)
	}
	pm := physMap{{GPA: 0, Size: low, Offset: 0, Block: b}}
	if b.size > low {
		pm = append(pm, ramSegment{GPA: 1 << 32, Size: b.size - low, Offset: low, Block: b})
	}
	return pm
}

// lookup returns the block and offset of gpa and how many bytes are contiguous from it.
func (pm physMap) lookup(gpa uint64) (b *RAMBlock, off, avail uint64, ok bool) {
	for _, s := range pm {
		if gpa >= s.GPA && gpa-s.GPA < s.Size {
			return s.Block, s.Offset + gpa - s.GPA, s.Size - (gpa - s.GPA), true
		}
	}
	return nil, 0, 0, false
}

// top is one past the highest guest-physical RAM address.
func (pm physMap) top() uint64 {
	var t uint64
	for _, s := range pm {
		t = max(t, s.GPA+s.Size)
	}
	return t
}

// noteWrites records writes to the pages of bitmap word w given by mask; called AFTER
// the data of all of them is stored. It returns how many of them went from clean to dirty.
func (b *RAMBlock) noteWrites(w, mask uint64) uint64 {
	old := atomic.OrUint64(&b.dirty[w], mask)
	if atomic.LoadUint64(&b.written[w])&mask != mask {
		atomic.OrUint64(&b.written[w], mask)
	}
	return uint64(bits.OnesCount64(mask &^ old))
}
