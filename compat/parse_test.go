package compat_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tlcvm/compat"
)

// shellWords splits a libvirt-logged command line (single quotes only).
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	var cur strings.Builder
	inQ, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQ && c == '\'':
			inQ = false
		case inQ:
			cur.WriteByte(c)
		case c == '\'':
			inQ, have = true, true
		case c == ' ' || c == '\n' || c == '\t':
			if have || cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
		}
	}
	if inQ {
		t.Fatalf("unterminated quote in %q", s)
	}
	if have || cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// libvirtArgv reads a command-line file, joins "\" continuations and drops
// the leading VAR=value environment words.
func libvirtArgv(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skip(err)
	}
	words := shellWords(t, strings.ReplaceAll(string(data), "\\\n", " "))
	for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
		words = words[1:]
	}
	return words
}

const refDir = "/work/shared/reference/libvirt"

func TestLibvirtCommandLines(t *testing.T) {
	files, _ := filepath.Glob(refDir + "/domain/*cmdline*.txt")
	files = append(files, refDir+"/probe/probe-cmdline.txt")
	if len(files) < 2 {
		t.Skip("reference command lines not present")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			argv := libvirtArgv(t, f)
			if argv[0] != "/usr/bin/qemu-system-x86_64" {
				t.Fatalf("argv[0] = %q", argv[0])
			}
			c, err := compat.Parse(argv)
			if err != nil {
				t.Fatal(err)
			}
			lim := compat.PCLimits("pc-i440fx-7.2")
			if c.Machine.Type == "none" {
				lim = compat.NoneLimits()
			}
			if err := c.ApplyDefaults(lim); err != nil {
				t.Fatal(err)
			}
			if err := c.Check(lim); err != nil {
				t.Fatal(err)
			}
			if c.Action != compat.ActionRun || c.Prog != "qemu-system-x86_64" {
				t.Fatalf("action %v prog %q", c.Action, c.Prog)
			}
			if len(c.Monitors) != 1 || c.Monitors[0].Mode != "control" {
				t.Fatalf("monitors %+v", c.Monitors)
			}
			if len(c.Warnings) != 0 {
				t.Errorf("warnings %q", c.Warnings)
			}
		})
	}
}

func TestLibvirtAnchor1(t *testing.T) {
	c, err := compat.Parse(libvirtArgv(t, refDir+"/domain/anchor1-restore-cmdline.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lim := compat.PCLimits("pc-i440fx-7.2")
	if err := c.ApplyDefaults(lim); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(lim); err != nil {
		t.Fatal(err)
	}
	if c.Name.Guest != "anchor1" || !c.Name.DebugThreads || !c.Freeze || !c.NoShutdown || !c.NoDefaults || !c.NoUserCfg {
		t.Errorf("flags: %+v", c.Name)
	}
	if c.Machine.Type != "pc-i440fx-7.2" {
		t.Errorf("machine %q", c.Machine.Type)
	}
	if v, _ := c.Machine.Prop("memory-backend"); v != "pc.ram" {
		t.Errorf("memory-backend %q", v)
	}
	if c.Memory.Size != 256<<20 || c.Topology != (compat.Topology{CPUs: 1, Sockets: 1, Dies: 1, Clusters: 1, Cores: 1, Threads: 1, MaxCPUs: 1}) {
		t.Errorf("memory %d topology %+v", c.Memory.Size, c.Topology)
	}
	if c.UUID != "b865f84f-e875-4fd6-8bdc-464a2227598a" || c.Incoming != "defer" || c.RTC.Base != "utc" {
		t.Errorf("uuid %q incoming %q rtc %q", c.UUID, c.Incoming, c.RTC.Base)
	}
	if c.CPU.Model != "qemu64" || strings.Join(c.CPU.Features, ",") != "hypervisor=on,lahf-lm=on" {
		t.Errorf("cpu %+v", c.CPU)
	}
	if len(c.Objects) != 2 || c.Objects[1].QomType != "memory-backend-ram" || c.Objects[1].JSON.Get("size").Uint() != 268435456 {
		t.Errorf("objects %+v", c.Objects)
	}
	if len(c.Blockdevs) != 2 || c.Blockdevs[1].Driver != "qcow2" || c.Blockdevs[1].NodeName != "libvirt-1-format" {
		t.Errorf("blockdevs %+v", c.Blockdevs)
	}
	if len(c.Devices) != 3 || c.Devices[1].Driver != "virtio-blk-pci" || strings.Join(c.Devices[1].JSON.Keys(), ",") != "driver,bus,addr,drive,id,bootindex" {
		t.Errorf("devices %+v", c.Devices)
	}
	if len(c.Chardevs) != 2 || c.Chardevs[0].ID != "charmonitor" {
		t.Errorf("chardevs %+v", c.Chardevs)
	}
	if fd, _ := c.Chardevs[0].Get("fd"); fd != "31" {
		t.Errorf("fd %q", fd)
	}
	if c.Monitors[0] != (compat.Monitor{ID: "monitor", Chardev: "charmonitor", Mode: "control", Loc: "-mon chardev=charmonitor,id=monitor,mode=control"}) {
		t.Errorf("monitor %+v", c.Monitors[0])
	}
	if c.Boot.Strict == nil || !*c.Boot.Strict || c.Display.Type != "none" {
		t.Errorf("boot %+v display %+v", c.Boot, c.Display)
	}
	if len(c.Serials) != 0 || len(c.Nets) != 0 || c.VGA != "" {
		t.Errorf("defaults applied despite -nodefaults: %v %v %q", c.Serials, c.Nets, c.VGA)
	}
}

func TestProbeLine(t *testing.T) {
	c, err := compat.Parse(libvirtArgv(t, refDir+"/probe/probe-cmdline.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Machine.Prop("accel"); v != "kvm:tcg" || c.Machine.Type != "none" || !c.Daemonize || !c.Nographic {
		t.Fatalf("%+v", c.Machine)
	}
	if err := c.ApplyDefaults(compat.NoneLimits()); err != nil {
		t.Fatal(err) // -nodefaults: no "-nographic cannot be used with -daemonize"
	}
	ch := c.Chardevs[0]
	if ch.ID != "compat_monitor0" || ch.String() != "backend=socket,path=/var/lib/libvirt/qemu/qmp-4ETGZ3/qmp.monitor,server=on,wait=off,id=compat_monitor0" {
		t.Errorf("chardev %s", ch.String())
	}
}

// The kvm-88-era line of the seed manual.
func TestSeedManualLine(t *testing.T) {
	c, err := compat.Parse(strings.Fields("qemu-system-x86_64 -m 512M -hda myvm1.ovl -localtime -net nic -net user"))
	if err != nil {
		t.Fatal(err)
	}
	lim := compat.PCLimits("pc-i440fx-7.2")
	if err := c.ApplyDefaults(lim); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(lim); err != nil {
		t.Fatal(err)
	}
	if c.Memory.Size != 512<<20 || c.RTC.Base != "localtime" || len(c.Nets) != 2 {
		t.Fatalf("mem %d rtc %q nets %d", c.Memory.Size, c.RTC.Base, len(c.Nets))
	}
	if got := c.Drives[0].String(); got != "media=disk,index=0,file=myvm1.ovl" {
		t.Errorf("drive %q", got)
	}
	// defaults: serial and monitor on vc, a cdrom drive, std VGA
	if len(c.Serials) != 1 || c.Serials[0] != "vc:80Cx24C" || c.VGA != "std" || len(c.Monitors) != 1 || c.Monitors[0].ID != "compat_monitor0" {
		t.Errorf("serials %v vga %q monitors %+v", c.Serials, c.VGA, c.Monitors)
	}
}

func TestDefaultsNographic(t *testing.T) {
	c, err := compat.Parse([]string{"/x/qemu", "-nographic"})
	if err != nil {
		t.Fatal(err)
	}
	lim := compat.PCLimits("pc-i440fx-7.2")
	if err := c.ApplyDefaults(lim); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(lim); err != nil {
		t.Fatal(err)
	}
	if len(c.Serials) != 1 || c.Serials[0] != "mon:stdio" || c.Parallels[0] != "null" {
		t.Fatalf("%v %v", c.Serials, c.Parallels)
	}
	var serial0 *compat.Opts
	for _, o := range c.Chardevs {
		if o.ID == "serial0" {
			serial0 = o
		}
	}
	if serial0 == nil || serial0.String() != "mux=on,signal=off,backend=stdio,id=serial0" {
		t.Fatalf("serial0 %v", serial0)
	}
}

func TestActions(t *testing.T) {
	for _, tc := range []struct {
		args  string
		want  compat.Action
		topic string
		arg   string
	}{
		{"-version", compat.ActionVersion, "", ""},
		{"--version -zz=1", compat.ActionRun, "", ""}, // pass 1 rejects -zz=1 first: see error case
		{"-h", compat.ActionHelp, "", ""},
		{"-machine help", compat.ActionInfo, "machine", ""},
		{"-M ?", compat.ActionInfo, "machine", ""},
		{"-cpu help", compat.ActionInfo, "cpu", ""},
		{"-device help", compat.ActionInfo, "device", ""},
		{"-device virtio-blk-pci,help", compat.ActionInfo, "device", "virtio-blk-pci"},
		{"-accel help", compat.ActionInfo, "accel", ""},
		{"-display help", compat.ActionInfo, "display", ""},
		{"-object help", compat.ActionInfo, "object", ""},
		{"-audiodev help", compat.ActionInfo, "audiodev", ""},
		{"-d bogus", compat.ActionInfo, "d", "bogus"},
		{"-m 64", compat.ActionRun, "", ""},
	} {
		c, err := compat.Parse(append([]string{"qemu"}, strings.Fields(tc.args)...))
		if tc.args == "--version -zz=1" {
			if err == nil {
				t.Errorf("%s: no error", tc.args)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.args, err)
			continue
		}
		if c.Action != tc.want {
			t.Errorf("%s: action %v", tc.args, c.Action)
		}
		if tc.topic != "" && (c.Info == nil || c.Info.Topic != tc.topic || c.Info.Arg != tc.arg) {
			t.Errorf("%s: info %+v", tc.args, c.Info)
		}
	}
}

// TestGroupHelp: "help" among the keys of an option group prints the group's help
// (qemu_opts_print_help) and exits 1 after a QemuOpts parse, 0 after a keyval one; the
// texts are compared with QEMU's in tests/testdata/cmdline.txt.
func TestGroupHelp(t *testing.T) {
	for _, tc := range []struct {
		args   string
		first  string // the text's first two lines
		status int
	}{
		{"-sandbox on,help", "sandbox options:\n  elevateprivileges=<str>\n", 1},
		{"-overcommit mem-lock=on,?", "overcommit options:\n  cpu-pm=<bool (on/off)>\n", 1},
		{"-m 1,help", "memory options:\n  maxmem=<size>\n", 1},
		{"-global help", "global options:\n  driver=<str>\n", 1},
		{"-fw_cfg name=x,help", "fw_cfg options:\n  file=<str>             - Sets the name of the file from which the fw_cfg blob will be loaded\n", 1},
		{"-msg help", "msg options:\n  guest-name=<bool (on/off)> - Prepends guest name", 1},
		{"-rtc help", "rtc options:\n  base=<str>\n", 1},
		{"-action help", "action options:\n  panic=<str>\n", 1},
		{"-name x,help", "name options:\n  debug-threads=<bool (on/off)> - When enabled", 1},
		{"-mon chardev=x,help", "mon options:\n  chardev=<str>\n", 1},
		{"-trace enable=x,help", "trace options:\n  enable=<str>\n", 1},
		{"-smp 2,help", "smp-opts options:\n  clusters=<num>\n", 0},
		{"-smp ?", "smp-opts options:\n  clusters=<num>\n", 0},
		{"-boot help", "boot-opts options:\n  menu=<bool (on/off)>\n", 0},
		{"-boot order=c,help -nosuchlater", "", 0}, // pass 1 rejects the unknown option first
	} {
		c, err := compat.Parse(append([]string{"qemu"}, strings.Fields(tc.args)...))
		if tc.first == "" {
			if err == nil {
				t.Errorf("%s: no error", tc.args)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.args, err)
			continue
		}
		if c.Action != compat.ActionInfo || c.Info == nil || !strings.HasPrefix(c.Info.Text, tc.first) || c.Info.Status != tc.status {
			t.Errorf("%s: %v %+v", tc.args, c.Action, c.Info)
		}
	}
}

func TestVersionAndHelp(t *testing.T) {
	v := compat.VersionText()
	if !strings.HasPrefix(v, "QEMU emulator version 7.2.22 (tlcvm ") || !strings.HasSuffix(v, ")\nCopyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n") {
		t.Errorf("%q", v)
	}
	h := compat.HelpText("myqemu")
	if !strings.Contains(h, "\nusage: myqemu [options] [disk_image]\n") {
		t.Errorf("usage line missing")
	}
	// Every option the help names is in the table.
	sc := bufio.NewScanner(strings.NewReader(h))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "-") {
			continue
		}
		head, _, _ := strings.Cut(line, " ")
		for _, n := range strings.Split(head, "/") {
			n = strings.TrimLeft(n, "-")
			if n == "" {
				continue
			}
			if _, ok := compat.LookupOption(n); !ok {
				t.Errorf("help names -%s, not in table", n)
			}
		}
	}
	if !strings.Contains(compat.HelpFor("hda"), "use 'file' as hard disk 0/1 image") {
		t.Errorf("HelpFor(hda) = %q", compat.HelpFor("hda"))
	}
	if len(compat.NoEffectOptions()) == 0 {
		t.Error("no no-effect options listed")
	}
}

// TestOptionTable checks the table against testdata/options.txt, recorded
// from the real binary: every option it knows, with or without argument,
// other-target options, and names 7.2 rejects.
func TestOptionTable(t *testing.T) {
	data, err := os.ReadFile("testdata/options.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(line, "#") {
			continue
		}
		o, ok := compat.LookupOption(f[0])
		if f[1] == "invalid" {
			if ok && !o.Extension {
				t.Errorf("-%s: QEMU 7.2 rejects it", f[0])
			}
			continue
		}
		if !ok {
			t.Errorf("-%s: missing from the table", f[0])
			continue
		}
		if o.HasArg != (f[1] == "arg") || o.OtherArch != (len(f) > 2 && f[2] == "otherarch") {
			t.Errorf("-%s: table %+v, binary %v", f[0], *o, f[1:])
		}
	}
	if o, ok := compat.LookupOption("--version"); !ok || o.Name != "version" {
		t.Error("--version")
	}
}
