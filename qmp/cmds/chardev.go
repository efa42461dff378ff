package cmds

import (
	"strconv"

	"tlcvm/chardev"
	"tlcvm/compat"
	"tlcvm/qmp"
)

// Chardev hotplug (qapi/char.json): chardev-add, chardev-change, chardev-remove,
// chardev-send-break, over package chardev's back-ends. The ChardevBackend union and its
// "data" wrappers are QEMU 7.2's, so that the schema libvirt probes is the same.

// ChardevHotplug is what the chardev commands need of the process's chardevs (the
// composition root's registry and the front ends that support a back-end swap).
type ChardevHotplug interface {
	// Add opens and registers a chardev; pty is the pty's path for a pty back-end.
	Add(s chardev.Spec, lookupFD func(string) (int, error)) (pty string, err error)
	// Change gives a chardev a new back-end, keeping its id and front ends.
	Change(s chardev.Spec, lookupFD func(string) (int, error)) (pty string, err error)
	// Remove closes an unused chardev.
	Remove(id string) error
	// SendBreak sends a break to a chardev's front ends.
	SendBreak(id string) error
	// Lookup finds a chardev (ringbuf-read, ringbuf-write).
	Lookup(id string) (*chardev.Chardev, bool)
}

// ChardevBackendKind is QAPI's ChardevBackendKind.
type ChardevBackendKind string

// EnumValues implements qmp.Enum.
func (ChardevBackendKind) EnumValues() []string {
	return []string{"file", "serial", "parallel", "pipe", "socket", "udp", "pty", "null", "mux", "msmouse",
		"wctablet", "braille", "testdev", "stdio", "console", "spicevmc", "spiceport", "qemu-vdagent", "dbus",
		"vc", "ringbuf", "memory"}
}

// ChardevBackend is QAPI's ChardevBackend: a type and its wrapped data.
type ChardevBackend struct {
	Type    ChardevBackendKind `json:"type"`
	Variant any                `json:"-" qapi:"variant"`
}

// UnionTag implements qmp.Union.
func (ChardevBackend) UnionTag() string { return "type" }

// UnionVariants implements qmp.Union. Several back-ends share a type, as in QEMU's schema.
func (ChardevBackend) UnionVariants() map[string]any {
	common := ChardevCommonWrapper{}
	hostdev := ChardevHostdevWrapper{}
	ringbuf := ChardevRingbufWrapper{}
	return map[string]any{
		"file": ChardevFileWrapper{}, "serial": hostdev, "parallel": hostdev, "pipe": hostdev,
		"socket": ChardevSocketWrapper{}, "udp": ChardevUdpWrapper{}, "pty": common, "null": common,
		"mux": ChardevMuxWrapper{}, "msmouse": common, "wctablet": common, "braille": common, "testdev": common,
		"stdio": ChardevStdioWrapper{}, "console": common, "spicevmc": ChardevSpiceChannelWrapper{},
		"spiceport": ChardevSpicePortWrapper{}, "qemu-vdagent": ChardevQemuVDAgentWrapper{},
		"dbus": ChardevDBusWrapper{}, "vc": ChardevVCWrapper{}, "ringbuf": ringbuf, "memory": ringbuf,
	}
}

// ChardevCommon holds the members every back-end has.
type ChardevCommon struct {
	Logfile   *string `json:"logfile,omitempty"`
	LogAppend *bool   `json:"logappend,omitempty"`
}

// ChardevFile is the file back-end.
type ChardevFile struct {
	ChardevCommon
	In     *string `json:"in,omitempty"`
	Out    string  `json:"out"`
	Append *bool   `json:"append,omitempty"`
}

// ChardevHostdev is the serial, parallel and pipe back-ends.
type ChardevHostdev struct {
	ChardevCommon
	Device string `json:"device"`
}

// ChardevSocket is the socket back-end.
type ChardevSocket struct {
	ChardevCommon
	Addr      SocketAddressLegacy `json:"addr"`
	TLSCreds  *string             `json:"tls-creds,omitempty"`
	TLSAuthz  *string             `json:"tls-authz,omitempty"`
	Server    *bool               `json:"server,omitempty"`
	Wait      *bool               `json:"wait,omitempty"`
	NoDelay   *bool               `json:"nodelay,omitempty"`
	Telnet    *bool               `json:"telnet,omitempty"`
	TN3270    *bool               `json:"tn3270,omitempty"`
	Websocket *bool               `json:"websocket,omitempty"`
	Reconnect *int64              `json:"reconnect,omitempty"`
}

// ChardevUdp is the udp back-end.
type ChardevUdp struct {
	ChardevCommon
	Remote SocketAddressLegacy  `json:"remote"`
	Local  *SocketAddressLegacy `json:"local,omitempty"`
}

// ChardevMux is the mux back-end.
type ChardevMux struct {
	ChardevCommon
	Chardev string `json:"chardev"`
}

// ChardevStdio is the stdio back-end.
type ChardevStdio struct {
	ChardevCommon
	Signal *bool `json:"signal,omitempty"`
}

// ChardevSpiceChannel is the spicevmc back-end.
type ChardevSpiceChannel struct {
	ChardevCommon
	Type string `json:"type"`
}

// ChardevSpicePort is the spiceport back-end.
type ChardevSpicePort struct {
	ChardevCommon
	FQDN string `json:"fqdn"`
}

// ChardevQemuVDAgent is the qemu-vdagent back-end.
type ChardevQemuVDAgent struct {
	ChardevCommon
	Mouse     *bool `json:"mouse,omitempty"`
	Clipboard *bool `json:"clipboard,omitempty"`
}

// ChardevDBus is the dbus back-end.
type ChardevDBus struct {
	ChardevCommon
	Name string `json:"name"`
}

// ChardevVC is the vc back-end.
type ChardevVC struct {
	ChardevCommon
	Width  *int64 `json:"width,omitempty"`
	Height *int64 `json:"height,omitempty"`
	Cols   *int64 `json:"cols,omitempty"`
	Rows   *int64 `json:"rows,omitempty"`
}

// ChardevRingbuf is the ringbuf and memory back-ends.
type ChardevRingbuf struct {
	ChardevCommon
	Size *int64 `json:"size,omitempty"`
}

// The "data" wrappers of QAPI's simple-union-style ChardevBackend.
type (
	ChardevFileWrapper struct {
		Data ChardevFile `json:"data"`
	}
	ChardevHostdevWrapper struct {
		Data ChardevHostdev `json:"data"`
	}
	ChardevSocketWrapper struct {
		Data ChardevSocket `json:"data"`
	}
	ChardevUdpWrapper struct {
		Data ChardevUdp `json:"data"`
	}
	ChardevCommonWrapper struct {
		Data ChardevCommon `json:"data"`
	}
	ChardevMuxWrapper struct {
		Data ChardevMux `json:"data"`
	}
	ChardevStdioWrapper struct {
		Data ChardevStdio `json:"data"`
	}
	ChardevSpiceChannelWrapper struct {
		Data ChardevSpiceChannel `json:"data"`
	}
	ChardevSpicePortWrapper struct {
		Data ChardevSpicePort `json:"data"`
	}
	ChardevQemuVDAgentWrapper struct {
		Data ChardevQemuVDAgent `json:"data"`
	}
	ChardevDBusWrapper struct {
		Data ChardevDBus `json:"data"`
	}
	ChardevVCWrapper struct {
		Data ChardevVC `json:"data"`
	}
	ChardevRingbufWrapper struct {
		Data ChardevRingbuf `json:"data"`
	}
)

// SocketAddressLegacy is QAPI's SocketAddressLegacy: the socket address union with "data"
// wrappers that chardevs still use.
type SocketAddressLegacy struct {
	Type    SocketAddressType `json:"type"`
	Variant any               `json:"-" qapi:"variant"`
}

// UnionTag implements qmp.Union.
func (SocketAddressLegacy) UnionTag() string { return "type" }

// UnionVariants implements qmp.Union.
func (SocketAddressLegacy) UnionVariants() map[string]any {
	return map[string]any{"inet": InetSocketAddressWrapper{}, "unix": UnixSocketAddressWrapper{},
		"vsock": VsockSocketAddressWrapper{}, "fd": StringWrapper{}}
}

// The "data" wrappers of SocketAddressLegacy.
type (
	InetSocketAddressWrapper struct {
		Data InetSocketAddress `json:"data"`
	}
	UnixSocketAddressWrapper struct {
		Data UnixSocketAddress `json:"data"`
	}
	VsockSocketAddressWrapper struct {
		Data VsockSocketAddress `json:"data"`
	}
	StringWrapper struct {
		Data String `json:"data"`
	}
)

// ChardevAddArgs are chardev-add's and chardev-change's arguments.
type ChardevAddArgs struct {
	ID      string         `json:"id"`
	Backend ChardevBackend `json:"backend"`
}

// ChardevReturn is their reply: the pty path of a pty back-end.
type ChardevReturn struct {
	Pty *string `json:"pty,omitempty"`
}

// ChardevOptsArgs are x-tlcvm-chardev-add-opts's: a -chardev string and, for
// chardev-change, the id it replaces.
type ChardevOptsArgs struct {
	Args string `json:"args"`
	ID   string `json:"id,omitempty"`
}

// chardevFromOpts reads HMP's chardev-add string as -chardev's (id from the string, or the
// one chardev-change names).
func chardevFromOpts(args, id string) (chardev.Spec, error) {
	o, err := compat.ParseOpts(args, "backend")
	if err != nil {
		return chardev.Spec{}, err
	}
	if id == "" {
		id = o.ID
	}
	return chardev.SpecFromKV(o.Get, id)
}

// ChardevIDArgs is chardev-remove's and chardev-send-break's argument.
type ChardevIDArgs struct {
	ID string `json:"id"`
}

func registerChardev(r *qmp.Registry, d *Deps) {
	h := d.ChardevHotplug
	if h == nil {
		return
	}
	reply := func(pty string, err error) (any, error) {
		if err != nil {
			return nil, err
		}
		if pty == "" {
			return ChardevReturn{}, nil
		}
		return ChardevReturn{Pty: &pty}, nil
	}
	r.Register(
		qmp.Command{Name: "chardev-add", Args: &ChardevAddArgs{}, Returns: ChardevReturn{},
			Run: func(c *qmp.Call) (any, error) {
				s, err := ChardevSpec(c.Args.(*ChardevAddArgs))
				if err != nil {
					return nil, qmp.GenericError("Failed to add chardev '%s': %v", s.ID, err)
				}
				return reply(h.Add(s, c.Session.FDParam))
			}},
		qmp.Command{Name: "chardev-change", Args: &ChardevAddArgs{}, Returns: ChardevReturn{},
			Run: func(c *qmp.Call) (any, error) {
				s, err := ChardevSpec(c.Args.(*ChardevAddArgs))
				if err != nil {
					return nil, err
				}
				return reply(h.Change(s, c.Session.FDParam))
			}},
		// HMP chardev-add and chardev-change: a -chardev string (qemu_chr_new_from_opts).
		qmp.Command{Name: "x-tlcvm-chardev-add-opts", Internal: true, Args: &ChardevOptsArgs{}, Returns: TextInfo{},
			Run: func(c *qmp.Call) (any, error) {
				a := c.Args.(*ChardevOptsArgs)
				s, err := chardevFromOpts(a.Args, a.ID)
				if err != nil {
					return nil, err
				}
				var pty string
				if a.ID == "" {
					pty, err = h.Add(s, c.Session.FDParam)
				} else {
					pty, err = h.Change(s, c.Session.FDParam)
				}
				if err != nil {
					return nil, err
				}
				if pty != "" {
					// qemu_printf reaches the HMP monitor
					return TextInfo{Text: "char device redirected to " + pty + " (label " + s.ID + ")\n"}, nil
				}
				return TextInfo{}, nil
			}},
		qmp.Command{Name: "chardev-remove", Args: &ChardevIDArgs{},
			Run: func(c *qmp.Call) (any, error) { return nil, h.Remove(c.Args.(*ChardevIDArgs).ID) }},
		qmp.Command{Name: "chardev-send-break", Args: &ChardevIDArgs{},
			Run: func(c *qmp.Call) (any, error) { return nil, h.SendBreak(c.Args.(*ChardevIDArgs).ID) }},
	)
	registerRingbuf(r, h)
}

// ChardevSpec turns chardev-add's arguments into package chardev's description, with QMP's
// defaults (a socket is a server unless server=false, and does not wait for its client).
func ChardevSpec(a *ChardevAddArgs) (chardev.Spec, error) {
	s := chardev.Spec{ID: a.ID, Backend: string(a.Backend.Type), FD: -1, Signal: true}
	common := func(c ChardevCommon) {
		s.Logfile = deref(c.Logfile)
		s.LogAppend = c.LogAppend != nil && *c.LogAppend
	}
	unsupported := func() (chardev.Spec, error) {
		return s, qmp.GenericError("tlcvm: chardev back-end '%s' is not supported", a.Backend.Type)
	}
	switch v := a.Backend.Variant.(type) {
	case *ChardevFileWrapper:
		common(v.Data.ChardevCommon)
		if v.Data.In != nil {
			return unsupported()
		}
		s.Path, s.Append = v.Data.Out, v.Data.Append != nil && *v.Data.Append
	case *ChardevHostdevWrapper:
		common(v.Data.ChardevCommon)
		if a.Backend.Type == "parallel" {
			return unsupported()
		}
		s.Path = v.Data.Device
	case *ChardevSocketWrapper:
		d := v.Data
		common(d.ChardevCommon)
		if err := legacyAddr(&s, d.Addr, false); err != nil {
			return s, err
		}
		s.Server = d.Server == nil || *d.Server
		s.Wait = d.Wait != nil && *d.Wait
		s.WaitSet = d.Wait != nil
		s.NoDelay = d.NoDelay != nil && *d.NoDelay
		s.Telnet = d.Telnet != nil && *d.Telnet
		s.TN3270 = d.TN3270 != nil && *d.TN3270
		s.Websocket = d.Websocket != nil && *d.Websocket
		s.TLSCreds = deref(d.TLSCreds)
		if d.Reconnect != nil {
			s.Reconnect, s.ReconnectSet = *d.Reconnect, true
		}
	case *ChardevUdpWrapper:
		common(v.Data.ChardevCommon)
		if err := legacyAddr(&s, v.Data.Remote, false); err != nil {
			return s, err
		}
		if v.Data.Local != nil {
			if err := legacyAddr(&s, *v.Data.Local, true); err != nil {
				return s, err
			}
		}
	case *ChardevCommonWrapper:
		common(v.Data)
		switch a.Backend.Type {
		case "pty", "null":
		default:
			return unsupported()
		}
	case *ChardevStdioWrapper:
		common(v.Data.ChardevCommon)
		s.Signal = v.Data.Signal == nil || *v.Data.Signal
	case *ChardevVCWrapper:
		common(v.Data.ChardevCommon)
	case *ChardevRingbufWrapper:
		common(v.Data.ChardevCommon)
		s.Backend, s.Size = chardev.BackendRingbuf, 65536
		if v.Data.Size != nil {
			s.Size = *v.Data.Size
		}
		if s.Size <= 0 || s.Size&(s.Size-1) != 0 {
			return s, qmp.GenericError("size of ringbuf chardev must be power of two")
		}
	default:
		return unsupported()
	}
	return s, nil
}

// legacyAddr fills the socket (or, local, udp's local) address from a SocketAddressLegacy.
func legacyAddr(s *chardev.Spec, a SocketAddressLegacy, local bool) error {
	switch v := a.Variant.(type) {
	case *InetSocketAddressWrapper:
		if local {
			s.LocalAddr, s.LocalPort = v.Data.Host, v.Data.Port
			return nil
		}
		s.Host, s.Port = v.Data.Host, v.Data.Port
		s.IPv4 = v.Data.IPv4 != nil && *v.Data.IPv4
		s.IPv6 = v.Data.IPv6 != nil && *v.Data.IPv6
		if v.Data.To != nil {
			s.To = int(*v.Data.To)
		}
	case *UnixSocketAddressWrapper:
		s.Path = v.Data.Path
	case *StringWrapper:
		s.FDStr = v.Data.Str
		if n, err := strconv.Atoi(v.Data.Str); err == nil {
			s.FD = n
		}
	default:
		return qmp.GenericError("tlcvm: socket address type '%s' is not supported", a.Type)
	}
	return nil
}
