package libvirttest

import (
	"encoding/xml"
	"fmt"
	"sort"
	"strings"
)

// State is the output of `virsh domstate --reason`.
type State struct{ State, Reason string }

func (s State) String() string { return s.State + " (" + s.Reason + ")" }

// ParseState parses "running (booted)" (the reason is optional).
func ParseState(out string) (State, error) {
	s := strings.TrimSpace(out)
	if s == "" || strings.ContainsAny(s, "\n") {
		return State{}, fmt.Errorf("%w: domstate %q", ErrParse, out)
	}
	if i := strings.LastIndex(s, " ("); i >= 0 && strings.HasSuffix(s, ")") {
		return State{State: s[:i], Reason: s[i+2 : len(s)-1]}, nil
	}
	return State{State: s}, nil
}

// ParseKV parses "Key:   value" lines (dominfo, domblkinfo). Lines
// without a colon are an error; blank lines are skipped.
func ParseKV(out string) (map[string]string, error) {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("%w: line %q", ErrParse, l)
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return m, nil
}

// ParseBlkList parses `virsh domblklist` (with or without its header) into
// target → source.
func ParseBlkList(out string) (map[string]string, error) {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || strings.HasPrefix(f[0], "---") || (f[0] == "Target" && len(f) == 2 && f[1] == "Source") {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: domblklist line %q", ErrParse, l)
		}
		m[f[0]] = f[1]
	}
	return m, nil
}

// ParseStats parses one domain's `virsh domstats` block into key → value.
func ParseStats(out string) (map[string]string, error) {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "Domain: ") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: domstats line %q", ErrParse, l)
		}
		m[k] = v
	}
	return m, nil
}

// Caps is the part of `virsh domcapabilities` the suite compares.
type Caps struct {
	Path      string
	Machine   string   // the canonical machine of this domcapabilities
	CPUModels []string // custom-mode models, usable or not
	Devices   map[string][]string
	Features  []string // supported <features> children
}

type xmlEnum struct {
	Name   string   `xml:"name,attr"`
	Values []string `xml:"value"`
}

type xmlCaps struct {
	Path    string `xml:"path"`
	Machine string `xml:"machine"`
	CPU     struct {
		Modes []struct {
			Name   string `xml:"name,attr"`
			Models []struct {
				Name string `xml:",chardata"`
			} `xml:"model"`
		} `xml:"mode"`
	} `xml:"cpu"`
	Devices struct {
		Inner []struct {
			XMLName   xml.Name
			Supported string    `xml:"supported,attr"`
			Enums     []xmlEnum `xml:"enum"`
		} `xml:",any"`
	} `xml:"devices"`
	Features struct {
		Inner []struct {
			XMLName   xml.Name
			Supported string `xml:"supported,attr"`
		} `xml:",any"`
	} `xml:"features"`
}

// ParseCaps parses domcapabilities XML. Devices maps "disk.bus",
// "video.modelType", … to their values; a supported device without enums
// maps "NAME" to nil.
func ParseCaps(data []byte) (Caps, error) {
	var x xmlCaps
	if err := xml.Unmarshal(data, &x); err != nil {
		return Caps{}, fmt.Errorf("%w: domcapabilities: %v", ErrParse, err)
	}
	c := Caps{Path: x.Path, Machine: x.Machine, Devices: map[string][]string{}}
	for _, m := range x.CPU.Modes {
		if m.Name != "custom" {
			continue
		}
		for _, mod := range m.Models {
			c.CPUModels = append(c.CPUModels, strings.TrimSpace(mod.Name))
		}
	}
	sort.Strings(c.CPUModels)
	for _, d := range x.Devices.Inner {
		if d.Supported != "yes" {
			continue
		}
		c.Devices[d.XMLName.Local] = nil
		for _, e := range d.Enums {
			v := append([]string(nil), e.Values...)
			sort.Strings(v)
			c.Devices[d.XMLName.Local+"."+e.Name] = v
		}
	}
	for _, f := range x.Features.Inner {
		if f.Supported == "yes" {
			c.Features = append(c.Features, f.XMLName.Local)
		}
	}
	sort.Strings(c.Features)
	return c, nil
}

// Missing returns the elements of want absent from have (both any order).
func Missing(want, have []string) []string {
	h := map[string]bool{}
	for _, s := range have {
		h[s] = true
	}
	var out []string
	for _, s := range want {
		if !h[s] {
			out = append(out, s)
		}
	}
	return out
}
