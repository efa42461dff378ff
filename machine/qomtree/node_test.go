package qomtree

import "testing"

func testTree() *Node {
	root := &Node{Type: "container"}
	m := root.Ensure("machine", "pc-i440fx-7.2-machine")
	u := m.Ensure("unattached", "container")
	for _, d := range []string{"device[10]", "device[2]", "device[1]"} {
		u.Ensure(d, "isa-pit").Ensure("lapic", "apic")
	}
	u.Ensure("bus master[0]", "memory-region")
	u.Ensure("bus master container[0]", "memory-region")
	root.Ensure("objects", "container").Ensure("m0", "memory-backend-ram")
	return root
}

func TestPrint(t *testing.T) {
	root := testTree()
	cases := []struct{ path, want string }{
		{"", "/machine (pc-i440fx-7.2-machine)\n  /unattached (container)\n" +
			"    /bus master container[0] (memory-region)\n    /bus master[0] (memory-region)\n" +
			"    /device[10] (isa-pit)\n      /lapic (apic)\n    /device[1] (isa-pit)\n      /lapic (apic)\n" +
			"    /device[2] (isa-pit)\n      /lapic (apic)\n"},
		{"/objects", "/objects (container)\n  /m0 (memory-backend-ram)\n"},
		{"m0", "/m0 (memory-backend-ram)\n"},
		{"unattached/device[2]", "/device[2] (isa-pit)\n  /lapic (apic)\n"},
		{"/machine/unattached/device[1]/", "/device[1] (isa-pit)\n  /lapic (apic)\n"},
		{"lapic", "Path 'lapic' could not be resolved.\n"}, // ambiguous
		{"/nope", "Path '/nope' could not be resolved.\n"},
	}
	for _, c := range cases {
		if got := Print(root, c.path); got != c.want {
			t.Errorf("Print(%q) = %q, want %q", c.path, got, c.want)
		}
	}
	small := &Node{Type: "container"}
	small.Ensure("objects", "container")
	small.Ensure("machine", "none-machine")
	if got, want := Print(small, "/"), "/ (container)\n  /machine (none-machine)\n  /objects (container)\n"; got != want {
		t.Errorf("Print(/) = %q, want %q", got, want)
	}
}

func TestEscapeRegionName(t *testing.T) {
	for in, want := range map[string]string{
		"pc.ram":               "pc.ram",
		"/rom@etc/acpi/tables": `\x2from@etc\x2facpi\x2ftables`,
		`a[1]\b`:               `a\x5b1\x5d\x5cb`,
	} {
		if got := EscapeRegionName(in); got != want {
			t.Errorf("EscapeRegionName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEnsurePath(t *testing.T) {
	n := &Node{Type: "usb-storage"}
	n.EnsurePath("scsi.0", "SCSI")
	leaf := n.EnsurePath("scsi.0/legacy[0]", "scsi-hd")
	if got, want := Print(&Node{Type: "container", Children: []*Node{{Name: "machine", Type: n.Type, Children: n.Children}}}, ""),
		"/machine (usb-storage)\n  /scsi.0 (SCSI)\n    /legacy[0] (scsi-hd)\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if again := n.EnsurePath("/scsi.0/legacy[0]", "other"); again != leaf || again.Type != "scsi-hd" {
		t.Errorf("EnsurePath of an existing path made %+v", again)
	}
}
