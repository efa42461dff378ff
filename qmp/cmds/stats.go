package cmds

import "tlcvm/qmp"

// The statistics commands (qapi/stats.json): query-stats and query-stats-schemas.
//
// QEMU 7.2 answers from the providers that registered stats callbacks; the only provider
// is KVM's binary stats file descriptors, registered when KVM is the accelerator. Under
// TCG both commands return [] whatever the filter (checked against the binary), and
// libvirt's domstats then reports its KVM-derived fields (cpu.haltpoll.*) as 0. tlcvm has
// no KVM stats descriptors even when it reports KVM as the accelerator, so it answers as
// QEMU under TCG, after the arguments are checked exactly as QEMU checks them.

// StatsTarget is QAPI's StatsTarget (7.2: vm, vcpu).
type StatsTarget string

// EnumValues implements qmp.Enum.
func (StatsTarget) EnumValues() []string { return []string{"vm", "vcpu"} }

// StatsProvider is QAPI's StatsProvider (7.2: kvm).
type StatsProvider string

// EnumValues implements qmp.Enum.
func (StatsProvider) EnumValues() []string { return []string{"kvm"} }

// StatsRequest asks one provider for some (or all) of its statistics.
type StatsRequest struct {
	Provider StatsProvider `json:"provider"`
	Names    *[]string     `json:"names,omitempty"`
}

// StatsVCPUFilter is the vcpu target's filter: QOM paths of vCPUs.
type StatsVCPUFilter struct {
	Vcpus *[]string `json:"vcpus,omitempty"`
}

// StatsFilter is query-stats' argument, a flat union on target.
type StatsFilter struct {
	Target    StatsTarget     `json:"target"`
	Providers *[]StatsRequest `json:"providers,omitempty"`
	Variant   any             `json:"-" qapi:"variant"`
}

// UnionTag implements qmp.Union.
func (StatsFilter) UnionTag() string { return "target" }

// UnionVariants implements qmp.Union.
func (StatsFilter) UnionVariants() map[string]any {
	return map[string]any{"vcpu": StatsVCPUFilter{}}
}

// StatsValue is QAPI's alternate of int, bool and [int] (a histogram).
type StatsValue struct {
	Scalar    *int64
	Boolean   *bool
	Histogram []int64
}

// EncodeValue implements qmp.ValueEncoder.
func (v StatsValue) EncodeValue() *qmp.Value {
	switch {
	case v.Scalar != nil:
		return qmp.Int(*v.Scalar)
	case v.Boolean != nil:
		return qmp.Bool(*v.Boolean)
	}
	a := qmp.Array()
	for _, n := range v.Histogram {
		a.Append(qmp.Int(n))
	}
	return a
}

// QAPISchema implements qmp.SchemaProvider.
func (StatsValue) QAPISchema(ref func(any) string) *qmp.Value {
	members := qmp.Array()
	for _, zero := range []any{int64(0), false, []int64{}} {
		m := qmp.Object()
		m.Set("type", qmp.String(ref(zero)))
		members.Append(m)
	}
	n := qmp.Object()
	n.Set("members", members)
	n.Set("meta-type", qmp.String("alternate"))
	return n
}

// Stats is one statistic's value.
type Stats struct {
	qmp.QAPIOrder
	Name  string     `json:"name"`
	Value StatsValue `json:"value"`
}

// StatsResult is one provider's statistics for one object.
type StatsResult struct {
	qmp.QAPIOrder
	Provider StatsProvider `json:"provider"`
	QOMPath  string        `json:"qom-path,omitempty"`
	Stats    []Stats       `json:"stats"`
}

// StatsSchemaArgs are query-stats-schemas' arguments.
type StatsSchemaArgs struct {
	Provider *StatsProvider `json:"provider,omitempty"`
}

// StatsType, StatsUnit: QAPI's enums describing a statistic.
type (
	StatsType string
	StatsUnit string
)

// EnumValues implements qmp.Enum.
func (StatsType) EnumValues() []string {
	return []string{"cumulative", "instant", "peak", "linear-histogram", "log2-histogram"}
}

// EnumValues implements qmp.Enum.
func (StatsUnit) EnumValues() []string { return []string{"bytes", "seconds", "cycles", "boolean"} }

// StatsSchemaValue describes one statistic.
type StatsSchemaValue struct {
	qmp.QAPIOrder
	Name       string     `json:"name"`
	Type       StatsType  `json:"type"`
	Unit       *StatsUnit `json:"unit,omitempty"`
	Base       *int8      `json:"base,omitempty"`
	Exponent   int16      `json:"exponent"`
	BucketSize *uint32    `json:"bucket-size,omitempty"`
}

// StatsSchema is one provider's statistics for one target.
type StatsSchema struct {
	qmp.QAPIOrder
	Provider StatsProvider      `json:"provider"`
	Target   StatsTarget        `json:"target"`
	Stats    []StatsSchemaValue `json:"stats"`
}

// registerStats adds query-stats and query-stats-schemas: no provider is registered.
func registerStats(r *qmp.Registry) {
	r.Register(
		qmp.Command{Name: "query-stats", Args: &StatsFilter{}, Returns: []StatsResult{},
			Run: func(*qmp.Call) (any, error) { return []StatsResult{}, nil }},
		qmp.Command{Name: "query-stats-schemas", Args: &StatsSchemaArgs{}, Returns: []StatsSchema{},
			Run: func(*qmp.Call) (any, error) { return []StatsSchema{}, nil }},
	)
}
