package cmds

import "tlcvm/qmp"

// HMP hostfwd_add and hostfwd_remove reach QEMU's slirp stacks directly (net/slirp.c, no QMP
// twin); tlcvm's HMP calls package netdev's operations through these internal commands,
// which return what the monitor prints.

// HostFwdArgs names the user back-end ("" for the first) and the rule.
type HostFwdArgs struct {
	Netdev string `json:"netdev,omitempty"`
	Rule   string `json:"rule"`
}

func registerHostFwd(r *qmp.Registry, d *Deps) {
	if d.Net == nil {
		return
	}
	r.Register(qmp.Command{Name: "x-tlcvm-hostfwd-add", Internal: true, Args: &HostFwdArgs{}, Returns: TextInfo{},
		Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*HostFwdArgs)
			return TextInfo{Text: d.Net.HostFwdAdd(a.Netdev, a.Rule)}, nil
		}})
	r.Register(qmp.Command{Name: "x-tlcvm-hostfwd-remove", Internal: true, Args: &HostFwdArgs{}, Returns: TextInfo{},
		Run: func(c *qmp.Call) (any, error) {
			a := c.Args.(*HostFwdArgs)
			return TextInfo{Text: d.Net.HostFwdRemove(a.Netdev, a.Rule)}, nil
		}})
}
