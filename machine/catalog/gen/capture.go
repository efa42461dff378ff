package main

import (
	"errors"
	"fmt"
	"log"
	"slices"

	"github.com/tidwall/gjson"
)

// catalog is everything captured, in QEMU's order.
type catalog struct {
	version                          string
	machineHelp, cpuHelp, deviceHelp string
	machines                         []gjson.Result
	cpus                             []gjson.Result
	types                            []*typeInfo
	byName                           map[string]*typeInfo
	props                            []propRec
	propIndex                        map[propRec]int
	cpu                              cpuCapture
	interfaces                       []string
	devices                          []*deviceInfo // -device help, in its order
	noUser                           []*deviceInfo // the models info qdm adds, in its order
	categories                       []string      // info qdm's headings, in its order
	pci                              []*pciInfo    // PCI identities, in -device help order
	bin                              string
}

type typeInfo struct {
	name, parent string
	abstract     bool
	ifaces       []string // interfaces this type adds (not inherited, not implied)
	dev, qom     propResult
}

// propResult is one type's device-list-properties or qom-list-properties.
type propResult struct {
	errCode string // "" for a list; else one of the errXxx names below
	list    []int  // indexes into catalog.props
}

// The property errors QEMU 7.2 gives for known types; the generator refuses
// any other text so that a new behaviour is looked at, not stored blindly.
const (
	errNotDevice    = "propNotDevice"   // GenericError "Parameter 'typename' expects a non-abstract device type"
	errNotQOM       = "propNotQOM"      // GenericError "Parameter 'typename' expects a QOM type"
	errUnavailable  = "propUnavailable" // QEMU aborted or hung introspecting the type
	errNotFound     = "propNotFound"    // DeviceNotFound although qom-list-types lists it (a module that does not load)
	descNotDevice   = "Parameter 'typename' expects a non-abstract device type"
	descNotQOM      = "Parameter 'typename' expects a QOM type"
	errClassGeneric = "GenericError"
)

// propRec is one property record; def is its default-value as QEMU's JSON
// text ("" when absent). hasDesc distinguishes an absent description.
type propRec struct {
	name, typ, desc, def string
	hasDesc              bool
}

func (c *catalog) captureMachines(s *session, _ *log.Logger) error {
	r, err := s.call("query-machines", nil)
	if err != nil {
		return err
	}
	c.machines = r.Array()
	if len(c.machines) == 0 {
		return errors.New("no machines")
	}
	return nil
}

func (c *catalog) captureCPUs(s *session, _ *log.Logger) error {
	r, err := s.call("query-cpu-definitions", nil)
	if err != nil {
		return err
	}
	c.cpus = r.Array()
	if len(c.cpus) == 0 {
		return errors.New("no CPU models")
	}
	return nil
}

// captureTypes lists every type with qom-list-types abstract=true, then asks
// once per interface which types implement it and reduces the answer to the
// interfaces each type adds itself. It checks the reduction by recomputing
// every answer from the parent and interface tables.
func (c *catalog) captureTypes(s *session, lg *log.Logger) error {
	r, err := s.call("qom-list-types", map[string]any{"abstract": true})
	if err != nil {
		return err
	}
	c.byName = map[string]*typeInfo{}
	for _, t := range r.Array() {
		ti := &typeInfo{name: t.Get("name").String(), parent: t.Get("parent").String(), abstract: t.Get("abstract").Bool()}
		for _, k := range keys(t) {
			if k != "name" && k != "parent" && k != "abstract" {
				return fmt.Errorf("type %s: unknown key %q", ti.name, k)
			}
		}
		c.types = append(c.types, ti)
		c.byName[ti.name] = ti
	}
	// Non-abstract listing must be the abstract listing filtered.
	r, err = s.call("qom-list-types", nil)
	if err != nil {
		return err
	}
	var concrete, want []string
	for _, t := range r.Array() {
		concrete = append(concrete, t.Get("name").String())
	}
	for _, t := range c.types {
		if !t.abstract {
			want = append(want, t.name)
		}
	}
	if !slices.Equal(concrete, want) {
		return errors.New("qom-list-types without abstract is not the filtered abstract listing")
	}
	for _, t := range c.types {
		if t.name != "interface" && c.isA(t.name, "interface") {
			c.interfaces = append(c.interfaces, t.name)
		}
	}
	slices.Sort(c.interfaces)
	impl := map[string]map[string]bool{} // type -> interfaces it implements
	answers := map[string][]string{}
	for _, iface := range c.interfaces {
		r, err := s.call("qom-list-types", map[string]any{"implements": iface, "abstract": true})
		if err != nil {
			return err
		}
		for _, t := range r.Array() {
			n := t.Get("name").String()
			answers[iface] = append(answers[iface], n)
			if impl[n] == nil {
				impl[n] = map[string]bool{}
			}
			impl[n][iface] = true
		}
	}
	for _, t := range c.types {
		for iface := range impl[t.name] {
			if !c.isA(t.name, iface) && !(t.parent != "" && impl[t.parent][iface]) {
				t.ifaces = append(t.ifaces, iface)
			}
		}
		slices.Sort(t.ifaces)
	}
	// Check the tables against every answer, and against implements=interface,
	// where QEMU's ambiguity rule drops types with two or more interfaces.
	r, err = s.call("qom-list-types", map[string]any{"implements": "interface", "abstract": true})
	if err != nil {
		return err
	}
	for _, t := range r.Array() {
		answers["interface"] = append(answers["interface"], t.Get("name").String())
	}
	for _, iface := range append([]string{"interface"}, c.interfaces...) {
		var got []string
		for _, t := range c.types {
			if c.implements(t.name, iface) {
				got = append(got, t.name)
			}
		}
		if !slices.Equal(got, answers[iface]) {
			return fmt.Errorf("interface tables do not reproduce implements=%s", iface)
		}
	}
	lg.Printf("%d types, %d interfaces", len(c.types), len(c.interfaces))
	return nil
}

// isA reports whether name is target or has it as an ancestor.
func (c *catalog) isA(name, target string) bool {
	for t := c.byName[name]; t != nil; t = c.byName[t.parent] {
		if t.name == target {
			return true
		}
	}
	return false
}

// implements is the catalogue's own rule (catalog.Implements), restated here
// so that the generator can check its tables before it writes them: QEMU's
// object_class_dynamic_cast, where a cast to an interface must match exactly
// one of the class's interfaces (own or inherited).
func (c *catalog) implements(name, target string) bool {
	if name == target {
		return true
	}
	var entries []string
	for t := c.byName[name]; t != nil; t = c.byName[t.parent] {
		entries = append(entries, t.ifaces...)
	}
	if len(entries) > 0 && c.isA(target, "interface") {
		n := 0
		for _, e := range entries {
			if c.isA(e, target) {
				n++
			}
		}
		return n == 1
	}
	return c.isA(name, target)
}

// captureProperties asks qom-list-properties for every type and
// device-list-properties for every type that implements "device".
func (c *catalog) captureProperties(s *session, lg *log.Logger) error {
	c.propIndex = map[propRec]int{}
	for _, t := range c.types {
		var err error
		if t.qom, err = c.propList(s, "qom-list-properties", t.name); err != nil {
			return err
		}
		if c.isA(t.name, "device") {
			if t.dev, err = c.propList(s, "device-list-properties", t.name); err != nil {
				return err
			}
		} else {
			t.dev = propResult{errCode: errNotDevice}
		}
	}
	lg.Printf("%d distinct property records", len(c.props))
	return nil
}

func (c *catalog) propList(s *session, cmd, typename string) (propResult, error) {
	r, err := s.call(cmd, map[string]any{"typename": typename})
	if errors.Is(err, errDied) {
		// Some types only break a process that introspected others before
		// them; ask a fresh one so the answer does not depend on history.
		r, err = s.call(cmd, map[string]any{"typename": typename})
	}
	var qe *qmpError
	switch {
	case errors.Is(err, errDied):
		return propResult{errCode: errUnavailable}, nil
	case errors.As(err, &qe) && qe.Class == errClassGeneric && qe.Desc == descNotDevice:
		return propResult{errCode: errNotDevice}, nil
	case errors.As(err, &qe) && qe.Class == errClassGeneric && qe.Desc == descNotQOM:
		return propResult{errCode: errNotQOM}, nil
	case errors.As(err, &qe) && qe.Class == "DeviceNotFound":
		return propResult{errCode: errNotFound}, nil
	case err != nil:
		return propResult{}, fmt.Errorf("%s %s: %w", cmd, typename, err)
	}
	var res propResult
	res.list = []int{}
	for _, p := range r.Array() {
		rec := propRec{name: p.Get("name").String(), typ: p.Get("type").String()}
		for _, k := range keys(p) {
			switch k {
			case "name", "type":
			case "description":
				rec.desc, rec.hasDesc = p.Get(k).String(), true
			case "default-value":
				rec.def = p.Get(k).Raw
			default:
				return res, fmt.Errorf("%s %s: unknown key %q", cmd, typename, k)
			}
		}
		if rec.hasDesc && rec.desc == "" {
			return res, fmt.Errorf("%s %s: empty description on %s", cmd, typename, rec.name)
		}
		i, ok := c.propIndex[rec]
		if !ok {
			i = len(c.props)
			c.props = append(c.props, rec)
			c.propIndex[rec] = i
		}
		res.list = append(res.list, i)
	}
	return res, nil
}

// keys returns an object's member names in wire order.
func keys(r gjson.Result) []string {
	var ks []string
	r.ForEach(func(k, _ gjson.Result) bool {
		ks = append(ks, k.String())
		return true
	})
	return ks
}
