package main

import (
	"encoding/hex"
	"errors"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"tlcvm/blockdev"
	"tlcvm/compat"
	"tlcvm/compat/optval"
	"tlcvm/hmp"
	"tlcvm/machine"
	"tlcvm/migration"
	"tlcvm/migration/transport"
	"tlcvm/qmp"
	"tlcvm/qmp/cmds"
)

// machineAdapter presents *machine.Machine as the migration engine's Machine, with the
// block layer's tray sections after the machine's own, then the sections of the devices
// outside package machine (nicstate.go).
type machineAdapter struct {
	m       *machine.Machine
	block   *blockdev.Graph
	devices func() []migration.Section
}

var _ migration.Machine = machineAdapter{}

func (a machineAdapter) MachineType() string { return a.m.Config().Type }

func (a machineAdapter) RAMBlocks() []migration.RAMBlock {
	var out []migration.RAMBlock
	for _, b := range a.m.RAMBlocks() {
		out = append(out, ramAdapter{b})
	}
	return out
}

// ramAdapter presents *machine.RAMBlock as the engine's RAMBlock and MappableRAM.
type ramAdapter struct{ *machine.RAMBlock }

var _ migration.MappableRAM = ramAdapter{}

func (r ramAdapter) MapFile(fd int, off int64, present []uint64, check func(first uint64, mem []byte) error) error {
	return r.RAMBlock.MapFile(fd, off, present, machine.MapCheck(check))
}

// Guard is the machine's first-touch hook for the migration engine: x-tlc's copy before
// the guest changes a page, and a postcopy destination's fetch from its source, whose
// "not arrived yet" (migration.ErrRetry) is the machine's retry.
func (r ramAdapter) Guard(pages []uint64, fn func(first uint64, mem []byte) error) error {
	return r.RAMBlock.Guard(pages, func(first uint64, mem []byte) error {
		err := fn(first, mem)
		if errors.Is(err, migration.ErrRetry) {
			return machine.ErrRAMRetry
		}
		return err
	})
}

var _ migration.Guarder = ramAdapter{}

// StartPopulate starts the background populate of RAM restored by mapping.
func (a machineAdapter) StartPopulate() { a.m.StartPopulate() }

func (a machineAdapter) Sections() []migration.Section {
	var out []migration.Section
	for _, s := range a.m.Snapshotters() {
		out = append(out, s)
	}
	if a.block != nil {
		for _, s := range a.block.TraySections() {
			out = append(out, s)
		}
	}
	if a.devices != nil {
		out = append(out, a.devices()...)
	}
	return out
}

func (a machineAdapter) RunState() string {
	s, _ := a.m.Status()
	return s.String()
}

func (a machineAdapter) EnterFinishMigrate() (bool, error) { return a.m.EnterFinishMigrate() }
func (a machineAdapter) ReturnFromFinishMigrate() error    { return a.m.ReturnFromFinishMigrate() }
func (a machineAdapter) LeaveFinishMigrate(resume bool) error {
	return a.m.LeaveFinishMigrate(resume)
}

func (a machineAdapter) IncomingDone(src string, run bool) error {
	if !run {
		_ = a.m.Stop() // in inmigrate: autostart off, the guest stays paused
	}
	if src == "" {
		return a.m.IncomingDone(machine.StateRunning, false)
	}
	s, ok := machine.ParseRunState(src)
	return a.m.IncomingDone(s, ok)
}

func (a machineAdapter) Autostart() bool { return a.m.Autostart() }

// SetCPUThrottle and CPUThrottle make the machine auto-converge's Throttler.
func (a machineAdapter) SetCPUThrottle(pct int) { a.m.SetCPUThrottle(pct) }
func (a machineAdapter) CPUThrottle() int       { return a.m.CPUThrottle() }

func (a machineAdapter) VCPUThreads() []int {
	var out []int
	for _, c := range a.m.CPUs() {
		if c.Plugged && c.ThreadID > 0 {
			out = append(out, c.ThreadID)
		}
	}
	return out
}

// newMigration builds the migration engine, applies -global migration.* and registers
// the HMP commands. exit ends the process after a failed incoming migration.
func (v *vm) newMigration(ev migration.Events, exit func(int)) (*migration.Engine, error) {
	cfg := v.plan.cfg
	o := migration.Options{Machine: machineAdapter{v.machine, v.block, v.nicSections}, Events: ev, Log: v.log,
		Stderr: v.stderr, Prog: cfg.Prog, Exit: exit, Open: v.openPath, Disks: blockDisks{v.block},
		UUID: uuidBytes(cfg.UUID)}
	if v.block != nil {
		o.Bitmaps = &bitmapMigration{g: v.block, stderr: v.stderr, prog: cfg.Prog}
	}
	e := migration.New(o)
	for _, g := range cfg.Globals {
		if g.Driver != "migration" {
			continue
		}
		capName, ok := strings.CutPrefix(g.Property, "x-")
		if !ok {
			continue
		}
		if capName != "tlc" && capName != "events" {
			continue
		}
		on, err := optval.ParseBool(nil, g.Property, g.Value)
		if err != nil {
			return nil, failAt(cfg, g.Loc, err)
		}
		c := migration.CapEvents
		if capName == "tlc" {
			c = migration.CapTLC
		}
		if err := e.SetCapabilities([]migration.CapabilityStatus{{Capability: c, State: on}}); err != nil {
			return nil, failf(cfg, g.Loc, "%v", err)
		}
	}
	return e, nil
}

// uuidBytes is -uuid as the 16 bytes multifd channels carry (zero when none).
func uuidBytes(s string) [16]byte {
	var u [16]byte
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err == nil && len(b) == 16 {
		copy(u[:], b)
	}
	return u
}

// openPath is qemu_open for migration's file: paths: "/dev/fdset/N" through the QMP server's
// fd sets (add-fd). Before the server exists (-incoming on the command line; tlcvm has no
// -add-fd) there is no set, and the path is opened as it is.
func (v *vm) openPath(path string, flag int, perm uint32) (int, error) {
	if v.server != nil {
		return v.server.FDSets().Open(path, flag, perm)
	}
	return unix.Open(path, flag|unix.O_CLOEXEC, perm)
}

// startIncoming handles -incoming: "defer" waits for migrate-incoming; a URI is listened
// on now, before the monitors greet, and loaded in the background.
func (v *vm) startIncoming() error {
	cfg := v.plan.cfg
	switch cfg.Incoming {
	case "":
		return nil
	case "defer":
		v.migration.SetDefer()
		return nil
	}
	if err := v.migration.StartIncoming(cfg.Incoming, migration.IncomingOptions{}); err != nil {
		return failf(cfg, "-incoming "+cfg.Incoming, "%v", err)
	}
	return nil
}

// registerMigrationHMP adds the migration commands to every HMP monitor.
func registerMigrationHMP(mons ...*hmp.Monitor) {
	for _, m := range mons {
		if m != nil {
			hmp.RegisterMigration(m)
		}
	}
}

// checkIncomingURI refuses an -incoming URI of no known protocol, as QEMU does before it
// starts.
func checkIncomingURI(cfg *compat.Config) error {
	uri := cfg.Incoming
	if uri == "" || uri == "defer" {
		return nil
	}
	if err := transport.Validate(uri); err != nil {
		return failf(cfg, "-incoming "+uri, "%v", err)
	}
	return nil
}

// exitAfterFailedLoad is QEMU's exit(EXIT_FAILURE) after "load of migration failed".
func (v *vm) exitAfterFailedLoad(status int) {
	if v.machine != nil {
		v.machine.Close()
	}
	v.pidfile.Remove()
	os.Exit(status)
}

// wireMigration builds the engine, gives it to the QMP handlers (deps) and the HMP
// monitor behind human-monitor-command, declares its events, and starts -incoming.
func (v *vm) wireMigration(reg *qmp.Registry, deps *cmds.Deps, ev migration.Events) error {
	e, err := v.newMigration(ev, v.exitAfterFailedLoad)
	if err != nil {
		return err
	}
	v.migration = e
	deps.Migration = e
	cmds.RegisterMigrationEvents(reg)
	registerMigrationHMP(v.human)
	return v.startIncoming()
}
