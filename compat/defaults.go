package compat

// ApplyDefaults adds the default devices QEMU 7.2 creates when the command
// line does not replace them (vl.c qemu_disable_default_devices and
// qemu_create_default_devices), given the machine's no_* flags:
//
//   - -nodefaults disables all of them;
//   - -serial, -parallel, -monitor/-qmp/-mon, -net/-nic/-netdev, -vga and
//     devices such as isa-serial or VGA each disable their default;
//   - with -nographic: parallel → "null", serial+monitor → one muxed
//     "mon:stdio" serial (an HMP monitor shares it), or "stdio" for
//     whichever of the two is still default;
//   - otherwise: serial, parallel and monitor on "vc:80Cx24C" (tlcvm has no
//     graphical console: cmd/ may treat vc as null);
//   - a default NIC "-net nic -net user", the default VGA of the machine,
//     and the default cdrom (index 2), floppy and SD card drives, each only where no
//     drive of the command line holds its index (Opts.Default).
//
// Chardevs get QEMU's ids: serial0, parallel0, compat_monitor0. Call it
// after Parse and before Check (Check converts the -serial strings).
func (c *Config) ApplyDefaults(m MachineLimits) error {
	d := &c.defaults
	s := &parseState{cfg: c, prog: c.Prog}
	if c.ids == nil {
		c.ids = map[string]map[string]bool{}
	}
	none := c.NoDefaults
	defSerial := !none && !d.noSerial && !m.NoSerial
	defParallel := !none && !d.noParallel && !m.NoParallel
	defMonitor := !none && !d.noMonitor
	defNet := !none && !d.noNet
	defVGA := !none && !d.noVGA
	defFloppy := !none && !d.noFloppy && !m.NoFloppy
	defCdrom := !none && !d.noCdrom && !m.NoCdrom
	defSdcard := !none && !m.NoSdcard
	if c.Daemonize && c.Nographic && (defParallel || defSerial || defMonitor) {
		return s.fail("", newErr(ErrInvalid, "-nographic cannot be used with -daemonize"))
	}
	if c.Nographic {
		if defParallel {
			c.Parallels = append(c.Parallels, "null")
		}
		if defSerial && defMonitor {
			c.Serials = append(c.Serials, "mon:stdio")
			c.Monitors = append(c.Monitors, Monitor{ID: "serial0", Chardev: "serial0", Mode: "readline"})
		} else {
			if defSerial {
				c.Serials = append(c.Serials, "stdio")
			}
			if defMonitor {
				if err := s.monitorParse("stdio", "readline", false, ""); err != nil {
					return err
				}
			}
		}
	} else {
		if defSerial {
			c.Serials = append(c.Serials, "vc:80Cx24C")
		}
		if defParallel {
			c.Parallels = append(c.Parallels, "vc:80Cx24C")
		}
		if defMonitor {
			if err := s.monitorParse("vc:80Cx24C", "readline", false, ""); err != nil {
				return err
			}
		}
	}
	if defNet {
		c.DefaultNet = true
		c.Nets = append(c.Nets, &Opts{Group: "net", List: []Opt{{"type", "nic"}}}, &Opts{Group: "net", List: []Opt{{"type", "user"}}})
	}
	if defVGA && c.VGA == "" && m.DefaultVGA != "" {
		c.VGA = m.DefaultVGA
	}
	if defCdrom {
		c.Drives = append(c.Drives, &Opts{Group: "drive", List: []Opt{{"media", "cdrom"}, {"index", "2"}}, Default: true})
	}
	if defFloppy {
		c.Drives = append(c.Drives, &Opts{Group: "drive", List: []Opt{{"if", "floppy"}, {"index", "0"}}, Default: true})
	}
	if defSdcard {
		c.Drives = append(c.Drives, &Opts{Group: "drive", List: []Opt{{"if", "sd"}, {"index", "0"}}, Default: true})
	}
	c.defaults.noSerial, c.defaults.noParallel, c.defaults.noMonitor = true, true, true
	c.defaults.noNet, c.defaults.noVGA, c.defaults.noCdrom, c.defaults.noFloppy = true, true, true, true
	c.Warnings = append(c.Warnings, s.warnings...)
	return nil
}
