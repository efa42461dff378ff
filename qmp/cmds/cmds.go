package cmds

import (
	"io"
	"net"
	"tlcvm/machine/memtree"

	"tlcvm/blockdev"
	"tlcvm/compat"
	"tlcvm/console"
	"tlcvm/dirtyrate"
	"tlcvm/dump"
	"tlcvm/input"
	"tlcvm/machine"
	"tlcvm/machine/catalog"
	"tlcvm/netdev"
	"tlcvm/objects"
	"tlcvm/qdev"
	"tlcvm/qmp"
	"tlcvm/trace"
)

// Machine is what the handlers need of the VM.
type Machine interface {
	Status() (machine.RunState, bool)
	Stop() error
	Cont() error
	Reset(reason string)
	Powerdown()
	Quit()
	CPUs() []machine.CPUInfo
	Registers(cpu int) string
	ReadPhys(addr uint64, p []byte) error
	ReadVirt(cpu int, addr uint64, p []byte) error
	RAMSize() uint64
}

// Human runs one HMP command line for human-monitor-command. exec runs QMP commands inline
// on the caller's goroutine (the dispatcher's), so HMP commands never wait on themselves.
type Human interface {
	Run(exec func(name string, args any) ([]byte, error), line string) string
	RunOnCPU(exec func(name string, args any) ([]byte, error), cpu int, line string) string
}

// Deps is everything the handlers reach. Fields are set once by the composition root
// before Register and never change afterwards.
type Deps struct {
	Machine     Machine
	Chardevs    func() []ChardevInfo // in creation order; query-chardev lists them newest first
	Human       Human                // nil: human-monitor-command is not registered
	Name        string               // -name guest=; "" when not given
	UUID        string               // -uuid; "" when not given
	Version     qmp.VersionInfo
	QOM         func() *Tree // built on first use: start-up does no work for QOM
	MachineType string       // resolved name, e.g. "pc-i440fx-7.2"
	CPUModel    string       // e.g. "qemu64"
	Devices     *qdev.Tree   // the device tree (-device, device_add); nil: no device commands
	// MemoryTree builds the board's memory regions as they are now (info mtree); nil: none.
	MemoryTree func() *memtree.Tree
	// RAMBlocks lists the RAM blocks as x-query-ramblock shows them; nil: not registered.
	RAMBlocks func() []memtree.RAMBlock
	Net       *netdev.Net       // the net clients; nil: no network commands
	Objects   *objects.Registry // the user-creatable objects; nil: no object commands
	// ChardevHotplug serves chardev-add/-change/-remove/-send-break; nil: not registered.
	ChardevHotplug ChardevHotplug
	// MemoryDevices is the board's memory hotplug block (pc-dimm); nil: no memory device
	// commands, plugged-memory 0.
	MemoryDevices MemoryDevices
	// NUMA gives each -numa node's memory (its memdev's size), by node id; nil or empty
	// without NUMA.
	NUMA      func() []uint64
	Balloon   bool                // a virtio-balloon device exists (-device)
	ACPI      bool                // the board has ACPI (not -machine acpi=off, -no-acpi)
	KVM       bool                // the accelerator chosen is KVM (query-kvm "enabled")
	Migration MigrationEngine     // nil: the migration commands are not registered
	Block     BlockLayer          // nil: the block commands are not registered
	VNC       func() []VNCDisplay // the -vnc displays; nil: none
	// VNCUpdate makes the first VNC display listen on what open returns instead of where it
	// listens (display-update; open nil: it only looks the display up); found is false
	// without a VNC display. nil: none.
	VNCUpdate func(open func() ([]net.Listener, error)) (found bool, err error)
	// VNCAddClient serves a connected client on the first -vnc display (add_client);
	// false when there is none listening. nil: no display.
	VNCAddClient func(net.Conn) bool
	// VNCPassword is vnc_display_password (pw set) and vnc_display_pw_expire (expires set,
	// Unix seconds) on the display called id (nil: the first); false when there is no such
	// display or, for a password, it has no password authentication. nil: no display.
	VNCPassword func(id *string, pw *string, expires *int64) bool
	DirtyRate   *dirtyrate.Meter   // calc-dirty-rate; nil (with DirtyLimit): not registered
	DirtyLimit  *dirtyrate.Limiter // the vCPU dirty limits
	Dumper      *dump.Dumper       // nil: the dump commands are not registered
	DumpVM      dump.VM            // what Dumper dumps
	Console     *console.Console   // the display's console; nil without a display device
	Input       *input.Router      // nil: send-key and input-send-event are not registered
	Stdout      io.Writer          // the process's standard output (HMP qemu-io prints there); nil: discarded
	NBD         NBDServer          // the NBD server; nil (or Block nil): the NBD commands are not registered
	Display     compat.Display     // -display (-nographic), for query-display-options
	Trace       *trace.Events      // the trace events' states; nil: a table of its own
}

// ErrorClasses is the one table of the sentinel errors, of the packages these handlers call,
// that QMP reports with a class of their own; every other error is a GenericError with QEMU's
// text. The composition root hands it to the registry (Registry.SetErrorClasses), and so do
// tests that build a server without it. A mistake in the table panics here, at start-up.
func ErrorClasses() *qmp.ErrorClasses {
	return qmp.NewErrorClasses(
		// a block device id that does not exist: "Device 'x' not found".
		qmp.ErrorClass{Sentinel: blockdev.ErrDeviceNotFound, Class: qmp.ClassDeviceNotFound},
		// the block-job-* commands' "Block job 'x' not found".
		qmp.ErrorClass{Sentinel: blockdev.ErrJobNotActive, Class: qmp.ClassDeviceNotActive},
		// device-list-properties of an unknown type (qom-list-properties turns it into a
		// GenericError itself, as QEMU does).
		qmp.ErrorClass{Sentinel: catalog.ErrNotFound, Class: qmp.ClassDeviceNotFound},
		// device_del of an id or path that names no device.
		qmp.ErrorClass{Sentinel: qdev.ErrDeviceNotFound, Class: qmp.ClassDeviceNotFound},
		// netdev_del, set_link of a name that is no net client.
		qmp.ErrorClass{Sentinel: netdev.ErrNotFound, Class: qmp.ClassDeviceNotFound},
		// rng-egd naming a chardev that does not exist.
		qmp.ErrorClass{Sentinel: objects.ErrDeviceNotFound, Class: qmp.ClassDeviceNotFound},
	)
}

// Register adds every handler of this package to r.
func Register(r *qmp.Registry, d *Deps) {
	registerRun(r, d)
	registerInfo(r, d)
	registerCatalog(r, d)
	registerQOM(r, d)
	registerMemory(r, d)
	registerMisc(r, d)
	if p, ok := d.Machine.(Platform); ok {
		registerPlatform(r, d, p)
	}
	if a, ok := d.Machine.(Actor); ok {
		registerActions(r, a)
	}
	registerPCI(r, d)
	registerCmdline(r, d)
	registerMigration(r, d)
	registerMigrationSwitchover(r, d)
	registerBlock(r, d)
	registerJobs(r, d)
	registerBlockJobs(r, d)
	registerChangeBackingFile(r, d)
	registerMedia(r, d)
	registerBlockIO(r, d)
	registerBlockGraph(r, d)
	registerBlockLatency(r, d)
	registerBitmaps(r, d)
	registerReopen(r, d)
	registerNBD(r, d)
	registerDevices(r, d)
	registerNet(r, d)
	registerChardev(r, d)
	registerObjects(r, d)
	registerMemoryDevices(r, d)
	registerVNC(r, d)
	registerDisplay(r, d)
	registerAddClient(r, d)
	registerDirtyRate(r, d)
	registerStats(r)
	registerDump(r, d)
	registerScreen(r, d)
	registerInput(r, d)
	registerDisplayInfo(r, d)
	registerYank(r, d)
	registerVMGenID(r, d)
	registerGva(r, d)
	registerGpa(r, d)
	registerTrace(r, d)
	registerAnnounce(r, d)
	registerUserNet(r, d)
	registerQtree(r, d)
	registerQdm(r)
	registerMtree(r, d)
	registerQOMTree(r, d)
	registerRAMBlock(r, d)
	registerUSB(r, d)
	registerHostFwd(r, d)
	registerNUMA(r, d)
	registerSnapshotSync(r, d)
	registerDriveDel(r, d)
	registerDriveAdd(r, d)
	r.Register(internalCommands(d)...)
	r.Register(snapshotCommands(d)...)
	r.Register(internalSnapshotCommands(d)...)
	if d.Human != nil {
		registerHuman(r, d)
	}
}
