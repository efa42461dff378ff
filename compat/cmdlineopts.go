package compat

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

//go:generate go run ./internal/gencmdopts

// ErrInvalidOptionName: CommandLineOption was asked for a group QEMU does not have.
var ErrInvalidOptionName = errors.New("invalid option name")

// ParamType is the type of a QemuOpts parameter (QemuOptType) under the
// names query-command-line-options gives them (QAPI CommandLineParameterType).
type ParamType string

// The parameter types, in QAPI order.
const (
	ParamString ParamType = "string"
	ParamBool   ParamType = "boolean"
	ParamNumber ParamType = "number"
	ParamSize   ParamType = "size"
)

// Param is one parameter of an option group (QemuOptDesc, or a machine
// property for the "machine" group), as QEMU 7.2 reports it.
type Param struct {
	// Name is the key ("size", "throttling.bps-total", "debug-threads").
	Name string
	// Type is the parameter's type.
	Type ParamType
	// Help is the help text; "" when QEMU reports none (QEMU never reports
	// an empty one).
	Help string
	// Default is the default value as text; "" when QEMU reports none.
	Default string
}

// OptionGroup is one QemuOptsList as query-command-line-options lists it.
type OptionGroup struct {
	// Name is the list's name: mostly the option's ("chardev", "drive"),
	// sometimes not ("smp-opts" for -smp, "boot-opts" for -boot), and ""
	// for the empty semihosting-config list x86 builds carry as a stub.
	Name string
	// Params are the parameters in QEMU's reply order (which repeats a key
	// when QEMU's merged descriptions do: "werror" in "drive"). Empty for
	// lists that accept any key (device, netdev, object, ...).
	Params []Param
	// Module marks a group that QEMU registers only once a module has
	// loaded: "spice" comes with ui-spice-core, loaded by -spice or by the
	// first qom-list-types (which libvirt always sends before it asks).
	Module bool
}

// CommandLineOptions returns every option group in query-command-line-options
// order, module groups included (QEMU's list after its modules have loaded,
// which is what libvirt sees). The result is a copy the caller may modify.
func CommandLineOptions() []OptionGroup {
	out := make([]OptionGroup, len(cmdlineGroups))
	for i, g := range cmdlineGroups {
		out[i] = g.clone()
	}
	return out
}

// CommandLineOption returns the group called name, or an error wrapping
// ErrInvalidOptionName whose text is QEMU's ("invalid option name: NAME").
// The empty name is a group of its own, as in QEMU.
func CommandLineOption(name string) (OptionGroup, error) {
	for _, g := range cmdlineGroups {
		if g.Name == name {
			return g.clone(), nil
		}
	}
	return OptionGroup{}, fmt.Errorf("%w: %s", ErrInvalidOptionName, name)
}

func (g OptionGroup) clone() OptionGroup {
	g.Params = append([]Param(nil), g.Params...)
	return g
}

// optsHelp is qemu_opts_print_help(list, true) for the group called name: each parameter
// as "  name=<type>", its help (if any) after " - " from column 24, the lines sorted as
// strings, under "NAME options:".
//
//	overcommit options:
//	  cpu-pm=<bool (on/off)>
//	  mem-lock=<bool (on/off)>
func optsHelp(name string) string {
	g, err := CommandLineOption(name)
	if err != nil || len(g.Params) == 0 {
		return "There are no options for " + name + ".\n"
	}
	lines := make([]string, 0, len(g.Params))
	for _, p := range g.Params {
		l := "  " + p.Name + "=<" + optTypeName[p.Type] + ">"
		if p.Help != "" {
			l = fmt.Sprintf("%-24s - %s", l, p.Help)
		}
		lines = append(lines, l)
	}
	sort.Strings(lines)
	return name + " options:\n" + strings.Join(lines, "\n") + "\n"
}

// optTypeName is opt_type_to_string.
var optTypeName = map[ParamType]string{
	ParamString: "str",
	ParamBool:   "bool (on/off)",
	ParamNumber: "num",
	ParamSize:   "size",
}
