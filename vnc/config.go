package vnc

import (
	"errors"
	"strconv"
	"strings"

	"tlcvm/compat/optval"
	"tlcvm/compat/qerror"
)

// Sentinel errors. Every error returned by Parse and Listen wraps one of
// them with %w; the text that follows is QEMU 7.2's own where it has one.
var (
	// ErrOption: the -vnc argument is malformed or names an unknown key
	// (QemuOpts errors and vnc_display_open's option checks).
	ErrOption = errors.New("vnc: bad option")
	// ErrUnsupported: a valid QEMU option whose behaviour tlcvm does not
	// implement (SASL/TLS authentication, websockets, reverse).
	ErrUnsupported = errors.New("vnc: unsupported option")
	// ErrListen: the listening socket could not be opened.
	ErrListen = errors.New("vnc: listen")
)

// Share policies (the share= option; "" means the default, allow-exclusive).
const (
	ShareAllowExclusive = "allow-exclusive"
	ShareForceShared    = "force-shared"
	ShareIgnore         = "ignore"
)

// DefaultConnections is QEMU's default connections= limit on shared clients.
const DefaultConnections = 32

// Config is a parsed -vnc argument.
type Config struct {
	Disabled bool   // "none", "" or no display: no server at all
	Network  string // "tcp" | "unix"
	Host     string // tcp: host as written, brackets removed; "" = all addresses
	Port     int    // tcp: 5900+display
	ToPort   int    // tcp: 5900+to when to= is non-zero, else 0
	HasTo    bool   // to= was given (even to=0): QEMU then prints Server.Banner
	Path     string // unix: socket path ("" = QEMU makes a temporary one)
	IPv4     bool   // ipv4=on given
	IPv6     bool   // ipv6=on given
	NoIPv4   bool   // ipv4=off given
	NoIPv6   bool   // ipv6=off given
	Share    string // "", ShareAllowExclusive, ShareForceShared, ShareIgnore
	Audiodev string // audiodev= (the caller checks that the audiodev exists)
	ID       string // id= ("" = QEMU's "default")
	// Password is password=on: clients authenticate with VNC authentication against the
	// password set_password sets (none until then: every client fails).
	Password bool

	Connections  int  // connections= (shared client limit), DefaultConnections if unset
	KeyDelayMs   int  // key-delay-ms= (accepted, informational)
	LockKeySync  bool // lock-key-sync= (default on)
	Lossy        bool // lossy= (accepted; Raw encoding is lossless anyway)
	NonAdaptive  bool // non-adaptive= (accepted)
	PowerControl bool // power-control= (accepted; no XVP without a guest agent)
	Head         int  // head= (accepted)
}

type optKind int

const (
	kStr optKind = iota
	kNum
	kBool
)

// vncOpts is QEMU 7.2's qemu_vnc_opts (see `-vnc :0,help`).
var vncOpts = map[string]optKind{
	"vnc": kStr, "websocket": kStr, "tls-creds": kStr, "share": kStr,
	"display": kStr, "head": kNum, "connections": kNum, "to": kNum,
	"ipv4": kBool, "ipv6": kBool, "password": kBool, "password-secret": kStr,
	"reverse": kBool, "lock-key-sync": kBool, "key-delay-ms": kNum,
	"sasl": kBool, "tls-authz": kStr, "sasl-authz": kStr, "lossy": kBool,
	"non-adaptive": kBool, "audiodev": kStr, "power-control": kBool,
}

type opt struct{ name, value string }

// splitOpts splits a QemuOpts string the way util/qemu-option.c
// get_opt_name_value does, with "vnc" as the implied first key. A bare
// "name" becomes name=on, a bare "noname" name=off.
func splitOpts(s string) []opt {
	var out []opt
	first := true
	for p := s; p != ""; {
		n := strings.IndexAny(p, "=,")
		var o opt
		switch {
		case n >= 0 && p[n] == '=':
			o.name = p[:n]
			o.value, p = optValue(p[n+1:])
		case first:
			o.name = "vnc"
			o.value, p = optValue(p)
		default:
			if n < 0 {
				n = len(p)
			}
			o.name, o.value, p = p[:n], "on", p[n:]
			if strings.HasPrefix(o.name, "no") {
				o.name, o.value = o.name[2:], "off"
			}
		}
		if p != "" { // skip the ','
			p = p[1:]
		}
		first = false
		out = append(out, o)
	}
	return out
}

// optValue reads a value up to a single ',' (",," is an escaped comma).
func optValue(p string) (string, string) {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == ',' {
			if i+1 < len(p) && p[i+1] == ',' {
				b.WriteByte(',')
				i++
				continue
			}
			return b.String(), p[i:]
		}
		b.WriteByte(p[i])
	}
	return b.String(), ""
}

// Parse parses the raw argument of -vnc (e.g. "127.0.0.1:0,audiodev=audio1")
// as QEMU 7.2's QemuOpts and vnc_display_open do. Options whose behaviour
// tlcvm does not implement are refused with ErrUnsupported.
func Parse(arg string) (Config, error) {
	c := Config{LockKeySync: true, Connections: DefaultConnections}
	vals := map[string]string{}
	bools := map[string]bool{}
	var nums = map[string]uint64{}
	for _, o := range splitOpts(arg) {
		if o.name == "id" {
			if !optval.ID(o.value) {
				return Config{}, qerror.New(ErrOption, "Parameter 'id' expects an identifier")
			}
			c.ID = o.value
			continue
		}
		if o.name == "help" || o.name == "?" {
			return Config{}, qerror.New(ErrOption, "help is not available here")
		}
		kind, ok := vncOpts[o.name]
		if !ok {
			return Config{}, qerror.Errorf(ErrOption, "Invalid parameter '%s'", o.name)
		}
		switch kind {
		case kBool:
			b, err := optval.ParseBool(ErrOption, o.name, o.value)
			if err != nil {
				return Config{}, err
			}
			bools[o.name] = b
		case kNum:
			n, err := optval.ParseNumber(ErrOption, o.name, o.value)
			if err != nil {
				return Config{}, err
			}
			nums[o.name] = n
		}
		vals[o.name] = o.value
	}

	// vnc_display_open: reverse= is read before the address.
	if bools["reverse"] {
		return Config{}, qerror.New(ErrUnsupported, "VNC reverse connections are not supported by tlcvm")
	}
	addr, ok := vals["vnc"]
	if !ok || addr == "none" {
		c.Disabled = true
		return c, nil
	}
	if _, ok := vals["websocket"]; ok {
		return Config{}, qerror.New(ErrUnsupported, "VNC websockets are not supported by tlcvm")
	}
	to := int32(nums["to"]) // qemu_opt_get_number into an int
	_, c.HasTo = vals["to"]
	if err := c.parseAddress(addr, to); err != nil {
		return Config{}, err
	}
	if v, ok := bools["ipv4"]; ok {
		c.IPv4, c.NoIPv4 = v, !v
	}
	if v, ok := bools["ipv6"]; ok {
		c.IPv6, c.NoIPv6 = v, !v
	}
	if c.Network == "tcp" && c.NoIPv4 && c.NoIPv6 {
		return Config{}, qerror.New(ErrOption, "Cannot disable IPv4 and IPv6 at same time")
	}

	_, hasSecret := vals["password-secret"]
	if bools["password"] && hasSecret {
		return Config{}, qerror.New(ErrOption, "'password' flag is redundant with 'password-secret'")
	}
	if hasSecret {
		return Config{}, qerror.Errorf(ErrOption, "No secret with id '%s'", vals["password-secret"])
	}
	c.Password = bools["password"]
	if v, ok := bools["lock-key-sync"]; ok {
		c.LockKeySync = v
	}
	c.KeyDelayMs = int(int32(nums["key-delay-ms"]))
	c.Lossy, c.NonAdaptive, c.PowerControl = bools["lossy"], bools["non-adaptive"], bools["power-control"]
	c.Head = int(int32(nums["head"]))
	if v, ok := nums["connections"]; ok {
		c.Connections = int(int32(v))
	}
	if v, ok := vals["share"]; ok {
		switch v {
		case ShareAllowExclusive, ShareForceShared, ShareIgnore:
			c.Share = v
		default:
			return Config{}, qerror.New(ErrOption, "unknown vnc share= option")
		}
	}
	if v, ok := vals["tls-creds"]; ok {
		return Config{}, qerror.Errorf(ErrOption, "No TLS credentials with id '%s'", v)
	}
	if _, ok := vals["tls-authz"]; ok {
		return Config{}, qerror.New(ErrOption, "'tls-authz' provided but TLS is not enabled")
	}
	if bools["sasl"] {
		return Config{}, qerror.New(ErrUnsupported, "VNC SASL authentication is not supported by tlcvm")
	}
	if _, ok := vals["sasl-authz"]; ok {
		return Config{}, qerror.New(ErrOption, "'sasl-authz' provided but SASL auth is not enabled")
	}
	if v, ok := vals["display"]; ok {
		return Config{}, qerror.Errorf(ErrOption, "Device '%s' not found", v)
	}
	c.Audiodev = vals["audiodev"]
	return c, nil
}

// parseAddress is vnc_display_get_address for the plain (non-websocket)
// address.
func (c *Config) parseAddress(addr string, to int32) error {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if to != 0 {
			return qerror.New(ErrOption, "Port range not support with UNIX socket")
		}
		c.Network, c.Path = "unix", path
		return nil
	}
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return qerror.New(ErrOption, "no vnc port specified")
	}
	host, port := addr[:i], addr[i+1:]
	if port == "" {
		return qerror.New(ErrOption, "vnc port cannot be empty")
	}
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	n, err := strconv.ParseUint(port, 10, 64)
	if err != nil || port[0] == '+' {
		return qerror.Errorf(ErrOption, "can't convert to a number: %s", port)
	}
	if n > 65535 || n+5900 > 65535 {
		return qerror.Errorf(ErrOption, "port %s out of range", port)
	}
	c.Network, c.Host, c.Port = "tcp", host, int(n)+5900
	if to != 0 {
		c.ToPort = int(to) + 5900
	}
	return nil
}
