package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"tlcvm/blockdev"
	"tlcvm/chardev"
	"tlcvm/compat"
	"tlcvm/console"
	"tlcvm/dirtyrate"
	"tlcvm/hmp"
	"tlcvm/input"
	"tlcvm/internal/daemon"
	"tlcvm/internal/sigpid"
	"tlcvm/machine"
	"tlcvm/machine/catalog"
	"tlcvm/migration"
	"tlcvm/nbd"
	"tlcvm/netdev"
	"tlcvm/objects"
	"tlcvm/qdev"
	"tlcvm/qmp"
	"tlcvm/qmp/cmds"
)

// vm is a built, not yet running, process: every chardev open, every monitor ready to serve.
type vm struct {
	plan      *plan
	log       zerolog.Logger
	stderr    io.Writer
	chardevs  *chardev.Registry
	machine   *machine.Machine
	server    *qmp.Server
	openQMP   func() // lets QMP commands run (see build)
	human     *hmp.Monitor
	pidfile   *daemon.Pidfile
	signals   <-chan sigpid.Signal
	serves    []func() // monitor loops, started by run
	migration *migration.Engine
	block     *blockdev.Graph
	nbd       *nbd.Server // its exports hold block nodes: closed before the graph
	devices   *qdev.Tree
	net       *netdev.Net
	chardevHP *chardevHotplug
	objects   *objects.Registry
	numaNodes int         // -numa nodes (numa.go)
	numaMem   []uint64    // each node's memory (its memdev's size), by node id
	nics      []ndEntry   // the board's NIC table (-nic, -net nic: netlegacy.go)
	memHP     *memHotplug // the board's memory hotplug block (dimms.go)
	vnc       []vncDisplay
	vncMu     sync.Mutex        // guards the servers of vnc once the monitors run (display-update)
	console   *console.Console  // the display device's; nil without one
	input     *input.Router     // send-key, input-send-event and VNC keys → the PS/2 devices
	qom       func() *cmds.Tree // the QOM tree, built on first use
	qtestLog  *os.File          // -qtest-log's file; nil: none or stderr
}

// events forwards machine events to the QMP server once it exists (the machine is built
// first, since the command handlers need it).
type events struct{ s atomic.Pointer[qmp.Server] }

func (e *events) Emit(name string, data any) {
	if s := e.s.Load(); s != nil {
		s.Emit(name, data)
	}
}

func build(p *plan, stdout, stderr io.Writer) (_ *vm, err error) {
	cfg := p.cfg
	v := &vm{plan: p, log: logger(cfg), stderr: stderr, chardevs: chardev.NewRegistry()}
	defer func() {
		if err != nil {
			v.close()
		}
	}()

	// Signals first, so that a SIGTERM during start-up is reported as QEMU does.
	sigs, err := sigpid.Notify()
	if err != nil {
		return nil, failf(cfg, "", "%v", err)
	}
	v.signals = sigs

	copts := chardev.Options{Log: v.log, Stderr: stderr, Stdout: stdout, Prog: cfg.Prog, DeferMuxOpen: true}
	for _, o := range cfg.Chardevs {
		spec, err := chardev.SpecFromKV(o.Get, o.ID)
		if err != nil {
			return nil, failAt(cfg, o.Loc, err)
		}
		for _, w := range spec.Warnings {
			fmt.Fprintf(stderr, "%s: %s: warning: %s\n", cfg.Prog, o.Loc, w)
		}
		if _, err := v.chardevs.Open(spec, copts); err != nil {
			if o.ID == "qtest" && o.Loc == "-qtest "+cfg.QTest {
				return nil, qtestChardevError(cfg, err)
			}
			return nil, failAt(cfg, o.Loc, err)
		}
	}

	phase("chardevs")
	// QMP monitors greet their clients from here on, as QEMU's monitor I/O thread does while
	// the main loop is being set up; their commands wait until run opens the server, once the
	// machine and the command table are complete.
	reg := qmp.NewRegistry()
	reg.SetErrorClasses(cmds.ErrorClasses())
	var built atomic.Pointer[machine.Machine] // for connections that close before it exists
	v.server, v.openQMP = qmp.NewHeldServer(reg, qmp.Options{
		Version: versionInfo(),
		Log:     v.log,
		Running: func() bool {
			m := built.Load()
			if m == nil {
				return false
			}
			_, r := m.Status()
			return r
		},
	})
	ev := &events{}
	ev.s.Store(v.server)
	if err := v.attachMonitors(true); err != nil {
		return nil, err
	}
	phase("qmp")
	mcfg := p.mcfg
	mcfg.Log = v.log
	mcfg.Events = ev
	mcfg.Stderr = stderr
	v.chardevHP = newChardevHotplug(v)
	mcfg.Disks = v.guestDisk // v.block is built before the machine starts
	mcfg.FlushDisks = func() {
		if v.block != nil {
			v.block.FlushAll()
		}
	}
	mcfg.Media = guestMedia{v}
	if p.serialChardev != "" {
		c, ok := v.chardevs.Get(p.serialChardev)
		if !ok {
			return nil, failf(cfg, "", "chardev %q not found", p.serialChardev)
		}
		fe, err := c.Attach()
		if err != nil {
			return nil, failf(cfg, "", "%v", err)
		}
		// The serial port follows chardev-change of its chardev.
		com1 := &feHandle{fe: fe, open: true}
		v.chardevHP.com1 = p.serialChardev
		v.chardevHP.register(p.serialChardev, com1)
		mcfg.Serial = com1
	}
	m, err := machine.New(mcfg)
	if err != nil {
		return nil, failf(cfg, "", "%v", err)
	}
	for _, w := range p.numaWarnings {
		fmt.Fprintf(stderr, "%s: warning: %s\n", cfg.Prog, w)
	}
	v.machine = m
	built.Store(m)
	phase("machine")
	if v.block, err = buildBlock(p, stderr, ev.Emit); err != nil {
		return nil, err
	}
	if err := v.buildObjects(); err != nil {
		return nil, err
	}
	if err := v.buildNet(ev.Emit); err != nil {
		return nil, err
	}
	if err := v.buildDevices(ev.Emit); err != nil {
		return nil, err
	}
	v.placeBoardDrives()
	phase("devices")
	if d := p.mcfg.Display; d != "" {
		v.console = console.New(d, displayID(cfg, d))
	}
	v.input = newInputRouter(m)
	if err := v.buildVNC(); err != nil {
		return nil, err
	}
	deps := &cmds.Deps{
		Machine:  contMachine{m, v.block},
		Chardevs: v.chardevList,
		Name:     cfg.Name.Guest,
		UUID:     cfg.UUID,
		Version:  versionInfo(),
		QOM: sync.OnceValue(func() *cmds.Tree {
			return buildQOM(p, m, v.chardevs, v.devices, v.objects)
		}),
		Block:          v.block,
		MachineType:    p.machine.Name,
		CPUModel:       p.mcfg.CPUModel,
		Devices:        v.devices,
		MemoryTree:     v.memoryTree,
		RAMBlocks:      v.ramBlocks,
		Net:            v.net,
		ChardevHotplug: v.chardevHP,
		Objects:        v.objects,
		MemoryDevices:  v.memHP,
		NUMA:           func() []uint64 { return v.numaMem },
		Balloon:        hasBalloon(cfg),
		ACPI:           hasACPI(cfg),
		KVM:            p.kvm,
		VNC:            v.vncInfo,
		VNCUpdate:      v.vncUpdate,
		VNCAddClient:   v.vncAddClient,
		VNCPassword:    v.vncPassword,
		DirtyRate:      dirtyrate.NewMeter(dirtyMachine{m}, p.dirtyRing),
		DirtyLimit:     dirtyrate.NewLimiter(dirtyMachine{m}, p.dirtyRing, m.Config().MaxCPUs),
		Console:        v.console,
		Input:          v.input,
		Stdout:         stdout,
		Display:        cfg.Display,
	}
	v.nbd = nbd.NewServer(nbd.Config{Log: v.log})
	deps.NBD = v.nbd
	v.human = hmp.New(nil, hmp.Options{Log: v.log, Version: compat.QEMUVersion})
	deps.Human = v.human
	if err := v.wireMigration(reg, deps, ev); err != nil {
		return nil, err
	}
	v.wireDump(reg, deps)
	cmds.Register(reg, deps)
	cmds.RegisterEvents(reg)
	v.warnPeerless(stderr) // qemu_machine_creation_done, before -loadvm
	if err := v.loadVM(deps); err != nil {
		return nil, err
	}
	v.qom = deps.QOM
	if err := v.wireQTest(); err != nil {
		return nil, err
	}
	phase("registry")

	if err := v.attachMonitors(false); err != nil {
		return nil, err
	}
	phase("monitors")
	if cfg.PidFile != "" {
		pf, err := daemon.WritePidfile(cfg.PidFile)
		if err != nil {
			return nil, failf(cfg, "", "cannot create PID file: %v", err)
		}
		v.pidfile = pf
	}
	// Everything the command line names is open (and -incoming's source): change root and
	// drop privileges, as QEMU's os_setup_post does before its main loop.
	if err := setupPost(cfg); err != nil {
		return nil, err
	}
	phase("hostguard")
	return v, nil
}

// attachMonitors puts a QMP or HMP monitor on each -mon/-qmp/-monitor chardev. With early, it
// attaches the QMP monitors of chardevs that are not multiplexed and starts serving them at
// once (the server holds their commands); without, it attaches the others, served by run.
func (v *vm) attachMonitors(early bool) error {
	cfg := v.plan.cfg
	for _, mon := range cfg.Monitors {
		c, ok := v.chardevs.Get(mon.Chardev)
		if !ok {
			return failf(cfg, mon.Loc, "chardev %q not found", mon.Chardev)
		}
		if early != (mon.Mode == "control" && !c.Spec().Mux) {
			continue
		}
		fe, err := c.Attach()
		if err != nil {
			return failf(cfg, mon.Loc, "%v", err)
		}
		pretty := mon.Pretty
		if mon.Mode == "control" {
			c.SetEcho(true)
			serve := func() {
				sess := v.server.NewSession()
				fe.Serve(func(conn chardev.Conn) { v.server.ServeSession(sess, conn, pretty) })
			}
			if early {
				serve()
			} else {
				v.serves = append(v.serves, serve)
			}
			continue
		}
		sess := v.server.NewSession()
		exec := hmp.ExecFunc(func(name string, args any) ([]byte, error) {
			raw, err := v.server.Execute(sess, name, args)
			return raw, err
		})
		mon := hmp.New(exec, hmp.Options{Log: v.log, Version: compat.QEMUVersion})
		hmp.RegisterMigration(mon)
		v.serves = append(v.serves, func() {
			fe.Serve(func(conn chardev.Conn) { mon.Serve(conn, true) })
		})
	}
	return nil
}

func (v *vm) chardevList() []cmds.ChardevInfo {
	var out []cmds.ChardevInfo
	for _, i := range v.chardevs.List() {
		out = append(out, cmds.ChardevInfo{Label: i.Label, Filename: i.Filename, FrontendOpen: i.FrontendOpen})
	}
	return out
}

// run starts the monitors and the machine and waits until the machine asks to exit.
func (v *vm) run() int {
	// The machine starts before any monitor command runs, as in QEMU, whose main loop (which
	// runs commands) starts only once the machine is up; sockets already listen.
	v.machine.Start()
	for _, serve := range v.serves {
		go serve()
	}
	v.chardevs.ResumeMuxOpen()
	v.migration.Ready()
	v.openQMP()
	for {
		select {
		case s := <-v.signals:
			fmt.Fprintf(v.stderr, "%s: %s\n", v.plan.cfg.Prog, sigpid.Report(s))
			v.machine.HostSignal()
		case <-v.machine.Done():
			v.close()
			return 0
		}
	}
}

func (v *vm) close() {
	if v.migration != nil {
		v.migration.Close()
	}
	if v.machine != nil {
		v.machine.Close()
	}
	if v.nbd != nil {
		v.nbd.Close()
	}
	if v.qtestLog != nil {
		_ = v.qtestLog.Close()
	}
	if v.block != nil {
		v.block.Close()
	}
	if v.net != nil {
		v.net.Close()
	}
	if v.objects != nil {
		v.objects.Close()
	}
	v.vncMu.Lock()
	for _, d := range v.vnc {
		if d.s != nil {
			_ = d.s.Close()
		}
	}
	v.vncMu.Unlock()
	if v.server != nil {
		v.server.Close()
	}
	v.chardevs.Close()
	v.pidfile.Remove()
}

// logger returns the process logger: silent unless TLCVM_LOG names a level (debug, info, …),
// then to stderr (or the -D file).
func logger(cfg *compat.Config) zerolog.Logger {
	lvl := os.Getenv("TLCVM_LOG")
	if lvl == "" {
		return zerolog.Nop()
	}
	l, err := zerolog.ParseLevel(lvl)
	if err != nil {
		l = zerolog.DebugLevel
	}
	var w io.Writer = os.Stderr
	if cfg.LogFile != "" {
		if f, err := os.OpenFile(cfg.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err == nil {
			w = f
		}
	}
	return zerolog.New(w).Level(l).With().Timestamp().Logger()
}

func versionInfo() qmp.VersionInfo {
	return qmp.VersionInfo{
		Qemu:    qmp.VersionTriple{Major: 7, Minor: 2, Micro: 22},
		Package: "tlcvm " + compat.PackageVersion,
	}
}

var t0 = time.Now()

func phase(name string) {
	if os.Getenv("TLCVM_STARTTRACE") != "" {
		fmt.Fprintf(os.Stderr, "%s %.3f ms\n", name, float64(time.Since(t0).Microseconds())/1000)
	}
}

// hasBalloon reports whether -device created a virtio-balloon device.
func hasBalloon(cfg *compat.Config) bool {
	for _, d := range cfg.Devices {
		if isBalloon(d.Driver) {
			return true
		}
	}
	return false
}

// isBalloon reports whether a -device driver is a virtio-balloon (PCI proxy or device).
func isBalloon(driver string) bool {
	return catalog.IsA(driver, "virtio-balloon-pci") || catalog.IsA(driver, "virtio-balloon-device") ||
		strings.HasPrefix(driver, "virtio-balloon-pci")
}

// hasACPI reports whether the board gets ACPI: the machine's "acpi" (OnOffAuto; -no-acpi
// sets it off) is not off.
func hasACPI(cfg *compat.Config) bool {
	v, ok := cfg.Machine.Prop("acpi")
	return !ok || v != "off"
}
