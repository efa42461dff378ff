package cmds

import (
	"tlcvm/dirtyrate"
	"tlcvm/qmp"
)

// The dirty-rate and dirty-limit commands (qapi/migration.json): calc-dirty-rate,
// query-dirty-rate, set-vcpu-dirty-limit, cancel-vcpu-dirty-limit, query-vcpu-dirty-limit.
// They call dirtyrate.Meter and dirtyrate.Limiter; every error is a GenericError.

// CalcDirtyRateArgs are calc-dirty-rate's arguments.
type CalcDirtyRateArgs struct {
	CalcTime    int64           `json:"calc-time"`
	SamplePages *int64          `json:"sample-pages,omitempty"`
	Mode        *dirtyrate.Mode `json:"mode,omitempty"`
}

// DirtyRateVcpu is one vCPU's rate in query-dirty-rate.
type DirtyRateVcpu struct {
	qmp.QAPIOrder
	ID        int64 `json:"id"`
	DirtyRate int64 `json:"dirty-rate"`
}

// DirtyRateInfo is query-dirty-rate's reply.
type DirtyRateInfo struct {
	qmp.QAPIOrder
	DirtyRate     *int64           `json:"dirty-rate,omitempty"`
	Status        dirtyrate.Status `json:"status"`
	StartTime     int64            `json:"start-time"`
	CalcTime      int64            `json:"calc-time"`
	SamplePages   uint64           `json:"sample-pages"`
	Mode          dirtyrate.Mode   `json:"mode"`
	VcpuDirtyRate *[]DirtyRateVcpu `json:"vcpu-dirty-rate,omitempty"`
}

// SetVcpuDirtyLimitArgs are set-vcpu-dirty-limit's arguments.
type SetVcpuDirtyLimitArgs struct {
	CPUIndex  *int64 `json:"cpu-index,omitempty"`
	DirtyRate uint64 `json:"dirty-rate"`
}

// CancelVcpuDirtyLimitArgs are cancel-vcpu-dirty-limit's arguments.
type CancelVcpuDirtyLimitArgs struct {
	CPUIndex *int64 `json:"cpu-index,omitempty"`
}

// DirtyLimitInfo is one element of query-vcpu-dirty-limit.
type DirtyLimitInfo struct {
	qmp.QAPIOrder
	CPUIndex    int64  `json:"cpu-index"`
	LimitRate   uint64 `json:"limit-rate"`
	CurrentRate uint64 `json:"current-rate"`
}

func dirtyRateInfo(in dirtyrate.Info) DirtyRateInfo {
	out := DirtyRateInfo{DirtyRate: in.DirtyRate, Status: in.Status, StartTime: in.StartTime,
		CalcTime: in.CalcTime, SamplePages: uint64(in.SamplePages), Mode: in.Mode}
	if in.VCPUDirtyRate != nil {
		rates := make([]DirtyRateVcpu, 0, len(in.VCPUDirtyRate))
		for _, r := range in.VCPUDirtyRate {
			rates = append(rates, DirtyRateVcpu{ID: r.ID, DirtyRate: r.DirtyRate})
		}
		out.VcpuDirtyRate = &rates
	}
	return out
}

// registerDirtyRate adds the commands when the composition root gave a meter and a limiter.
func registerDirtyRate(r *qmp.Registry, d *Deps) {
	if d.DirtyRate == nil || d.DirtyLimit == nil {
		return
	}
	r.Register(
		qmp.Command{Name: "calc-dirty-rate", Args: &CalcDirtyRateArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*CalcDirtyRateArgs)
				return nil, d.DirtyRate.Calc(dirtyrate.Config{CalcTime: a.CalcTime, SamplePages: a.SamplePages, Mode: a.Mode})
			}},
		qmp.Command{Name: "query-dirty-rate", Returns: DirtyRateInfo{},
			Run: func(*qmp.Call) (any, error) { return dirtyRateInfo(d.DirtyRate.Info()), nil }},
		qmp.Command{Name: "set-vcpu-dirty-limit", Args: &SetVcpuDirtyLimitArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*SetVcpuDirtyLimitArgs)
				return nil, d.DirtyLimit.SetLimit(a.CPUIndex, a.DirtyRate)
			}},
		qmp.Command{Name: "cancel-vcpu-dirty-limit", Args: &CancelVcpuDirtyLimitArgs{},
			Run: func(c *qmp.Call) (any, error) {
				return nil, d.DirtyLimit.CancelLimit(c.Args.(*CancelVcpuDirtyLimitArgs).CPUIndex)
			}},
		qmp.Command{Name: "query-vcpu-dirty-limit", Returns: []DirtyLimitInfo{},
			Run: func(*qmp.Call) (any, error) {
				out := []DirtyLimitInfo{}
				for _, l := range d.DirtyLimit.Query() {
					out = append(out, DirtyLimitInfo{CPUIndex: l.CPUIndex, LimitRate: l.LimitRate, CurrentRate: l.CurrentRate})
				}
				return out, nil
			}},
	)
}
