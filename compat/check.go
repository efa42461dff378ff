package compat

import (
	"fmt"
	"strconv"
	"strings"

	"tlcvm/compat/optval"
	"tlcvm/compat/qerror"
)

// MachineLimits is what Check needs to know of the selected machine type
// (compat has no machine catalogue; cmd/ fills this in from machine/).
type MachineLimits struct {
	// Name is the resolved machine type, e.g. "pc-i440fx-7.2".
	Name             string
	MinCPUs, MaxCPUs int
	// DiesSupported/ClustersSupported/PreferSockets: mc->smp_props.
	DiesSupported, ClustersSupported, PreferSockets bool
	// DefaultRAM is mc->default_ram_size in bytes.
	DefaultRAM uint64
	// NoSerial etc. are the machine class's no_* flags.
	NoSerial, NoParallel, NoFloppy, NoCdrom, NoSdcard bool
	// NoFwCfg: the machine has no fw_cfg device (-fw_cfg is refused).
	NoFwCfg bool
	// DefaultVGA is the machine's default display adapter ("std", "" = none).
	DefaultVGA string
}

// PCLimits are the limits of QEMU 7.2's pc-i440fx-7.2 and pc-q35-7.2
// (x86 supports dies, not clusters; max 255 resp. 288 CPUs).
func PCLimits(name string) MachineLimits {
	m := MachineLimits{Name: name, MinCPUs: 1, MaxCPUs: 255, DiesSupported: true, DefaultRAM: 128 << 20, DefaultVGA: "std"}
	if strings.Contains(name, "q35") {
		m.MaxCPUs = 288
		m.NoFloppy = true
	}
	return m
}

// NoneLimits are the limits of the "none" machine (max 1 CPU, no RAM
// default, no default devices of its own).
func NoneLimits() MachineLimits {
	return MachineLimits{Name: "none", MinCPUs: 1, MaxCPUs: 1, NoFwCfg: true, NoSerial: true, NoParallel: true, NoFloppy: true, NoCdrom: true, NoSdcard: true}
}

// Check runs the checks QEMU 7.2 makes once the machine type is known, in
// QEMU's order, and fills Topology, Memory.Size (default applied), the
// typed SMP/Boot fields and the chardevs of -serial/-parallel. Call it
// after Parse when Action is ActionRun. The returned error is a *qerror.Error.
// Check may set Action to ActionInfo (e.g. -chardev help, -vga help). The warnings it
// makes are added to Warnings, or lead the error's text when it fails.
func (c *Config) Check(m MachineLimits) error {
	s := &parseState{cfg: c, prog: c.Prog, limits: m}
	if c.ids == nil {
		c.ids = map[string]map[string]bool{}
	}
	if _, ok := c.Machine.Prop("accel"); ok && len(c.Accels) > 0 {
		return s.fail("", newErr(ErrInvalid, `The -accel and "-machine accel=" options are incompatible`))
	}
	if err := s.checkMachineProps(m); err != nil {
		return err
	}
	if err := s.checkRTC(); err != nil {
		return err
	}
	if c.VGA != "" {
		if c.VGA == "help" { // select_vgahw compares with "help" only; "?" is an unknown type
			c.Action, c.Info = ActionInfo, &Info{Topic: "vga", Loc: "-vga " + c.VGA}
			return nil
		}
		if !contains(vgaTypes, c.VGA) {
			return s.fail("", newErr(ErrBadValue, "unknown vga type: "+c.VGA))
		}
	}
	if c.Daemonize && c.Nographic && (!c.NoDefaults && (!c.defaults.noParallel || !c.defaults.noSerial || !c.defaults.noMonitor)) {
		return s.fail("", newErr(ErrInvalid, "-nographic cannot be used with -daemonize"))
	}
	for _, f := range c.FwCfg {
		if err := s.checkFwCfg(f); err != nil {
			return err
		}
	}
	for _, o := range c.Chardevs {
		b, _ := o.Get("backend")
		if isHelpOption(b) {
			c.Action, c.Info = ActionInfo, &Info{Topic: "chardev", Loc: o.Loc}
			return nil
		}
		if o.ID == "" {
			return s.fail(o.Loc, newErr(ErrMissingParameter, "chardev: no id specified"))
		}
		if !contains(chardevBackends, b) {
			return s.fail(o.Loc, newErr(ErrBadValue, "'"+b+"' is not a valid char driver name"))
		}
	}
	if err := s.checkAccels(); err != nil {
		return err
	}
	if err := s.resolveSMP(m); err != nil {
		return err
	}
	if err := s.checkMonitors(); err != nil {
		return err
	}
	if err := s.checkNet(); err != nil {
		return err
	}
	for _, d := range c.Drives {
		if v, ok := d.Get("if"); ok && !contains(driveIfs, v) {
			return s.fail(d.Loc, newErr(ErrBadValue, "unsupported bus type '"+v+"'"))
		}
	}
	c.Warnings = append(c.Warnings, s.warnings...)
	return nil
}

var (
	vgaTypes        = []string{"std", "cirrus", "vmware", "qxl", "xenfb", "tcx", "cg3", "virtio", "none"}
	chardevBackends = []string{"stdio", "ringbuf", "mux", "pipe", "qemu-vdagent", "null", "msmouse", "socket", "vc", "parallel", "parport", "udp", "memory", "file", "serial", "tty", "wctablet", "pty", "testdev", "braille", "spicevmc", "spiceport", "dbus", "console"}
	driveIfs        = []string{"none", "ide", "scsi", "floppy", "pflash", "mtd", "sd", "virtio", "xen"}
	accelNames      = []string{"kvm", "qtest", "tcg"}
	machineBools    = []string{"usb", "dump-guest-core", "mem-merge", "graphics", "suppress-vmdesc", "nvdimm", "hmat", "hpet", "sata", "pit", "smbus", "fd-bootchk", "default-bus-bypass-iommu", "aes-key-wrap", "dea-key-wrap", "iommu"}
)

// checkMachineProps is qemu_apply_machine_options' typing of -machine,
// -m, -smp and -boot values.
func (s *parseState) checkMachineProps(m MachineLimits) error {
	c := s.cfg
	for _, p := range c.Machine.Props {
		if contains(machineBools, p.Name) {
			if _, e := parseBool(p.Name, p.Value); e != nil {
				return s.fail("", e)
			}
		}
		if p.Name == "acpi" || p.Name == "vmport" || p.Name == "smm" {
			if !contains([]string{"on", "off", "auto"}, p.Value) {
				return s.fail("", errNotAccept(p.Name, p.Value))
			}
		}
	}
	// QEMU applies the machine's "smp" before its "memory" (QDict order).
	if err := s.checkSMPProps(); err != nil {
		return err
	}
	// machine_set_mem
	mem := &c.Memory
	if str := mem.sizeStr; str != "" {
		if str[len(str)-1] >= '0' && str[len(str)-1] <= '9' {
			str += "M" // legacy suffix-less format means MiB
		}
		v, rest, hexSuffix, err := optval.ScanSize(str, 'B')
		if err != nil || rest != "" {
			return s.fail("", errExpects("memory.size", "size"))
		}
		if hexSuffix {
			s.warn("", "warning: Using a multiplier suffix on hex numbers is deprecated: "+str+"\n")
		}
		mem.Size = v
	}
	size := mem.Size
	if size == 0 {
		size = m.DefaultRAM
	}
	size = (size + 8191) &^ 8191
	if mem.HasMaxMem {
		if mem.MaxMem < size {
			return s.fail("", newErr(ErrInvalid, fmt.Sprintf("invalid value of maxmem: maximum memory size (0x%x) must be at least the initial memory size (0x%x)", mem.MaxMem, size)))
		}
		if mem.HasSlots && mem.Slots > 0 && mem.MaxMem == size {
			return s.fail("", newErr(ErrInvalid, fmt.Sprintf("invalid value of maxmem: memory slots were specified but maximum memory size (0x%x) is equal to the initial memory size (0x%x)", mem.MaxMem, size)))
		}
	} else if mem.HasSlots {
		return s.fail("", newErr(ErrInvalid, "slots specified but no max-size"))
	}
	mem.Size = size
	if !mem.HasMaxMem {
		mem.MaxMem = size
	}
	// BootConfiguration
	if o := c.Boot.Opts; o != nil {
		b := &c.Boot
		b.Order, _ = o.Get("order")
		b.Once, _ = o.Get("once")
		b.Splash, _ = o.Get("splash")
		for _, k := range []string{"menu", "splash-time", "reboot-timeout", "strict"} {
			v, ok := o.Get(k)
			if !ok {
				continue
			}
			switch k {
			case "menu", "strict":
				bv, e := parseBool("boot."+k, v)
				if e != nil {
					return s.fail("", e)
				}
				if k == "menu" {
					b.Menu = &bv
				} else {
					b.Strict = &bv
				}
			default:
				n, ok := parseInt64(v)
				if !ok {
					return s.fail("", errExpects("boot."+k, "integer"))
				}
				if k == "splash-time" {
					b.SplashTime = &n
				} else {
					b.RebootTimeout = &n
				}
			}
		}
		for _, kv := range o.List {
			if !contains([]string{"order", "once", "menu", "splash", "splash-time", "reboot-timeout", "strict"}, kv.Name) {
				return s.fail("", errUnexpected("boot."+kv.Name))
			}
		}
		for _, devs := range []string{b.Order, b.Once} {
			if e := validateBootDevices(devs); e != nil {
				return s.fail("", e)
			}
		}
	}
	return nil
}

// validateBootDevices is softmmu/bootdevice.c validate_bootdevices.
func validateBootDevices(devs string) *qerror.Error {
	var seen uint32
	for i := 0; i < len(devs); i++ {
		d := devs[i]
		if d < 'a' || d > 'p' {
			return newErr(ErrBadValue, "Invalid boot device '"+string(d)+"'")
		}
		if seen&(1<<(d-'a')) != 0 {
			return newErr(ErrBadValue, "Boot device '"+string(d)+"' was given twice")
		}
		seen |= 1 << (d - 'a')
	}
	return nil
}

// checkRTC is softmmu/rtc.c configure_rtc.
func (s *parseState) checkRTC() error {
	r := &s.cfg.RTC
	switch r.Base {
	case "utc", "localtime", "":
	default:
		if !rtcDateValid(r.Base) {
			e := newErr(ErrBadValue, "invalid datetime format")
			e.Hint = "valid formats: '2006-06-17T16:01:21' or '2006-06-17'\n"
			return s.fail("", e)
		}
	}
	if r.Clock != "" && !contains([]string{"host", "rt", "vm"}, r.Clock) {
		return s.fail("", newErr(ErrBadValue, "invalid option value '"+r.Clock+"'"))
	}
	if r.DriftFix != "" && !contains([]string{"slew", "none"}, r.DriftFix) {
		return s.fail("", newErr(ErrBadValue, "invalid option value '"+r.DriftFix+"'"))
	}
	return nil
}

// rtcDateValid is sscanf "%d-%d-%dT%d:%d:%d" or "%d-%d-%d" then mktimegm.
func rtcDateValid(b string) bool {
	date, tm, hasT := strings.Cut(b, "T")
	parts := strings.Split(date, "-")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if _, err := strconv.Atoi(p); err != nil {
			return false
		}
	}
	if hasT {
		t := strings.Split(tm, ":")
		if len(t) != 3 {
			return false
		}
		for _, p := range t {
			if _, err := strconv.Atoi(p); err != nil {
				return false
			}
		}
	}
	return true
}

// checkFwCfg is vl.c parse_fw_cfg's checks (loading the file is cmd's).
func (s *parseState) checkFwCfg(f FwCfg) error {
	if s.limits.NoFwCfg {
		return s.fail(f.Loc, newErr(ErrInvalid, "fw_cfg device not available"))
	}
	n := 0
	for _, v := range []string{f.File, f.String, f.GenID} {
		if v != "" {
			n++
		}
	}
	if f.Name == "" || n != 1 {
		return s.fail(f.Loc, newErr(ErrInvalid, "name, plus exactly one of file, string and gen_id, are needed"))
	}
	if len(f.Name) > 55 {
		return s.fail(f.Loc, newErr(ErrInvalid, "name too long (max. 55 char)"))
	}
	if f.GenID == "" && !strings.HasPrefix(f.Name, "opt/") {
		s.warn(f.Loc, "warning: externally provided fw_cfg item names should be prefixed with \"opt/\"\n")
	}
	return nil
}

// checkAccels is configure_accelerators' validation.
func (s *parseState) checkAccels() error {
	c := s.cfg
	if v, ok := c.Machine.Prop("accel"); ok {
		for _, a := range strings.Split(v, ":") {
			if !contains(accelNames, a) {
				return s.fail("", newErr(ErrBadValue, "invalid accelerator "+a))
			}
		}
	}
	for _, o := range c.Accels {
		a, _ := o.Get("accel")
		if !contains(accelNames, a) {
			return s.fail(o.Loc, newErr(ErrBadValue, "invalid accelerator "+a))
		}
		for _, kv := range o.List {
			switch {
			case kv.Name == "accel":
			case a == "tcg" && kv.Name == "thread":
				if kv.Value != "single" && kv.Value != "multi" {
					return s.fail(o.Loc, newErr(ErrBadValue, "Invalid 'thread' setting "+kv.Value))
				}
			case a == "tcg" && (kv.Name == "tb-size" || kv.Name == "split-wx"):
			case a == "tcg" && kv.Name == "x-dirty-ring-size": // tlcvm's extension (docs/compatibility.md)
			case a == "kvm" && contains([]string{"kernel-irqchip", "kvm-shadow-mem", "dirty-ring-size", "notify-vmexit", "notify-window", "eager-split-size"}, kv.Name):
			default:
				return s.fail(o.Loc, newErr(ErrInvalidParameter, "Property '"+a+"-accel."+kv.Name+"' not found"))
			}
		}
	}
	return nil
}

// checkMonitors validates -mon/-monitor/-qmp and converts -serial and
// -parallel legacy strings into chardevs (qemu_create_late_backends).
func (s *parseState) checkMonitors() error {
	c := s.cfg
	var portErr error
	for i, arg := range c.Serials {
		if err := s.legacyPort("serial", i, arg); err != nil {
			portErr = err
			break
		}
	}
	for i, arg := range c.Parallels {
		if portErr != nil {
			break
		}
		if err := s.legacyPort("parallel", i, arg); err != nil {
			portErr = err
		}
	}
	if portErr != nil {
		return portErr
	}
	if err := s.qtestChardev(); err != nil {
		return err
	}
	// -mon groups are created before the serial ports in QEMU, but a
	// muxed "mon:" serial carries its own monitor: check ids after both.
	ids := map[string]bool{}
	for _, o := range c.Chardevs {
		ids[o.ID] = true
	}
	for _, m := range c.Monitors {
		if m.Mode != "readline" && m.Mode != "control" {
			return s.fail(m.Loc, errNotAccept("mode", m.Mode))
		}
		if !ids[m.Chardev] {
			return s.fail(m.Loc, newErr(ErrInvalid, `chardev "`+m.Chardev+`" not found`))
		}
	}
	return nil
}

// qtestChardev converts -qtest's legacy string into chardev "qtest" (qtest_server_init's
// qemu_chr_new("qtest", …)); "chardev:ID" names an existing one.
func (s *parseState) qtestChardev() error {
	c := s.cfg
	if c.QTest == "" {
		return nil
	}
	if id, ok := strings.CutPrefix(c.QTest, "chardev:"); ok {
		for _, o := range c.Chardevs {
			if o.ID == id {
				return nil
			}
		}
		return s.fail("", newErr(ErrInvalid, `Failed to initialize device for qtest: "`+c.QTest+`"`))
	}
	o, qe := s.chrParseCompatOpts("qtest", c.QTest, false)
	if qe != nil {
		if qe.Msg != "" {
			s.warnings = append(s.warnings, render(s.prog, "", qe))
		}
		return s.fail("", newErr(ErrInvalid, `Failed to initialize device for qtest: "`+c.QTest+`"`))
	}
	o.Loc = "-qtest " + c.QTest
	c.Chardevs = append(c.Chardevs, o)
	return nil
}

func (s *parseState) legacyPort(kind string, i int, arg string) error {
	c := s.cfg
	if arg == "none" || strings.HasPrefix(arg, "chardev:") {
		return nil
	}
	loc := "-" + kind + " " + arg
	o, qe := s.chrParseCompatOpts(kind+strconv.Itoa(i), arg, true)
	if qe != nil {
		if qe.Msg != "" {
			s.warnings = append(s.warnings, render(s.prog, loc, qe))
		}
		return s.fail(loc, newErr(ErrBadValue, "could not connect "+kind+" device to character backend '"+arg+"'"))
	}
	o.Loc = loc
	c.Chardevs = append(c.Chardevs, o)
	return nil
}

// checkNet is net_init_clients' validation of -netdev/-net/-nic groups.
func (s *parseState) checkNet() error {
	c := s.cfg
	for _, n := range c.Netdevs {
		if n.Opts == nil {
			continue
		}
		if n.ID == "" {
			return s.fail(n.Loc, errMissing("id"))
		}
		if !contains(netClientDrivers, n.Type) || n.Type == "nic" || n.Type == "none" {
			return s.fail(n.Loc, errNotAccept("type", n.Type))
		}
	}
	for _, list := range [][]*Opts{c.Nets, c.Nics} {
		for _, o := range list {
			t, _ := o.Get("type")
			if !contains(netClientDrivers, t) {
				return s.fail(o.Loc, errNotAccept("type", t))
			}
		}
	}
	return nil
}

// checkSMPProps types the -smp values as QEMU's SMPConfiguration visitor does.
func (s *parseState) checkSMPProps() error {
	c := s.cfg
	if o := c.SMP.Opts; o != nil {
		dst := map[string]*int64{"cpus": &c.SMP.CPUs, "sockets": &c.SMP.Sockets, "dies": &c.SMP.Dies, "clusters": &c.SMP.Clusters, "cores": &c.SMP.Cores, "threads": &c.SMP.Threads, "maxcpus": &c.SMP.MaxCPUs}
		for _, k := range []string{"cpus", "sockets", "dies", "clusters", "cores", "threads", "maxcpus"} {
			if v, ok := o.Get(k); ok {
				n, ok := parseInt64(v)
				if !ok {
					return s.fail("", errExpects("smp."+k, "integer"))
				}
				*dst[k] = n
			}
		}
		for _, kv := range o.List {
			if _, ok := dst[kv.Name]; !ok {
				return s.fail("", errUnexpected("smp."+kv.Name))
			}
		}
	}
	return nil
}
