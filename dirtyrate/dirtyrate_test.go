package dirtyrate

import (
	"errors"
	"sync"
	"testing"
	"time"
)

type fakeBlock struct {
	name  string
	pages uint64
}

func (b fakeBlock) Name() string  { return b.name }
func (b fakeBlock) Pages() uint64 { return b.pages }

// fakeMachine is a dirty log driven by a fake clock: every wait of d dirties rate pages a
// second (per vCPU, dirtying pages [0, dirtyPages) of the first block only).
type fakeMachine struct {
	mu         sync.Mutex
	blocks     []Block
	clock      time.Duration
	perSecond  []uint64 // pages per second, per vCPU
	dirtied    []uint64
	harvested  uint64
	pending    uint64 // dirtied since the last sync
	version    map[uint64]uint32
	dirtyPages uint64 // sampling: pages [0, dirtyPages) change on every wait
	syncs      int
	throttles  map[int]time.Duration
}

func newFake(perSecond ...uint64) *fakeMachine {
	return &fakeMachine{blocks: []Block{fakeBlock{"pc.ram", 1 << 18}}, clock: 1000 * time.Second,
		perSecond: perSecond, dirtied: make([]uint64, len(perSecond)), version: map[uint64]uint32{},
		throttles: map[int]time.Duration{}}
}

func (f *fakeMachine) now() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.clock
}

func (f *fakeMachine) wait(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clock += d
	for i, r := range f.perSecond {
		n := r * uint64(d) / uint64(time.Second)
		f.dirtied[i] += n
		f.pending += n
	}
	for p := uint64(0); p < f.dirtyPages; p++ {
		f.version[p]++
	}
}

func (f *fakeMachine) Blocks() []Block { return f.blocks }
func (f *fakeMachine) PageHashes(b Block, pages []uint64, out []uint32, ok []bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, p := range pages {
		out[i], ok[i] = f.version[p], true
	}
	return nil
}
func (f *fakeMachine) SyncDirtyRate() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.harvested += f.pending
	f.pending = 0
	f.syncs++
}
func (f *fakeMachine) DirtyPagesHarvested() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.harvested
}
func (f *fakeMachine) DirtiedPages() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]uint64{}, f.dirtied...)
}
func (f *fakeMachine) SetDirtyThrottle(cpu int, d time.Duration, ring uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.throttles[cpu] = d
}

func newTestMeter(f *fakeMachine, ring uint64) *Meter {
	t := NewMeter(f, ring)
	t.now, t.wait = f.now, f.wait
	return t
}

// measure runs a Calc to completion and returns the Info.
func measure(t *testing.T, m *Meter, c Config) Info {
	t.Helper()
	if err := m.Calc(c); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for m.Info().Status != StatusMeasured {
		if time.Now().After(deadline) {
			t.Fatalf("still %s", m.Info().Status)
		}
		time.Sleep(time.Millisecond)
	}
	return m.Info()
}

func ptr[T any](v T) *T { return &v }

func TestCalcErrors(t *testing.T) {
	tcg, ring := newTestMeter(newFake(0), 0), newTestMeter(newFake(0), 4096)
	for _, tc := range []struct {
		m    *Meter
		c    Config
		want string
		kind error
	}{
		{tcg, Config{CalcTime: 0}, "calc-time is out of range[1, 60].", ErrInvalid},
		{tcg, Config{CalcTime: 61}, "calc-time is out of range[1, 60].", ErrInvalid},
		{tcg, Config{CalcTime: 1, SamplePages: ptr(int64(127))}, "sample-pages is out of range[128, 16384].", ErrInvalid},
		{tcg, Config{CalcTime: 1, SamplePages: ptr(int64(16385))}, "sample-pages is out of range[128, 16384].", ErrInvalid},
		{tcg, Config{CalcTime: 1, Mode: ptr(ModeDirtyRing)}, "mode dirty-ring is not enabled, use other method instead.", ErrNotEnabled},
		{ring, Config{CalcTime: 1, Mode: ptr(ModeDirtyBitmap)}, "mode dirty-bitmap is not enabled, use other method instead.", ErrNotEnabled},
		// QEMU 7.2's order: calc-time, sample-pages with dirty-ring, sample-pages' range,
		// the mode.
		{tcg, Config{CalcTime: 99, Mode: ptr(ModeDirtyRing)}, "calc-time is out of range[1, 60].", ErrInvalid},
		{tcg, Config{CalcTime: 1, SamplePages: ptr(int64(1)), Mode: ptr(ModeDirtyRing)}, "either sample-pages or dirty-ring can be specified.", ErrInvalid},
		{ring, Config{CalcTime: 1, SamplePages: ptr(int64(512)), Mode: ptr(ModeDirtyRing)}, "either sample-pages or dirty-ring can be specified.", ErrInvalid},
		{ring, Config{CalcTime: 1, SamplePages: ptr(int64(1)), Mode: ptr(ModeDirtyBitmap)}, "sample-pages is out of range[128, 16384].", ErrInvalid},
		{ring, Config{CalcTime: 1, SamplePages: ptr(int64(512)), Mode: ptr(ModeDirtyBitmap)}, "mode dirty-bitmap is not enabled, use other method instead.", ErrNotEnabled},
	} {
		err := tc.m.Calc(tc.c)
		if err == nil || err.Error() != tc.want || !errors.Is(err, tc.kind) {
			t.Errorf("Calc(%+v) = %v, want %q", tc.c, err, tc.want)
		}
	}
	if in := tcg.Info(); in.Status != StatusUnstarted || in.Mode != ModePageSampling || in.SamplePages != 0 || in.DirtyRate != nil {
		t.Errorf("a refused Calc changed the state: %+v", in)
	}
}

// TestStatusMachine: unstarted → (Calc) → measuring → measured, and Calc is refused while
// measuring.
func TestStatusMachine(t *testing.T) {
	f := newFake(2048)
	m := newTestMeter(f, 0)
	release := make(chan struct{})
	m.wait = func(d time.Duration) { <-release; f.wait(d) }
	if in := m.Info(); in.Status != StatusUnstarted || in.StartTime != 0 || in.CalcTime != 0 {
		t.Fatalf("initial %+v", in)
	}
	if err := m.Calc(Config{CalcTime: 2, Mode: ptr(ModeDirtyBitmap)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for m.Info().Status != StatusMeasuring {
		if time.Now().After(deadline) {
			t.Fatal("never measuring")
		}
		time.Sleep(time.Millisecond)
	}
	in := m.Info()
	if in.SamplePages != 512 || in.CalcTime != 2 || in.StartTime != 1000 || in.DirtyRate != nil || in.Mode != ModeDirtyBitmap {
		t.Fatalf("measuring: %+v", in)
	}
	if err := m.Calc(Config{CalcTime: 1}); err == nil || err.Error() != "the dirty rate is already being measured." || !errors.Is(err, ErrBusy) {
		t.Fatalf("Calc while measuring: %v", err)
	}
	close(release)
	for m.Info().Status != StatusMeasured {
		if time.Now().After(deadline) {
			t.Fatal("never measured")
		}
		time.Sleep(time.Millisecond)
	}
	in = m.Info()
	if in.DirtyRate == nil || *in.DirtyRate != 8 || in.SamplePages != 0 || in.CalcTime != 2 {
		t.Fatalf("measured: %+v", in)
	}
}

// TestBitmapRate: pages harvested over the period, QEMU's integer MB/s.
func TestBitmapRate(t *testing.T) {
	for _, tc := range []struct {
		perSecond []uint64
		calc      int64
		want      int64
	}{
		{[]uint64{2048}, 1, 8},          // 8 MiB/s
		{[]uint64{1024, 1024}, 4, 8},    // two vCPUs, summed by the log
		{[]uint64{2047}, 1, 7},          // 7.99 MiB → 7: whole MiB, as QEMU truncates
		{[]uint64{100}, 10, 0},          // 3.9 MiB over 10 s → 0
		{[]uint64{65536 * 4}, 3, 1024},  // 1 GiB/s
		{[]uint64{256, 256, 256}, 2, 3}, // 6 MiB in 2 s
	} {
		f := newFake(tc.perSecond...)
		in := measure(t, newTestMeter(f, 0), Config{CalcTime: tc.calc, Mode: ptr(ModeDirtyBitmap)})
		if *in.DirtyRate != tc.want || in.CalcTime != tc.calc || in.VCPUDirtyRate != nil {
			t.Errorf("%v pages/s over %d s: %+v, want %d MB/s", tc.perSecond, tc.calc, in, tc.want)
		}
	}
}

// TestDirtyRingRates: per-vCPU rates, their sum, the log reaped every second.
func TestDirtyRingRates(t *testing.T) {
	f := newFake(2048, 512, 0)
	in := measure(t, newTestMeter(f, 4096), Config{CalcTime: 3, Mode: ptr(ModeDirtyRing)})
	want := []VCPURate{{0, 8}, {1, 2}, {2, 0}}
	if *in.DirtyRate != 10 || len(in.VCPUDirtyRate) != 3 || in.SamplePages != 0 {
		t.Fatalf("%+v", in)
	}
	for i, r := range want {
		if in.VCPUDirtyRate[i] != r {
			t.Errorf("vCPU %d: %+v, want %+v", i, in.VCPUDirtyRate[i], r)
		}
	}
	if f.syncs != 4 {
		t.Errorf("%d syncs over 3 s, want one at the start and one a second", f.syncs)
	}
}

// TestPageSampling: with every sampled page in a known fraction of RAM changing, the
// estimate is that fraction of the RAM size per period.
func TestPageSampling(t *testing.T) {
	f := newFake()
	f.blocks = []Block{fakeBlock{"pc.ram", 1 << 18}, fakeBlock{"tiny", 16}} // 1 GiB; 64 KiB is skipped
	f.dirtyPages = 1 << 18                                                  // every page changes
	in := measure(t, newTestMeter(f, 0), Config{CalcTime: 2, SamplePages: ptr(int64(1024))})
	if *in.DirtyRate != 512 || in.SamplePages != 1024 {
		t.Fatalf("all of 1 GiB changed in 2 s: %+v, want 512 MB/s", in)
	}
	f = newFake()
	in = measure(t, newTestMeter(f, 0), Config{CalcTime: 1})
	if *in.DirtyRate != 0 || in.SamplePages != 512 {
		t.Fatalf("nothing changed: %+v", in)
	}
	// A RAM block too small for one sample: the rate stays -1, as QEMU's.
	f = newFake()
	f.blocks = []Block{fakeBlock{"pc.ram", 256}} // 1 MiB: 0.5 samples
	in = measure(t, newTestMeter(f, 0), Config{CalcTime: 1})
	if *in.DirtyRate != -1 {
		t.Fatalf("no sample: %+v", in)
	}
}

func TestLimitErrors(t *testing.T) {
	l := NewLimiter(newFake(0), 0, 2)
	err := l.SetLimit(nil, 10)
	if err == nil || err.Error() != "dirty page limit feature requires KVM with accelerator property 'dirty-ring-size' set'" || !errors.Is(err, ErrNotEnabled) {
		t.Fatalf("SetLimit without a ring: %v", err)
	}
	if err := l.CancelLimit(ptr(int64(99))); err != nil {
		t.Fatalf("CancelLimit without a ring checks nothing in QEMU: %v", err)
	}
	if q := l.Query(); len(q) != 0 {
		t.Fatalf("Query: %v", q)
	}
	l = NewLimiter(newFake(0, 0), 4096, 2)
	for _, cpu := range []int64{-1, 2} {
		if err := l.SetLimit(ptr(cpu), 10); err == nil || err.Error() != "incorrect cpu index specified" {
			t.Errorf("SetLimit(%d): %v", cpu, err)
		}
		if err := l.CancelLimit(ptr(cpu)); err == nil || err.Error() != "incorrect cpu index specified" {
			t.Errorf("CancelLimit(%d): %v", cpu, err)
		}
	}
	if err := l.SetLimit(ptr(int64(1)), 30); err != nil {
		t.Fatal(err)
	}
	if q := l.Query(); len(q) != 1 || q[0].CPUIndex != 1 || q[0].LimitRate != 30 {
		t.Fatalf("Query: %+v", q)
	}
	if err := l.SetLimit(nil, 0); err != nil { // 0 cancels
		t.Fatal(err)
	}
	if q := l.Query(); len(q) != 0 {
		t.Fatalf("after cancel: %+v", q)
	}
}

// TestThrottleArithmetic follows dirtylimit_set_throttle with a 4096-entry ring (16 MiB).
func TestThrottleArithmetic(t *testing.T) {
	for _, tc := range []struct {
		name           string
		sleep          time.Duration
		quota, current uint64
		want           time.Duration
		change         bool
	}{
		{"within tolerance", 0, 10, 30, 0, false},
		{"linear down", 0, 16, 64, 750 * time.Millisecond, true}, // ring fills in 250 ms; 75 %: 3× that
		{"small step", 100 * time.Millisecond, 100, 160, 110 * time.Millisecond, true},
		{"too slow: less sleep", 200 * time.Millisecond, 200, 160, 190 * time.Millisecond, true},
		{"linear up, floored at 0", 50 * time.Millisecond, 200, 64, 0, true},
		{"stopped vCPU", 300 * time.Millisecond, 100, 0, 0, true},
	} {
		l := NewLimiter(newFake(0), 4096, 1)
		l.maxRate = 0
		got, change := l.adjust(tc.sleep, tc.quota, tc.current)
		if got != tc.want || change != tc.change {
			t.Errorf("%s: adjust(%v, %d, %d) = %v %v, want %v %v", tc.name, tc.sleep, tc.quota, tc.current, got, change, tc.want, tc.change)
		}
	}
	// The ceiling: 99 ring-fill times.
	l := NewLimiter(newFake(0), 4096, 1)
	if got, _ := l.adjust(30*time.Second, 1, 64); got != 99*250*time.Millisecond {
		t.Errorf("ceiling: %v", got)
	}
}
