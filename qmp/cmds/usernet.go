package cmds

import "tlcvm/qmp"

// HMP info usernet reads the slirp stacks itself in QEMU (hmp_info_usernet); tlcvm's HMP
// gets netdev's rendering of them through this internal command.

func registerUserNet(r *qmp.Registry, d *Deps) {
	if d.Net == nil {
		return
	}
	r.Register(qmp.Command{Name: "x-tlcvm-info-usernet", Internal: true, Returns: TextInfo{},
		Run: func(*qmp.Call) (any, error) { return TextInfo{Text: d.Net.UserNetInfo()}, nil }})
}
