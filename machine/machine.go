package machine

import (
	"cmp"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"
)

// Config is the machine as the command line describes it.
type Config struct {
	Type    string // resolved machine type: "pc-i440fx-7.2", "pc-q35-7.2", "none"
	RAMSize uint64 // bytes (0 for -machine none)
	// CPUNodes is the NUMA node of each possible CPU, by index (nil without -numa): what
	// query-cpus-fast and query-hotpluggable-cpus show as node-id.
	CPUNodes []int
	// MaxMem and Slots are -m maxmem= and slots=: with MaxMem above RAMSize the board
	// has a device-memory region for DIMMs (DeviceMemory). 0: none.
	MaxMem uint64
	Slots  int

	CPUs, Sockets, Dies, Cores, Threads, MaxCPUs int
	CPUModel                                     string // "qemu64" …; QOM type is CPUModel+"-x86_64-cpu"

	StartPaused bool    // -S
	NoShutdown  bool    // -no-shutdown, -action shutdown=pause: a guest shutdown stops the VM instead of exiting
	NoReboot    bool    // -no-reboot, -action reboot=shutdown: a reset request becomes a shutdown
	Actions     Actions // -action's other values (actions.go); NoShutdown and NoReboot win
	Incoming    bool    // -incoming given: start in inmigrate

	FwCfg   map[string][]byte // -fw_cfg entries; WorkloadKey configures the workload
	Disks   DiskResolver      // the workload's disk= names; nil: no disks
	Display string            // the display adapter's QOM type ("VGA", "virtio-vga", …); "" for none
	// FlushDisks makes every disk's writes durable (QEMU's bdrv_flush_all when the VM
	// stops); nil: nothing to flush.
	FlushDisks func()
	Serial     io.Writer // serial port 0 output (nil: nothing attached)

	Name, UUID   string
	DebugThreads bool // -name …,debug-threads=on: name vCPU threads "CPU N/TCG"
	// QTest: the qtest accelerator (-accel qtest): vCPU threads execute nothing and the
	// guest clock moves only by WarpClock (qtest.go).
	QTest bool

	Stderr io.Writer      // error reports (a guest RAM check failure); nil: os.Stderr
	Log    zerolog.Logger // zero value: silent
	Events EventSink      // nil: events are dropped
	Media  Media          // the removable-media drives the guest may lock; nil: none
}

// Machine is a running (or not yet started) VM.
//
// Locking: mu serialises every operation that changes the run state (all exported
// methods that act on it, and the guest-request loop). Lock order: Machine.mu, then
// vcpuCtl.mu, then vcpu.mu. Events are emitted with mu held.
type Machine struct {
	cfg      Config
	log      zerolog.Logger
	events   EventSink
	workload Workload // parsed from FwCfg at New

	ram     *RAMBlock // nil without RAM
	phys    physMap
	dimms   atomic.Pointer[[]dimm] // plugged DIMMs by address; replaced under ramMu (dimm.go)
	dimmSeq uint64                 // +checklocks:ramMu; plug order of the DIMMs
	// vcpuList holds the present vCPUs in index order (a copy-on-write slice: cpus()).
	// Written by New and by CPU hotplug (cpuhotplug.go) with m.mu held; read by anyone.
	vcpuList atomic.Pointer[[]*vcpu]
	ctl      *vcpuCtl

	serial  *Serial
	console sync.Mutex // the guest's console lock: vCPUs print whole lines (vcpu.deliver)
	fwcfg   *FwCfg
	acpi    ACPI
	cpuhp   cpuHotplug // the ACPI CPU hotplug block (cpuhotplug.go)
	clock   Clock
	kbc     i8042                                 // the PS/2 controller (i8042.go)
	irqs    atomic.Uint32                         // interrupt lines raised for vCPU 0, taken by its thread
	irqHook atomic.Pointer[func(line, level int)] // InterceptIRQs (qtest.go); nil: none

	reqs    chan string       // guest shutdown/reset requests → guestLoop
	faults  chan ramFaultReq  // guest RAM check failures (vCPUs, populate) → guestLoop
	ejects  chan hotplugEvent // devices (and CPUs) the guest ejected (vCPU 0) → guestLoop
	done    chan struct{}     // closed when the process should exit
	quit    chan struct{}     // closed by Close: stops guestLoop
	loopWG  sync.WaitGroup
	exitOne sync.Once

	mu         sync.Mutex
	state      RunState // +checklocks:mu
	finishFrom RunState // +checklocks:mu; the state EnterFinishMigrate left
	autostart  bool     // +checklocks:mu (QEMU's autostart: cleared by -S and by stop in inmigrate)
	started    bool     // +checklocks:mu
	closed     bool     // +checklocks:mu
	exiting    bool     // +checklocks:mu
	populating bool     // +checklocks:mu; StartPopulate was called
	actions    Actions  // +checklocks:mu; the run-state actions (actions.go)

	ramMu sync.RWMutex // held for reading while RAM is read by monitors; Close takes it

	// dirtyLimits are the vCPUs' dirty-limit throttles (dirtyrate.go), created by the
	// first SetDirtyThrottle; nil until then.
	dirtyLimits atomic.Pointer[[]*vcpuThrottle]
	cpuThrottle atomic.Int32 // auto-converge's percentage (throttle.go)
}

func isQ35(t string) bool { return strings.Contains(t, "q35") }

// ensureProcs makes room for ncpu vCPU threads next to the monitors. A vCPU thread holds
// a Go P while it executes, as a KVM_RUN holds its host CPU; with fewer Ps than vCPUs
// (GOMAXPROCS=1, or a process confined to one host CPU by taskset, a cgroup cpuset or
// libvirt's emulatorpin, from which Go derives GOMAXPROCS) running vCPUs would starve the
// monitor and signal handling goroutines. With a P each, the threads compete in the host
// scheduler as QEMU's vCPU threads do, and the host's CPU limit stays the kernel's to
// enforce. GOMAXPROCS is only ever raised.
func ensureProcs(ncpu int) {
	if want := ncpu + 2; runtime.GOMAXPROCS(0) < want {
		runtime.GOMAXPROCS(want)
	}
}

// New builds the machine: maps RAM (untouched), creates the vCPU threads (parked),
// the devices, and validates the workload. It does no work proportional to RAM size.
func New(cfg Config) (*Machine, error) {
	if cfg.Type == "" {
		cfg.Type = "pc-i440fx-7.2"
	}
	if cfg.CPUModel == "" {
		cfg.CPUModel = "qemu64"
	}
	ncpu := cfg.CPUs
	if cfg.Type == "none" {
		ncpu = 0 // QEMU's none machine creates no CPU
	} else if ncpu <= 0 {
		ncpu = 1
	}
	if cfg.MaxCPUs < ncpu {
		cfg.MaxCPUs = ncpu
	}
	normalizeSMP(&cfg)
	if cfg.Type != "none" && cfg.RAMSize%PageSize != 0 {
		return nil, fmt.Errorf("%w: RAM size %d is not a multiple of %d", ErrConfig, cfg.RAMSize, PageSize)
	}
	w, err := ParseWorkload(string(cfg.FwCfg[WorkloadKey]))
	if err != nil {
		return nil, err
	}
	m := &Machine{
		cfg: cfg, log: cfg.Log, events: cfg.Events, workload: w,
		ctl:       newVCPUCtl(),
		serial:    newSerial(cfg.Serial),
		fwcfg:     newFwCfg(cfg.FwCfg),
		reqs:      make(chan string, 8),
		faults:    make(chan ramFaultReq, 1),
		ejects:    make(chan hotplugEvent, 64),
		done:      make(chan struct{}),
		quit:      make(chan struct{}),
		state:     StatePrelaunch,
		autostart: !cfg.StartPaused,
		actions:   initialActions(cfg),
	}
	m.clock.manual = cfg.QTest
	if m.events == nil {
		m.events = nopSink{}
	}
	m.kbc.raise = m.raiseIRQ
	if cfg.RAMSize > 0 {
		name := "pc.ram"
		if cfg.Type == "none" {
			name = "ram"
		}
		if m.ram, err = newRAMBlock(name, cfg.RAMSize); err != nil {
			return nil, err
		}
		m.phys = buildPhysMap(cfg.Type, m.ram)
	}
	if ncpu > 0 && cfg.RAMSize < 1<<20 {
		return nil, fmt.Errorf("%w: %d vCPUs need at least 1 MiB of guest RAM", ErrConfig, ncpu)
	}
	if ncpu > 0 {
		if err := w.checkFits(cfg.RAMSize, m.phys[0].Size); err != nil {
			_ = m.ram.close()
			return nil, err
		}
	}
	m.ctl.alive = ncpu
	var vcpus []*vcpu
	for i := 0; i < ncpu; i++ {
		vcpus = append(vcpus, m.newVCPU(i, qomPath(i)))
	}
	m.vcpuList.Store(&vcpus)
	m.ctl.kickAll = func() {
		for _, v := range m.cpus() {
			v.be.Kick()
		}
	}
	ensureProcs(ncpu)
	for _, v := range vcpus {
		v.start()
	}
	m.ctl.pause() // every vCPU thread exists and is parked
	m.loopWG.Add(1)
	go m.guestLoop()
	m.log.Debug().Str("type", cfg.Type).Uint64("ram", cfg.RAMSize).Int("cpus", ncpu).
		Str("workload", w.String()).Msg("machine created")
	return m, nil
}

// Start is called once the monitors are ready: prelaunch → inmigrate with -incoming,
// → running unless -S, else the VM stays in prelaunch.
func (m *Machine) Start() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started || m.closed {
		return
	}
	m.started = true
	switch {
	case m.cfg.Incoming:
		m.transition(StateInMigrate, false)
	case m.autostart:
		m.vmStart()
	}
}

// Status returns the run state and whether it is running (query-status).
func (m *Machine) Status() (RunState, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state, m.state == StateRunning
}

// Autostart reports whether an incoming migration will start the VM (cleared by -S and
// by stop during inmigrate, set by cont).
func (m *Machine) Autostart() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.autostart
}

// Done is closed when the process should exit (quit, signal, guest shutdown without
// -no-shutdown).
func (m *Machine) Done() <-chan struct{} { return m.done }

// transition is the one place the run state changes (QEMU's runstate_set plus the
// STOP/RESUME events of vm_stop/vm_start). Leaving running emits STOP unless quiet (or
// the target is suspended); entering running emits RESUME (unless from suspended).
// An illegal edge is a programming error: it panics, as QEMU aborts.
// Caller holds m.mu.
func (m *Machine) transition(to RunState, quiet bool) {
	from := m.state
	if from == to {
		return
	}
	if !ValidTransition(from, to) {
		panic(fmt.Sprintf("machine: invalid runstate transition: '%s' -> '%s'", from, to))
	}
	m.state = to
	m.log.Debug().Stringer("from", from).Stringer("to", to).Msg("runstate")
	switch {
	case from == StateRunning && to != StateSuspended && !quiet:
		m.events.Emit(EventStop, nil)
	case to == StateRunning && from != StateSuspended && !quiet:
		m.events.Emit(EventResume, nil)
	}
}

// tryTransition is transition for callers that take a state from outside (migration).
func (m *Machine) tryTransition(to RunState, quiet bool) error {
	if !ValidTransition(m.state, to) {
		return fmt.Errorf("%w: '%s' -> '%s'", ErrInvalidTransition, m.state, to)
	}
	m.transition(to, quiet)
	return nil
}

// vmStop is QEMU's vm_stop(to): only a running VM stops (STOP event), synchronously.
// Caller holds m.mu.
func (m *Machine) vmStop(to RunState) {
	if m.state != StateRunning {
		return
	}
	m.transition(to, false)
	m.ctl.pause()
	m.clock.stop()
	if m.cfg.FlushDisks != nil {
		m.cfg.FlushDisks() // no guest request is in flight any more
	}
}

// vmStart is QEMU's vm_start: → running (RESUME), vCPUs released. Caller holds m.mu.
func (m *Machine) vmStart() {
	if m.state == StateRunning {
		return
	}
	m.transition(StateRunning, false)
	m.clock.start()
	m.ctl.resume()
}

// Stop is QMP "stop": in inmigrate it clears autostart; a running VM pauses (STOP) and
// Stop returns once every vCPU is parked; otherwise nothing happens.
func (m *Machine) Stop() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == StateInMigrate {
		m.autostart = false
		return nil
	}
	m.vmStop(StatePaused)
	return nil
}

// StopForIOError is a device's stop on an I/O error (werror/rerror=stop,
// qemu_system_vmstop_request(RUN_STATE_IO_ERROR)): a running VM goes to io-error (STOP)
// and its vCPUs park. It waits for them, so a vCPU thread calls it from another
// goroutine.
func (m *Machine) StopForIOError() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.vmStop(StateIOError)
}

// Cont is QMP "cont", with QEMU 7.2's errors: "Resetting the Virtual Machine is
// required" in shutdown and internal-error, "Migration is not finalized yet" in
// finish-migrate; nothing in suspended; in inmigrate it sets autostart; otherwise the VM
// runs (RESUME), postmigrate included.
func (m *Machine) Cont() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.state {
	case StateShutdown, StateInternalError:
		return qerr(ErrNeedsReset, "Resetting the Virtual Machine is required")
	case StateSuspended:
		return nil
	case StateFinishMigrate:
		return qerr(ErrMigrationNotFinal, "Migration is not finalized yet")
	case StateInMigrate:
		m.autostart = true
		return nil
	}
	m.vmStart()
	return nil
}

// Reset is a reset request with the given ShutdownCause (QMP system_reset passes
// CauseHostQMPSystemReset, the guest CauseGuestReset). With -no-reboot it is a shutdown
// instead. Otherwise the vCPUs pause, devices and CPUs reset (the workload restarts from
// its boot; RAM is kept), RESET {"guest","reason"} is emitted, the vCPUs resume; a VM that
// is not running, inmigrate or finish-migrate goes to prelaunch.
func (m *Machine) Reset(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reset(reason)
}

func (m *Machine) reset(reason string) {
	if m.closed || m.exiting {
		return
	}
	if m.actions.Reboot == "shutdown" && reason != CauseSubsystemReset {
		m.shutdown(reason, false)
		return
	}
	running := m.state == StateRunning
	m.ctl.pause()
	for _, v := range m.cpus() {
		v.mu.Lock()
		v.be.SetState(resetCPUState(v.index, m.cfg.CPUModel))
		v.mu.Unlock()
	}
	m.serial.reset()
	m.kbc.reset()
	m.acpi.pending.Store(false)
	m.acpi.enabled.Store(false)
	if m.ram != nil && m.ram.Written(gpaBootInfo>>pageShift) && m.ram.ensurePage(gpaBootInfo>>pageShift) == nil {
		m.ram.store64(gpaBootInfo, 0) // the APs wait for the new boot
	}
	m.events.Emit(EventReset, ResetEvent{Guest: guestCause(reason), Reason: reason})
	if running {
		m.ctl.resume()
	}
	switch m.state {
	case StateRunning, StateInMigrate, StateFinishMigrate:
	default:
		m.transition(StatePrelaunch, false)
	}
}

// Powerdown is QMP system_powerdown: POWERDOWN, and the ACPI power button is latched.
// A running guest (once booted) prints "powering off" and shuts down: SHUTDOWN
// {"guest":true,"reason":"guest-shutdown"}; then with -no-shutdown the VM stops in
// shutdown (STOP), otherwise the process exits. A paused guest reacts when it resumes.
func (m *Machine) Powerdown() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events.Emit(EventPowerdown, nil)
	m.acpi.pending.Store(true)
	m.wakeBSP()
}

// Quit is QMP quit: SHUTDOWN {"guest":false,"reason":"host-qmp-quit"}, then exit.
func (m *Machine) Quit() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.shutdown(CauseHostQMPQuit, true)
}

// HostSignal is SIGTERM/SIGINT/SIGHUP: SHUTDOWN {"guest":false,"reason":"host-signal"},
// then exit (status 0). The caller prints QEMU's "terminating on signal N" line.
func (m *Machine) HostSignal() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.shutdown(CauseHostSignal, true)
}

// shutdown is main_loop_should_exit's shutdown branch. force is shutdown_action=poweroff
// (quit and signals override -no-shutdown). Caller holds m.mu.
func (m *Machine) shutdown(cause string, force bool) {
	if m.closed || m.exiting {
		return
	}
	m.events.Emit(EventShutdown, ShutdownEvent{Guest: guestCause(cause), Reason: cause})
	if m.actions.Shutdown == "pause" && !force {
		m.vmStop(StateShutdown)
		return
	}
	m.exiting = true
	// qemu_cleanup → vm_shutdown: a running VM stops without a STOP event.
	if m.state == StateRunning {
		m.transition(StateShutdown, true)
	}
	m.ctl.pause()
	m.clock.stop()
	m.serial.Flush()
	m.exitOne.Do(func() { close(m.done) })
}

// requestGuestShutdown is called from a vCPU thread (ACPI power-off); the guest loop
// handles it like QEMU's main loop handles qemu_system_shutdown_request.
func (m *Machine) requestGuestShutdown() {
	select {
	case m.reqs <- CauseGuestShutdown:
	default:
	}
}

func (m *Machine) guestLoop() {
	defer m.loopWG.Done()
	for {
		select {
		case <-m.quit:
			return
		case cause := <-m.reqs:
			m.mu.Lock()
			if m.state == StateRunning { // a request from a vCPU stopped meanwhile is void
				m.shutdown(cause, false)
			}
			m.mu.Unlock()
		case f := <-m.faults:
			m.mu.Lock()
			m.handleRAMFault(f)
			m.mu.Unlock()
		case e := <-m.ejects:
			e.ejected()
		}
	}
}

// Close stops the vCPU threads and unmaps guest RAM. Call it after Done (or instead)
// once nothing (monitors, migration) uses the machine any more. Idempotent.
func (m *Machine) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	m.ctl.shutdown()
	close(m.quit)
	m.loopWG.Wait()
	m.serial.Flush()
	m.ramMu.Lock()
	defer m.ramMu.Unlock()
	for _, d := range m.dimmList() {
		_ = d.block.close()
	}
	if m.ram != nil {
		return m.ram.close()
	}
	return nil
}

// RAMSize is the guest RAM size in bytes.
func (m *Machine) RAMSize() uint64 { return m.cfg.RAMSize }

// RAMSplit is the board's RAM below 4 GiB and above it (pc_memory_init's split; all below
// on the machine none).
func (m *Machine) RAMSplit() (below, above uint64) {
	if len(m.phys) > 0 {
		below = m.phys[0].Size
	}
	if len(m.phys) > 1 {
		above = m.phys[1].Size
	}
	return below, above
}

// Config returns the configuration the machine was built with (after defaults).
func (m *Machine) Config() Config { return m.cfg }

// Workload returns the workload configuration parsed from fw_cfg.
func (m *Machine) Workload() Workload { return m.workload }

// GuestClock returns guest nanoseconds (they advance only while running).
func (m *Machine) GuestClock() uint64 { return m.clock.Now() }

// RAMBlocks lists the RAM blocks (none for a machine without RAM) in QEMU's RAM list
// order: by size, largest first, the older first among equals ("pc.ram", then DIMMs).
func (m *Machine) RAMBlocks() []*RAMBlock {
	if m.ram == nil {
		return nil
	}
	out := []*RAMBlock{m.ram}
	ds := slices.Clone(m.dimmList())
	slices.SortFunc(ds, func(a, b dimm) int { return cmp.Compare(a.seq, b.seq) })
	for _, d := range ds {
		out = append(out, d.block)
	}
	slices.SortStableFunc(out, func(a, b *RAMBlock) int { return cmp.Compare(b.size, a.size) })
	return out
}

// CPUs describes every possible CPU (MaxCPUs), in index order.
func (m *Machine) CPUs() []CPUInfo {
	if m.cfg.Type == "none" {
		return nil
	}
	present := map[int]*vcpu{}
	for _, v := range m.cpus() {
		present[v.index] = v
	}
	out := make([]CPUInfo, 0, m.cfg.MaxCPUs)
	for i := 0; i < m.cfg.MaxCPUs; i++ {
		c := CPUInfo{Index: i, Props: m.topology(i), Type: m.CPUType()}
		if v := present[i]; v != nil {
			c.Plugged = true
			c.ThreadID = int(v.tid.Load())
			c.QOMPath = v.qomPath
		}
		out = append(out, c)
	}
	return out
}

// CPUType is the QOM type of the machine's CPUs, e.g. "qemu64-x86_64-cpu".
func (m *Machine) CPUType() string { return m.cfg.CPUModel + "-x86_64-cpu" }

// Registers returns HMP "info registers" for vCPU cpu: QEMU's x86_64 layout, lines
// ending in "\n", without the "\nCPU#N\n" header HMP prints first. "" if no such CPU.
func (m *Machine) Registers(cpu int) string {
	v := m.vcpu(cpu)
	if v == nil {
		return ""
	}
	v.mu.Lock()
	st := v.be.State()
	v.mu.Unlock()
	return st.Dump()
}

// normalizeSMP fills missing -smp topology as QEMU 7.2's machine_parse_smp_config does
// for 7.2 machine types (cores preferred over sockets).
func normalizeSMP(c *Config) {
	c.Dies = max(c.Dies, 1)
	c.Threads = max(c.Threads, 1)
	maxc := max(c.MaxCPUs, 1)
	switch {
	case c.Sockets == 0 && c.Cores == 0:
		c.Sockets = 1
		c.Cores = max(maxc/(c.Dies*c.Threads), 1)
	case c.Cores == 0:
		c.Cores = max(maxc/(c.Sockets*c.Dies*c.Threads), 1)
	case c.Sockets == 0:
		c.Sockets = max(maxc/(c.Cores*c.Dies*c.Threads), 1)
	}
}
