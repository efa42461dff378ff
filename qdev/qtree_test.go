package qdev_test

import (
	"strings"
	"testing"

	"tlcvm/internal/gentest"
	"tlcvm/qdev"
)

// A device's set properties print in the form of their defaults; its PCI address and IDE
// unit come from its place.
func TestQtreeValues(t *testing.T) {
	tr := qdev.New(qdev.Config{Machine: "pc-i440fx-7.2", RAM: 128 << 20})
	if _, err := tr.Add(qdev.Spec{Driver: "ide-cd", Bus: "ide.1", Props: []qdev.Prop{{Name: "unit", Str: "1"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Add(qdev.Spec{Driver: "pci-bridge", ID: "br", Props: []qdev.Prop{{Name: "chassis_nr", Str: "7"}, {Name: "addr", Str: "0x9"}}}); err != nil {
		t.Fatal(err)
	}
	out := tr.Qtree(nil)
	for _, want := range []string{
		"      dev: pci-bridge, id \"br\"\n        chassis_nr = 7 (0x7)\n",
		"        addr = 09.0\n",
		"            serial = \"QM00004\"\n            model = \"\"\n            unit = 1 (0x1)\n",
		"    hpet-intcap = 4 (0x4)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("info qtree lacks %q:\n%s", want, out)
		}
	}
}

// TestQtreeLinesUpToDate regenerates the captured property lines from the reference binary
// and requires them to equal the committed ones.
func TestQtreeLinesUpToDate(t *testing.T) {
	gentest.UpToDate(t, "zz_generated_qtree.go", "./qdev")
}
