package compat_test

import (
	"errors"
	"testing"

	"tlcvm/compat"
)

func TestCommandLineOption(t *testing.T) {
	tests := []struct {
		name    string
		params  int    // -1: not found
		first   string // first parameter's name
		module  bool
		lookFor compat.Param // a parameter that must be there, exactly
	}{
		{name: "machine", params: 20, first: "loadparm", lookFor: compat.Param{Name: "kvm_shadow_mem", Type: compat.ParamSize, Help: "KVM shadow MMU size"}},
		{name: "drive", params: 45, first: "copy-on-read", lookFor: compat.Param{Name: "file", Type: compat.ParamString, Help: "file name"}},
		{name: "chardev", params: 37, first: "abstract", lookFor: compat.Param{Name: "tight", Type: compat.ParamBool, Default: "on"}},
		{name: "spice", params: 32, first: "rendernode", module: true, lookFor: compat.Param{Name: "gl", Type: compat.ParamBool}},
		{name: "memory", params: 3, first: "maxmem", lookFor: compat.Param{Name: "slots", Type: compat.ParamNumber}},
		{name: "smp-opts", params: 7, first: "maxcpus"},
		{name: "boot-opts", params: 7, first: "strict"},
		{name: "device", params: 0},
		{name: "", params: 0}, // the semihosting-config stub: a group with an empty name
		{name: "smp", params: -1},
		{name: "Drive", params: -1},
		{name: "nope", params: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := compat.CommandLineOption(tt.name)
			if tt.params < 0 {
				if !errors.Is(err, compat.ErrInvalidOptionName) || err.Error() != "invalid option name: "+tt.name {
					t.Fatalf("err = %v, want QEMU's invalid option name", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g.Name != tt.name || len(g.Params) != tt.params || g.Module != tt.module {
				t.Fatalf("got %q with %d params (module %v)", g.Name, len(g.Params), g.Module)
			}
			if tt.first != "" && g.Params[0].Name != tt.first {
				t.Errorf("first parameter %q, want %q", g.Params[0].Name, tt.first)
			}
			if tt.lookFor.Name != "" {
				found := false
				for _, p := range g.Params {
					found = found || p == tt.lookFor
				}
				if !found {
					t.Errorf("no %+v", tt.lookFor)
				}
			}
		})
	}
}

func TestCommandLineOptions(t *testing.T) {
	gs := compat.CommandLineOptions()
	if len(gs) != 36 || gs[0].Name != "machine" || gs[len(gs)-1].Name != "drive" {
		t.Fatalf("%d groups, %q … %q", len(gs), gs[0].Name, gs[len(gs)-1].Name)
	}
	var modules []string
	werror := 0
	for _, g := range gs {
		if g.Module {
			modules = append(modules, g.Name)
		}
		for _, p := range g.Params {
			switch p.Type {
			case compat.ParamString, compat.ParamBool, compat.ParamNumber, compat.ParamSize:
			default:
				t.Errorf("%s.%s: type %q", g.Name, p.Name, p.Type)
			}
			if g.Name == "drive" && p.Name == "werror" {
				werror++
			}
		}
	}
	if len(modules) != 1 || modules[0] != "spice" {
		t.Errorf("module groups %q, want [spice]", modules)
	}
	if werror != 2 {
		t.Errorf("drive lists werror %d times; QEMU's merged descriptions list it twice", werror)
	}
	// The results are copies.
	gs[0].Name, gs[0].Params[0].Name = "x", "y"
	again := compat.CommandLineOptions()
	if again[0].Name != "machine" || again[0].Params[0].Name != "loadparm" {
		t.Fatal("CommandLineOptions shares its table")
	}
	g, _ := compat.CommandLineOption("machine")
	g.Params[0].Name = "z"
	if g, _ := compat.CommandLineOption("machine"); g.Params[0].Name != "loadparm" {
		t.Fatal("CommandLineOption shares its table")
	}
}

func FuzzCommandLineOption(f *testing.F) {
	for _, s := range []string{"", "drive", "smp-opts", "nope", "spice", "machine\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		g, err := compat.CommandLineOption(name)
		if err != nil {
			if !errors.Is(err, compat.ErrInvalidOptionName) || err.Error() != "invalid option name: "+name {
				t.Fatalf("%q: %v", name, err)
			}
			return
		}
		if g.Name != name {
			t.Fatalf("%q: got group %q", name, g.Name)
		}
	})
}
