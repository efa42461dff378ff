package compat

import (
	"strings"

	"tlcvm/compat/optval"
	"tlcvm/compat/qerror"
)

// option interprets one option occurrence (the second pass of vl.c's
// qemu_init). stop reports an option that ends parsing with an action
// (-version, -help, -machine help, -accel help, -display help, ...).
func (s *parseState) option(name, arg, loc string) (stop bool, err error) {
	c := s.cfg
	d := &c.defaults
	switch name {
	case "h", "help":
		c.Action = ActionHelp
		return true, nil
	case "version":
		c.Action = ActionVersion
		return true, nil
	case "machine", "M":
		k := &Keyval{}
		if e := k.parse(arg, "type"); e != nil {
			return false, s.fail(loc, e)
		}
		if k.Help {
			return s.info("machine", "", loc)
		}
		for _, p := range k.Pairs {
			if p.Name == "type" {
				c.Machine.Type = p.Value
			} else {
				c.Machine.set(p.Name, p.Value)
			}
		}
	case "cpu":
		parts := strings.Split(arg, ",")
		c.CPU = CPU{Model: parts[0], Features: parts[1:]}
	case "accel":
		o, _, err := s.parseList(listAccel, arg, loc, true)
		if err != nil {
			return false, err
		}
		if a, ok := o.Get("accel"); !ok || isHelpOption(a) {
			return s.info("accel", "", loc)
		}
		c.Accels = append(c.Accels, o)
	case "smp":
		if help, err := keyvalHelp(arg, listSMP.implied); err != nil || help {
			if err != nil {
				return false, s.fail(loc, err)
			}
			return s.groupHelp(listSMP, loc, 0)
		}
		o, _, err := s.parseList(listSMP, arg, loc, true)
		if err != nil {
			return false, err
		}
		c.SMP.Given = true
		c.SMP.Opts = o
	case "boot":
		if help, err := keyvalHelp(arg, listBoot.implied); err != nil || help {
			if err != nil {
				return false, s.fail(loc, err)
			}
			return s.groupHelp(listBoot, loc, 0)
		}
		o, _, err := s.parseList(listBoot, arg, loc, true)
		if err != nil {
			return false, err
		}
		c.Boot.Given = true
		c.Boot.Opts = o
	case "m":
		o, stop, err := s.parseList(listMemory, arg, loc, true)
		if err != nil || stop {
			return stop, err
		}
		c.Memory.Opts = o
	case "k":
		c.Keyboard = arg
	case "audio-help":
		return s.info("audio-help", "", loc)
	case "audiodev":
		if isHelpOption(arg) {
			return s.info("audiodev", "", loc)
		}
		a, e := parseAudiodev(arg)
		if e != nil {
			return false, s.fail(loc, e)
		}
		a.Loc = loc
		c.Audiodevs = append(c.Audiodevs, *a)
	case "device":
		return false, s.device(arg, loc)
	case "name":
		if _, stop, err := s.parseList(listName, arg, loc, true); err != nil || stop {
			return stop, err
		}
		c.Name.Given = true
	case "uuid":
		if !uuidValid(arg) {
			return false, s.fail(loc, newErr(ErrBadValue, "failed to parse UUID string: wrong format"))
		}
		c.UUID = strings.ToLower(arg)
	case "fda", "fdb":
		return false, s.driveAdd(arg, "floppy", "", int(name[2]-'a'), loc)
	case "hda", "hdb", "hdc", "hdd":
		return false, s.driveAdd(arg, "", "media=disk", int(name[2]-'a'), loc)
	case "cdrom":
		return false, s.driveAdd(arg, "", "media=cdrom", 2, loc)
	case "mtdblock":
		return false, s.driveAdd(arg, "mtd", "", -1, loc)
	case "sd":
		return false, s.driveAdd(arg, "sd", "", -1, loc)
	case "pflash":
		return false, s.driveAdd(arg, "pflash", "", -1, loc)
	case "drive":
		o, _, err := s.parseList(listDrive, arg, loc, false)
		if err != nil {
			return false, err
		}
		c.Drives = append(c.Drives, o)
	case "blockdev":
		b, e := parseBlockdev(arg)
		if e != nil {
			return false, s.fail(loc, e)
		}
		b.Loc = loc
		c.Blockdevs = append(c.Blockdevs, *b)
	case "snapshot":
		c.Snapshot = true
	case "usb":
		c.Machine.set("usb", "on")
		c.USB = true
	case "usbdevice":
		c.USBDevices = append(c.USBDevices, arg)
	case "display":
		return s.display(arg, loc)
	case "nographic":
		c.Machine.set("graphics", "off")
		c.Nographic = true
		c.Display.Type = "none"
	case "vga":
		c.VGA = arg
		d.noVGA = true
	case "vnc":
		c.VNC = append(c.VNC, arg)
	case "no-hpet":
		c.Machine.set("hpet", "off")
	case "no-acpi":
		c.Machine.set("acpi", "off")
	case "netdev":
		return false, s.netdev(arg, loc)
	case "net", "nic":
		l := listNet
		if name == "nic" {
			l = listNic
		}
		o, _, err := s.parseList(l, arg, loc, true)
		if err != nil {
			return false, err
		}
		if name == "net" {
			c.Nets = append(c.Nets, o)
		} else {
			c.Nics = append(c.Nics, o)
		}
		d.noNet = true
	case "chardev":
		o, stop, err := s.parseList(listChardev, arg, loc, true)
		if err != nil || stop {
			return stop, err
		}
		c.Chardevs = append(c.Chardevs, o)
	case "bios":
		c.BIOS = arg
	case "kernel":
		c.Kernel = arg
	case "initrd":
		c.Initrd = arg
	case "append":
		c.Append = arg
	case "compat":
		return false, s.compat(arg, loc)
	case "fw_cfg":
		o, stop, err := s.parseList(listFwCfg, arg, loc, true)
		if err != nil || stop {
			return stop, err
		}
		f := FwCfg{Loc: loc}
		f.Name, _ = o.Get("name")
		f.File, _ = o.Get("file")
		f.String, _ = o.Get("string")
		f.GenID, _ = o.Get("gen_id")
		c.FwCfg = append(c.FwCfg, f)
	case "qtest":
		c.QTest = arg
	case "qtest-log":
		c.QTestLog, c.HasQTestLog = arg, true
	case "serial":
		c.Serials = append(c.Serials, arg)
		d.noSerial = true
	case "parallel":
		c.Parallels = append(c.Parallels, arg)
		d.noParallel = true
	case "monitor":
		d.noMonitor = true
		if !strings.HasPrefix(arg, "none") {
			return false, s.monitorParse(arg, "readline", false, loc)
		}
	case "qmp", "qmp-pretty":
		d.noMonitor = true
		return false, s.monitorParse(arg, "control", name == "qmp-pretty", loc)
	case "mon":
		o, stop, err := s.parseList(listMon, arg, loc, true)
		if err != nil || stop {
			return stop, err
		}
		d.noMonitor = true
		m := Monitor{ID: o.ID, Loc: loc}
		m.Chardev, _ = o.Get("chardev")
		m.Mode, _ = o.Get("mode")
		if m.Mode == "" {
			m.Mode = "readline"
		}
		m.Pretty, _ = o.Bool("pretty", false)
		c.Monitors = append(c.Monitors, m)
	case "pidfile":
		c.PidFile = arg
	case "preconfig":
		c.Preconfig = true
	case "S":
		c.Freeze = true
	case "overcommit":
		o, stop, err := s.parseList(listOvercomm, arg, loc, false)
		if err != nil || stop {
			return stop, err
		}
		c.Overcommit = o
	case "d":
		c.LogItems = arg
	case "D":
		c.LogFile = arg
	case "L":
		c.DataDirs = append(c.DataDirs, arg)
	case "enable-kvm":
		c.Machine.set("accel", "kvm")
	case "no-reboot":
		c.Actions = append(c.Actions, Opt{"reboot", "shutdown"})
		c.NoReboot = true
	case "no-shutdown":
		c.Actions = append(c.Actions, Opt{"shutdown", "pause"})
		c.NoShutdown = true
	case "action":
		o, stop, err := s.parseList(listAction, arg, loc, false)
		if err != nil || stop {
			return stop, err
		}
		for _, kv := range o.List {
			if e := checkAction(kv.Name, kv.Value); e != nil {
				return false, s.fail(loc, e)
			}
			c.Actions = append(c.Actions, kv)
		}
	case "watchdog-action":
		if e := checkAction("watchdog", arg); e != nil {
			return false, s.fail(loc, e)
		}
		c.Actions = append(c.Actions, Opt{"watchdog", arg})
	case "loadvm":
		c.LoadVM = arg
	case "daemonize":
		c.Daemonize = true
	case "rtc":
		o, stop, err := s.parseList(listRTC, arg, loc, false)
		if err != nil || stop {
			return stop, err
		}
		c.RTC.Opts = o
	case "localtime": // tlcvm extension: QEMU 0.x's -localtime = -rtc base=localtime
		if c.RTC.Opts == nil {
			c.RTC.Opts = &Opts{Group: "rtc", Loc: loc}
			s.lists["rtc"] = c.RTC.Opts
		}
		c.RTC.Opts.Set("base", "localtime")
	case "incoming":
		c.Incoming = arg
	case "only-migratable":
		c.OnlyMigrate = true
	case "nodefaults":
		c.NoDefaults = true
	case "sandbox":
		o, stop, err := s.parseList(listSandbox, arg, loc, true)
		if err != nil || stop {
			return stop, err
		}
		c.Sandboxes = append(c.Sandboxes, sandbox(o))
		s.sandbox = append(s.sandbox, o)
	case "runas":
		r, e := runAs(arg, loc, s.users)
		if e != nil {
			return false, s.fail(loc, e)
		}
		c.RunAs = r
	case "chroot":
		c.Chroot = arg
	case "no-user-config":
		c.NoUserCfg = true
	case "trace":
		o, stop, err := s.parseList(listTrace, arg, loc, true)
		if err != nil || stop {
			return stop, err
		}
		c.Trace = append(c.Trace, o)
	case "msg":
		o, stop, err := s.parseList(listMsg, arg, loc, false)
		if err != nil || stop {
			return stop, err
		}
		c.Msg = o
	case "object":
		return s.object(arg, loc)
	case "global":
		return s.global(arg, loc)
	default:
		// Recognised options without effect on tlcvm (see NoEffectOptions):
		// kept in Args only.
	}
	return false, nil
}

// groupHelp asks for the help of an option group (qemu_opts_print_help), then exit status.
func (s *parseState) groupHelp(l *optsList, loc string, status int) (bool, error) {
	s.cfg.Action = ActionInfo
	s.cfg.Info = &Info{Topic: l.name, Loc: loc, Text: optsHelp(l.name), Status: status}
	return true, nil
}

// keyvalHelp is the keyval_parse that vl.c's machine_parse_property_opt (-smp, -boot)
// starts with: its syntax error is fatal first; a help request prints the group's help
// and exits 0.
func keyvalHelp(arg, implied string) (bool, *qerror.Error) {
	k := &Keyval{}
	if err := k.parse(arg, implied); err != nil {
		return false, err
	}
	return k.Help, nil
}

// info records a listing request; stop parsing now as QEMU exits at once.
func (s *parseState) info(topic, arg, loc string) (bool, error) {
	s.cfg.Action = ActionInfo
	s.cfg.Info = &Info{Topic: topic, Arg: arg, Loc: loc}
	return true, nil
}

// uuidValid is qemu_uuid_parse's format check.
func uuidValid(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", rune(s[i])) {
				return false
			}
		}
	}
	return true
}

var actionValues = map[string][]string{
	"reboot":   {"reset", "shutdown"},
	"shutdown": {"poweroff", "pause"},
	"panic":    {"pause", "shutdown", "exit-failure", "none"},
	"watchdog": {"reset", "shutdown", "poweroff", "pause", "debug", "none", "inject-nmi"},
}

func checkAction(key, value string) *qerror.Error {
	for _, v := range actionValues[key] {
		if v == value {
			return nil
		}
	}
	return errNotAccept(key, value)
}

// global is qemu_global_option; stop is a help request (the group's help is to be printed).
func (s *parseState) global(arg, loc string) (stop bool, err error) {
	if dot := strings.IndexAny(arg, ".="); dot > 0 && dot <= 63 && arg[dot] == '.' {
		if eq := strings.IndexByte(arg[dot+1:], '='); eq > 0 && eq <= 63 {
			s.cfg.Globals = append(s.cfg.Globals, Global{Driver: arg[:dot], Property: arg[dot+1 : dot+1+eq], Value: arg[dot+2+eq:], Loc: loc})
			return false, nil
		}
	}
	o, stop, err := s.parseList(listGlobal, arg, loc, false)
	if err != nil || stop {
		return stop, err
	}
	g := Global{Loc: loc}
	var ok1, ok2, ok3 bool
	g.Driver, ok1 = o.Get("driver")
	g.Property, ok2 = o.Get("property")
	g.Value, ok3 = o.Get("value")
	if !ok1 || !ok2 || !ok3 {
		return false, s.fail(loc, newErr(ErrMissingParameter, "options 'driver', 'property', and 'value' are required"))
	}
	s.cfg.Globals = append(s.cfg.Globals, g)
	return false, nil
}

// device handles -device in both forms.
func (s *parseState) device(arg, loc string) error {
	c := s.cfg
	if strings.HasPrefix(arg, "{") {
		j, e := parseJSONObject(arg)
		if e != nil {
			return s.fail(loc, e)
		}
		drv, ok := j.String("driver")
		if !ok {
			return s.fail(loc, errMissing("driver"))
		}
		id, _ := j.String("id")
		c.Devices = append(c.Devices, Device{Driver: drv, ID: id, JSON: j, Loc: loc})
		s.defaultDriverCheck(drv)
		return nil
	}
	o, _, err := s.parseList(listDevice, arg, loc, true)
	if err != nil {
		return err
	}
	drv, _ := o.Get("driver")
	c.Devices = append(c.Devices, Device{Driver: drv, ID: o.ID, Opts: o, Loc: loc})
	s.defaultDriverCheck(drv)
	return nil
}

// defaultDriverCheck is vl.c default_driver_check: some devices replace
// the machine's default ones.
func (s *parseState) defaultDriverCheck(drv string) {
	d := &s.cfg.defaults
	switch drv {
	case "isa-serial":
		d.noSerial = true
	case "isa-parallel":
		d.noParallel = true
	case "isa-fdc", "floppy":
		d.noFloppy = true
	case "ide-cd", "ide-hd", "scsi-cd", "scsi-hd":
		d.noCdrom = true
	case "VGA", "isa-vga", "cirrus-vga", "isa-cirrus-vga", "vmware-svga", "qxl-vga", "virtio-vga", "ati-vga", "vhost-user-vga", "virtio-vga-gl":
		d.noVGA = true
	}
}

// netdev handles -netdev in both forms.
func (s *parseState) netdev(arg, loc string) error {
	c := s.cfg
	c.defaults.noNet = true
	if strings.HasPrefix(arg, "{") {
		j, e := parseJSONObject(arg)
		if e != nil {
			return s.fail(loc, e)
		}
		id, ok := j.String("id")
		if !ok {
			return s.fail(loc, missingOrType(j, "id", "string"))
		}
		typ, ok := j.String("type")
		if !ok {
			return s.fail(loc, missingOrType(j, "type", "string"))
		}
		if !contains(netClientDrivers, typ) {
			return s.fail(loc, errNotAccept("type", typ))
		}
		if !contains(netdevTypes, typ) {
			return s.fail(loc, newErr(ErrBadValue, "network backend '"+typ+"' is not compiled into this binary"))
		}
		if c.ids["netdev"][id] {
			return s.fail(loc, newErr(ErrDuplicateID, "Duplicate ID '"+id+"'"))
		}
		_ = s.claimID("netdev", id, loc, "")
		c.Netdevs = append(c.Netdevs, Netdev{Type: typ, ID: id, JSON: j, Loc: loc})
		return nil
	}
	o, _, err := s.parseList(listNetdev, arg, loc, true)
	if err != nil {
		return err
	}
	typ, _ := o.Get("type")
	c.Netdevs = append(c.Netdevs, Netdev{Type: typ, ID: o.ID, Opts: o, Loc: loc})
	return nil
}

// netClientDrivers is QAPI NetClientDriver; netdevTypes the back-ends the
// Debian 7.2 binary has compiled in (no vde, no netmap).
var (
	netClientDrivers = []string{"none", "nic", "user", "tap", "l2tpv3", "socket", "stream", "dgram", "vde", "bridge", "hubport", "netmap", "vhost-user", "vhost-vdpa"}
	netdevTypes      = []string{"user", "tap", "l2tpv3", "socket", "stream", "dgram", "bridge", "hubport", "vhost-user", "vhost-vdpa"}
)

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// missingOrType is the QAPI input visitor's error for a member that is
// absent or of the wrong JSON type.
func missingOrType(j *JSON, key, want string) *qerror.Error {
	if !j.Get(key).Exists() {
		return errMissing(key)
	}
	return newErr(ErrBadValue, "Invalid parameter type for '"+key+"', expected: "+want)
}

// object handles -object in both forms (qom/object_interfaces.c
// object_option_parse).
func (s *parseState) object(arg, loc string) (bool, error) {
	c := s.cfg
	ob := Object{Loc: loc}
	if strings.HasPrefix(arg, "{") {
		j, e := parseJSONObject(arg)
		if e != nil {
			return false, s.fail(loc, e)
		}
		var ok bool
		if ob.QomType, ok = j.String("qom-type"); !ok {
			return false, s.fail(loc, missingOrType(j, "qom-type", "string"))
		}
		if s.objType != nil && !s.objType(ob.QomType) {
			return false, s.fail(loc, errNotAccept("qom-type", ob.QomType))
		}
		if ob.ID, ok = j.String("id"); !ok {
			return false, s.fail(loc, missingOrType(j, "id", "string"))
		}
		ob.JSON = j
	} else {
		k := &Keyval{}
		if e := k.parse(arg, "qom-type"); e != nil {
			return false, s.fail(loc, e)
		}
		if k.Help {
			t, _ := k.Get("qom-type")
			return s.info("object", t, loc)
		}
		var ok bool
		if ob.QomType, ok = k.Get("qom-type"); !ok {
			return false, s.fail(loc, errMissing("qom-type"))
		}
		if s.objType != nil && !s.objType(ob.QomType) {
			return false, s.fail(loc, errNotAccept("qom-type", ob.QomType))
		}
		if ob.ID, ok = k.Get("id"); !ok {
			return false, s.fail(loc, errMissing("id"))
		}
		ob.Keyval = k
	}
	if !optval.ID(ob.ID) {
		e := errExpects("id", "an identifier")
		e.Hint = optval.IDHint
		return false, s.fail(loc, e)
	}
	if err := s.claimID("object", ob.ID, loc, "Duplicate ID '"+ob.ID+"' for object"); err != nil {
		return false, err
	}
	c.Objects = append(c.Objects, ob)
	return false, nil
}
