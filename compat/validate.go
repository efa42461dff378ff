package compat

import (
	"strings"

	"tlcvm/compat/optval"
)

// validate runs the checks QEMU makes after its option loop and before it
// creates the machine (qemu_validate_options, qemu_process_early_options,
// qemu_process_help_options), then fills the typed views.
func (s *parseState) validate() error {
	c := s.cfg
	if c.Kernel == "" {
		if c.Append != "" {
			return s.fail("", newErr(ErrInvalid, "-append only allowed with -kernel option"))
		}
		if c.Initrd != "" {
			return s.fail("", newErr(ErrInvalid, "-initrd only allowed with -kernel option"))
		}
	}
	if c.Preconfig && c.LoadVM != "" {
		return s.fail("", newErr(ErrInvalid, "'preconfig' and 'loadvm' options are mutually exclusive"))
	}
	if c.Preconfig && c.Incoming != "" && c.Incoming != "defer" {
		return s.fail("", newErr(ErrInvalid, "'preconfig' supports '-incoming defer' only"))
	}
	if err := s.fillNameMemoryRTC(); err != nil {
		return err
	}
	// qemu_process_early_options: parse_sandbox for each enabled -sandbox, in order.
	for i, o := range s.sandbox {
		if !c.Sandboxes[i].Enable {
			continue
		}
		if e := checkSandbox(o, &c.Sandboxes[i]); e != nil {
			return s.fail(o.Loc, e)
		}
	}
	if c.LogItems != "" && !logMaskValid(c.LogItems) {
		c.Action = ActionInfo
		c.Info = &Info{Topic: "d", Arg: c.LogItems, Loc: "-d " + c.LogItems}
		return nil
	}
	// qemu_process_help_options: -cpu help, -device ...help.
	if isHelpOption(c.CPU.Model) {
		c.Action = ActionInfo
		c.Info = &Info{Topic: "cpu", Loc: "-cpu " + c.CPU.Model}
		return nil
	}
	for _, d := range c.Devices {
		if d.Opts == nil {
			continue
		}
		if isHelpOption(d.Driver) {
			c.Action = ActionInfo
			c.Info = &Info{Topic: "device", Loc: d.Loc}
			return nil
		}
		for _, kv := range d.Opts.List {
			if kv.Name != "driver" && isHelpOption(kv.Name) {
				c.Action = ActionInfo
				c.Info = &Info{Topic: "device", Arg: d.Driver, Loc: d.Loc}
				return nil
			}
		}
	}
	for _, n := range c.Netdevs {
		if n.Opts != nil && isHelpOption(n.Type) {
			// net_client_init: show_netdevs, exit 0
			c.Action = ActionInfo
			c.Info = &Info{Topic: "netdev", Loc: n.Loc}
			return nil
		}
	}
	for _, dir := range c.DataDirs {
		if dir == "help" {
			c.Action = ActionInfo
			c.Info = &Info{Topic: "L", Loc: "-L help"}
			return nil
		}
	}
	// qemu_create_early_backends: GL asked of a display without it (none, curses).
	if t := c.Display.Type; t == "none" || t == "curses" {
		for _, m := range c.Display.Members {
			if m.Key == "gl" && m.Value != "off" {
				return s.fail("", newErr(ErrInvalid, "OpenGL is not supported by the display"))
			}
		}
	}
	if t := c.Display.Type; t != "gtk" && t != "sdl" {
		for _, m := range c.Display.Members {
			if m.Key == "window-close" { // vl.c qemu_init_displays, once the command line is taken
				s.warn("", "window-close is only valid for GTK and SDL, ignoring option")
			}
		}
	}
	return nil
}

// logItems are the -d items of qemu-system-x86_64 7.2 (util/log.c).
var logItems = []string{"out_asm", "in_asm", "op", "op_opt", "op_ind", "int", "exec", "cpu", "fpu", "mmu", "pcall", "cpu_reset", "unimp", "guest_errors", "page", "nochain", "plugin", "strace", "tid"}

// logMaskValid is qemu_str_to_log_mask != 0 (or only trace: patterns).
func logMaskValid(s string) bool {
	mask := false
	for _, it := range strings.Split(s, ",") {
		switch {
		case it == "all":
			mask = true
		case strings.HasPrefix(it, "trace:"):
		case contains(logItems, it):
			mask = true
		default:
			return false
		}
	}
	return mask || strings.Contains(s, "trace:")
}

// fillNameMemoryRTC copies the merged QemuOpts groups into typed fields.
func (s *parseState) fillNameMemoryRTC() error {
	c := s.cfg
	if o := s.lists["name"]; o != nil {
		c.Name.Guest, _ = o.Get("guest")
		c.Name.Process, _ = o.Get("process")
		c.Name.DebugThreads, _ = o.Bool("debug-threads", false)
	}
	if o := s.lists["memory"]; o != nil {
		m := &c.Memory
		if sz, _ := o.Size("size", 0); sz != 0 {
			// Converted by checkMachineProps, where QEMU applies it to the machine.
			m.sizeStr, _ = o.Get("size")
		}
		if v, ok := o.Get("maxmem"); ok {
			m.MaxMem, _ = optval.Size(v)
			m.HasMaxMem = true
		}
		if _, ok := o.Get("slots"); ok {
			m.Slots, _ = o.Number("slots", 0)
			m.HasSlots = true
		}
	}
	if o := c.RTC.Opts; o != nil {
		c.RTC.Base, _ = o.Get("base")
		c.RTC.Clock, _ = o.Get("clock")
		c.RTC.DriftFix, _ = o.Get("driftfix")
	}
	if c.RTC.Base == "" {
		c.RTC.Base = "utc"
	}
	return nil
}
