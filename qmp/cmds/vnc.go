package cmds

import (
	"math"
	"strings"
	"time"

	"tlcvm/qmp"
)

// VNCDisplay is one -vnc display as the composition root reports it (vnc.Server.Info).
// A display of -vnc none has no Servers: QEMU lists it, not listening.
type VNCDisplay struct {
	ID                          string // "default" for the first
	Host, Service, Family, Auth string // the last listener, for query-vnc
	Servers                     []VNCAddr
	Clients                     []VNCClient
}

// VNCAddr is one listening address of a VNC display.
type VNCAddr struct{ Host, Service, Family string }

// VNCClient is one client connected to a VNC display.
type VNCClient struct {
	Host, Service, Family string
	Websocket             bool
}

// VncClientInfo is QAPI's VncClientInfo.
type VncClientInfo struct {
	qmp.QAPIOrder
	Host      string `json:"host"`
	Service   string `json:"service"`
	Family    string `json:"family"`
	Websocket bool   `json:"websocket"`
}

// VncInfo is query-vnc's reply (QAPI VncInfo): only "enabled" without a display.
type VncInfo struct {
	qmp.QAPIOrder
	Enabled bool             `json:"enabled"`
	Host    *string          `json:"host,omitempty"`
	Family  *string          `json:"family,omitempty"`
	Service *string          `json:"service,omitempty"`
	Auth    *string          `json:"auth,omitempty"`
	Clients *[]VncClientInfo `json:"clients,omitempty"`
}

// VncServerInfo2 is QAPI's VncServerInfo2.
type VncServerInfo2 struct {
	qmp.QAPIOrder
	Host      string `json:"host"`
	Service   string `json:"service"`
	Family    string `json:"family"`
	Websocket bool   `json:"websocket"`
	Auth      string `json:"auth"`
}

// VncInfo2 is one element of query-vnc-servers.
type VncInfo2 struct {
	qmp.QAPIOrder
	ID      string           `json:"id"`
	Server  []VncServerInfo2 `json:"server"`
	Clients []VncClientInfo  `json:"clients"`
	Auth    string           `json:"auth"`
}

// DisplayProtocol is QAPI's DisplayProtocol (satisfies qmp.Enum).
type DisplayProtocol string

// EnumValues lists QAPI's values.
func (DisplayProtocol) EnumValues() []string { return []string{"vnc", "spice"} }

// SetPasswordArgs are set_password's arguments (QEMU 7.2: protocol, password, connected;
// display for VNC).
type SetPasswordArgs struct {
	Protocol  DisplayProtocol `json:"protocol"`
	Password  string          `json:"password"`
	Connected *string         `json:"connected,omitempty"`
	Display   *string         `json:"display,omitempty"`
}

// ExpirePasswordArgs are expire_password's arguments.
type ExpirePasswordArgs struct {
	Protocol DisplayProtocol `json:"protocol"`
	Time     string          `json:"time"`
	Display  *string         `json:"display,omitempty"`
}

// ChangeVNCPasswordArgs are change-vnc-password's arguments.
type ChangeVNCPasswordArgs struct {
	Password string `json:"password"`
}

func clientInfos(cs []VNCClient) []VncClientInfo {
	out := []VncClientInfo{}
	for _, c := range cs {
		out = append(out, VncClientInfo{Host: c.Host, Service: c.Service, Family: c.Family, Websocket: c.Websocket})
	}
	return out
}

// registerVNC adds the VNC queries and the password commands: a display with password=on
// takes set_password's password and expire_password's time; one without refuses a password
// as QEMU's vnc_display_password does.
func registerVNC(r *qmp.Registry, d *Deps) {
	displays := func() []VNCDisplay {
		if d.VNC == nil {
			return nil
		}
		return d.VNC()
	}
	r.Register(
		qmp.Command{Name: "query-vnc", Returns: VncInfo{},
			Run: func(*qmp.Call) (any, error) {
				ds := displays()
				if len(ds) == 0 || len(ds[0].Servers) == 0 {
					return VncInfo{}, nil
				}
				v := ds[0]
				cl := clientInfos(v.Clients)
				return VncInfo{Enabled: true, Host: &v.Host, Family: &v.Family, Service: &v.Service,
					Auth: &v.Auth, Clients: &cl}, nil
			}},
		qmp.Command{Name: "query-vnc-servers", Returns: []VncInfo2{},
			Run: func(*qmp.Call) (any, error) {
				out := []VncInfo2{}
				for _, v := range displays() {
					servers := []VncServerInfo2{}
					for _, a := range v.Servers {
						servers = append(servers, VncServerInfo2{Host: a.Host, Service: a.Service, Family: a.Family, Auth: v.Auth})
					}
					out = append(out, VncInfo2{ID: v.ID, Auth: v.Auth, Clients: clientInfos(v.Clients), Server: servers})
				}
				return out, nil
			}},
		qmp.Command{Name: "set_password", Args: &SetPasswordArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*SetPasswordArgs)
				if a.Protocol == "spice" {
					return nil, qmp.DeviceNotActive("SPICE is not in use")
				}
				if a.Connected != nil && *a.Connected != "keep" { // vnc supports "connected=keep" only
					return nil, qmp.GenericError("Invalid parameter 'connected'")
				}
				if !vncPassword(d, a.Display, &a.Password, nil) {
					return nil, qmp.GenericError("Could not set password")
				}
				return nil, nil
			}},
		qmp.Command{Name: "expire_password", Args: &ExpirePasswordArgs{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*ExpirePasswordArgs)
				when := expireTime(a.Time, time.Now())
				if a.Protocol == "spice" {
					return nil, qmp.DeviceNotActive("SPICE is not in use")
				}
				if !vncPassword(d, a.Display, nil, &when) {
					return nil, qmp.GenericError("Could not set password expire time")
				}
				return nil, nil
			}},
		qmp.Command{Name: "change-vnc-password", Args: &ChangeVNCPasswordArgs{},
			Run: func(c *qmp.Call) (any, error) {
				if !vncPassword(d, nil, &c.Args.(*ChangeVNCPasswordArgs).Password, nil) {
					return nil, qmp.GenericError("Could not set password")
				}
				return nil, nil
			}},
	)
}

func vncPassword(d *Deps, id, pw *string, expires *int64) bool {
	return d.VNCPassword != nil && d.VNCPassword(id, pw, expires)
}

// expireTime is qmp_expire_password's reading of its time: "now" (already past), "never",
// "+N" seconds from now, or N seconds since the epoch, N read as strtoull reads it (its
// leading digits; none is 0, a minus sign negates).
func expireTime(s string, now time.Time) int64 {
	switch {
	case s == "now":
		return 0
	case s == "never":
		return math.MaxInt64
	case strings.HasPrefix(s, "+"):
		return now.Unix() + strtoull(s[1:])
	}
	return strtoull(s)
}

// strtoull is C's strtoull(s, NULL, 10) as a time_t: leading blanks, a sign, the digits
// that follow (saturating), nothing else looked at.
func strtoull(s string) int64 {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimLeft(s, "+-")
	var n uint64
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := uint64(s[i] - '0')
		if n > (math.MaxUint64-d)/10 {
			n = math.MaxUint64
			break
		}
		n = n*10 + d
	}
	if neg {
		n = -n
	}
	return int64(n)
}
