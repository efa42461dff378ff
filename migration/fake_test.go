package migration_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"tlcvm/migration"
)

const pageSize = 4096

// fakeRAM is a RAM block with the machine's ordering contract: data first, then bits.
type fakeRAM struct {
	name           string
	mem            []byte
	written, dirty []uint64
	logging        atomic.Bool

	guardMu   sync.Mutex
	guardCond *sync.Cond
	guardFn   func(first uint64, mem []byte) error // +checklocks:guardMu
	lazy      map[uint64]int                       // +checklocks:guardMu; guarded chunks: 1 lazy, 2 checking
	guardLeft atomic.Int64                         // chunks still guarded
}

func newFakeRAM(name string, size int) *fakeRAM {
	w := (size/pageSize + 63) / 64
	// Guest RAM is mmap'd as the machine's is: outside the Go heap, so the race detector
	// does not track the guest's plain stores racing the checkpoint thread's reads (the
	// ordering contract, not a lock, makes those safe).
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		panic(err)
	}
	return &fakeRAM{name: name, mem: mem, written: make([]uint64, w), dirty: make([]uint64, w)}
}

func (b *fakeRAM) Name() string     { return b.name }
func (b *fakeRAM) Size() uint64     { return uint64(len(b.mem)) }
func (b *fakeRAM) Host() []byte     { return b.mem }
func (b *fakeRAM) BitmapWords() int { return len(b.dirty) }
func (b *fakeRAM) Written(page uint64) bool {
	return atomic.LoadUint64(&b.written[page/64])&(1<<(page%64)) != 0
}
func (b *fakeRAM) WrittenBitmap(dst []uint64) (n uint64) {
	for i := range b.written {
		dst[i] = atomic.LoadUint64(&b.written[i])
		n += uint64(bits.OnesCount64(dst[i]))
	}
	return n
}
func (b *fakeRAM) StartDirtyLog() {
	for i := range b.dirty {
		atomic.StoreUint64(&b.dirty[i], 0)
	}
	b.logging.Store(true)
}
func (b *fakeRAM) StopDirtyLog()   { b.logging.Store(false) }
func (b *fakeRAM) ResumeDirtyLog() { b.logging.Store(true) }
func (b *fakeRAM) SyncDirtyLog(dst []uint64) (n uint64) {
	if !b.logging.Load() {
		return 0
	}
	for i := range b.dirty {
		w := atomic.SwapUint64(&b.dirty[i], 0)
		dst[i] |= w
		n += uint64(bits.OnesCount64(w))
	}
	return n
}
func (b *fakeRAM) WritePage(page uint64, data []byte) {
	copy(b.mem[page*pageSize:(page+1)*pageSize], data)
	b.MarkWritten(page)
}

// store is a guest write: the data, then the bits.
func (b *fakeRAM) store(page uint64, v uint64) {
	if b.guardLeft.Load() != 0 {
		if err := b.touch(page); err != nil {
			panic(err)
		}
	}
	off := page*pageSize + (v%512)*8
	for i := 0; i < 8; i++ {
		b.mem[off+uint64(i)] = byte(v >> (8 * i))
	}
	atomic.OrUint64(&b.dirty[page/64], 1<<(page%64))
	atomic.OrUint64(&b.written[page/64], 1<<(page%64))
}

// fakeSec is a device section holding a counter.
type fakeSec struct {
	id       string
	value    atomic.Int64
	failLoad error // LoadState fails with it
}

type secState struct {
	Value int64 `json:"value"`
}

func (s *fakeSec) SectionID() string              { return s.id }
func (s *fakeSec) StateVersion() (uint32, uint32) { return 2, 1 }
func (s *fakeSec) SaveState() (any, error)        { return secState{s.value.Load()}, nil }
func (s *fakeSec) LoadState(raw []byte, v uint32) error {
	if s.failLoad != nil {
		return s.failLoad
	}
	if v < 1 || v > 2 {
		return fmt.Errorf("version %d", v)
	}
	var st secState
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	s.value.Store(st.Value)
	return nil
}

// fakeMachine runs a "guest" goroutine that rewrites pages while running.
type fakeMachine struct {
	ram  *fakeRAM
	secs []*fakeSec

	mu         sync.Mutex
	cond       *sync.Cond
	state      string
	finishFrom string
	incoming   string // IncomingDone's argument
	atStop     []byte // RAM copied when stage 3 resumed the guest (x-tlc)
	paused     bool   // -S: an incoming migration leaves the guest paused
	quit       bool
	wg         sync.WaitGroup
	throttle   atomic.Int32 // CPU throttle % (throttledMachine); the guest honours it
	sliceStart time.Time    // the guest goroutine's current 10 ms slice
	copyOnly   atomic.Bool  // RAMBlocks hides MarkWritten: loaders copy every page (WritePage)
}

// copiedRAM is a RAM block offering only the RAMBlock interface (no MarkWritten): a
// multifd loader must copy its pages rather than read them in place.
type copiedRAM struct{ migration.RAMBlock }

// throttledMachine is a fakeMachine whose vCPUs can be throttled (migration.Throttler);
// it records every percentage set.
type throttledMachine struct {
	*fakeMachine
	mu  sync.Mutex
	set []int
}

func (m *throttledMachine) SetCPUThrottle(pct int) {
	m.mu.Lock()
	m.set = append(m.set, pct)
	m.mu.Unlock()
	m.throttle.Store(int32(pct))
}

func (m *throttledMachine) CPUThrottle() int { return int(m.throttle.Load()) }

func (m *throttledMachine) settings() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int(nil), m.set...)
}

func newFakeMachine(size int, state string) *fakeMachine {
	m := &fakeMachine{ram: newFakeRAM("pc.ram", size), state: state,
		secs: []*fakeSec{{id: "cpu/0"}, {id: "cpu/1"}, {id: "serial0"}}}
	m.cond = sync.NewCond(&m.mu)
	return m
}

// run starts the guest: it rewrites the first pages pages round robin, forever.
func (m *fakeMachine) run(pages uint64) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for v := uint64(1); ; v++ {
			m.mu.Lock()
			for m.state != "running" && !m.quit {
				m.cond.Wait()
			}
			if m.quit {
				m.mu.Unlock()
				return
			}
			m.ram.store(v%pages, v)
			m.secs[0].value.Store(int64(v))
			m.mu.Unlock()
			if pct := m.throttle.Load(); pct > 0 && time.Since(m.sliceStart) > 10*time.Millisecond {
				// QEMU's CPU throttle: after each 10 ms slice, sleep pct/(100-pct) slices.
				time.Sleep(time.Duration(pct) * 10 * time.Millisecond / time.Duration(100-pct))
				m.sliceStart = time.Now()
			}
		}
	}()
}

func (m *fakeMachine) stop() {
	m.mu.Lock()
	m.quit = true
	m.cond.Broadcast()
	m.mu.Unlock()
	m.wg.Wait()
}

func (m *fakeMachine) MachineType() string { return "pc-i440fx-7.2" }
func (m *fakeMachine) RAMBlocks() []migration.RAMBlock {
	if m.copyOnly.Load() {
		return []migration.RAMBlock{copiedRAM{m.ram}}
	}
	return []migration.RAMBlock{m.ram}
}
func (m *fakeMachine) Sections() []migration.Section {
	out := make([]migration.Section, len(m.secs))
	for i, s := range m.secs {
		out[i] = s
	}
	return out
}
func (m *fakeMachine) RunState() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}
func (m *fakeMachine) EnterFinishMigrate() (bool, error) {
	m.mu.Lock() // the guest writes under mu: holding it means no write is in flight
	defer m.mu.Unlock()
	was := m.state == "running"
	m.finishFrom = m.state
	m.state = "finish-migrate"
	return was, nil
}
func (m *fakeMachine) ReturnFromFinishMigrate() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != "finish-migrate" {
		return fmt.Errorf("not in finish-migrate: %s", m.state)
	}
	m.atStop = append([]byte(nil), m.ram.mem...)
	switch m.finishFrom {
	case "running", "paused", "prelaunch":
		m.state = m.finishFrom
	default:
		m.state = "postmigrate"
	}
	m.cond.Broadcast()
	return nil
}
func (m *fakeMachine) LeaveFinishMigrate(resume bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != "finish-migrate" {
		return fmt.Errorf("not in finish-migrate: %s", m.state)
	}
	if resume {
		m.atStop = append([]byte(nil), m.ram.mem...)
		m.state = "running"
	} else {
		m.state = "postmigrate"
	}
	m.cond.Broadcast()
	return nil
}
func (m *fakeMachine) IncomingDone(src string, run bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.incoming = src
	m.state = "running"
	if !run || m.paused {
		m.state = "paused"
	}
	return nil
}
func (m *fakeMachine) Autostart() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.paused
}
func (m *fakeMachine) VCPUThreads() []int { return nil }

// eventLog records events.
type eventLog struct {
	mu  sync.Mutex
	evs []string
}

func (l *eventLog) Emit(name string, data any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch d := data.(type) {
	case migration.MigrationEvent:
		l.evs = append(l.evs, name+":"+string(d.Status))
	case migration.PassEvent:
		l.evs = append(l.evs, fmt.Sprintf("%s:%d", name, d.Pass))
	default:
		l.evs = append(l.evs, name)
	}
}

func (l *eventLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.evs...)
}

// Guard and Populate make fakeRAM a Guarder (x-tlc's copy on first touch, postcopy
// destinations): a guarded chunk (256 pages) is checked exactly once, by Populate or by
// the fake guest's store about to write it, whichever comes first.
func (b *fakeRAM) Guard(pages []uint64, fn func(first uint64, mem []byte) error) error {
	b.guardMu.Lock()
	defer b.guardMu.Unlock()
	if b.guardCond == nil {
		b.guardCond = sync.NewCond(&b.guardMu)
	}
	b.guardFn, b.lazy = fn, map[uint64]int{}
	for i, w := range pages {
		if w != 0 {
			b.lazy[uint64(i*64)/256] = 1
		}
	}
	b.guardLeft.Store(int64(len(b.lazy)))
	return nil
}

func (b *fakeRAM) Populate(stop <-chan struct{}) error {
	b.guardMu.Lock()
	var chunks []uint64
	for c := range b.lazy {
		chunks = append(chunks, c)
	}
	b.guardMu.Unlock()
	for _, c := range chunks {
		if err := b.touch(c * 256); err != nil {
			return err
		}
	}
	return nil
}

// touch checks page's chunk once (retrying while its data has not arrived); an access to
// a chunk being checked waits for it.
func (b *fakeRAM) touch(page uint64) error {
	c := page / 256
	b.guardMu.Lock()
	for b.lazy[c] == 2 {
		b.guardCond.Wait()
	}
	if b.lazy[c] != 1 {
		b.guardMu.Unlock()
		return nil
	}
	b.lazy[c] = 2
	fn := b.guardFn
	b.guardMu.Unlock()
	end := min((c+1)*256*pageSize, uint64(len(b.mem)))
	var err error
	for {
		err = fn(c*256, b.mem[c*256*pageSize:end])
		if !errors.Is(err, migration.ErrRetry) {
			break
		}
	}
	b.guardMu.Lock()
	defer b.guardMu.Unlock()
	defer b.guardCond.Broadcast()
	if err != nil {
		b.lazy[c] = 1
		return err
	}
	delete(b.lazy, c)
	b.guardLeft.Add(-1)
	return nil
}

func (b *fakeRAM) MarkWritten(page uint64) { atomic.OrUint64(&b.written[page/64], 1<<(page%64)) }
