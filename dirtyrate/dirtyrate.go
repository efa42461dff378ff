package dirtyrate

import (
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"tlcvm/compat/qerror"
)

// Block is one RAM block as the measurement sees it.
type Block interface {
	Name() string
	Pages() uint64
}

// Machine is what measurements and limits need of the VM.
type Machine interface {
	// Blocks lists the RAM blocks (QEMU's migratable ones).
	Blocks() []Block
	// PageHashes fingerprints pages of b into out; ok[i] is false for a page that could
	// not be read.
	PageHashes(b Block, pages []uint64, out []uint32, ok []bool) error
	// SyncDirtyRate syncs the dirty log for this client without taking pages from
	// another client (a checkpoint).
	SyncDirtyRate()
	// DirtyPagesHarvested counts every page any sync took from the dirty log.
	DirtyPagesHarvested() uint64
	// DirtiedPages are, per vCPU, the pages it took from clean to dirty.
	DirtiedPages() []uint64
	// SetDirtyThrottle makes vCPU cpu sleep d per ring pages dirtied (0: none).
	SetDirtyThrottle(cpu int, d time.Duration, ring uint64)
}

// Status is QAPI's DirtyRateStatus.
type Status string

// The statuses.
const (
	StatusUnstarted Status = "unstarted"
	StatusMeasuring Status = "measuring"
	StatusMeasured  Status = "measured"
)

// EnumValues implements qmp.Enum.
func (Status) EnumValues() []string { return []string{"unstarted", "measuring", "measured"} }

// Mode is QAPI's DirtyRateMeasureMode.
type Mode string

// The modes.
const (
	ModePageSampling Mode = "page-sampling"
	ModeDirtyRing    Mode = "dirty-ring"
	ModeDirtyBitmap  Mode = "dirty-bitmap"
)

// EnumValues implements qmp.Enum.
func (Mode) EnumValues() []string { return []string{"page-sampling", "dirty-ring", "dirty-bitmap"} }

// QEMU's limits (migration/dirtyrate.h).
const (
	MinCalcTime        = 1
	MaxCalcTime        = 60
	DefaultSamplePages = 512
	MinSamplePages     = 128
	MaxSamplePages     = 16384
	minBlockBytes      = 128 << 10 // MIN_RAMBLOCK_SIZE << 10: smaller blocks are not sampled
	pageSize           = 4096
)

// Sentinels of the errors Calc, SetLimit and CancelLimit return (all GenericError over
// QMP, with QEMU's texts; see qerror).
var (
	ErrBusy       = errors.New("dirtyrate: a measurement is in progress")
	ErrInvalid    = errors.New("dirtyrate: argument out of range")
	ErrNotEnabled = errors.New("dirtyrate: needs a dirty ring")
)

// Config is one calc-dirty-rate request.
type Config struct {
	CalcTime    int64
	SamplePages *int64 // nil: DefaultSamplePages (page-sampling only)
	Mode        *Mode  // nil: page-sampling
}

// VCPURate is QAPI's DirtyRateVcpu.
type VCPURate struct {
	ID        int64
	DirtyRate int64
}

// Info is query-dirty-rate's answer (QAPI's DirtyRateInfo).
type Info struct {
	DirtyRate     *int64 // only when measured
	Status        Status
	StartTime     int64 // s, host monotonic clock (QEMU_CLOCK_REALTIME / 1000)
	CalcTime      int64 // s
	SamplePages   int64
	Mode          Mode
	VCPUDirtyRate []VCPURate // dirty-ring mode, when measured
}

// Meter runs calc-dirty-rate measurements, one at a time.
type Meter struct {
	m    Machine
	ring uint64 // dirty ring entries per vCPU; 0: no dirty ring (TCG)

	// now is the host monotonic clock (QEMU_CLOCK_REALTIME); wait sleeps. Tests replace them.
	now  func() time.Duration
	wait func(d time.Duration)

	mu     sync.Mutex
	status Status // +checklocks:mu; changed only by transition
	stat   stat   // +checklocks:mu
	mode   Mode   // +checklocks:mu; the last Calc's
}

// stat is QEMU's DirtyStat.
type stat struct {
	dirtyRate   int64
	startTime   int64
	calcTime    int64
	samplePages int64
	vcpus       []VCPURate
}

// NewMeter returns a meter of m; ring is the dirty ring size (entries per vCPU), 0 when
// the machine has none.
func NewMeter(m Machine, ring uint64) *Meter {
	return &Meter{m: m, ring: ring, now: monotonic, wait: time.Sleep,
		status: StatusUnstarted, mode: ModePageSampling}
}

// monotonic is CLOCK_MONOTONIC, the clock of QEMU_CLOCK_REALTIME.
func monotonic() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// transition is the one place status changes; from lists the statuses it may leave.
// It reports whether the edge was taken (QEMU's dirtyrate_set_state cmpxchg). mu held.
func (t *Meter) transition(to Status, from ...Status) bool {
	for _, f := range from {
		if t.status == f {
			t.status = to
			return true
		}
	}
	return false
}

// Calc starts a measurement (qmp_calc_dirty_rate): errors in QEMU's order and words.
func (t *Meter) Calc(c Config) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.status == StatusMeasuring {
		return qerror.New(ErrBusy, "the dirty rate is already being measured.")
	}
	if c.CalcTime < MinCalcTime || c.CalcTime > MaxCalcTime {
		return qerror.Errorf(ErrInvalid, "calc-time is out of range[%d, %d].", MinCalcTime, MaxCalcTime)
	}
	mode := ModePageSampling
	if c.Mode != nil {
		mode = *c.Mode
	}
	// QEMU 7.2's order, checked against the binary under KVM (with and without a dirty
	// ring): sample-pages with dirty-ring, sample-pages' range (dirty-bitmap takes one
	// too), then whether the mode is enabled.
	if c.SamplePages != nil && mode == ModeDirtyRing {
		return qerror.New(ErrInvalid, "either sample-pages or dirty-ring can be specified.")
	}
	sample := int64(DefaultSamplePages)
	if c.SamplePages != nil {
		if *c.SamplePages < MinSamplePages || *c.SamplePages > MaxSamplePages {
			return qerror.Errorf(ErrInvalid, "sample-pages is out of range[%d, %d].", MinSamplePages, MaxSamplePages)
		}
		sample = *c.SamplePages
	}
	if (mode == ModeDirtyRing && t.ring == 0) || (mode == ModeDirtyBitmap && t.ring != 0) {
		return qerror.Errorf(ErrNotEnabled, "mode %s is not enabled, use other method instead.", mode)
	}
	t.transition(StatusUnstarted, StatusUnstarted, StatusMeasured)
	t.mode = mode
	t.stat = stat{dirtyRate: -1, startTime: int64(t.now() / time.Second), calcTime: c.CalcTime, samplePages: sample}
	go t.run(mode, c.CalcTime, sample)
	return nil
}

// run is the measuring goroutine (get_dirtyrate_thread).
func (t *Meter) run(mode Mode, calcTime, sample int64) {
	t.mu.Lock()
	ok := t.transition(StatusMeasuring, StatusUnstarted)
	t.mu.Unlock()
	if !ok {
		return
	}
	var s stat
	switch mode {
	case ModeDirtyBitmap:
		s = t.bitmap(calcTime)
	case ModeDirtyRing:
		s = t.dirtyRing(calcTime)
	default:
		s = t.sample(calcTime, sample)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s.samplePages = t.stat.samplePages
	if s.startTime == 0 {
		s.startTime = t.stat.startTime
	}
	t.stat = s
	t.transition(StatusMeasured, StatusMeasuring)
}

// Info is query-dirty-rate.
func (t *Meter) Info() Info {
	t.mu.Lock()
	defer t.mu.Unlock()
	in := Info{Status: t.status, StartTime: t.stat.startTime, CalcTime: t.stat.calcTime,
		SamplePages: t.stat.samplePages, Mode: t.mode}
	if t.status == StatusMeasured {
		r := t.stat.dirtyRate
		in.DirtyRate = &r
		switch t.mode {
		case ModeDirtyRing:
			in.SamplePages = 0
			in.VCPUDirtyRate = append([]VCPURate{}, t.stat.vcpus...)
		case ModeDirtyBitmap:
			in.SamplePages = 0
		}
	}
	return in
}

// mbps is QEMU's do_calculate_dirtyrate: whole MiB dirtied, per second.
func mbps(pages uint64, ms int64) int64 {
	if ms <= 0 {
		return 0
	}
	return int64(pages*pageSize>>20) * 1000 / ms
}

// waitUntil sleeps until ms milliseconds after start and returns the elapsed ms (at least
// ms: QEMU's dirty_stat_wait).
func (t *Meter) waitUntil(start time.Duration, ms int64) int64 {
	if el := (t.now() - start).Milliseconds(); el >= ms {
		return el
	}
	t.wait(start + time.Duration(ms)*time.Millisecond - t.now())
	return ms
}

// bitmap is calculate_dirtyrate_dirty_bitmap.
func (t *Meter) bitmap(calcTime int64) stat {
	t.m.SyncDirtyRate() // the first round is discarded
	start := t.m.DirtyPagesHarvested()
	t0 := t.now()
	ms := t.waitUntil(t0, calcTime*1000)
	t.m.SyncDirtyRate()
	pages := t.m.DirtyPagesHarvested() - start
	return stat{dirtyRate: mbps(pages, ms), startTime: int64(t0 / time.Second), calcTime: ms / 1000}
}

// vcpuRates is vcpu_calculate_dirtyrate: each vCPU's rate over ms, the log synced every
// second meanwhile (KVM's dirty-ring reaper) and at the end. It returns the elapsed ms.
func (t *Meter) vcpuRates(ms int64) ([]VCPURate, int64) {
	t0 := t.now()
	before := t.m.DirtiedPages()
	for step := int64(1000); step < ms; step += 1000 {
		t.waitUntil(t0, step)
		t.m.SyncDirtyRate()
	}
	d := t.waitUntil(t0, ms)
	t.m.SyncDirtyRate()
	after := t.m.DirtiedPages()
	rates := make([]VCPURate, len(before))
	for i := range before {
		rates[i] = VCPURate{ID: int64(i), DirtyRate: mbps(after[i]-before[i], d)}
	}
	return rates, d
}

// dirtyRing is calculate_dirtyrate_dirty_ring.
func (t *Meter) dirtyRing(calcTime int64) stat {
	t.m.SyncDirtyRate() // starting the log write-protects every page: all count from now
	start := int64(t.now() / time.Second)
	rates, d := t.vcpuRates(calcTime * 1000)
	var sum int64
	for _, r := range rates {
		sum += r.DirtyRate
	}
	return stat{dirtyRate: sum, startTime: start, calcTime: d / 1000, vcpus: rates}
}

// sampled is one block's samples (RamblockDirtyInfo).
type sampled struct {
	b      Block
	pages  []uint64
	hashes []uint32
	ok     []bool
}

// sample is calculate_dirtyrate_sample_vm.
func (t *Meter) sample(calcTime, perGiB int64) stat {
	t0 := t.now()
	var blocks []sampled
	for _, b := range t.m.Blocks() {
		if b.Pages()*pageSize < minBlockBytes {
			continue
		}
		n := b.Pages() * pageSize * uint64(perGiB) >> 30
		s := sampled{b: b, pages: make([]uint64, n), hashes: make([]uint32, n), ok: make([]bool, n)}
		for i := range s.pages {
			s.pages[i] = rand.Uint64N(b.Pages() - 1) // g_rand_int_range(0, pages-1)
		}
		if err := t.m.PageHashes(b, s.pages, s.hashes, s.ok); err != nil {
			return stat{dirtyRate: -1, startTime: int64(t0 / time.Second), calcTime: calcTime}
		}
		blocks = append(blocks, s)
	}
	ms := t.waitUntil(t0, calcTime*1000)
	out := stat{dirtyRate: -1, startTime: int64(t0 / time.Second), calcTime: ms / 1000}
	var dirty, count, mb uint64
	for _, s := range blocks {
		now, ok := make([]uint32, len(s.pages)), make([]bool, len(s.pages))
		if err := t.m.PageHashes(s.b, s.pages, now, ok); err != nil {
			return out
		}
		for i := range s.pages {
			if s.ok[i] && ok[i] && now[i] != s.hashes[i] {
				dirty++
			}
		}
		count += uint64(len(s.pages))
		mb += s.b.Pages() * pageSize >> 20
	}
	if count == 0 {
		return out
	}
	out.dirtyRate = int64(dirty * mb * 1000 / (count * uint64(ms)))
	return out
}
