package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseUUID(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87", true},
		{"324E6EAF-D1D1-4BF6-BF41-B9BB6C91FB87", true},
		{"324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb8", false},
		{"324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb877", false},
		{"324e6eaf d1d1-4bf6-bf41-b9bb6c91fb87", false},
		{"324e6eag-d1d1-4bf6-bf41-b9bb6c91fb87", false},
		{"auto", false},
		{"", false},
	} {
		var u [16]byte
		if got := parseUUID(c.in, &u); got != c.ok {
			t.Errorf("parseUUID(%q) = %v, want %v", c.in, got, c.ok)
		}
	}
}

// FuzzParseUUID: whatever the -device vmgenid,guid= text, parsing never panics, and what
// parses prints back as the same UUID in lower case.
func FuzzParseUUID(f *testing.F) {
	f.Add("324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87")
	f.Add("324E6EAF-D1D1-4BF6-BF41-B9BB6C91FB87")
	f.Add("x")
	f.Fuzz(func(t *testing.T, s string) {
		var u [16]byte
		if !parseUUID(s, &u) {
			return
		}
		if got := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]); got != strings.ToLower(s) {
			t.Fatalf("%q parsed as %s", s, got)
		}
	})
}
