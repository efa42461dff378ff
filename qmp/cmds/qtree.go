package cmds

import "tlcvm/qmp"

// HMP info qtree walks QEMU's qdev tree itself (qmp has no twin); tlcvm's HMP gets package
// qdev's rendering of the device tree through this internal command, with the PCI
// identities query-pci shows.

func registerQtree(r *qmp.Registry, d *Deps) {
	if d.Devices == nil {
		return
	}
	r.Register(qmp.Command{Name: "x-tlcvm-info-qtree", Internal: true, Returns: TextInfo{},
		Run: func(*qmp.Call) (any, error) { return TextInfo{Text: d.Devices.Qtree(pciIdentity)}, nil }})
}
