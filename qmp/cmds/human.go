package cmds

import (
	"encoding/json"

	"tlcvm/qmp"
)

// HumanArgs are human-monitor-command's arguments.
type HumanArgs struct {
	CommandLine string `json:"command-line"`
	CPUIndex    *int64 `json:"cpu-index,omitempty"`
}

func registerHuman(r *qmp.Registry, d *Deps) {
	r.Register(qmp.Command{Name: "human-monitor-command", Args: &HumanArgs{}, Returns: "",
		Features: []string{"savevm-monitor-nodes"},
		Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*HumanArgs)
			if a.CPUIndex != nil && !d.cpuExists(*a.CPUIndex) {
				return nil, qmp.Errorf("GenericError", "Parameter 'cpu-index' expects a CPU number")
			}
			exec := func(name string, args any) ([]byte, error) {
				raw, err := c.Exec(name, args)
				return json.RawMessage(raw), err
			}
			if a.CPUIndex != nil {
				return d.Human.RunOnCPU(exec, int(*a.CPUIndex), a.CommandLine), nil
			}
			return d.Human.Run(exec, a.CommandLine), nil
		}})
}
