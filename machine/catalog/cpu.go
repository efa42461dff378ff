package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"tlcvm/compat/qdict"
	"tlcvm/machine/catalog/internal/pack"
)

// CPUModel is one entry of query-cpu-definitions (QAPI CpuDefinitionInfo)
// under TCG, fields in the order QEMU 7.2 emits them. UnavailableFeatures
// is never nil: QEMU always sends the list.
type CPUModel struct {
	Name                string   `json:"name"`
	Typename            string   `json:"typename"`
	UnavailableFeatures []string `json:"unavailable-features"`
	AliasOf             string   `json:"alias-of,omitempty"`
	Static              bool     `json:"static"`
	MigrationSafe       bool     `json:"migration-safe"`
	Deprecated          bool     `json:"deprecated"`
}

// CPUModels returns query-cpu-definitions, in QEMU's order. The slice and
// its feature lists are the caller's.
func CPUModels() []CPUModel {
	out := make([]CPUModel, len(cpuTable))
	for i, m := range cpuTable {
		m.UnavailableFeatures = slices.Clone(m.UnavailableFeatures)
		out[i] = m
	}
	return out
}

// LookupCPU finds a CPU model by its -cpu name ("qemu64", "max",
// "Skylake-Client-v4"). Names are case-sensitive, as in QEMU.
func LookupCPU(name string) (CPUModel, bool) {
	i, ok := cpus().index[name]
	if !ok {
		return CPUModel{}, false
	}
	m := cpuTable[i]
	m.UnavailableFeatures = slices.Clone(m.UnavailableFeatures)
	return m, true
}

// ExpansionType is query-cpu-model-expansion's "type".
type ExpansionType string

// The expansion types x86 supports.
const (
	ExpansionStatic ExpansionType = "static" // model "base" plus every feature and the static properties
	ExpansionFull   ExpansionType = "full"   // the model plus every writable property
)

// CPUModelExpansion is the return value of query-cpu-model-expansion.
type CPUModelExpansion struct {
	Model CPUModelInfo `json:"model"`
}

// CPUModelInfo is QAPI CpuModelInfo.
type CPUModelInfo struct {
	Name  string    `json:"name"`
	Props *CPUProps `json:"props,omitempty"`
}

// CPUProps is an expansion's property dictionary: names with QEMU's JSON
// values, kept in the order QEMU 7.2 sends them.
type CPUProps struct {
	names  []string
	values []json.RawMessage
}

// Len is the number of properties.
func (p *CPUProps) Len() int { return len(p.names) }

// Names returns the property names in wire order.
func (p *CPUProps) Names() []string { return slices.Clone(p.names) }

// Get returns a property's JSON value.
func (p *CPUProps) Get(name string) (json.RawMessage, bool) {
	i := slices.Index(p.names, name)
	if i < 0 {
		return nil, false
	}
	return p.values[i], true
}

// MarshalJSON writes the dictionary in QEMU's member order.
func (p *CPUProps) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, n := range p.names {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(n)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(p.values[i])
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// cpuData is the decoded form of the generated CPU tables.
type cpuData struct {
	index    map[string]int // model name -> cpuTable index
	key      map[string]int // property name -> cpuKeys index
	static   []int
	defaults []int
	group    [][]int // per key: its alias group (nil when none)
	deps     [][2]int
	slots    []int    // cpuKeys index of each cpuLevelSlots entry
	follow   []int    // per slot: the key that follows it (level, …), or -1
	reqs     [][3]int // feature key, slot, value index
	autoKey  int      // full-cpuid-auto-level
	never    []int    // features TCG clears (FEAT_KVM)
}

var cpus = sync.OnceValue(func() *cpuData {
	must := func(s string) []int {
		v, err := pack.Decode(s)
		if err != nil {
			panic("catalog: generated CPU table: " + err.Error())
		}
		return v
	}
	d := &cpuData{index: map[string]int{}, key: map[string]int{}}
	for i, m := range cpuTable {
		d.index[m.Name] = i
	}
	for i, k := range cpuKeys {
		d.key[k] = i
	}
	d.static = must(cpuStaticKeys)
	d.defaults = must(cpuDefaults)
	d.group = make([][]int, len(cpuKeys))
	for _, s := range cpuAliases {
		g := must(s)
		for _, k := range g {
			d.group[k] = g
		}
	}
	dep := must(cpuDeps)
	for i := 0; i+1 < len(dep); i += 2 {
		d.deps = append(d.deps, [2]int{dep[i], dep[i+1]})
	}
	followers := map[string]string{"min-level": "level", "min-xlevel": "xlevel", "min-xlevel2": "xlevel2"}
	for _, sl := range cpuLevelSlots {
		d.slots = append(d.slots, d.key[sl])
		f, ok := d.key[followers[sl]]
		if !ok {
			f = -1
		}
		d.follow = append(d.follow, f)
	}
	req := must(cpuLevelReqs)
	for i := 0; i+2 < len(req); i += 3 {
		d.reqs = append(d.reqs, [3]int{req[i], req[i+1], req[i+2]})
	}
	d.autoKey = d.key["full-cpuid-auto-level"]
	d.never = must(cpuNever)
	return d
})

// values returns model i's full expansion as cpuValues indexes per cpuKeys.
func (d *cpuData) values(i int) []int {
	v := slices.Clone(d.defaults)
	delta, err := pack.Decode(cpuDeltas[i])
	if err != nil {
		panic("catalog: generated CPU deltas: " + err.Error())
	}
	for j := 0; j+1 < len(delta); j += 2 {
		v[delta[j]] = delta[j+1]
	}
	return v
}

// ExpandCPU answers query-cpu-model-expansion for x86: the model name with
// optional props (a JSON object; nil or any other JSON is ignored) applied as QEMU's
// x86_cpu_from_model applies them — in QDict order, each boolean feature
// setting its aliases, then the feature dependencies — and expanded
// statically ("base" plus features) or fully (every writable property).
func ExpandCPU(typ ExpansionType, name string, props json.RawMessage) (CPUModelExpansion, error) {
	d := cpus()
	mi, ok := d.index[name]
	if !ok {
		return CPUModelExpansion{}, newError(ErrCPUNotFound, "CPU model '%s' not found", name)
	}
	vals := d.values(mi)
	if err := d.apply(vals, mi, props); err != nil {
		return CPUModelExpansion{}, err
	}
	out := &CPUProps{}
	emit := func(k int) {
		if vals[k] != 0 {
			out.names = append(out.names, cpuKeys[k])
			out.values = append(out.values, json.RawMessage(valueText(vals[k])))
		}
	}
	switch typ {
	case ExpansionStatic:
		for _, k := range d.static {
			emit(k)
		}
		return CPUModelExpansion{Model: CPUModelInfo{Name: "base", Props: out}}, nil
	case ExpansionFull:
		for k := range cpuKeys {
			emit(k)
		}
		return CPUModelExpansion{Model: CPUModelInfo{Name: name, Props: out}}, nil
	}
	return CPUModelExpansion{}, newError(ErrInvalidValue, "The requested expansion type is not supported")
}

// apply sets the user's props on model mi's values, then redoes what
// x86_cpu_expand_features does after them: the feature dependencies and the
// CPUID levels. Without props the stored values are already the answer.
func (d *cpuData) apply(vals []int, mi int, raw json.RawMessage) error {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	names, values, err := decodeObject(raw)
	if err != nil || len(names) == 0 {
		// QEMU 7.2 ignores props that are not a dictionary ("props": [1]
		// expands the bare model), and so does the catalogue.
		return nil
	}
	typename := cpuTable[mi].Typename
	trueIdx := extraValues.intern("true")
	hidden, err := pack.Decode(cpuHidden[mi])
	if err != nil {
		panic("catalog: generated CPU table: " + err.Error())
	}
	for _, k := range hidden {
		vals[k] = trueIdx // the definition has it; the dependency pass decides
	}
	set := map[int]bool{}
	for _, i := range qdict.Order(names) {
		k, ok := d.key[names[i]]
		if !ok || vals[k] == 0 {
			return newError(ErrPropertyNotFound, "Property '%s.%s' not found", typename, names[i])
		}
		v, err := convertValue(names[i], valueText(vals[k]), values[i])
		if err != nil {
			return err
		}
		idx := extraValues.intern(v)
		set[k] = true
		if d.group[k] != nil {
			for _, a := range d.group[k] {
				vals[a] = idx
			}
		} else {
			vals[k] = idx
		}
	}
	falseIdx := extraValues.intern("false")
	for _, k := range d.never {
		vals[k] = falseIdx
	}
	for changed := true; changed; {
		changed = false
		for _, dep := range d.deps {
			if valueText(vals[dep[0]]) == "false" && valueText(vals[dep[1]]) == "true" {
				vals[dep[1]] = falseIdx
				changed = true
			}
		}
	}
	d.levels(vals, mi, set)
	return nil
}

// levels recomputes min-level, min-xlevel, min-xlevel2 and level-func7 as
// the definition's value (or the user's) raised to what the features need
// (when full-cpuid-auto-level is on), and level, xlevel, xlevel2 following
// them unless set explicitly.
func (d *cpuData) levels(vals []int, mi int, set map[int]bool) {
	floor, err := pack.Decode(cpuFloors[mi])
	if err != nil {
		panic("catalog: generated CPU table: " + err.Error())
	}
	auto := valueText(vals[d.autoKey]) == "true"
	for slot, k := range d.slots {
		level := parseLevel(valueText(floor[slot]))
		if set[k] {
			level = parseLevel(valueText(vals[k]))
		}
		if auto {
			for _, r := range d.reqs {
				if r[1] == slot && valueText(vals[r[0]]) == "true" {
					level = max(level, parseLevel(valueText(r[2])))
				}
			}
		}
		idx := extraValues.intern(fmt.Sprint(level))
		vals[k] = idx
		if f := d.follow[slot]; f >= 0 && !set[f] {
			vals[f] = idx
		}
	}
}

func parseLevel(s string) uint64 {
	var v uint64
	fmt.Sscan(s, &v)
	return v
}

// extraValues interns values beyond the generated pool, so that a vals
// entry stays a small integer. It grows only with distinct user values.
var extraValues = valuePool{index: map[string]int{}}

type valuePool struct {
	mu    sync.Mutex
	index map[string]int
	texts []string
}

func (p *valuePool) intern(v string) int {
	for i, t := range cpuValues {
		if t == v && i != 0 {
			return i
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if i, ok := p.index[v]; ok {
		return i
	}
	i := len(cpuValues) + len(p.texts)
	p.texts = append(p.texts, v)
	p.index[v] = i
	return i
}

func valueText(i int) string {
	if i < len(cpuValues) {
		return cpuValues[i]
	}
	extraValues.mu.Lock()
	defer extraValues.mu.Unlock()
	return extraValues.texts[i-len(cpuValues)]
}

// convertValue checks v against the kind of the property's current value
// (cur) and returns the JSON QEMU would report back, or QEMU's visitor error.
func convertValue(name, cur string, v json.RawMessage) (string, error) {
	s := string(bytes.TrimSpace(v))
	switch {
	case cur == "true" || cur == "false":
		if s != "true" && s != "false" {
			return "", newError(ErrInvalidValue, "Invalid parameter type for '%s', expected: boolean", name)
		}
		return s, nil
	case strings.HasPrefix(cur, `"`):
		var str string
		if err := json.Unmarshal(v, &str); err != nil {
			return "", newError(ErrInvalidValue, "Invalid parameter type for '%s', expected: string", name)
		}
		return qdict.Quote(str), nil
	default:
		if !isIntegerLiteral(s) {
			return "", newError(ErrInvalidValue, "Invalid parameter type for '%s', expected: integer", name)
		}
		return s, nil
	}
}

func isIntegerLiteral(s string) bool {
	t := strings.TrimPrefix(s, "-")
	if t == "" || (len(t) > 1 && t[0] == '0') {
		return false
	}
	for _, c := range t {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// decodeObject parses a JSON object keeping its member order. A repeated
// member keeps its last value in its first position, as a QDict does.
func decodeObject(raw json.RawMessage) ([]string, []json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("not an object")
	}
	var names []string
	var values []json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		if i := slices.Index(names, k); i >= 0 {
			values[i] = v
			continue
		}
		names = append(names, k)
		values = append(values, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, err
	}
	if dec.More() {
		return nil, nil, fmt.Errorf("trailing data")
	}
	return names, values, nil
}
