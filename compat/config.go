package compat

// Action is what the command line asks the process to do.
type Action int

// Actions.
const (
	// ActionRun builds and runs the machine.
	ActionRun Action = iota
	// ActionVersion prints VersionText and exits 0.
	ActionVersion
	// ActionHelp prints HelpText and exits 0.
	ActionHelp
	// ActionInfo prints the catalogue listing named by Config.Info, exit 0 (or Info.Status).
	ActionInfo
)

func (a Action) String() string {
	switch a {
	case ActionRun:
		return "run"
	case ActionVersion:
		return "version"
	case ActionHelp:
		return "help"
	case ActionInfo:
		return "info"
	}
	return "unknown"
}

// Info is a listing request such as -machine help or -device virtio-blk-pci,help.
type Info struct {
	// Topic is the option asking: "machine", "cpu", "device", "accel",
	// "display", "chardev", "vga", "object", "audiodev", "netdev", "d"
	// (log items), "audio-help", "global", "blockdev", "drive", "nic", "net".
	Topic string
	// Arg names the item whose properties are wanted ("virtio-blk-pci" for
	// -device virtio-blk-pci,help; "" for the plain list).
	Arg string
	// Loc is the option as written, e.g. "-device help".
	Loc string
	// Text, when set, is the listing itself: an option group's own help
	// (qemu_opts_print_help), which "help" among an option's keys asks for.
	Text string
	// Status is the exit status after Text: QEMU exits 1 after the help of a
	// QemuOpts parse (the parse "failed"), 0 after a keyval parse's (-smp, -boot).
	Status int
}

// Machine is -machine/-M plus the legacy switches that QEMU folds into the
// machine options (-enable-kvm, -usb, -no-hpet, -no-acpi, -nographic).
type Machine struct {
	// Type is the machine type name ("" = the default machine).
	Type string
	// Props are the other keys (accel, usb, dump-guest-core,
	// memory-backend, kernel_irqchip, ...) in first-written order.
	Props []Opt
}

// Prop returns a machine property.
func (m *Machine) Prop(key string) (string, bool) {
	for i := len(m.Props) - 1; i >= 0; i-- {
		if m.Props[i].Name == key {
			return m.Props[i].Value, true
		}
	}
	return "", false
}

func (m *Machine) set(key, value string) {
	for i := range m.Props {
		if m.Props[i].Name == key {
			m.Props[i].Value = value
			return
		}
	}
	m.Props = append(m.Props, Opt{key, value})
}

// Memory is -m. Sizes are bytes. A suffix-less size means MiB.
type Memory struct {
	// Size is the initial RAM size; 0 means the machine's default.
	Size uint64
	// Slots is the number of hotplug slots (0 = none given).
	Slots uint64
	// MaxMem is maxmem= (0 = not given, then equal to Size).
	MaxMem    uint64
	HasSlots  bool
	HasMaxMem bool
	// sizeStr is size= as written, converted by Check.
	sizeStr string
	// Opts is the merged QemuOpts group (nil without -m).
	Opts *Opts
}

// SMP is -smp as written (0 = not given); Resolve computes the topology.
type SMP struct {
	CPUs, Sockets, Dies, Clusters, Cores, Threads, MaxCPUs int64
	// Given reports whether -smp appeared at all.
	Given bool
	// Opts is the merged smp-opts group.
	Opts *Opts
}

// Topology is the CPU topology QEMU computes from -smp (Config.Check).
type Topology struct {
	CPUs, Sockets, Dies, Clusters, Cores, Threads, MaxCPUs uint32
}

// Name is -name.
type Name struct {
	Guest        string
	Process      string
	DebugThreads bool
	Given        bool
}

// CPU is -cpu model[,feature...].
type CPU struct {
	Model string
	// Features are the remaining comma items in order: "+x", "-x",
	// "x=on", "x" (raw strings, commas unescaped).
	Features []string
}

// Monitor is one monitor: -mon, -monitor, -qmp, -qmp-pretty or a default.
type Monitor struct {
	ID      string
	Chardev string
	// Mode is "readline" (HMP) or "control" (QMP).
	Mode   string
	Pretty bool
	Loc    string
}

// Device is one -device: Opts for the key=value form, JSON for {...}.
type Device struct {
	Driver string
	ID     string
	Opts   *Opts
	JSON   *JSON
	Loc    string
}

// Blockdev is one -blockdev (keyval or JSON form).
type Blockdev struct {
	Driver   string
	NodeName string
	Keyval   *Keyval
	JSON     *JSON
	Loc      string
}

// Netdev is one -netdev (QemuOpts or JSON form).
type Netdev struct {
	Type string
	ID   string
	Opts *Opts
	JSON *JSON
	Loc  string
}

// Object is one -object (keyval or JSON form).
type Object struct {
	QomType string
	ID      string
	Keyval  *Keyval
	JSON    *JSON
	Loc     string
}

// Audiodev is one -audiodev.
type Audiodev struct {
	Driver string
	ID     string
	Keyval *Keyval
	JSON   *JSON
	Loc    string
}

// Global is one -global driver.prop=value.
type Global struct {
	Driver, Property, Value string
	Loc                     string
}

// RTC is -rtc (and -localtime).
type RTC struct {
	// Base is "utc", "localtime" or a date "2006-06-17T16:01:21"/"2006-06-17".
	Base     string
	Clock    string // host, rt, vm ("" = host)
	DriftFix string // none, slew ("" = none)
	Opts     *Opts
}

// Boot is -boot.
type Boot struct {
	Order, Once   string
	Menu, Strict  *bool
	Splash        string
	SplashTime    *int64
	RebootTimeout *int64
	Given         bool
	Opts          *Opts
}

// FwCfg is one -fw_cfg.
type FwCfg struct {
	Name, File, String, GenID string
	Loc                       string
}

// Display is -display / -nographic / -vnc.
type Display struct {
	// Type is the display type ("none", "gtk", "vnc", ...; "" = default).
	Type string
	Opts *Keyval
	JSON *JSON
	// Members are the DisplayOptions given, in QAPI member order (type first, then the base's
	// members, then the type's own), as query-display-options reports them.
	Members []DisplayMember
}

// DisplayMember is one member of DisplayOptions: a string (or enum) value, or a boolean.
type DisplayMember struct {
	Key    string
	Value  string // the string or enum value
	IsBool bool
	Bool   bool
}

// Config is the parsed command line. Slices keep command-line order.
type Config struct {
	// Prog is the program name QEMU uses in messages: argv[0]'s basename.
	Prog   string
	Action Action
	Info   *Info

	Machine    Machine
	Accels     []*Opts
	Memory     Memory
	SMP        SMP
	Topology   Topology // filled by Check
	Name       Name
	UUID       string
	CPU        CPU
	Display    Display
	VGA        string
	VNC        []string
	Nographic  bool
	Freeze     bool // -S
	NoShutdown bool
	NoReboot   bool
	Daemonize  bool
	Preconfig  bool
	NoDefaults bool
	// DefaultNet: ApplyDefaults added the default "-net nic -net user" (vl.c default_net),
	// so net_check_clients warns about nothing.
	DefaultNet  bool
	NoUserCfg   bool
	Snapshot    bool
	PidFile     string
	Incoming    string
	Kernel      string
	Initrd      string
	Append      string
	BIOS        string
	DataDirs    []string // -L
	LogFile     string   // -D
	LogItems    string   // -d
	Keyboard    string   // -k
	USB         bool
	USBDevices  []string
	LoadVM      string
	OnlyMigrate bool

	Chardevs   []*Opts
	Monitors   []Monitor
	Serials    []string // -serial arguments as written
	Parallels  []string
	Devices    []Device
	Drives     []*Opts
	Blockdevs  []Blockdev
	Netdevs    []Netdev
	Nets       []*Opts
	Nics       []*Opts
	Objects    []Object
	Globals    []Global
	Audiodevs  []Audiodev
	FwCfg      []FwCfg
	RTC        RTC
	Boot       Boot
	Actions    []Opt     // -action and its sugar (-no-reboot, -no-shutdown, -watchdog-action)
	Sandboxes  []Sandbox // -sandbox options in order (see Sandbox)
	RunAs      *RunAs    // the last -runas; nil without one
	Chroot     string    // the last -chroot; "" without one
	Msg        *Opts
	Overcommit *Opts
	// QTest is the last -qtest argument ("" without one): a legacy chardev string, turned
	// into chardev "qtest" by Check, or "chardev:ID". QTestLog is -qtest-log's file
	// ("none": no log), HasQTestLog whether it was given (QEMU logs to stderr without).
	QTest       string
	QTestLog    string
	HasQTestLog bool
	Trace       []*Opts
	Compat      *Keyval
	CompatObj   *JSON

	// Args lists every option in order with its argument, as parsed.
	Args []Arg
	// Warnings are lines QEMU would print to stderr while parsing a valid
	// command line (deprecations), complete with program prefix.
	Warnings []string

	// state used while parsing
	defaults defaultsState
	ids      map[string]map[string]bool
}

// Arg is one parsed option occurrence.
type Arg struct {
	Name  string // option name without dashes
	Value string // argument ("" for flags)
	Loc   string // as QEMU quotes it: "-m 512" or "--version"
}

// defaultsState tracks QEMU's default_* switches (softmmu/vl.c).
type defaultsState struct {
	noSerial, noParallel, noMonitor, noNet, noVGA, noFloppy, noCdrom bool
	monitorIndex                                                     int
}
