package migration

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"tlcvm/migration/transport"
)

// Options configure an Engine.
type Options struct {
	Machine Machine
	Events  Events
	// Log receives diagnostics; the zero Logger is silent.
	Log zerolog.Logger
	// Stderr receives QEMU's error_report lines ("qemu-system-x86_64: …"); nil discards.
	Stderr io.Writer
	// Prog prefixes those lines; "qemu-system-x86_64" when empty.
	Prog string
	// Exit is called after an incoming migration failed (QEMU exits with status 1). nil:
	// the engine only records the failure.
	Exit func(status int)
	// Open opens file: paths ("/dev/fdset/N" included, see transport.Env.Open); nil: open(2).
	Open func(path string, flag int, perm uint32) (int, error)
	// Disks hands the machine's images over (switchover.go); nil: a machine without.
	Disks Disks
	// UUID is the VM's -uuid (zero when none): multifd channels carry it and both ends
	// must agree.
	UUID [16]byte
	// Bitmaps are the block layer's dirty bitmaps (capability dirty-bitmaps); nil: none.
	Bitmaps Bitmaps
}

// Engine runs outgoing migrations (checkpoints) and the incoming one. Its methods are safe
// for concurrent use; the QMP handlers call them from the monitor's owner goroutine and
// the checkpoint thread and the loader run on their own.
type Engine struct {
	m      Machine
	ev     Events
	log    zerolog.Logger
	stderr io.Writer
	prog   string
	exit   func(int)
	open   func(path string, flag int, perm uint32) (int, error)
	disks  Disks
	uuid   [16]byte
	// bitmaps are the block layer's dirty bitmaps (bitmaps.go); nil: none.
	bitmaps Bitmaps

	// mu guards the fields marked so. Lock order: mu, then a job's mu (activeLocked asks the
	// jobs their status under mu); a job never takes mu while it holds its own.
	mu     sync.Mutex
	caps   []bool // +checklocks:mu; by capIndex
	params Params // +checklocks:mu
	out    *job   // +checklocks:mu; the current or last outgoing migration
	in     *inJob // +checklocks:mu; the incoming migration, once started
	defer_ bool   // +checklocks:mu; -incoming defer given and migrate-incoming not yet run
	closed bool   // +checklocks:mu

	ready     chan struct{} // closed by Ready
	readyOnce sync.Once

	// arena is x-tlc's stage-3 copy buffer, kept between checkpoints and faulted in while
	// the guest still runs (first touch of fresh memory is slow on these hosts): only the
	// checkpoint thread uses it, and one checkpoint runs at a time.
	arena []byte

	baseline   *baseline     // +checklocks:mu; see filecp.go
	backing    *backing      // +checklocks:mu; the file under guest RAM after a mapped restore
	restore    *FileInfo     // +checklocks:mu; the incoming file restore
	restoreRAM []MappableRAM // +checklocks:mu; the blocks it mapped
}

// New returns an engine with QEMU 7.2's default capabilities (all off) and parameters.
func New(o Options) *Engine {
	if o.Events == nil {
		o.Events = EventsFunc(func(string, any) {})
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	o.Stderr = &lockedWriter{w: o.Stderr}
	if o.Prog == "" {
		o.Prog = "qemu-system-x86_64"
	}
	if o.Disks == nil {
		o.Disks = noDisks{}
	}
	return &Engine{m: o.Machine, ev: o.Events, log: o.Log, stderr: o.Stderr, prog: o.Prog, exit: o.Exit, open: o.Open,
		disks: o.Disks, uuid: o.UUID, bitmaps: o.Bitmaps, caps: make([]bool, len(capabilityNames)), params: DefaultParams(),
		ready: make(chan struct{})}
}

// Capabilities returns query-migrate-capabilities: every capability in QAPI order.
func (e *Engine) Capabilities() []CapabilityStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]CapabilityStatus, len(capabilityNames))
	for i, n := range capabilityNames {
		out[i] = CapabilityStatus{Capability: Capability(n), State: e.caps[i]}
	}
	return out
}

// Capability reports whether c is enabled.
func (e *Engine) Capability(c Capability) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.capLocked(c)
}

func (e *Engine) capLocked(c Capability) bool {
	i := capIndex(c)
	return i >= 0 && e.caps[i]
}

// SetCapabilities is migrate-set-capabilities: refused while a migration runs; otherwise
// all or nothing.
func (e *Engine) SetCapabilities(list []CapabilityStatus) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.activeLocked() {
		return errorf(ErrActive, "There's a migration process in progress")
	}
	if err := checkCaps(e.caps, list); err != nil {
		return err
	}
	for _, c := range list {
		e.caps[capIndex(c.Capability)] = c.State
	}
	return nil
}

// Params returns query-migrate-parameters.
func (e *Engine) Params() Params {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.params.clone()
}

// SetParams is migrate-set-parameters: the non-nil members of u, checked as QEMU does on
// the merged result; allowed during a migration (a running checkpoint picks up
// max-bandwidth and downtime-limit at once).
func (e *Engine) SetParams(u Params) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	merged := e.params.clone()
	merged.apply(&u)
	if err := merged.check(); err != nil {
		return err
	}
	e.params = merged
	return nil
}

// multifdChannels is multifd-channels when the multifd capability is on, else 0.
func (e *Engine) multifdChannels() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.capLocked(CapMultifd) || e.capLocked(CapMappedRAM) {
		return 0
	}
	return int(*e.params.MultifdChannels)
}

// postcopyBandwidth is max-postcopy-bandwidth (bytes/s, 0 unlimited).
func (e *Engine) postcopyBandwidth() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return *e.params.MaxPostcopyBandwidth
}

// limits returns the parameters a running checkpoint follows.
func (e *Engine) limits() (bandwidth, downtimeMS uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return *e.params.MaxBandwidth, *e.params.DowntimeLimit
}

func (e *Engine) activeLocked() bool {
	return (e.out != nil && e.out.status().running()) || (e.in != nil && e.in.status().running())
}

// emitStatus sends MIGRATION when the events capability is on.
func (e *Engine) emitStatus(s Status) {
	if e.Capability(CapEvents) {
		e.ev.Emit("MIGRATION", MigrationEvent{Status: s})
	}
}

// report prints one of QEMU's error_report lines.
func (e *Engine) report(format string, a ...any) {
	fmt.Fprintf(e.stderr, "%s: %s\n", e.prog, fmt.Sprintf(format, a...))
}

// lockedWriter serialises the engine's lines and exec'd commands' stderr.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// MigrateOptions are migrate's flags.
type MigrateOptions struct {
	// Blk and Inc ask for block migration; tlcvm migrates no disks (shared storage), so
	// they are accepted and ignored.
	Blk, Inc bool
	// Resume asks to resume a paused postcopy migration (there never is one).
	Resume bool
	// LookupFD resolves fd:NAME from the monitor's getfd table (the fd is taken).
	LookupFD func(name string) (int, error)
	// Blocked returns the error of a migration blocker in force (QEMU's
	// migration_is_blocked: a dump in progress), nil when none; nil: no blockers.
	Blocked func() error
}

// Migrate is QMP migrate: it checks the request as QEMU's migrate_prepare does, emits
// MIGRATION setup, and starts the checkpoint thread, which opens uri and runs the stages
// while the guest keeps running. It returns once the thread is started; failures after
// that are reported through Info (status failed, error-desc).
func (e *Engine) Migrate(uri string, o MigrateOptions) error {
	// The URI is parsed once, here; its error is reported where QEMU 7.2 checks it.
	addr, parseErr := transport.ParseOutgoing(uri)
	e.mu.Lock()
	mapped := e.capLocked(CapMappedRAM)
	if err := checkSeekable(mapped, addr, parseErr); err != nil {
		e.mu.Unlock()
		return err
	}
	if o.Resume {
		j := e.out
		e.mu.Unlock()
		return e.resume(j, addr, parseErr, o)
	}
	if e.activeLocked() {
		e.mu.Unlock()
		return errorf(ErrActive, "There's a migration process in progress")
	}
	switch e.m.RunState() {
	case "inmigrate":
		e.mu.Unlock()
		return errorf(ErrState, "Guest is waiting for an incoming migration")
	case "postmigrate":
		e.mu.Unlock()
		return errorf(ErrState, "Can't migrate the vm that was paused due to previous migration")
	}
	if o.Blocked != nil {
		if err := o.Blocked(); err != nil {
			e.mu.Unlock()
			return err
		}
	}
	j := newJob(e, addr)
	j.tlc = e.capLocked(CapTLC)
	j.pause = e.capLocked(CapPauseBeforeSwitchover)
	j.autoConverge = e.capLocked(CapAutoConverge)
	if e.capLocked(CapXBZRLE) {
		j.xbSize = *e.params.XbzrleCacheSize
	}
	if e.capLocked(CapCompress) {
		j.compressLevel = int(*e.params.CompressLevel)
	}
	j.useRP = e.capLocked(CapReturnPath) || e.capLocked(CapPostcopyRAM)
	j.mapped = mapped
	if e.capLocked(CapMultifd) && e.params.MultifdChannels != nil {
		j.channels = int(*e.params.MultifdChannels)
		j.multifd = !mapped
	}
	if p := e.params.XCheckpointCPU; p != nil {
		j.wantCPU = int(*p)
	} else {
		j.wantCPU = -1
	}
	e.out = j
	e.mu.Unlock()

	e.emitStatus(StatusSetup)
	// What QEMU checks synchronously fails the command (after MIGRATION setup and
	// failed): the URI, the fd name, starting the command, opening the file.
	if parseErr != nil {
		j.failSync(parseErr)
		return parseErr
	}
	env := e.outEnv(o)
	cpu, err := j.chooseCPU()
	if err != nil {
		j.failSync(err)
		return err
	}
	j.cpu = cpu
	if err := e.checkBacking(addr, mapped); err != nil {
		j.failSync(err)
		return err
	}
	if mapped {
		t, err := openTarget(addr, env)
		if err != nil {
			j.failSync(err)
			return err
		}
		j.mu.Lock()
		j.file, j.out, j.base = t, t.f, t.offset
		j.abort = func() {} // file writes do not block; the thread sees the cancel
		j.mu.Unlock()
		go j.run()
		return nil
	}
	out, err := transport.OpenAddress(addr, env)
	if err != nil {
		j.failSync(err)
		return err
	}
	j.mu.Lock()
	j.out = out
	j.streamed = addr.Scheme == transport.SchemeFile
	j.abort = func() { _ = transport.Abort(out) }
	j.mu.Unlock()
	go j.run()
	return nil
}

// outEnv is what opening an outgoing channel needs: fd: names looked up through o.LookupFD
// (none found without it, in QEMU's words).
func (e *Engine) outEnv(o MigrateOptions) transport.Env {
	env := transport.Env{Log: e.log, Stderr: e.stderr, LookupFD: o.LookupFD, Open: e.open}
	if env.LookupFD == nil {
		env.LookupFD = func(name string) (int, error) {
			return -1, errorf(ErrInvalid, "File descriptor named '%s' has not been found", name)
		}
	}
	return env
}

// Cancel is migrate_cancel: an outgoing migration in setup or active moves to cancelling,
// and the checkpoint thread stops at its next step, leaves the guest running and ends in
// cancelled. Nothing happens otherwise.
func (e *Engine) Cancel() {
	e.mu.Lock()
	j := e.out
	e.mu.Unlock()
	if j != nil {
		j.requestCancel()
	}
}

// Wait blocks until the current outgoing migration (if any) has finished, then returns
// Info.
func (e *Engine) Wait() Info {
	e.mu.Lock()
	j := e.out
	e.mu.Unlock()
	if j != nil {
		<-j.done
	}
	return e.Info()
}

// Info is query-migrate: {} before any migration; the incoming migration's status on a
// destination; otherwise the last outgoing migration's figures, with the members QEMU
// 7.2 shows in its status (see populate_time_info / populate_ram_info).
func (e *Engine) Info() Info {
	e.mu.Lock()
	j, in := e.out, e.in
	e.mu.Unlock()
	switch {
	case j != nil:
		return j.info()
	case in != nil:
		st := in.status()
		info := Info{Status: st, HasStatus: true, File: e.restoreInfo()}
		if st != StatusCompleted {
			info.SocketAddresses = in.listening()
		}
		return info
	}
	return Info{}
}

// Close cancels an outgoing migration and waits for its thread, and stops a pending
// incoming one.
func (e *Engine) Close() {
	e.mu.Lock()
	e.closed = true
	j, in := e.out, e.in
	e.mu.Unlock()
	if j != nil {
		j.requestCancel()
		<-j.done
	}
	if in != nil {
		in.close()
	}
}

// since returns the milliseconds elapsed from t.
func since(t time.Time) int64 { return time.Since(t).Milliseconds() }

// Idle is QEMU's migration_is_idle: no outgoing migration, or only a finished one
// (device_add and device_del are refused otherwise).
func (e *Engine) Idle() bool {
	e.mu.Lock()
	j := e.out
	e.mu.Unlock()
	return j == nil || !j.status().running()
}
