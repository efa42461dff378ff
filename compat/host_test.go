package compat_test

import (
	"fmt"
	"reflect"
	"testing"

	"tlcvm/compat"
)

func parseWithUsers(argv ...string) (*compat.Config, error) {
	p := compat.Parser{LookupUser: func(name string) (uint32, uint32, bool) {
		if name == "nobody" {
			return 65534, 65534, true
		}
		return 0, 0, false
	}}
	return p.Parse(append([]string{"qemu-system-x86_64"}, argv...))
}

// TestRunAs: a user name first (the lookup's ids), else UID:GID in qemu_strtoul's syntax.
func TestRunAs(t *testing.T) {
	for _, tt := range []struct {
		arg  string
		want *compat.RunAs // nil: refused
	}{
		{"nobody", &compat.RunAs{Name: "nobody", UID: 65534, GID: 65534}},
		{"1000:100", &compat.RunAs{UID: 1000, GID: 100}},
		{"0x10:010", &compat.RunAs{UID: 16, GID: 8}},
		{" 5: 6", &compat.RunAs{UID: 5, GID: 6}},
		{"0:0", &compat.RunAs{}},
		{"4294967294:4294967294", &compat.RunAs{UID: 4294967294, GID: 4294967294}},
		{"4294967295:1", nil},
		{"1:4294967295", nil},
		{"-1:1", nil},
		{"1:-1", nil},
		{"12:", nil},
		{":12", nil},
		{"12", nil},
		{"12:13 ", nil},
		{"0x:1", nil},
		{"root", nil}, // not a user for this lookup
	} {
		c, err := parseWithUsers("-runas", tt.arg)
		if tt.want == nil {
			if err == nil {
				t.Errorf("-runas %q accepted: %+v", tt.arg, c.RunAs)
			}
			continue
		}
		if err != nil {
			t.Errorf("-runas %q: %v", tt.arg, err)
			continue
		}
		tt.want.Loc = "-runas " + tt.arg
		if !reflect.DeepEqual(c.RunAs, tt.want) {
			t.Errorf("-runas %q: %+v, want %+v", tt.arg, c.RunAs, tt.want)
		}
	}
}

// TestSandboxes: each -sandbox stays apart, with its sets; -chroot and -runas, last wins.
func TestSandboxes(t *testing.T) {
	c, err := parseWithUsers("-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
		"-sandbox", "off,spawn=nonsense", "-sandbox", "on,obsolete=allow,elevateprivileges=children",
		"-chroot", "/a", "-chroot", "/b", "-runas", "1:1", "-runas", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	want := []compat.Sandbox{
		{Loc: "-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny", Enable: true,
			Obsolete: true, Privileged: true, Spawn: true, ResourceControl: true},
		{Loc: "-sandbox off,spawn=nonsense", Obsolete: true},
		{Loc: "-sandbox on,obsolete=allow,elevateprivileges=children", Enable: true, Privileged: true, Children: true},
	}
	if !reflect.DeepEqual(c.Sandboxes, want) {
		t.Errorf("sandboxes\n got %+v\nwant %+v", c.Sandboxes, want)
	}
	if c.Chroot != "/b" || c.RunAs == nil || c.RunAs.Name != "nobody" {
		t.Errorf("chroot %q runas %+v", c.Chroot, c.RunAs)
	}
}

// FuzzRunAs: whatever -runas accepts as UID:GID reads back the same from its decimal form,
// and neither id is -1.
func FuzzRunAs(f *testing.F) {
	for _, s := range []string{"1:2", "0x10:010", " 5: 6", "4294967295:1", "-1:1", "12:", "nobody"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseWithUsers("-runas", s)
		if err != nil || c.RunAs.Name != "" {
			return
		}
		r := c.RunAs
		if r.UID == 1<<32-1 || r.GID == 1<<32-1 {
			t.Fatalf("%q: -1 accepted: %+v", s, r)
		}
		c2, err := parseWithUsers("-runas", fmt.Sprintf("%d:%d", r.UID, r.GID))
		if err != nil || c2.RunAs.UID != r.UID || c2.RunAs.GID != r.GID {
			t.Fatalf("%q -> %+v -> %v %+v", s, r, err, c2)
		}
	})
}
