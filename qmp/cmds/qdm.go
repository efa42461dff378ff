package cmds

import (
	"tlcvm/machine/catalog"
	"tlcvm/qmp"
)

// HMP info qdm prints QEMU's device model list itself (qmp has no twin); tlcvm's HMP gets the
// catalogue's rendering of it, the no-user models included, through this internal command.

func registerQdm(r *qmp.Registry) {
	r.Register(qmp.Command{Name: "x-tlcvm-info-qdm", Internal: true, Returns: TextInfo{},
		Run: func(*qmp.Call) (any, error) { return TextInfo{Text: catalog.DeviceModelsHelp()}, nil }})
}
