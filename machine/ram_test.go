package machine_test

import (
	"encoding/binary"
	"math/bits"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"tlcvm/machine"
)

// resident counts the block's pages that are in RSS (mincore).
func resident(t *testing.T, b *machine.RAMBlock) int {
	t.Helper()
	mem := b.Host()
	vec := make([]byte, (len(mem)+unix.Getpagesize()-1)/unix.Getpagesize())
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)),
		uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestIdleRAMUntouched: an idle 4 GiB guest that booted costs a handful of pages.
func TestIdleRAMUntouched(t *testing.T) {
	out := newLineWriter("tlcvm guest:")
	m := newMachine(t, machine.Config{RAMSize: 4 << 30, CPUs: 2, FwCfg: idle(), Serial: out})
	b := m.RAMBlocks()[0]
	if b.Name() != "pc.ram" || b.Size() != 4<<30 {
		t.Fatalf("block %s %d", b.Name(), b.Size())
	}
	if n := resident(t, b); n != 0 {
		t.Fatalf("%d pages resident before start", n)
	}
	m.Start()
	<-out.found
	_ = m.Stop()
	// boot writes: counters page, boot info, PML4, PDPT, 5 page directories
	if n := resident(t, b); n > 16 {
		t.Fatalf("%d pages resident after an idle boot", n)
	}
	words := make([]uint64, b.BitmapWords())
	if n := b.WrittenBitmap(words); n > 16 || n == 0 {
		t.Fatalf("written-ever pages: %d", n)
	}
	// pmemsave-style reads of never-written RAM do not touch it either
	buf := make([]byte, 1<<20)
	if err := m.ReadPhys(1<<30, buf); err != nil {
		t.Fatal(err)
	}
	if n := resident(t, b); n > 16 {
		t.Fatalf("%d pages resident after reading untouched RAM", n)
	}
}

// TestNextWritten: the first written page of a range, a bitmap word at a time, is the one
// a page-by-page Written scan finds.
func TestNextWritten(t *testing.T) {
	m := newMachine(t, machine.Config{RAMSize: 8 << 20, StartPaused: true, FwCfg: idle()})
	b := m.RAMBlocks()[0]
	for _, p := range []uint64{700, 701, 763, 764, 1000, 1023, 1024, 2047} {
		b.MarkWritten(p)
	}
	scan := func(from, end uint64) uint64 {
		for ; from < end; from++ {
			if b.Written(from) {
				return from
			}
		}
		return end
	}
	for from := uint64(600); from < 2100; from += 7 {
		for _, end := range []uint64{from, from + 1, from + 63, from + 64, from + 65, from + 500, b.Pages()} {
			end = min(end, b.Pages())
			if got, want := b.NextWritten(from, end), scan(from, end); got != want {
				t.Fatalf("NextWritten(%d, %d) = %d, want %d", from, end, got, want)
			}
		}
	}
}

// TestDirtyLogNeverLosesWrites: a writer rewrites pages through the guest store path
// while a reader syncs the dirty log and copies dirty pages, as a checkpoint does. After
// a final sync the copy equals RAM.
func TestDirtyLogNeverLosesWrites(t *testing.T) {
	m := newMachine(t, machine.Config{RAMSize: 8 << 20, StartPaused: true, FwCfg: idle()})
	b := m.RAMBlocks()[0]
	const pages = 512 // 2 MiB from 2 MiB
	shadow := make([]uint64, b.Pages())
	dirty := make([]uint64, b.BitmapWords())
	b.StartDirtyLog()
	copyPage := func(p uint64) {
		shadow[p] = atomic.LoadUint64((*uint64)(unsafe.Pointer(&b.Host()[p*machine.PageSize])))
	}
	// stage 1: every page
	for p := range shadow {
		copyPage(uint64(p))
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := uint64(1); !stop.Load() || i < 200000; i++ {
			p := 512 + i*7919%pages
			m.GuestStore64(p*machine.PageSize, i)
			if i > 2000000 {
				return
			}
		}
	}()
	rounds := 0
	for !stop.Load() {
		for i := range dirty {
			dirty[i] = 0
		}
		b.SyncDirtyLog(dirty)
		for w, word := range dirty {
			for word != 0 {
				bit := uint64(bits.TrailingZeros64(word))
				word &^= 1 << bit
				copyPage(uint64(w)*64 + bit)
			}
		}
		if rounds++; rounds == 200 {
			stop.Store(true)
		}
	}
	wg.Wait()
	for i := range dirty {
		dirty[i] = 0
	}
	b.SyncDirtyLog(dirty)
	for w, word := range dirty {
		for word != 0 {
			bit := uint64(bits.TrailingZeros64(word))
			word &^= 1 << bit
			copyPage(uint64(w)*64 + bit)
		}
	}
	b.StopDirtyLog()
	for p := range shadow {
		var cur [8]byte
		if err := m.ReadPhys(uint64(p)*machine.PageSize, cur[:]); err != nil {
			t.Fatal(err)
		}
		if got := binary.LittleEndian.Uint64(cur[:]); got != shadow[p] {
			t.Fatalf("page %d: copy %d, RAM %d: write lost", p, shadow[p], got)
		}
	}
	if n := b.SyncDirtyLog(dirty); n != 0 {
		t.Fatalf("sync after StopDirtyLog took %d pages", n)
	}
}

func TestPhysLayout(t *testing.T) {
	for _, c := range []struct {
		typ       string
		ram       uint64
		highStart uint64 // block offset mapped at 4 GiB, 0 = none
	}{
		{"pc-i440fx-7.2", 3 << 30, 0},
		{"pc-i440fx-7.2", 4 << 30, 3 << 30},
		{"pc-q35-7.2", 2816 << 20, 2 << 30},
		{"pc-q35-7.2", 2 << 30, 0},
	} {
		m := newMachine(t, machine.Config{Type: c.typ, RAMSize: c.ram, StartPaused: true, FwCfg: idle()})
		var p [8]byte
		err := m.ReadPhys(1<<32, p[:])
		if (err == nil) != (c.highStart != 0) {
			t.Errorf("%s %d: read at 4G: %v", c.typ, c.ram, err)
		}
		if c.highStart != 0 {
			m.GuestStore64(1<<32, 0x1122334455667788)
			if got := binary.LittleEndian.Uint64(m.RAMBlocks()[0].Host()[c.highStart:]); got != 0x1122334455667788 {
				t.Errorf("%s: 4G maps to block offset %#x? got %#x", c.typ, c.highStart, got)
			}
			if err := m.ReadPhys(c.highStart, p[:]); err == nil {
				t.Errorf("%s: hole at %#x is readable", c.typ, c.highStart)
			}
		}
	}
}

// TestPrefaultPages: the never-written pages of the range become resident, zero and still
// unwritten; a written page keeps its content; the range is clipped to the block.
func TestPrefaultPages(t *testing.T) {
	m := newMachine(t, machine.Config{RAMSize: 64 << 20, CPUs: 1, FwCfg: idle()})
	b := m.RAMBlocks()[0]
	base := resident(t, b)
	page := make([]byte, machine.PageSize)
	for i := range page {
		page[i] = byte(i) | 1
	}
	const first = 4096 // 16 MiB in
	b.WritePage(first+3, page)
	b.PrefaultPages(first, 256)
	b.PrefaultPages(b.Pages()-2, 100) // clipped at the end
	if got := resident(t, b) - base; got != 256+2 {
		t.Errorf("%d pages resident after prefaulting 258, want 258", got)
	}
	for p := uint64(first); p < first+256; p++ {
		if b.Written(p) != (p == first+3) {
			t.Fatalf("page %d written = %v", p, b.Written(p))
		}
	}
	mem := b.Host()
	if got := mem[(first+3)*machine.PageSize+5]; got != page[5] {
		t.Errorf("written page changed: byte 5 = %#x", got)
	}
	for _, v := range mem[first*machine.PageSize : (first+3)*machine.PageSize] {
		if v != 0 {
			t.Fatal("a prefaulted page is not zero")
		}
	}
}
