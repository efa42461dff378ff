package machine_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tlcvm/machine"
)

const mapOff = 1 << 20 // the block's pages region in the test file (1 MiB aligned)

// pageContent is the file's content of page p: every u64 names the page and the word.
func pageContent(p uint64) []byte {
	b := make([]byte, machine.PageSize)
	for w := 0; w < machine.PageSize/8; w++ {
		binary.LittleEndian.PutUint64(b[8*w:], 0xfeed<<48|p<<16|uint64(w))
	}
	return b
}

// mapFile writes a sparse checkpoint-like file for a block of size bytes holding the
// pages listed (pageContent), and returns it (open read-only, as a restore opens it) and
// the bitmap.
func mapFile(t testing.TB, size uint64, pages []uint64) (*os.File, []uint64) {
	return mapFileOf(t, size, pages, pageContent)
}

func mapFileOf(t testing.TB, size uint64, pages []uint64, content func(uint64) []byte) (*os.File, []uint64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ram.chk")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(mapOff + int64(size)); err != nil {
		t.Fatal(err)
	}
	bm := make([]uint64, (size/machine.PageSize+63)/64)
	for _, p := range pages {
		if _, err := f.WriteAt(content(p), mapOff+int64(p)*machine.PageSize); err != nil {
			t.Fatal(err)
		}
		bm[p/64] |= 1 << (p % 64)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ro.Close() })
	return ro, bm
}

// checker verifies present pages against pageContent, counts its calls per chunk, and
// fails the chunks in bad.
type checker struct {
	bm      []uint64
	calls   []atomic.Int32
	bad     map[uint64]bool
	content func(p uint64) []byte // the file's page p
}

func newChecker(bm []uint64, pages uint64) *checker {
	return &checker{bm: bm, calls: make([]atomic.Int32, (pages+machine.ChunkPages-1)/machine.ChunkPages),
		content: pageContent}
}

func (c *checker) check(first uint64, mem []byte) error {
	c.calls[first/machine.ChunkPages].Add(1)
	for i := uint64(0); i < uint64(len(mem))/machine.PageSize; i++ {
		p := first + i
		if c.bm[p/64]&(1<<(p%64)) == 0 {
			continue
		}
		if c.bad[first] || !bytes.Equal(mem[i*machine.PageSize:(i+1)*machine.PageSize], c.content(p)) {
			return fmt.Errorf("page %d (%#x) of pc.ram: CRC32C mismatch", p, p*machine.PageSize)
		}
	}
	return nil
}

// incoming builds a machine waiting for a migration (vCPUs parked), as -incoming does.
func incoming(t testing.TB, wl string, ram uint64, cpus int, stderr *lineWriter, ev machine.EventSink) *machine.Machine {
	t.Helper()
	cfg := machine.Config{RAMSize: ram, CPUs: cpus, Incoming: true, Events: ev,
		FwCfg: map[string][]byte{machine.WorkloadKey: []byte(wl)}}
	if stderr != nil {
		cfg.Stderr = stderr
	}
	m := newMachine(t, cfg)
	m.Start()
	return m
}

func TestMapFileReadsAndCOW(t *testing.T) {
	const size = 8 << 20
	present := []uint64{1, 600, 601, 700, 2047}
	f, bm := mapFile(t, size, present)
	m := incoming(t, "idle", size, 1, nil, nil)
	b := m.RAMBlocks()[0]
	ck := newChecker(bm, b.Pages())
	if b.Mapped() {
		t.Fatal("Mapped before MapFile")
	}
	if err := b.MapFile(int(f.Fd()), mapOff, bm, ck.check); err != nil {
		t.Fatal(err)
	}
	if !b.Mapped() {
		t.Fatal("not Mapped after MapFile")
	}
	if e, l, left := b.PopulateStats(); e != 0 || l != 0 || left != 5 {
		t.Fatalf("stats %d %d %d, want 0 0 5", e, l, left)
	}
	for _, c := range []struct {
		page    uint64
		want    []byte
		written bool
	}{
		{1, pageContent(1), true},
		{2, make([]byte, machine.PageSize), false},
		{600, pageContent(600), true},
		{602, make([]byte, machine.PageSize), false},
		{2047, pageContent(2047), true},
	} {
		got := make([]byte, machine.PageSize)
		if err := m.ReadPhys(c.page*machine.PageSize, got); err != nil {
			t.Fatalf("page %d: %v", c.page, err)
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("page %d: content %x…, want %x…", c.page, got[:16], c.want[:16])
		}
		if b.Written(c.page) != c.written {
			t.Errorf("page %d: written %v, want %v", c.page, b.Written(c.page), c.written)
		}
	}
	// chunks 0 (page 1), 2 (600, 601, 700), 7 (2047) are checked, once each
	for c := range ck.calls {
		want := int32(0)
		if c == 0 || c == 2 || c == 7 {
			want = 1
		}
		if got := ck.calls[c].Load(); got != want {
			t.Errorf("chunk %d checked %d times, want %d", c, got, want)
		}
	}
	if e, l, left := b.PopulateStats(); e != 0 || l != 5 || left != 0 {
		t.Fatalf("stats %d %d %d, want 0 5 0", e, l, left)
	}
	// copy-on-write: the guest's store changes guest RAM, not the file
	m.GuestStore64(600*machine.PageSize, 0x1122334455667788)
	disk := make([]byte, machine.PageSize)
	if _, err := f.ReadAt(disk, mapOff+600*machine.PageSize); err != nil || !bytes.Equal(disk, pageContent(600)) {
		t.Fatalf("file page 600 changed by a guest write: %x… %v", disk[:8], err)
	}
	// a later change of the file does not reach a page already copied
	rw, err := os.OpenFile(f.Name(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	if _, err := rw.WriteAt(bytes.Repeat([]byte{0xee}, machine.PageSize), mapOff+600*machine.PageSize); err != nil {
		t.Fatal(err)
	}
	var word [8]byte
	if err := m.ReadPhys(600*machine.PageSize, word[:]); err != nil || binary.LittleEndian.Uint64(word[:]) != 0x1122334455667788 {
		t.Fatalf("guest page 600 after file change: %x %v", word, err)
	}
	if err := m.ReadPhys(600*machine.PageSize+8, word[:]); err != nil || !bytes.Equal(word[:], pageContent(600)[8:16]) {
		t.Fatalf("guest page 600 word 1 after file change: %x %v", word, err)
	}
}

func TestMapFileRefusals(t *testing.T) {
	const size = 4 << 20
	f, bm := mapFile(t, size, []uint64{3})
	wo, err := os.OpenFile(f.Name(), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer wo.Close()
	// a file whose end cuts page 1000 off
	short, err := os.Create(filepath.Join(t.TempDir(), "short"))
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	if err := short.Truncate(mapOff + 1000*machine.PageSize); err != nil {
		t.Fatal(err)
	}
	far := make([]uint64, len(bm))
	far[1000/64] = 1 << (1000 % 64)
	ok := func(uint64, []byte) error { return nil }
	for _, c := range []struct {
		name  string
		fd    int
		off   int64
		bm    []uint64
		check machine.MapCheck
		want  string
	}{
		{"bad fd", -1, mapOff, bm, ok, "fstat"},
		{"write-only fd", int(wo.Fd()), mapOff, bm, ok, "mmap"},
		{"unaligned offset", int(f.Fd()), mapOff + 512, bm, ok, "not a multiple"},
		{"short bitmap", int(f.Fd()), mapOff, bm[:1], ok, "bitmap"},
		{"no check", int(f.Fd()), mapOff, bm, nil, "check"},
		{"present page past EOF", int(short.Fd()), mapOff, far, ok, "present page 1000 lies beyond the end of the file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := incoming(t, "idle", size, 1, nil, nil)
			b := m.RAMBlocks()[0]
			m.GuestStore64(3*machine.PageSize, 42) // the block must stay untouched
			err := b.MapFile(c.fd, c.off, c.bm, c.check)
			if !errors.Is(err, machine.ErrConfig) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want ErrConfig naming %q", err, c.want)
			}
			var w [8]byte
			if err := m.ReadPhys(3*machine.PageSize, w[:]); err != nil || binary.LittleEndian.Uint64(w[:]) != 42 || b.Mapped() {
				t.Fatalf("block touched: %x %v mapped=%v", w, err, b.Mapped())
			}
		})
	}
	// a short file with no present page past its end maps; the tail stays anonymous
	m := incoming(t, "idle", size, 1, nil, nil)
	b := m.RAMBlocks()[0]
	if err := b.MapFile(int(short.Fd()), mapOff, make([]uint64, len(bm)), ok); err != nil {
		t.Fatal(err)
	}
	m.GuestStore64(1020*machine.PageSize, 7) // beyond the file's end: no SIGBUS
	if err := b.MapFile(int(f.Fd()), mapOff, bm, ok); !errors.Is(err, machine.ErrConfig) {
		t.Fatalf("second MapFile: %v", err)
	}
}

// TestMapFileBadChunk: a chunk that fails its check can never be read: by a monitor
// (the check's error) or by the guest (internal-error, STOP, one line on stderr).
func TestMapFileBadChunk(t *testing.T) {
	const size = 16 << 20
	var present []uint64
	for p := uint64(0); p < size/machine.PageSize; p += 3 {
		present = append(present, p)
	}
	f, bm := mapFile(t, size, present)
	stderr := newLineWriter("")
	ev := newSink()
	m := incoming(t, "ws=4M,rate=max", size, 2, stderr, ev)
	b := m.RAMBlocks()[0]
	ck := newChecker(bm, b.Pages())
	ck.bad = map[uint64]bool{3 * machine.ChunkPages: true} // 3–4 MiB: inside the working set
	if err := b.MapFile(int(f.Fd()), mapOff, bm, ck.check); err != nil {
		t.Fatal(err)
	}
	const wantErr = "page 768 (0x300000) of pc.ram: CRC32C mismatch"
	buf := make([]byte, 64)
	err := m.ReadPhys(3<<20+4096*3+8, buf)
	if !errors.Is(err, machine.ErrRAMCheck) || err.Error() != wantErr {
		t.Fatalf("ReadPhys of the bad chunk: %v", err)
	}
	if err := m.SaveMemory(filepath.Join(t.TempDir(), "pmem"), 3<<20, 8192, true, 0); !errors.Is(err, machine.ErrRAMCheck) {
		t.Fatalf("pmemsave of the bad chunk: %v", err)
	}
	if err := b.Ensure(3*machine.ChunkPages+5, 1); err == nil || err.Error() != wantErr {
		t.Fatalf("Ensure: %v", err)
	}
	if err := m.ReadPhys(2<<20, buf); err != nil {
		t.Fatalf("ReadPhys of a good chunk: %v", err)
	}
	ev.take()
	if err := m.IncomingDone(machine.StateRunning, true); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; {
		if st, _ := m.Status(); st == machine.StateInternalError {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the guest never stopped in internal-error")
		}
		time.Sleep(time.Millisecond)
	}
	if got := names(ev.take()); strings.Join(got, " ") != "RESUME STOP" {
		t.Fatalf("events %v, want RESUME STOP", got)
	}
	if got := stderr.String(); got != "tlcvm: guest RAM check failed: "+wantErr+"\n" {
		t.Fatalf("stderr %q", got)
	}
	if got := ck.calls[3].Load(); got != 1 {
		t.Fatalf("bad chunk checked %d times", got)
	}
	// the process keeps serving: reads work, cont wants a reset
	if err := m.ReadPhys(2<<20, buf); err != nil {
		t.Fatal(err)
	}
	if err := m.Cont(); !errors.Is(err, machine.ErrNeedsReset) {
		t.Fatalf("cont: %v", err)
	}
	// the populater meets the same chunk: no second line, state unchanged
	if err := b.Populate(nil); err == nil || err.Error() != wantErr {
		t.Fatalf("Populate: %v", err)
	}
	m.StartPopulate()
	m.StartPopulate()
}

// TestPopulateWhileRunning: the populater and two running vCPUs share the chunks; every
// chunk is checked once, before any vCPU touches it (the check sees the file's bytes).
func TestPopulateWhileRunning(t *testing.T) {
	const size = 32 << 20
	var present []uint64
	for p := uint64(0); p < size/machine.PageSize; p++ {
		if p%5 != 4 {
			present = append(present, p)
		}
	}
	f, bm := mapFile(t, size, present)
	m := incoming(t, "ws=24M,rate=max", size, 2, nil, nil)
	b := m.RAMBlocks()[0]
	ck := newChecker(bm, b.Pages())
	if err := b.MapFile(int(f.Fd()), mapOff, bm, ck.check); err != nil {
		t.Fatal(err)
	}
	if err := m.IncomingDone(machine.StateRunning, true); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = b.Populate(nil) }()
	}
	for p := uint64(0); p < b.Pages(); p += 97 { // a monitor reading too
		var w [8]byte
		if err := m.ReadPhys(p*machine.PageSize, w[:]); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	eager, lazy, left := b.PopulateStats()
	if eager+lazy != uint64(len(present)) || left != 0 {
		t.Fatalf("eager %d + lazy %d != %d present (left %d)", eager, lazy, len(present), left)
	}
	for c := range ck.calls {
		if got := ck.calls[c].Load(); got != 1 {
			t.Errorf("chunk %d checked %d times", c, got)
		}
	}
	if st, _ := m.Status(); st != machine.StatePaused {
		t.Fatalf("state %s", st)
	}
}

// TestStartPopulate: the machine's background populate checks everything eagerly.
func TestStartPopulate(t *testing.T) {
	const size = 8 << 20
	f, bm := mapFile(t, size, []uint64{0, 300, 1500, 2000})
	m := incoming(t, "idle", size, 1, nil, nil)
	b := m.RAMBlocks()[0]
	ck := newChecker(bm, b.Pages())
	if err := b.MapFile(int(f.Fd()), mapOff, bm, ck.check); err != nil {
		t.Fatal(err)
	}
	m.StartPopulate()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if _, _, left := b.PopulateStats(); left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("populate never finished")
		}
	}
	if e, l, _ := b.PopulateStats(); e != 4 || l != 0 {
		t.Fatalf("eager %d lazy %d, want 4 0", e, l)
	}
}

// TestRestoreByMappingRunsOn: a guest saved in its loop (and fill=) stages, restored by
// mapping its pages, runs on exactly as the source does, touching chunks lazily; a bad
// chunk stops its vCPU before the page is used, without progress.
func TestRestoreByMappingRunsOn(t *testing.T) {
	const wl, cpus = "ws=1M,rate=max,fill=2M", 2
	for _, bad := range []bool{false, true} {
		t.Run(fmt.Sprint("bad=", bad), func(t *testing.T) {
			a := runGuest(t, wl, cpus, 700) // 128 ws pages + 256 fill pages each, then the loop
			src := a.RAMBlocks()[0]
			words := make([]uint64, src.BitmapWords())
			src.WrittenBitmap(words)
			var pages []uint64
			saved := map[uint64][]byte{}
			for p := uint64(0); p < src.Pages(); p++ {
				if words[p/64]&(1<<(p%64)) != 0 {
					pages = append(pages, p)
					saved[p] = bytes.Clone(src.Host()[p*machine.PageSize : (p+1)*machine.PageSize])
				}
			}
			f, bm := mapFileOf(t, src.Size(), pages, func(p uint64) []byte { return saved[p] })
			b := newMachine(t, machine.Config{RAMSize: 16 << 20, CPUs: cpus, StartPaused: true,
				FwCfg: map[string][]byte{machine.WorkloadKey: []byte(wl)}})
			for i, s := range a.Snapshotters() {
				st, err := s.SaveState()
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := json.Marshal(st)
				cur, _ := s.StateVersion()
				if err := b.Snapshotters()[i].LoadState(raw, cur); err != nil {
					t.Fatal(err)
				}
			}
			dst := b.RAMBlocks()[0]
			ck := newChecker(bm, dst.Pages())
			ck.content = func(p uint64) []byte { return saved[p] }
			if bad {
				ck.bad = map[uint64]bool{2 * machine.ChunkPages: true} // 2–3 MiB: the working set
			}
			if err := dst.MapFile(int(f.Fd()), mapOff, bm, ck.check); err != nil {
				t.Fatal(err)
			}
			if st := b.CPUStateOf(0); st.RIP != 0x100080 {
				t.Fatalf("source not in its loop: rip %#x", st.RIP)
			}
			if bad {
				before := b.CPUStateOf(0)
				n, err := b.RunSteps(0, 100)
				if n != 0 || err == nil || !strings.Contains(err.Error(), "page 512 ") {
					t.Fatalf("RunSteps over a bad chunk: %d %v", n, err)
				}
				if b.CPUStateOf(0) != before {
					t.Fatal("the failed step made progress")
				}
				return
			}
			for cpu := 0; cpu < cpus; cpu++ {
				_, _ = a.RunSteps(cpu, 2000)
				if _, err := b.RunSteps(cpu, 2000); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(ram(t, a), ram(t, b)) {
				t.Fatal("restored guest diverged")
			}
			// ram() read every page: all populated lazily, none by a populater
			if eager, lazy, left := dst.PopulateStats(); eager != 0 || lazy+left != uint64(len(pages)) || left != 0 {
				t.Fatalf("stats eager %d lazy %d left %d of %d", eager, lazy, left, len(pages))
			}
			if err := dst.Populate(nil); err != nil {
				t.Fatal(err)
			}
			for c := range ck.calls {
				if got := ck.calls[c].Load(); got > 1 {
					t.Errorf("chunk %d checked %d times", c, got)
				}
			}
		})
	}
}

// TestGuardCopiesBeforeTouch: Guard's function sees every guarded chunk as it was when the
// vCPUs were parked, although they run again meanwhile and rewrite it; each chunk once.
func TestGuardCopiesBeforeTouch(t *testing.T) {
	const size = 32 << 20
	m := newMachine(t, machine.Config{RAMSize: size, CPUs: 2,
		FwCfg: map[string][]byte{machine.WorkloadKey: []byte("ws=24M,rate=max")}})
	m.Start()
	b := m.RAMBlocks()[0]
	deadline := time.Now().Add(10 * time.Second)
	for b.WrittenBitmap(make([]uint64, b.BitmapWords())) < 24<<20/machine.PageSize {
		if time.Now().After(deadline) {
			t.Fatal("the working set was never filled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := m.EnterFinishMigrate(); err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(b.Host())
	pages := make([]uint64, b.BitmapWords())
	b.WrittenBitmap(pages)
	got := make([]byte, size)
	calls := make([]atomic.Int32, size/machine.PageSize/machine.ChunkPages)
	err := b.Guard(pages, func(first uint64, mem []byte) error {
		calls[first/machine.ChunkPages].Add(1)
		copy(got[first*machine.PageSize:], mem)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ReturnFromFinishMigrate(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the vCPUs copy some chunks themselves
	if err := b.Populate(nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	for p := uint64(0); p < size/machine.PageSize; p++ {
		if pages[p/64]&(1<<(p%64)) == 0 {
			continue
		}
		if !bytes.Equal(got[p*machine.PageSize:(p+1)*machine.PageSize], want[p*machine.PageSize:(p+1)*machine.PageSize]) {
			t.Fatalf("page %d copied after the guest changed it", p)
		}
	}
	for c := range calls {
		if n := calls[c].Load(); n > 1 {
			t.Errorf("chunk %d copied %d times", c, n)
		}
	}
	if bytes.Equal(b.Host(), want) {
		t.Error("the guest did not run after the guard")
	}
}

// TestGuardRetry is a postcopy destination's first touch: the guarded chunks' check
// answers ErrRAMRetry until their data "arrives". The vCPUs that touch them make no
// progress meanwhile and still park when the VM stops (Stop returns); a monitor read
// waits for the data; once it is there every access proceeds and the chunks are clean.
func TestGuardRetry(t *testing.T) {
	const size = 32 << 20
	m := newMachine(t, machine.Config{RAMSize: size, CPUs: 2,
		FwCfg: map[string][]byte{machine.WorkloadKey: []byte("ws=8M,rate=max")}})
	m.Start()
	b := m.RAMBlocks()[0]
	deadline := time.Now().Add(10 * time.Second)
	for b.WrittenBitmap(make([]uint64, b.BitmapWords())) < 8<<20/machine.PageSize {
		if time.Now().After(deadline) {
			t.Fatal("the working set was never filled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := m.EnterFinishMigrate(); err != nil {
		t.Fatal(err)
	}
	pages := make([]uint64, b.BitmapWords())
	for i := range pages {
		pages[i] = ^uint64(0) // every chunk, the program's too
	}
	var arrived atomic.Bool
	var waits atomic.Int64
	err := b.Guard(pages, func(first uint64, mem []byte) error {
		if !arrived.Load() {
			waits.Add(1)
			time.Sleep(time.Millisecond)
			return machine.ErrRAMRetry
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ReturnFromFinishMigrate(); err != nil {
		t.Fatal(err)
	}
	for waits.Load() < 10 {
		time.Sleep(time.Millisecond)
	}
	before := m.CPUStateOf(0)
	if err := m.Stop(); err != nil { // the waiting vCPUs park
		t.Fatal(err)
	}
	if m.CPUStateOf(0) != before {
		t.Fatal("a vCPU made progress over a chunk whose data had not arrived")
	}
	read := make(chan error, 1)
	go func() {
		p := make([]byte, 8)
		read <- m.ReadPhys(0x200000, p)
	}()
	select {
	case err := <-read:
		t.Fatalf("a monitor read returned before the data arrived: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	arrived.Store(true)
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	if err := m.Cont(); err != nil {
		t.Fatal(err)
	}
	if err := b.Populate(nil); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for m.CPUStateOf(0) == before {
		if time.Now().After(deadline) {
			t.Fatal("the vCPU never ran once the data arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s, _ := m.Status(); s != machine.StateRunning {
		t.Fatalf("state %s", s)
	}
}
