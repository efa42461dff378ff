package compat

import (
	"fmt"
	"sort"
	"testing"
)

// compatLists are the QemuOpts lists compat parses with.
var compatLists = []*optsList{listMemory, listSMP, listBoot, listName, listAccel, listChardev, listMon,
	listDevice, listDrive, listNetdev, listNet, listNic, listGlobal, listRTC, listFwCfg, listSandbox,
	listMsg, listOvercomm, listTrace, listAction}

var optTypeParam = map[optType]ParamType{optString: ParamString, optBool: ParamBool, optNumber: ParamNumber, optSize: ParamSize}

// keyDifferences lists where l accepts other keys, or types them otherwise,
// than QEMU's group g.
func keyDifferences(l *optsList, g OptionGroup) []string {
	qemu := map[string]ParamType{}
	for _, p := range g.Params {
		qemu[p.Name] = p.Type
	}
	switch {
	case l.desc == nil && len(qemu) == 0:
		return nil
	case l.desc == nil:
		return []string{fmt.Sprintf("compat accepts any key, QEMU only its %d", len(qemu))}
	case len(qemu) == 0:
		return []string{"compat checks keys, QEMU accepts any"}
	}
	var out []string
	for k, t := range l.desc {
		qt, ok := qemu[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s: accepted by compat only", k))
		case optTypeParam[t] != qt:
			out = append(out, fmt.Sprintf("%s: %s in compat, %s in QEMU", k, optTypeParam[t], qt))
		}
	}
	for k := range qemu {
		if _, ok := l.desc[k]; !ok {
			out = append(out, fmt.Sprintf("%s: QEMU only", k))
		}
	}
	sort.Strings(out)
	return out
}

// TestCompatListsAreQEMUGroups requires every list compat parses with to be
// one of QEMU's groups, and logs (go test -v) where their keys differ: the
// table reports QEMU's keys, not compat's.
func TestCompatListsAreQEMUGroups(t *testing.T) {
	for _, l := range compatLists {
		g, err := CommandLineOption(l.name)
		if err != nil {
			t.Errorf("compat parses %q, QEMU has no such group: %v", l.name, err)
			continue
		}
		for _, d := range keyDifferences(l, g) {
			t.Logf("%s: %s", l.name, d)
		}
	}
}

func TestKeyDifferences(t *testing.T) {
	g := OptionGroup{Name: "g", Params: []Param{{Name: "a", Type: ParamBool}, {Name: "b", Type: ParamSize}}}
	tests := []struct {
		l    *optsList
		g    OptionGroup
		want string
	}{
		{&optsList{}, OptionGroup{}, "[]"},
		{&optsList{}, g, "[compat accepts any key, QEMU only its 2]"},
		{&optsList{desc: map[string]optType{"a": optBool}}, OptionGroup{}, "[compat checks keys, QEMU accepts any]"},
		{&optsList{desc: map[string]optType{"a": optBool, "b": optSize}}, g, "[]"},
		{&optsList{desc: map[string]optType{"a": optString, "c": optNumber}}, g,
			"[a: string in compat, boolean in QEMU b: QEMU only c: accepted by compat only]"},
	}
	for i, tt := range tests {
		if got := fmt.Sprint(keyDifferences(tt.l, tt.g)); got != tt.want {
			t.Errorf("%d: got %s, want %s", i, got, tt.want)
		}
	}
}
