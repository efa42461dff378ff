// Command qemu-system-x86_64 is tlcvm: a drop-in QEMU 7.2 for x86_64 written in Go. It takes
// QEMU's command line, speaks QMP and HMP as QEMU does, and runs a machine with real guest
// RAM and vCPU threads. This file is the composition root: parse → build → run.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"

	"tlcvm/chardev"
	"tlcvm/compat"
	"tlcvm/compat/qerror"
	"tlcvm/hmp"
	"tlcvm/internal/daemon"
	"tlcvm/internal/hostguard"
	"tlcvm/machine/catalog"
)

func main() {
	stop := diagnostics()
	code := run(os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// diagnostics starts what the environment asks for, for `make bench` investigations (no
// effect otherwise), and returns the function that ends it: TLCVM_CPUPROFILE=FILE writes a CPU
// profile of the whole run, TLCVM_TRACE=FILE an execution trace (go tool trace: goroutine
// hand-offs, thread wake-ups); "%p" in FILE stands for the pid.
func diagnostics() (stop func()) {
	var stops []func()
	for _, d := range []struct {
		env         string
		start       func(io.Writer) error
		stopProfile func()
	}{
		{"TLCVM_CPUPROFILE", pprof.StartCPUProfile, pprof.StopCPUProfile},
		{"TLCVM_TRACE", trace.Start, trace.Stop},
	} {
		path := os.Getenv(d.env)
		if path == "" {
			continue
		}
		// "%p" is the pid: a migration's two ends started with the same environment
		// write a file each.
		path = strings.ReplaceAll(path, "%p", strconv.Itoa(os.Getpid()))
		f, err := os.Create(path)
		if err != nil {
			continue
		}
		if d.start(f) != nil {
			f.Close()
			continue
		}
		stopProfile := d.stopProfile
		stops = append(stops, func() { stopProfile(); f.Close() })
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

// run is the whole process; it returns the exit status.
func run(argv []string, stdout, stderr io.Writer) int {
	parser := compat.Parser{LookupUser: hostguard.LookupUser, ObjectType: objectType}
	cfg, err := parser.Parse(argv)
	if err != nil {
		return report(stderr, err)
	}
	for _, w := range cfg.Warnings {
		warnln(stderr, w)
	}
	switch cfg.Action {
	case compat.ActionVersion:
		fmt.Fprint(stdout, compat.VersionText())
		return 0
	case compat.ActionHelp:
		fmt.Fprint(stdout, compat.HelpText(cfg.Prog))
		return 0
	case compat.ActionInfo:
		return info(cfg, stdout, stderr)
	}

	printed := len(cfg.Warnings)
	plan, err := prepare(cfg)
	for _, w := range cfg.Warnings[printed:] { // the checks' (compat.Config.Check)
		warnln(stderr, w)
	}
	if err != nil {
		return report(stderr, err)
	}
	if cfg.Action == compat.ActionInfo { // asked for by a later check: -chardev help, -vga help
		return info(cfg, stdout, stderr)
	}
	for _, w := range plan.warnings {
		fmt.Fprintln(stderr, w)
	}
	if err := installSandboxes(cfg); err != nil {
		return report(stderr, err)
	}
	// -nic model=help is net_init_clients's, after the early options (-sandbox).
	if plan.nicHelp {
		fmt.Fprint(stdout, nicModelsHelp())
		return 0
	}

	var status *daemon.Status
	if cfg.Daemonize {
		st, child := daemon.Child()
		if !child {
			code, err := daemon.Launch(argv)
			if err != nil && !errors.Is(err, daemon.ErrNoStatus) {
				fmt.Fprintf(stderr, "%s: %v\n", cfg.Prog, err)
			}
			return code
		}
		status = st
	}

	vm, err := build(plan, stdout, stderr)
	if err != nil {
		if status != nil {
			status.Fail()
		}
		return report(stderr, err)
	}
	if status != nil {
		if err := status.Ready(cfg.LogFile != ""); err != nil {
			vm.close()
			return 1
		}
	}
	return vm.run()
}

// failf is a start-up failure QEMU prints as "prog: [loc: ]msg" (error_report under a
// location).
func failf(cfg *compat.Config, loc, format string, a ...any) error {
	return qerror.New(nil, located(cfg, loc)+fmt.Sprintf(format, a...))
}

// failAt is err reported under a location: "prog: [loc: ]" before its text, its hint kept
// (error_report_err under a location).
func failAt(cfg *compat.Config, loc string, err error) error {
	return qerror.Prepend(err, "%s", located(cfg, loc))
}

// located is error_report's prefix: "prog: " and, when there is one, "loc: ".
func located(cfg *compat.Config, loc string) string {
	if loc == "" {
		return cfg.Prog + ": "
	}
	return cfg.Prog + ": " + loc + ": "
}

// warnln prints a warning on a line of its own: the text's own final line break or one.
func warnln(w io.Writer, text string) {
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	fmt.Fprint(w, text)
}

// report prints err as QEMU's error_report_err does (the text, then the hint lines) and
// returns exit status 1.
func report(w io.Writer, err error) int {
	fmt.Fprint(w, qerror.Report(err))
	return 1
}

// info prints the listing that `-machine help`, `-cpu help`, `-device help` and friends ask
// for, from tlcvm's catalogue.
func info(cfg *compat.Config, stdout, stderr io.Writer) int {
	if cfg.Info.Text != "" {
		fmt.Fprint(stdout, cfg.Info.Text)
		return cfg.Info.Status
	}
	switch cfg.Info.Topic {
	case "machine":
		fmt.Fprint(stdout, catalog.MachineHelp())
	case "cpu":
		fmt.Fprint(stdout, catalog.CPUHelp())
	case "device":
		if cfg.Info.Arg == "" {
			fmt.Fprint(stdout, catalog.DeviceHelp())
			return 0
		}
		// qdev_device_help: an alias names its type; an error is reported, yet QEMU exits 0.
		text, err := catalog.DeviceOptionsHelp(catalog.ResolveDeviceName(cfg.Info.Arg))
		if err != nil {
			report(stderr, failf(cfg, cfg.Info.Loc, "%v", err))
			return 0
		}
		fmt.Fprint(stdout, text)
	case "accel":
		fmt.Fprint(stdout, "Accelerators supported in QEMU binary:\ntcg\nkvm\n")
	case "netdev":
		fmt.Fprint(stdout, hmp.NetdevHelp)
	case "chardev":
		fmt.Fprint(stdout, chardev.HelpText())
	case "vga":
		vgaHelp(cfg, stdout, stderr)
	default:
		return report(stderr, failf(cfg, cfg.Info.Loc, "help for %s is not available in tlcvm", cfg.Info.Topic))
	}
	return 0
}

// vgaHelp is QEMU 7.2's -vga help (vl.c select_vgahw): every VGA interface, the machine's
// default marked; the lookup of the "none" entry's class, which has none, reports twice.
func vgaHelp(cfg *compat.Config, stdout, stderr io.Writer) {
	def := "std"
	if m, ok := catalog.LookupMachine(cfg.Machine.Type); ok && m.Name == "none" {
		def = "cirrus" // no default display: get_default_vga_model falls back to cirrus
	}
	fmt.Fprintf(stderr, "%stype is NULL\n%[1]stype is NULL\n", cfg.Prog+": ")
	for _, v := range [][2]string{{"none", "no graphic card"}, {"std", "standard VGA"}, {"cirrus", "Cirrus VGA"},
		{"vmware", "VMWare SVGA"}, {"qxl", "QXL VGA"}, {"virtio", "Virtio VGA"}} {
		if v[0] == def {
			v[1] += " (default)"
		}
		fmt.Fprintf(stdout, "%-20s %s\n", v[0], v[1])
	}
}
