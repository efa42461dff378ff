package main

import (
	"errors"
	"fmt"
	"log"
	"slices"

	"github.com/tidwall/gjson"
)

// cpuCapture is the data query-cpu-model-expansion is computed from.
//
// Every x86 model expands to the same key set (plus "migratable" and
// "host-cache-info" on max and host), so one key order serves all models:
// fullKeys is the order of a full expansion of max, staticKeys indexes the
// subset a static expansion lists, in its own order. Values are QEMU's JSON
// texts, interned in values (index 0 means "absent"). Each model is the
// most common value per key (defaults) plus its own differences (deltas).
type cpuCapture struct {
	fullKeys   []string
	staticKeys []int
	values     []string
	valueIndex map[string]int
	defaults   []int
	deltas     [][]int // per CPU definition: key, value, key, value, ...
	aliases    [][]int // groups of keys that are one property (sse4.2, sse4-2, sse4_2)
	deps       []int   // from, to, from, to: "to" is cleared while "from" is off
	levelReqs  []int   // feature key, slot, value: the CPUID level a feature needs
	floors     [][]int // per CPU definition: its own value per level slot
	hidden     [][]int // per CPU definition: features of its definition that a dependency clears
	sources    []int   // keys that other features depend on
	never      []int   // features TCG clears whatever is asked (FEAT_KVM)
}

// deriveDeps finds the feature dependencies: with every feature of a static
// expansion set on (so that every dependency is satisfied), turning one
// feature off clears the features that depend on it, directly or not.
func (cc *cpuCapture) deriveDeps(s *session, maxVals []int, pos map[string]int) error {
	var features []string
	for _, ki := range cc.staticKeys {
		if r := cc.values[maxVals[ki]]; r == "true" || r == "false" {
			features = append(features, cc.fullKeys[ki])
		}
	}
	expand := func(props map[string]any) (map[string]string, error) {
		r, err := s.call("query-cpu-model-expansion", map[string]any{"type": "full",
			"model": map[string]any{"name": "max", "props": props}})
		if err != nil {
			return nil, fmt.Errorf("dependencies: %w", err)
		}
		out := map[string]string{}
		r.Get("model.props").ForEach(func(k, v gjson.Result) bool {
			out[k.String()] = v.Raw
			return true
		})
		return out, nil
	}
	allOn := map[string]any{}
	for _, f := range features {
		allOn[f] = true
	}
	on, err := expand(allOn)
	if err != nil {
		return err
	}
	for _, k := range cc.fullKeys {
		if slices.Contains(features, k) && on[k] == "false" {
			for _, a := range append([]int{pos[k]}, cc.aliasGroup(pos[k])...) {
				cc.never = appendUnique(cc.never, a)
			}
		}
	}
	slices.Sort(cc.never)
	for _, f := range features {
		allOn[f] = false
		off, err := expand(allOn)
		allOn[f] = true
		if err != nil {
			return err
		}
		for _, k := range cc.fullKeys {
			if on[k] == "true" && off[k] == "false" && !cc.aliasOf(pos[k], pos[f]) {
				cc.addDep(pos[f], pos[k])
			}
		}
	}
	for i := 0; i < len(cc.deps); i += 2 {
		cc.sources = appendUnique(cc.sources, cc.deps[i])
	}
	slices.Sort(cc.sources)
	return nil
}

// levelSlots are the CPUID level properties that x86_cpu_expand_features
// raises for the features present; level, xlevel and xlevel2 then follow
// min-level, min-xlevel and min-xlevel2 unless set explicitly.
var levelSlots = []string{"min-level", "min-xlevel", "min-xlevel2", "level-func7"}

func (c *catalog) captureExpansions(s *session, lg *log.Logger) error {
	cc := &c.cpu
	cc.valueIndex = map[string]int{"": 0}
	cc.values = []string{""}
	full := map[string]gjson.Result{}
	static := map[string]gjson.Result{}
	var names []string
	for _, d := range c.cpus {
		n := d.Get("name").String()
		names = append(names, n)
		for _, typ := range []string{"static", "full"} {
			r, err := s.call("query-cpu-model-expansion", map[string]any{"type": typ, "model": map[string]any{"name": n}})
			if err != nil {
				return fmt.Errorf("%s expansion of %s: %w", typ, n, err)
			}
			m := r.Get("model")
			want := n
			if typ == "static" {
				want = "base"
			}
			if m.Get("name").String() != want || len(keys(r)) != 1 || len(keys(m)) != 2 {
				return fmt.Errorf("%s expansion of %s: unexpected shape %.200s", typ, n, r.Raw)
			}
			if typ == "static" {
				static[n] = m.Get("props")
			} else {
				full[n] = m.Get("props")
			}
		}
	}
	cc.fullKeys = keys(full["max"])
	pos := map[string]int{}
	for i, k := range cc.fullKeys {
		pos[k] = i
	}
	var staticOrder []string
	for _, n := range names {
		ks := keys(full[n])
		if !isSubsequence(ks, cc.fullKeys) {
			return fmt.Errorf("full expansion of %s: key order differs from max", n)
		}
		sk := keys(static[n])
		if staticOrder == nil {
			staticOrder = sk
		} else if !slices.Equal(sk, staticOrder) {
			return fmt.Errorf("static expansion of %s: key order differs", n)
		}
		for _, k := range sk {
			if static[n].Get(gjsonEscape(k)).Raw != full[n].Get(gjsonEscape(k)).Raw {
				return fmt.Errorf("static and full expansions of %s disagree on %s", n, k)
			}
		}
	}
	for _, k := range staticOrder {
		i, ok := pos[k]
		if !ok {
			return fmt.Errorf("static key %s missing from full expansion", k)
		}
		cc.staticKeys = append(cc.staticKeys, i)
	}
	// Values per model, then the most common value per key as the default.
	vals := make([][]int, len(names))
	for mi, n := range names {
		vals[mi] = make([]int, len(cc.fullKeys))
		full[n].ForEach(func(k, v gjson.Result) bool {
			vals[mi][pos[k.String()]] = cc.intern(v.Raw)
			return true
		})
	}
	cc.defaults = make([]int, len(cc.fullKeys))
	for ki := range cc.fullKeys {
		count := map[int]int{}
		best := 0
		for mi := range names {
			v := vals[mi][ki]
			count[v]++
			if count[v] > count[best] || (count[v] == count[best] && v < best) {
				best = v
			}
		}
		cc.defaults[ki] = best
	}
	for mi := range names {
		var d []int
		for ki, v := range vals[mi] {
			if v != cc.defaults[ki] {
				d = append(d, ki, v)
			}
		}
		cc.deltas = append(cc.deltas, d)
	}
	if err := cc.deriveEffects(s, lg, names, vals, pos); err != nil {
		return err
	}
	return cc.deriveLevels(s, names, vals, pos)
}

// deriveLevels measures, for each feature, the CPUID levels it needs (on
// "base", where every level is 0), and for each model the levels of its
// definition (with every feature off) and the dependents its definition
// lists but a dependency clears (by turning each source on).
func (cc *cpuCapture) deriveLevels(s *session, names []string, vals [][]int, pos map[string]int) error {
	trueIdx, falseIdx := cc.valueIndex["true"], cc.valueIndex["false"]
	base := slices.Index(names, "base")
	if base < 0 {
		return errors.New("no base model")
	}
	levels := func(model string, props map[string]any) ([]int, map[string]string, error) {
		r, err := s.call("query-cpu-model-expansion", map[string]any{"type": "full",
			"model": map[string]any{"name": model, "props": props}})
		if err != nil {
			return nil, nil, fmt.Errorf("levels of %s: %w", model, err)
		}
		out := make([]int, len(levelSlots))
		for i, k := range levelSlots {
			out[i] = cc.intern(r.Get("model.props." + gjsonEscape(k)).Raw)
		}
		all := map[string]string{}
		r.Get("model.props").ForEach(func(k, v gjson.Result) bool {
			all[k.String()] = v.Raw
			return true
		})
		return out, all, nil
	}
	baseLevels, _, err := levels("base", nil)
	if err != nil {
		return err
	}
	var features []string
	for _, ki := range cc.staticKeys {
		if v := vals[base][ki]; v == trueIdx || v == falseIdx {
			features = append(features, cc.fullKeys[ki])
		}
	}
	for _, f := range features {
		got, _, err := levels("base", map[string]any{f: true})
		if err != nil {
			return err
		}
		for slot, v := range got {
			if v != baseLevels[slot] {
				cc.levelReqs = append(cc.levelReqs, pos[f], slot, v)
			}
		}
	}
	allOff := map[string]any{}
	for _, f := range features {
		allOff[f] = false
	}
	for mi, n := range names {
		floor, _, err := levels(n, allOff)
		if err != nil {
			return err
		}
		cc.floors = append(cc.floors, floor)
		var hidden []int
		for _, srcKey := range cc.sources {
			src := cc.fullKeys[srcKey]
			if vals[mi][srcKey] != falseIdx {
				continue
			}
			_, all, err := levels(n, map[string]any{src: true})
			if err != nil {
				return err
			}
			for k, v := range all {
				ki := pos[k]
				if v == "true" && vals[mi][ki] == falseIdx && !cc.aliasOf(ki, srcKey) && cc.hasDep(srcKey, ki) {
					hidden = appendUnique(hidden, ki)
				}
			}
		}
		slices.Sort(hidden)
		cc.hidden = append(cc.hidden, hidden)
	}
	return nil
}

func (cc *cpuCapture) aliasOf(a, b int) bool {
	if a == b {
		return true
	}
	for _, g := range cc.aliases {
		if slices.Contains(g, a) && slices.Contains(g, b) {
			return true
		}
	}
	return false
}

func (cc *cpuCapture) aliasGroup(k int) []int {
	for _, g := range cc.aliases {
		if slices.Contains(g, k) {
			return g
		}
	}
	return nil
}

func (cc *cpuCapture) hasDep(from, to int) bool {
	for i := 0; i+1 < len(cc.deps); i += 2 {
		if cc.deps[i] == from && cc.deps[i+1] == to {
			return true
		}
	}
	return false
}

func (cc *cpuCapture) addDep(from, to int) {
	for i := 0; i+1 < len(cc.deps); i += 2 {
		if cc.deps[i] == from && cc.deps[i+1] == to {
			return
		}
	}
	cc.deps = append(cc.deps, from, to)
}

// deriveEffects finds aliases and feature dependencies by asking QEMU to
// flip each boolean property of a model and watching what else changes.
// Turning a property off in a model where it is on reveals its aliases and
// the features that depend on it (QEMU's feature_dependencies table, applied
// by x86_cpu_expand_features); turning it on reveals aliases of features
// that no model enables.
func (cc *cpuCapture) deriveEffects(s *session, lg *log.Logger, names []string, vals [][]int, pos map[string]int) error {
	trueIdx, falseIdx := cc.valueIndex["true"], cc.valueIndex["false"]
	base := slices.Index(names, "max")
	if base < 0 {
		return errors.New("no max model")
	}
	off := map[int][]int{}
	on := map[int][]int{}
	for ki, k := range cc.fullKeys {
		if vals[base][ki] != trueIdx && vals[base][ki] != falseIdx {
			if !isBoolKeyAnywhere(vals, ki, trueIdx, falseIdx) {
				continue
			}
		}
		// A model where the key is on: max first, else the first one.
		mi := base
		if vals[mi][ki] != trueIdx {
			mi = -1
			for j := range names {
				if vals[j][ki] == trueIdx {
					mi = j
					break
				}
			}
		}
		if mi >= 0 {
			d, err := cc.flip(s, names[mi], k, false, vals[mi], pos)
			if err != nil {
				return err
			}
			off[ki] = d
		}
		if vals[base][ki] == falseIdx {
			d, err := cc.flip(s, "max", k, true, vals[base], pos)
			if err != nil {
				return err
			}
			on[ki] = d
		}
	}
	// Aliases: keys that always change together, whichever one is set.
	group := map[int]int{}
	var find func(int) int
	find = func(x int) int {
		if g, ok := group[x]; ok && g != x {
			r := find(g)
			group[x] = r
			return r
		}
		return x
	}
	mutual := func(m map[int][]int, a, b int) bool {
		return slices.Contains(m[a], b) && slices.Contains(m[b], a)
	}
	for a, ds := range off {
		for _, b := range ds {
			if mutual(off, a, b) || mutual(on, a, b) {
				ra, rb := find(a), find(b)
				if ra != rb {
					group[max(ra, rb)] = min(ra, rb)
				}
			}
		}
	}
	for a, ds := range on {
		for _, b := range ds {
			if mutual(on, a, b) {
				ra, rb := find(a), find(b)
				if ra != rb {
					group[max(ra, rb)] = min(ra, rb)
				}
			}
		}
	}
	members := map[int][]int{}
	for ki := range cc.fullKeys {
		r := find(ki)
		members[r] = append(members[r], ki)
	}
	for _, g := range members {
		if len(g) > 1 {
			cc.aliases = append(cc.aliases, g)
		}
	}
	slices.SortFunc(cc.aliases, func(a, b []int) int { return a[0] - b[0] })
	if err := cc.deriveDeps(s, vals[base], pos); err != nil {
		return err
	}
	lg.Printf("%d alias groups, %d dependencies", len(cc.aliases), len(cc.deps)/2)
	return nil
}

func isBoolKeyAnywhere(vals [][]int, ki, t, f int) bool {
	for _, v := range vals {
		if v[ki] == t || v[ki] == f {
			return true
		}
	}
	return false
}

// flip expands model with key=to and returns the other keys whose value
// changed from before. Only boolean changes count: the generator logs and
// ignores any other side effect.
func (cc *cpuCapture) flip(s *session, model, key string, to bool, before []int, pos map[string]int) ([]int, error) {
	r, err := s.call("query-cpu-model-expansion", map[string]any{"type": "full",
		"model": map[string]any{"name": model, "props": map[string]any{key: to}}})
	var qe *qmpError
	if errors.As(err, &qe) {
		// Not every boolean is settable on its own ("realized"); the
		// catalogue gives such a property no effect on the others.
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("flip %s.%s: %w", model, key, err)
	}
	var changed []int
	r.Get("model.props").ForEach(func(k, v gjson.Result) bool {
		ki := pos[k.String()]
		if k.String() != key && cc.intern(v.Raw) != before[ki] && (v.Raw == "true" || v.Raw == "false") {
			changed = append(changed, ki)
		}
		return true
	})
	slices.Sort(changed)
	return changed, nil
}

func (cc *cpuCapture) intern(raw string) int {
	if i, ok := cc.valueIndex[raw]; ok {
		return i
	}
	i := len(cc.values)
	cc.values = append(cc.values, raw)
	cc.valueIndex[raw] = i
	return i
}

// isSubsequence reports whether sub appears in seq in the same order.
func isSubsequence(sub, seq []string) bool {
	i := 0
	for _, s := range seq {
		if i < len(sub) && sub[i] == s {
			i++
		}
	}
	return i == len(sub)
}

// gjsonEscape escapes gjson path syntax in a property name ("sse4.2").
func gjsonEscape(k string) string {
	var b []byte
	for i := 0; i < len(k); i++ {
		switch k[i] {
		case '.', '*', '?', '|', '#', '@', '\\', '!', '=', '<', '>', '%':
			b = append(b, '\\')
		}
		b = append(b, k[i])
	}
	return string(b)
}

func appendUnique(s []int, v int) []int {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
