package compat

import (
	"bufio"
	"sort"
	"strings"
	"sync"
)

// Option describes one entry of qemu-system-x86_64 7.2's option table
// (qemu-options.hx), as the real binary recognises it.
type Option struct {
	// Name is the option name without dashes ("machine", "M", "hda").
	Name string
	// HasArg reports whether the option consumes the next argv element.
	HasArg bool
	// OtherArch marks options that exist in the table but are rejected on
	// x86 with "Option not supported for this target".
	OtherArch bool
	// Extension marks options tlcvm accepts that QEMU 7.2 no longer
	// recognises (kept for old command lines such as the kvm-88 manual's).
	Extension bool
	// NoEffect marks options that are parsed and validated but have no
	// effect on a tlcvm machine (listed by NoEffectOptions for the docs).
	NoEffect bool
}

// options is the table, in qemu-options.hx order. HasArg and OtherArch were
// established against /usr/bin/qemu-system-x86_64 7.2.22 (see
// testdata/options.txt and TestOptionTableAgainstQEMU).
var options = []Option{
	{Name: "h"}, {Name: "help"}, {Name: "version"},
	{Name: "machine", HasArg: true}, {Name: "M", HasArg: true},
	{Name: "cpu", HasArg: true}, {Name: "accel", HasArg: true},
	{Name: "smp", HasArg: true}, {Name: "numa", HasArg: true},
	{Name: "add-fd", HasArg: true}, {Name: "set", HasArg: true},
	{Name: "global", HasArg: true}, {Name: "boot", HasArg: true},
	{Name: "m", HasArg: true}, {Name: "mem-path", HasArg: true, NoEffect: true},
	{Name: "mem-prealloc", NoEffect: true}, {Name: "k", HasArg: true, NoEffect: true},
	{Name: "audio-help"}, {Name: "audio", HasArg: true, NoEffect: true},
	{Name: "audiodev", HasArg: true, NoEffect: true},
	{Name: "device", HasArg: true}, {Name: "name", HasArg: true},
	{Name: "uuid", HasArg: true},
	{Name: "fda", HasArg: true}, {Name: "fdb", HasArg: true},
	{Name: "hda", HasArg: true}, {Name: "hdb", HasArg: true},
	{Name: "hdc", HasArg: true}, {Name: "hdd", HasArg: true},
	{Name: "cdrom", HasArg: true}, {Name: "blockdev", HasArg: true},
	{Name: "drive", HasArg: true}, {Name: "mtdblock", HasArg: true, NoEffect: true},
	{Name: "sd", HasArg: true, NoEffect: true}, {Name: "pflash", HasArg: true, NoEffect: true},
	{Name: "snapshot"}, {Name: "fsdev", HasArg: true, NoEffect: true},
	{Name: "virtfs", HasArg: true, NoEffect: true}, {Name: "iscsi", HasArg: true, NoEffect: true},
	{Name: "usb", NoEffect: true}, {Name: "usbdevice", HasArg: true, NoEffect: true},
	{Name: "display", HasArg: true}, {Name: "nographic"},
	{Name: "spice", HasArg: true, NoEffect: true}, {Name: "portrait", NoEffect: true},
	{Name: "rotate", HasArg: true, NoEffect: true}, {Name: "vga", HasArg: true},
	{Name: "full-screen", NoEffect: true}, {Name: "g", HasArg: true, OtherArch: true},
	{Name: "vnc", HasArg: true},
	{Name: "win2k-hack", NoEffect: true}, {Name: "no-fd-bootchk", NoEffect: true},
	{Name: "no-acpi", NoEffect: true}, {Name: "no-hpet", NoEffect: true},
	{Name: "acpitable", HasArg: true, NoEffect: true}, {Name: "smbios", HasArg: true, NoEffect: true},
	{Name: "netdev", HasArg: true}, {Name: "nic", HasArg: true}, {Name: "net", HasArg: true},
	{Name: "chardev", HasArg: true}, {Name: "tpmdev", HasArg: true, NoEffect: true},
	{Name: "bios", HasArg: true, NoEffect: true},
	{Name: "kernel", HasArg: true}, {Name: "append", HasArg: true},
	{Name: "initrd", HasArg: true}, {Name: "dtb", HasArg: true, NoEffect: true},
	{Name: "compat", HasArg: true}, {Name: "fw_cfg", HasArg: true},
	{Name: "serial", HasArg: true}, {Name: "parallel", HasArg: true},
	{Name: "monitor", HasArg: true}, {Name: "qmp", HasArg: true},
	{Name: "qmp-pretty", HasArg: true}, {Name: "mon", HasArg: true},
	{Name: "debugcon", HasArg: true, NoEffect: true}, {Name: "pidfile", HasArg: true},
	{Name: "singlestep", NoEffect: true}, {Name: "preconfig"}, {Name: "S"},
	{Name: "overcommit", HasArg: true, NoEffect: true}, {Name: "gdb", HasArg: true, NoEffect: true},
	{Name: "s", NoEffect: true}, {Name: "d", HasArg: true, NoEffect: true},
	{Name: "D", HasArg: true}, {Name: "dfilter", HasArg: true, NoEffect: true},
	{Name: "seed", HasArg: true, NoEffect: true}, {Name: "L", HasArg: true, NoEffect: true},
	{Name: "enable-kvm"}, {Name: "xen-domid", HasArg: true, OtherArch: true},
	{Name: "xen-attach", OtherArch: true}, {Name: "xen-domid-restrict", OtherArch: true},
	{Name: "no-reboot"}, {Name: "no-shutdown"}, {Name: "action", HasArg: true},
	{Name: "loadvm", HasArg: true}, {Name: "daemonize"},
	{Name: "option-rom", HasArg: true, NoEffect: true}, {Name: "rtc", HasArg: true},
	{Name: "icount", HasArg: true, NoEffect: true}, {Name: "watchdog-action", HasArg: true},
	{Name: "echr", HasArg: true, NoEffect: true}, {Name: "incoming", HasArg: true},
	{Name: "only-migratable"}, {Name: "nodefaults"},
	{Name: "chroot", HasArg: true}, {Name: "runas", HasArg: true},
	{Name: "prom-env", HasArg: true, OtherArch: true}, {Name: "semihosting", OtherArch: true},
	{Name: "semihosting-config", HasArg: true, OtherArch: true},
	{Name: "old-param", OtherArch: true}, {Name: "sandbox", HasArg: true},
	{Name: "readconfig", HasArg: true}, {Name: "no-user-config"},
	{Name: "trace", HasArg: true, NoEffect: true}, {Name: "plugin", HasArg: true, NoEffect: true},
	{Name: "qtest", HasArg: true}, {Name: "qtest-log", HasArg: true},
	{Name: "async-teardown", NoEffect: true}, {Name: "msg", HasArg: true},
	{Name: "dump-vmstate", HasArg: true, NoEffect: true},
	{Name: "enable-sync-profile", NoEffect: true}, {Name: "object", HasArg: true},
	// tlcvm extensions: removed from QEMU, still found in old manuals.
	{Name: "localtime", Extension: true},
}

var (
	optIndexOnce sync.Once
	optIndex     map[string]*Option
)

// LookupOption finds an option by name; name may carry one or two leading
// dashes, as on the command line ("--version" is "-version").
func LookupOption(name string) (*Option, bool) {
	optIndexOnce.Do(func() {
		optIndex = make(map[string]*Option, len(options))
		for i := range options {
			if _, dup := optIndex[options[i].Name]; dup {
				panic("compat: duplicate option " + options[i].Name)
			}
			optIndex[options[i].Name] = &options[i]
		}
	})
	name = strings.TrimPrefix(name, "-")
	name = strings.TrimPrefix(name, "-")
	o, ok := optIndex[name]
	return o, ok
}

// Options returns a copy of the option table, sorted by name.
func Options() []Option {
	LookupOption("")
	out := make([]Option, 0, len(optIndex))
	for _, o := range optIndex {
		out = append(out, *o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// NoEffectOptions lists the options tlcvm parses (with QEMU's syntax checks)
// but which change nothing in a tlcvm machine, for the documentation.
func NoEffectOptions() []string {
	var out []string
	for _, o := range Options() {
		if o.NoEffect {
			out = append(out, o.Name)
		}
	}
	return out
}

var (
	helpByOptOnce sync.Once
	helpByOpt     map[string]string
)

// HelpFor returns the lines of `qemu-system-x86_64 -help` that document the
// option (empty for options the help does not list, such as -M).
func HelpFor(name string) string {
	helpByOptOnce.Do(func() {
		helpByOpt = map[string]string{}
		var cur []string
		var b strings.Builder
		flush := func() {
			for _, n := range cur {
				helpByOpt[n] += b.String()
			}
			cur = nil
			b.Reset()
		}
		sc := bufio.NewScanner(strings.NewReader(helpText))
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "-"):
				flush()
				cur = helpLineNames(line)
			case line == "" || (!strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t")):
				flush()
				continue
			}
			if cur != nil {
				b.WriteString(line)
				b.WriteByte('\n')
			}
		}
		flush()
	})
	return helpByOpt[strings.TrimLeft(name, "-")]
}

// helpLineNames extracts the option names a help line starts with:
// "-hda/-hdb file" names hda and hdb, "-h or -help" names h and help.
func helpLineNames(line string) []string {
	head, _, _ := strings.Cut(line, " ")
	var names []string
	for _, p := range strings.Split(head, "/") {
		p = strings.TrimLeft(p, "-")
		if p != "" {
			names = append(names, p)
		}
	}
	if strings.HasPrefix(line, "-h or -help") {
		names = []string{"h", "help"}
	}
	return names
}
