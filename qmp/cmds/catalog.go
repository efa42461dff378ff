package cmds

import (
	"encoding/json"
	"errors"

	"tlcvm/machine/catalog"
	"tlcvm/qmp"
)

// CpuModelExpansionType is QAPI's enum.
type CpuModelExpansionType string

// EnumValues lists the values in QAPI order.
func (CpuModelExpansionType) EnumValues() []string { return []string{"static", "full"} }

// CpuModelInfo is QAPI's CpuModelInfo as an argument.
type CpuModelInfo struct {
	Name  string          `json:"name"`
	Props json.RawMessage `json:"props,omitempty"`
}

// CpuModelExpansionInfo is query-cpu-model-expansion's reply.
type CpuModelExpansionInfo struct {
	Model CpuModelInfo `json:"model"`
}

// CPUModelExpansionArgs are query-cpu-model-expansion's arguments.
type CPUModelExpansionArgs struct {
	Type  CpuModelExpansionType `json:"type"`
	Model CpuModelInfo          `json:"model"`
}

// QomListTypesArgs are qom-list-types's arguments.
type QomListTypesArgs struct {
	Implements *string `json:"implements,omitempty"`
	Abstract   *bool   `json:"abstract,omitempty"`
}

// TypenameArgs are the arguments of qom-list-properties and device-list-properties.
type TypenameArgs struct {
	Typename string `json:"typename"`
}

func registerCatalog(r *qmp.Registry, d *Deps) {
	r.Register(
		qmp.Command{Name: "query-machines", Returns: []catalog.Machine{}, AllowPreconfig: true,
			Run: func(*qmp.Call) (any, error) { return catalog.Machines(), nil }},
		qmp.Command{Name: "query-cpu-definitions", Returns: []catalog.CPUModel{}, AllowPreconfig: true,
			Run: func(*qmp.Call) (any, error) { return catalog.CPUModels(), nil }},
		qmp.Command{Name: "query-cpu-model-expansion", Args: &CPUModelExpansionArgs{},
			Returns: CpuModelExpansionInfo{}, AllowPreconfig: true,
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*CPUModelExpansionArgs)
				exp, err := catalog.ExpandCPU(catalog.ExpansionType(a.Type), a.Model.Name, a.Model.Props)
				if errors.Is(err, catalog.ErrCPUNotFound) {
					return nil, qmp.GenericError("%v", err)
				}
				if err != nil {
					return nil, err
				}
				out := CpuModelExpansionInfo{Model: CpuModelInfo{Name: exp.Model.Name}}
				if exp.Model.Props != nil {
					if out.Model.Props, err = exp.Model.Props.MarshalJSON(); err != nil {
						return nil, err
					}
				}
				return out, nil
			}},
		qmp.Command{Name: "qom-list-types", Args: &QomListTypesArgs{}, Returns: []catalog.Type{}, AllowPreconfig: true,
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*QomListTypesArgs)
				impl, abstract := "", false
				if a.Implements != nil {
					impl = *a.Implements
				}
				if a.Abstract != nil {
					abstract = *a.Abstract
				}
				return catalog.ListTypes(impl, abstract), nil
			}},
		qmp.Command{Name: "qom-list-properties", Args: &TypenameArgs{}, Returns: []catalog.Property{}, AllowPreconfig: true,
			Run: func(c *qmp.Call) (any, error) {
				// An unknown type is DeviceNotFound "Class 'x' not found", as in QEMU.
				return catalog.ObjectProperties(c.Args.(*TypenameArgs).Typename)
			}},
		qmp.Command{Name: "device-list-properties", Args: &TypenameArgs{}, Returns: []catalog.Property{}, AllowPreconfig: true,
			Run: func(c *qmp.Call) (any, error) {
				return catalog.DeviceProperties(c.Args.(*TypenameArgs).Typename)
			}},
	)
}
