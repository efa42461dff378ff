package compat

import (
	"strings"

	"github.com/rs/zerolog"

	"tlcvm/compat/optval"
	"tlcvm/compat/qerror"
)

// Parser parses qemu-system-x86_64 command lines. The zero value is ready;
// Log defaults to silence.
type Parser struct {
	Log zerolog.Logger
	// LookupUser is getpwnam(3) for -runas: the uid and primary gid of a user name. QEMU
	// looks the name up when it reads the option. nil: no name is a user (only UID:GID
	// is accepted).
	LookupUser func(name string) (uid, gid uint32, ok bool)
	// ObjectType reports whether -object may create the QOM type (QAPI's ObjectType enum:
	// a user-creatable, non-abstract type). QEMU checks it as it reads the option, before
	// the id. nil: every type is taken here (the caller checks them later).
	ObjectType func(qomType string) bool
}

// Parse parses argv (argv[0] is the program path) with a silent Parser.
func Parse(argv []string) (*Config, error) {
	var p Parser
	p.Log = zerolog.Nop()
	return p.Parse(argv)
}

// progName is what QEMU's error_init() does with argv[0]: its basename.
func progName(argv []string) string {
	if len(argv) == 0 || argv[0] == "" {
		return "qemu-system-x86_64"
	}
	a := argv[0]
	if i := strings.LastIndexByte(a, '/'); i >= 0 {
		return a[i+1:]
	}
	return a
}

// parseState carries one run of Parse.
type parseState struct {
	cfg      *Config
	prog     string
	warnings []string // pending warning texts (already prefixed)
	lists    map[string]*Opts
	log      zerolog.Logger
	limits   MachineLimits // the machine's facts, during Check
	users    func(string) (uint32, uint32, bool)
	objType  func(string) bool
	sandbox  []*Opts // the -sandbox groups, for checkSandbox
}

// fail builds the error for e at loc, with the warnings printed so far.
func (s *parseState) fail(loc string, e *qerror.Error) error {
	return &qerror.Error{Msg: strings.Join(s.warnings, "") + prefix(s.prog, loc) + e.Msg, Kind: e.Kind, Hint: e.Hint}
}

func (s *parseState) warn(loc, text string) {
	// text may hold several lines; only the first carries the prefix.
	s.warnings = append(s.warnings, prefix(s.prog, loc)+text)
}

// Parse parses argv into a Config. It mirrors softmmu/vl.c: a first pass
// rejects unknown options and missing arguments, a second pass interprets
// each option in order, then the checks QEMU makes before it creates the
// machine run. The first failure is returned as a *qerror.Error.
func (p *Parser) Parse(argv []string) (*Config, error) {
	prog := progName(argv)
	s := &parseState{
		cfg:     &Config{Prog: prog, ids: map[string]map[string]bool{}},
		prog:    prog,
		lists:   map[string]*Opts{},
		log:     p.Log,
		users:   p.LookupUser,
		objType: p.ObjectType,
	}
	// First pass: lookup_opt on everything.
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		o, err := lookup(prog, a)
		if err != nil {
			return nil, err
		}
		if o.HasArg {
			if i+1 >= len(argv) {
				return nil, qerror.New(ErrMissingArgument, prog+": "+a+": requires an argument")
			}
			i++
		}
	}
	// Second pass.
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if !strings.HasPrefix(a, "-") {
			if err := s.driveAdd(a, "", "media=disk", 0, a); err != nil {
				return nil, err
			}
			continue
		}
		o, _ := lookup(prog, a)
		arg, loc := "", a
		if o.HasArg {
			i++
			arg = argv[i]
			loc = a + " " + arg
		}
		if o.OtherArch {
			return nil, s.fail(loc, newErr(ErrWrongTarget, "Option not supported for this target"))
		}
		s.cfg.Args = append(s.cfg.Args, Arg{Name: o.Name, Value: arg, Loc: loc})
		p.Log.Debug().Str("option", o.Name).Str("arg", arg).Msg("compat: option")
		stop, err := s.option(o.Name, arg, loc)
		if err != nil {
			return nil, err
		}
		if stop {
			s.cfg.Warnings = s.warnings
			return s.cfg, nil
		}
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	s.cfg.Warnings = s.warnings
	return s.cfg, nil
}

func lookup(prog, a string) (*Option, error) {
	r := a
	if len(r) > 1 && r[1] == '-' {
		r = r[1:]
	}
	o, ok := LookupOption(r[1:])
	if !ok || r[1:] == "" || strings.HasPrefix(r[1:], "-") {
		return nil, qerror.New(ErrInvalidOption, prog+": "+a+": invalid option")
	}
	return o, nil
}

// Option lists with their QemuOptsList definitions (only what compat needs
// to validate; nil desc accepts any key, as in QEMU).
var (
	listMemory   = &optsList{name: "memory", implied: "size", merge: true, desc: map[string]optType{"size": optSize, "slots": optNumber, "maxmem": optSize}}
	listSMP      = &optsList{name: "smp-opts", implied: "cpus", merge: true}
	listBoot     = &optsList{name: "boot-opts", implied: "order", merge: true}
	listName     = &optsList{name: "name", implied: "guest", merge: true, desc: map[string]optType{"guest": optString, "process": optString, "debug-threads": optBool}}
	listAccel    = &optsList{name: "accel", implied: "accel"}
	listChardev  = &optsList{name: "chardev", implied: "backend", desc: chardevDesc}
	listMon      = &optsList{name: "mon", implied: "chardev", desc: map[string]optType{"mode": optString, "chardev": optString, "pretty": optBool}}
	listDevice   = &optsList{name: "device", implied: "driver"}
	listDrive    = &optsList{name: "drive"}
	listNetdev   = &optsList{name: "netdev", implied: "type"}
	listNet      = &optsList{name: "net", implied: "type"}
	listNic      = &optsList{name: "nic", implied: "type"}
	listGlobal   = &optsList{name: "global", desc: map[string]optType{"driver": optString, "property": optString, "value": optString}}
	listRTC      = &optsList{name: "rtc", merge: true, desc: map[string]optType{"base": optString, "clock": optString, "driftfix": optString}}
	listFwCfg    = &optsList{name: "fw_cfg", implied: "name", desc: map[string]optType{"name": optString, "file": optString, "string": optString, "gen_id": optString}}
	listSandbox  = &optsList{name: "sandbox", implied: "enable", desc: map[string]optType{"enable": optBool, "obsolete": optString, "elevateprivileges": optString, "spawn": optString, "resourcecontrol": optString}}
	listMsg      = &optsList{name: "msg", merge: true, desc: map[string]optType{"timestamp": optBool, "guest-name": optBool}}
	listOvercomm = &optsList{name: "overcommit", merge: true, desc: map[string]optType{"mem-lock": optBool, "cpu-pm": optBool}}
	listTrace    = &optsList{name: "trace", implied: "enable", desc: map[string]optType{"enable": optString, "events": optString, "file": optString}}
	listAction   = &optsList{name: "action", merge: true, desc: map[string]optType{"reboot": optString, "shutdown": optString, "panic": optString, "watchdog": optString}}
)

var chardevDesc = func() map[string]optType {
	m := map[string]optType{}
	for _, k := range []string{"backend", "path", "host", "port", "fd", "local", "localaddr", "localport", "to", "width", "height", "cols", "rows", "chardev", "name", "debug", "size", "logfile", "tls-creds", "tls-authz", "websocket"} {
		m[k] = optString
	}
	for _, k := range []string{"server", "wait", "ipv4", "ipv6", "nodelay", "telnet", "tn3270", "mux", "signal", "logappend", "abstract", "tight"} {
		m[k] = optBool
	}
	m["reconnect"] = optNumber
	m["size"] = optSize
	m["websocket"] = optBool
	return m
}()

// parseList parses arg for list l with QEMU's noisy parse (warnings kept),
// enforcing duplicate ids and merging merge lists. help is a help request among the keys
// of a list with a description: the Config then asks for the group's help, o is nil and
// the caller stops parsing.
func (s *parseState) parseList(l *optsList, arg, loc string, permitAbbrev bool) (*Opts, bool, error) {
	// qemu_opts_create runs before the keys are parsed: a duplicate id is
	// reported before any bad key (and before short-form warnings).
	if id, has := findID(arg); has && !l.merge && optval.ID(id) && s.cfg.ids[l.name][id] {
		return nil, false, s.fail(loc, newErr(ErrDuplicateID, "Duplicate ID '"+id+"' for "+l.name))
	}
	o, warns, help, err := parseOpts(l, arg, permitAbbrev, true)
	for _, w := range warns {
		s.warn(loc, w)
	}
	if err != nil {
		return nil, false, s.fail(loc, err)
	}
	if help {
		// qemu_opts_parse_noisily prints the group's help and returns NULL: vl.c exits 1.
		stop, _ := s.groupHelp(l, loc, 1)
		return nil, stop, nil
	}
	o.Loc = loc
	if l.merge {
		if prev := s.lists[l.name]; prev != nil {
			prev.List = append(prev.List, o.List...)
			prev.Loc = loc
			return prev, false, nil
		}
		s.lists[l.name] = o
		return o, false, nil
	}
	if o.ID != "" {
		if err := s.claimID(l.name, o.ID, loc, "Duplicate ID '"+o.ID+"' for "+l.name); err != nil {
			return nil, false, err
		}
	}
	return o, false, nil
}

func (s *parseState) claimID(group, id, loc, msg string) error {
	m := s.cfg.ids[group]
	if m == nil {
		m = map[string]bool{}
		s.cfg.ids[group] = m
	}
	if m[id] {
		return s.fail(loc, newErr(ErrDuplicateID, msg))
	}
	m[id] = true
	return nil
}

// driveAdd is blockdev.c drive_add: -hda, -cdrom, bare images.
func (s *parseState) driveAdd(file, ifName, optstr string, index int, loc string) error {
	o, _, err := s.parseList(listDrive, optstr, loc, false)
	if err != nil {
		return err
	}
	if ifName != "" {
		o.Set("if", ifName)
	}
	if index >= 0 {
		o.Set("index", itoa(int64(index)))
	}
	o.Set("file", file)
	s.cfg.Drives = append(s.cfg.Drives, o)
	return nil
}

func itoa(v int64) string {
	if v == 0 {
		return "0"
	}
	neg := v < 0
	u := uint64(v)
	if neg {
		u = -u
	}
	var b [24]byte
	i := len(b)
	for u > 0 {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
