package cmds

import (
	"errors"

	"tlcvm/compat"
	"tlcvm/qmp"
)

// CommandLineParameterType is QAPI's enum of QemuOpts parameter types.
type CommandLineParameterType string

// EnumValues lists the values in QAPI order.
func (CommandLineParameterType) EnumValues() []string {
	return []string{"string", "boolean", "number", "size"}
}

// CommandLineParameterInfo is one parameter of an option group; help and default are
// absent when QEMU has none.
type CommandLineParameterInfo struct {
	qmp.QAPIOrder
	Name    string                   `json:"name"`
	Type    CommandLineParameterType `json:"type"`
	Help    *string                  `json:"help,omitempty"`
	Default *string                  `json:"default,omitempty"`
}

// CommandLineOptionInfo is one element of query-command-line-options.
type CommandLineOptionInfo struct {
	qmp.QAPIOrder
	Option     string                     `json:"option"`
	Parameters []CommandLineParameterInfo `json:"parameters"`
}

// CommandLineOptionsArgs are query-command-line-options's arguments.
type CommandLineOptionsArgs struct {
	Option *string `json:"option,omitempty"`
}

func optionInfo(g compat.OptionGroup) CommandLineOptionInfo {
	out := CommandLineOptionInfo{Option: g.Name, Parameters: make([]CommandLineParameterInfo, len(g.Params))}
	for i, p := range g.Params {
		pi := CommandLineParameterInfo{Name: p.Name, Type: CommandLineParameterType(p.Type)}
		if p.Help != "" {
			pi.Help = &p.Help
		}
		if p.Default != "" {
			pi.Default = &p.Default
		}
		out.Parameters[i] = pi
	}
	return out
}

// registerCmdline adds query-command-line-options (legal in every run state and under
// --preconfig). It answers from compat's table, captured from QEMU 7.2 after its modules
// loaded: the "spice" group is always listed, as libvirt sees it (QEMU lists it only once
// -spice or qom-list-types has loaded ui-spice-core).
func registerCmdline(r *qmp.Registry, _ *Deps) {
	r.Register(qmp.Command{Name: "query-command-line-options", Args: &CommandLineOptionsArgs{},
		Returns: []CommandLineOptionInfo{}, AllowPreconfig: true,
		Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*CommandLineOptionsArgs)
			if a.Option == nil {
				gs := compat.CommandLineOptions()
				out := make([]CommandLineOptionInfo, len(gs))
				for i, g := range gs {
					out[i] = optionInfo(g)
				}
				return out, nil
			}
			g, err := compat.CommandLineOption(*a.Option)
			if errors.Is(err, compat.ErrInvalidOptionName) {
				return nil, qmp.GenericError("%v", err)
			}
			if err != nil {
				return nil, err
			}
			return []CommandLineOptionInfo{optionInfo(g)}, nil
		}},
	)
}
