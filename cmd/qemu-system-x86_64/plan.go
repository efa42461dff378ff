package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"tlcvm/compat"
	"tlcvm/compat/qerror"
	"tlcvm/machine"
	"tlcvm/machine/catalog"
)

// plan is a checked command line turned into what build needs; making it has no side effect,
// so that -daemonize's launcher can report command-line errors before it re-executes.
type plan struct {
	cfg     *compat.Config
	machine catalog.Machine
	mcfg    machine.Config // Serial, Log and Events are filled by build
	// numaWarnings are machine_numa_finish_cpu_init's, printed when the machine is made.
	numaWarnings []string
	// serialChardev is the chardev id of serial port 0 ("" when none).
	serialChardev string
	// kvm: the accelerator chosen is KVM (see chooseAccel); warnings go to stderr at start.
	kvm      bool
	warnings []string
	// nicHelp: a -nic or -net nic asked for model=help (QEMU lists the NIC models, exits 0).
	nicHelp bool
	// dirtyRing: dirty ring entries per vCPU (dirtyRingSize); 0: none.
	dirtyRing uint64
}

// machineLimits gives compat the machine class facts it checks the command line against.
func machineLimits(m catalog.Machine) compat.MachineLimits {
	if m.Name == "none" {
		return compat.NoneLimits()
	}
	return compat.PCLimits(m.Name)
}

// supported reports whether tlcvm models the machine type: the PC machines (i440FX and Q35,
// every versioned name) and none. isapc, microvm and the Xen machines are refused.
func supported(m catalog.Machine) bool {
	return m.Name == "none" || strings.HasPrefix(m.Name, "pc-i440fx-") || strings.HasPrefix(m.Name, "pc-q35-")
}

func prepare(cfg *compat.Config) (*plan, error) {
	mt := catalog.DefaultMachine()
	if cfg.Machine.Type != "" {
		m, ok := catalog.LookupMachine(cfg.Machine.Type)
		if !ok {
			return nil, failf(cfg, "", "unsupported machine type\nUse -machine help to list supported machines")
		}
		mt = m
	}
	if !supported(mt) {
		return nil, failf(cfg, "", "machine type '%s' is not supported by tlcvm (pc, q35 and none are)", mt.Name)
	}
	limits := machineLimits(mt)
	if err := cfg.ApplyDefaults(limits); err != nil {
		return nil, err
	}
	if err := cfg.Check(limits); err != nil {
		return nil, err
	}
	p := &plan{cfg: cfg, machine: mt}
	if cfg.Action == compat.ActionInfo {
		return p, nil // a listing asked for (-chardev help): the caller prints it and exits
	}

	model := cfg.CPU.Model
	if model == "" {
		model = strings.TrimSuffix(mt.DefaultCPUType, "-x86_64-cpu")
	}
	if model == "" {
		model = "qemu64"
	}
	if _, ok := catalog.LookupCPU(model); !ok {
		return nil, failf(cfg, "", "unable to find CPU model '%s'", model)
	}
	if cfg.Daemonize {
		for _, o := range cfg.Chardevs {
			if b, _ := o.Get("backend"); b == "stdio" {
				return nil, failf(cfg, o.Loc, "cannot use stdio with -daemonize")
			}
		}
	}
	accel, warnings, err := chooseAccel(cfg)
	if err != nil {
		return nil, err
	}
	kvm := accel == "kvm"
	p.kvm, p.warnings = kvm, warnings
	if mt.Name == "none" && cfg.CPU.Model != "" {
		// machine_none_init creates the -cpu asked for, with no APIC ID assigned: its realize
		// fails first.
		return nil, failf(cfg, "", "apic-id property was not initialized properly")
	}
	if model == "host" && !kvm {
		// x86_cpu_realizefn: the host model needs the host's CPUID, which TCG has not.
		return nil, failf(cfg, "", "CPU model 'host' requires KVM or HVF")
	}
	if mt.Name != "none" { // the PC boards' fw_cfg, made after their CPUs
		if err := checkFwCfgBoot(cfg); err != nil {
			return nil, err
		}
	}
	if p.dirtyRing, err = dirtyRingSize(cfg, kvm); err != nil {
		return nil, err
	}
	if err := checkMachineProps(cfg, mt); err != nil {
		return nil, err
	}
	if err := checkIncomingURI(cfg); err != nil {
		return nil, err
	}
	if err := checkDevices(cfg, mt); err != nil {
		return nil, err
	}
	// qdev_prop_check_globals, once the machine is made: a global naming no device type.
	for _, g := range cfg.Globals {
		if !catalog.IsA(g.Driver, "device") {
			p.warnings = append(p.warnings, fmt.Sprintf("%s: warning: global %s.%s has invalid class name", cfg.Prog, g.Driver, g.Property))
		}
	}
	fw, err := fwcfgEntries(cfg)
	if err != nil {
		return nil, err
	}
	ram := cfg.Memory.Size
	if ram == 0 {
		ram = limits.DefaultRAM
	}
	if mt.Name == "none" && cfg.Memory.Size == 0 {
		ram = 0
	}
	if mt.Name != "none" && ram < cfg.Memory.MaxMem { // pc_memory_init's device memory
		if cfg.Memory.Slots > maxRAMSlots {
			return nil, failf(cfg, "", "unsupported amount of memory slots: %d", cfg.Memory.Slots)
		}
		if cfg.Memory.MaxMem%machine.PageSize != 0 {
			return nil, failf(cfg, "", "maximum memory size must by aligned to multiple of %d bytes", machine.PageSize)
		}
	}
	t := cfg.Topology
	p.mcfg = machine.Config{
		Type:         mt.Name,
		RAMSize:      ram,
		MaxMem:       cfg.Memory.MaxMem,
		Slots:        int(cfg.Memory.Slots),
		CPUs:         int(t.CPUs),
		Sockets:      int(t.Sockets),
		Dies:         int(t.Dies),
		Cores:        int(t.Cores),
		Threads:      int(t.Threads),
		MaxCPUs:      int(t.MaxCPUs),
		CPUModel:     model,
		StartPaused:  cfg.Freeze,
		Actions:      actions(cfg),
		Incoming:     cfg.Incoming != "",
		FwCfg:        fw,
		Name:         cfg.Name.Guest,
		UUID:         cfg.UUID,
		DebugThreads: cfg.Name.DebugThreads,
		QTest:        accel == "qtest",
	}
	if mt.Name == "none" {
		p.mcfg.CPUs, p.mcfg.MaxCPUs = 0, 0
	} else {
		p.mcfg.Display = displayModel(cfg)
	}
	if p.mcfg.CPUNodes, p.numaWarnings, err = numaCPUNodes(cfg, p.mcfg); err != nil {
		return nil, err
	}
	p.serialChardev = serialChardev(cfg)
	for _, o := range append(slices.Clone(cfg.Nics), cfg.Nets...) {
		if m, _ := o.Get("model"); m == "help" || m == "?" {
			p.nicHelp = true
		}
	}
	return p, nil
}

// serialChardev finds the chardev behind serial port 0: the first -serial (converted by
// compat into chardev "serial0", or "chardev:ID"), else the first isa-serial device.
func serialChardev(cfg *compat.Config) string {
	for i, s := range cfg.Serials {
		switch {
		case s == "none":
			return ""
		case strings.HasPrefix(s, "chardev:"):
			return strings.TrimPrefix(s, "chardev:")
		default:
			return fmt.Sprintf("serial%d", i)
		}
	}
	for _, d := range cfg.Devices {
		if d.Driver != "isa-serial" {
			continue
		}
		if d.Opts != nil {
			if c, ok := d.Opts.Get("chardev"); ok {
				return c
			}
		}
		if d.JSON != nil {
			if c, ok := d.JSON.String("chardev"); ok {
				return c
			}
		}
	}
	return ""
}

// checkDevices refuses device models QEMU does not know or will not create, with QEMU's texts,
// and turns aliases into type names; the device tree checks the rest when it builds them.
func checkDevices(cfg *compat.Config, mt catalog.Machine) error {
	for i := range cfg.Devices {
		d := &cfg.Devices[i]
		class, err := catalog.DeviceClass(d.Driver, false)
		if err != nil {
			return failAt(cfg, d.Loc, err)
		}
		d.Driver = class.Name // an alias ("ahci") names its type from here on
	}
	return nil
}

func deviceProp(d compat.Device, key string) string {
	if d.Opts != nil {
		if v, ok := d.Opts.Get(key); ok {
			return v
		}
	}
	if d.JSON != nil {
		if v, ok := d.JSON.String(key); ok {
			return v
		}
	}
	return ""
}

// fwcfgEntries reads the -fw_cfg items (string= or file=) into the guest's fw_cfg table.
func fwcfgEntries(cfg *compat.Config) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, f := range cfg.FwCfg {
		switch {
		case f.File != "":
			b, err := os.ReadFile(f.File)
			if err != nil {
				return nil, failf(cfg, f.Loc, "can't load %s: Failed to open file “%s”: %s", f.File, f.File, qerror.Strerror(err))
			}
			out[f.Name] = b
		default:
			out[f.Name] = []byte(f.String)
		}
	}
	return out, nil
}

// checkMachineProps refuses -machine properties the machine type does not have.
func checkMachineProps(cfg *compat.Config, mt catalog.Machine) error {
	props, err := catalog.ObjectProperties(mt.TypeName())
	if err != nil {
		return nil
	}
	have := map[string]bool{}
	for _, p := range props {
		have[p.Name] = true
	}
	for _, kv := range cfg.Machine.Props {
		if kv.Name == "accel" || kv.Name == "type" || have[kv.Name] {
			continue
		}
		return failf(cfg, "", "Property '%s.%s' not found", mt.TypeName(), kv.Name)
	}
	return nil
}

// objectType is QAPI's ObjectType enum as the catalogue has it: the user-creatable types
// that are not abstract. The parser checks each -object's type with it (compat.Parser).
func objectType(name string) bool {
	t, ok := catalog.LookupType(name)
	return ok && !t.Abstract && catalog.Implements(name, "user-creatable")
}

// chooseAccel picks the accelerator as QEMU's configure_accelerators does: the first of the
// -accel options (or -machine accel=a:b, default tcg) that initialises. tlcvm's guest runs
// the same whichever is chosen; choosing KVM only requires /dev/kvm to open read-write, as
// QEMU's kvm_init does first, so that query-kvm reports what QEMU would on this host
// (libvirt trusts its capability cache only when that matches the host).
//
// The qtest accelerator (-accel qtest, -machine accel=qtest) runs no guest code: its vCPU
// threads sleep and the guest clock follows the qtest client (machine.Config.QTest).
func chooseAccel(cfg *compat.Config) (accel string, warnings []string, err error) {
	var names []string
	for _, o := range cfg.Accels {
		a, _ := o.Get("accel")
		names = append(names, a)
	}
	if v, ok := cfg.Machine.Prop("accel"); ok && len(names) == 0 {
		names = strings.Split(v, ":")
	}
	if len(names) == 0 {
		names = []string{"tcg"}
	}
	failed := false
	for _, a := range names {
		if a != "kvm" {
			if failed {
				warnings = append(warnings, fmt.Sprintf("%s: falling back to %s", cfg.Prog, a))
			}
			return a, warnings, nil
		}
		fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
			return a, warnings, nil
		}
		failed = true
		warnings = append(warnings, "Could not access KVM kernel module: "+qerror.Strerror(err),
			fmt.Sprintf("%s: failed to initialize kvm: %s", cfg.Prog, qerror.Strerror(err)))
	}
	return "", nil, failf(cfg, "", "%s\n%s: no accelerator found", strings.Join(warnings, "\n"), cfg.Prog)
}

// actions are the run-state actions of -action, -no-reboot, -no-shutdown and
// -watchdog-action, the last one given for each winning (QEMU applies them in order).
func actions(cfg *compat.Config) machine.Actions {
	var a machine.Actions
	for _, kv := range cfg.Actions {
		switch kv.Name {
		case "reboot":
			a.Reboot = kv.Value
		case "shutdown":
			a.Shutdown = kv.Value
		case "panic":
			a.Panic = kv.Value
		case "watchdog":
			a.Watchdog = kv.Value
		}
	}
	return a
}

// checkFwCfgBoot is what a board's fw_cfg device checks of -boot when it is made
// (fw_cfg_bootsplash, then fw_cfg_reboot): the splash time and the reboot timeout must fit
// the firmware's 16 bits (fatal), and a splash file that cannot be used is reported (to
// cfg.Warnings, printed even when a later check fails) and left out.
func checkFwCfgBoot(cfg *compat.Config) error {
	b := &cfg.Boot
	if t := b.SplashTime; t != nil && (*t < 0 || *t > 0xffff) {
		return failf(cfg, "", "splash-time is invalid,it should be a value between 0 and 65535")
	}
	if b.Splash != "" {
		if msg := splashProblem(b.Splash); msg != "" {
			cfg.Warnings = append(cfg.Warnings, cfg.Prog+": "+msg)
		}
	}
	if t := b.RebootTimeout; t != nil && (*t < -1 || *t > 0xffff) {
		return failf(cfg, "", "reboot timeout is invalid,it should be a value between -1 and 65535")
	}
	return nil
}

// splashProblem is read_splashfile's verdict on a -boot splash= file ("" when the firmware
// could show it): qemu_find_file takes the name as given, then the file must hold at least
// the 30 bytes of a BMP's headers and start like a JPEG or a 24-bit BMP (QEMU 7.2's
// checks, found by trying its binary).
func splashProblem(name string) string {
	if unix.Access(name, unix.R_OK) != nil {
		return fmt.Sprintf("failed to find file '%s'", name)
	}
	b, err := os.ReadFile(name)
	switch {
	case err != nil:
		return fmt.Sprintf("failed to read splash file '%s'", name)
	case len(b) < 30:
	case b[0] == 0xff && b[1] == 0xd8: // JPEG
		return ""
	case b[0] == 'B' && b[1] == 'M' && b[28] == 24 && b[29] == 0: // 24-bit BMP
		return ""
	}
	return fmt.Sprintf("splash file '%s' format not recognized; must be JPEG or 24 bit BMP", name)
}
