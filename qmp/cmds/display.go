package cmds

import (
	"net"

	"tlcvm/nbd"
	"tlcvm/qmp"
)

// display-update and display-reload (qapi/ui.json, ui/ui-qmp-cmds.c in QEMU 7.2), for the
// first VNC display (vnc_display_find(NULL)).
//
// display-update is vnc_display_update: the display stops listening, its clients staying
// connected, and listens on the addresses given instead (none: it listens nowhere and
// query-vnc shows it disabled; an address that cannot be bound leaves it so too, with
// qio_net_listener_open_sync's error). display-reload with tls-certs is
// vnc_display_reload_certs: tlcvm's VNC has no TLS, so it fails as QEMU's does for a
// display without tls-creds; without tls-certs it does nothing.

// DisplayUpdateType is QAPI's DisplayUpdateType (and DisplayReloadType: both only "vnc").
type DisplayUpdateType string

// EnumValues implements qmp.Enum.
func (DisplayUpdateType) EnumValues() []string { return []string{"vnc"} }

// DisplayUpdateOptions are display-update's arguments.
type DisplayUpdateOptions struct {
	Type    DisplayUpdateType `json:"type"`
	Variant any               `json:"-" qapi:"variant"`
}

// UnionTag implements qmp.Union.
func (DisplayUpdateOptions) UnionTag() string { return "type" }

// UnionVariants implements qmp.Union.
func (DisplayUpdateOptions) UnionVariants() map[string]any {
	return map[string]any{"vnc": DisplayUpdateOptionsVNC{}}
}

// DisplayUpdateOptionsVNC is the vnc variant.
type DisplayUpdateOptionsVNC struct {
	Addresses *[]SocketAddress `json:"addresses,omitempty"`
}

// DisplayReloadOptions are display-reload's arguments.
type DisplayReloadOptions struct {
	Type    DisplayUpdateType `json:"type"`
	Variant any               `json:"-" qapi:"variant"`
}

// UnionTag implements qmp.Union.
func (DisplayReloadOptions) UnionTag() string { return "type" }

// UnionVariants implements qmp.Union.
func (DisplayReloadOptions) UnionVariants() map[string]any {
	return map[string]any{"vnc": DisplayReloadOptionsVNC{}}
}

// DisplayReloadOptionsVNC is the vnc variant.
type DisplayReloadOptionsVNC struct {
	TLSCerts *bool `json:"tls-certs,omitempty"`
}

func registerDisplay(r *qmp.Registry, d *Deps) {
	noDisplay := func() error { return qmp.GenericError("Can not find vnc display") }
	r.Register(
		qmp.Command{Name: "display-update", Args: &DisplayUpdateOptions{},
			Run: func(c *qmp.Call) (any, error) {
				if d.VNCUpdate == nil {
					return nil, noDisplay()
				}
				var open func() ([]net.Listener, error) // nil without addresses: nothing changes
				if v, _ := c.Args.(*DisplayUpdateOptions).Variant.(*DisplayUpdateOptionsVNC); v != nil && v.Addresses != nil {
					var addrs []nbd.SocketAddress
					for _, a := range *v.Addresses {
						sa, err := socketAddress(c, a.Variant)
						if err != nil {
							return nil, err
						}
						addrs = append(addrs, sa)
					}
					open = func() ([]net.Listener, error) { return listenAll(addrs) }
				}
				found, err := d.VNCUpdate(open)
				if !found {
					return nil, noDisplay()
				}
				return nil, err
			}},
		qmp.Command{Name: "display-reload", Args: &DisplayReloadOptions{},
			Run: func(c *qmp.Call) (any, error) {
				v, _ := c.Args.(*DisplayReloadOptions).Variant.(*DisplayReloadOptionsVNC)
				if v == nil || v.TLSCerts == nil || !*v.TLSCerts {
					return nil, nil
				}
				if d.VNC == nil || len(d.VNC()) == 0 {
					return nil, noDisplay()
				}
				return nil, qmp.GenericError("vnc tls is not enabled")
			}},
	)
}

// listenAll opens every address, or none (vnc_display_listen).
func listenAll(addrs []nbd.SocketAddress) ([]net.Listener, error) {
	var ls []net.Listener
	for _, a := range addrs {
		l, err := nbd.Listen(a)
		if err != nil {
			for _, o := range ls {
				_ = o.Close()
			}
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}
