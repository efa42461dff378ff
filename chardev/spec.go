package chardev

import (
	"strconv"
	"strings"

	"tlcvm/compat/optval"
)

// Back-end names as QEMU spells them in -chardev and query-chardev.
const (
	BackendSocket  = "socket"
	BackendPty     = "pty"
	BackendStdio   = "stdio"
	BackendFile    = "file"
	BackendNull    = "null"
	BackendPipe    = "pipe"
	BackendVC      = "vc" // no display in tlcvm: behaves as null, reports "vc"
	BackendRingbuf = "ringbuf"
	BackendSerial  = "serial" // a host tty device (alias "tty")
	BackendUDP     = "udp"

	// BackendNone and BackendRef are produced only by ParseLegacy: "none"
	// (no device at all) and "chardev:ID" (Spec.Ref names an existing chardev).
	BackendNone = "none"
	BackendRef  = "chardev"
)

// Spec describes one character device: what one -chardev option (or one
// legacy -serial/-monitor/-qmp string) asks for. Build it with SpecFromKV or
// ParseLegacy, which apply QEMU's defaults (Wait and Signal default to true,
// FD to -1); a literal Spec gets Go's zero values.
type Spec struct {
	ID      string // the label; "chardev: no id specified" when empty
	Backend string // one of the Backend* constants
	Ref     string // BackendRef only: the id after "chardev:"

	Path string // socket (unix path), file, pipe, serial: the path

	// socket (inet) and udp (remote address)
	Host, Port string
	To         int  // socket server: highest port to try (0: only Port)
	IPv4, IPv6 bool // restrict address families (both false: any)

	// udp local address
	LocalAddr, LocalPort string

	Server    bool
	Wait      bool // server: block in Open until a client connects
	WaitSet   bool // "wait" was given (or implied by server=on), for QEMU's checks
	Telnet    bool
	TN3270    bool
	Websocket bool
	NoDelay   bool
	Reconnect int64 // client: seconds between reconnection attempts (0: none)
	// ReconnectSet: "reconnect" was given, for QEMU's compatibility checks.
	ReconnectSet bool
	TLSCreds     string

	FD    int    // socket: an inherited descriptor (-1: none)
	FDStr string // socket: fd= as written (a number, or a named fd)

	Mux       bool
	Logfile   string
	LogAppend bool
	Append    bool  // file: open with O_APPEND instead of truncating
	Signal    bool  // stdio: keep ISIG so ^C reaches QEMU (default true)
	Size      int64 // ringbuf: capacity in bytes, a power of two (default 65536)

	// Origin is the command-line location QEMU prefixes to messages printed
	// while opening, e.g. "-chardev socket,id=x,path=/s,server=on"; empty when
	// the chardev comes from QMP.
	Origin string
	// Warnings are QEMU's deprecation warnings found while parsing (without
	// the "warning: " prefix); the caller prints them.
	Warnings []string
}

type keyKind int

const (
	kindString keyKind = iota
	kindBool
	kindNumber
	kindSize
)

// Keys lists every key QEMU 7.2's -chardev accepts (qemu_chardev_opts), in its
// order, with "id" and "backend". Any other key is "Invalid parameter 'KEY'".
// Keys that tlcvm parses but does not act on (width, height, …) are accepted
// and ignored, as QEMU ignores keys a back-end does not use.
var Keys = []string{
	"id", "backend", "path", "host", "port", "fd", "local", "localaddr",
	"localport", "to", "ipv4", "ipv6", "wait", "server", "delay", "nodelay",
	"reconnect", "telnet", "tn3270", "websocket", "tls-creds", "tls-authz",
	"width", "height", "cols", "rows", "mux", "signal", "name", "debug",
	"size", "chardev", "append", "logfile", "logappend", "mouse", "clipboard",
	"abstract", "tight",
}

var keyKinds = map[string]keyKind{
	"to": kindNumber, "ipv4": kindBool, "ipv6": kindBool, "wait": kindBool,
	"server": kindBool, "delay": kindBool, "nodelay": kindBool,
	"reconnect": kindNumber, "telnet": kindBool, "tn3270": kindBool,
	"websocket": kindBool, "width": kindNumber, "height": kindNumber,
	"cols": kindNumber, "rows": kindNumber, "mux": kindBool, "signal": kindBool,
	"debug": kindNumber, "size": kindSize, "append": kindBool,
	"logappend": kindBool, "mouse": kindBool, "clipboard": kindBool,
	"abstract": kindBool, "tight": kindBool,
}

// ValidKey reports whether key is one of Keys.
func ValidKey(key string) bool {
	for _, k := range Keys {
		if k == key {
			return true
		}
	}
	return false
}

// Drivers lists the back-end names QEMU 7.2 knows, in the order
// "-chardev help" prints them.
var Drivers = []string{
	"stdio", "ringbuf", "mux", "pipe", "qemu-vdagent", "null", "msmouse",
	"socket", "vc", "parallel", "udp", "memory", "file", "serial", "wctablet",
	"pty", "testdev",
}

// HelpText is QEMU 7.2's output for "-chardev help" (note the trailing space
// after the colon).
func HelpText() string {
	var b strings.Builder
	b.WriteString("Available chardev backend types: \n")
	for _, d := range Drivers {
		b.WriteString("  " + d + "\n")
	}
	return b.String()
}

// checkKey validates one key=value the way QemuOpts' opt_validate does:
// unknown key, or a value that does not parse for the key's type.
func checkKey(key, val string) error {
	if !ValidKey(key) {
		return newErr(ErrInvalid, "Invalid parameter '%s'", key)
	}
	switch keyKinds[key] {
	case kindBool:
		_, err := optval.ParseBool(ErrInvalid, key, val)
		return err
	case kindNumber:
		_, err := optval.ParseNumber(ErrInvalid, key, val)
		return err
	case kindSize:
		_, err := optval.ParseSize(ErrInvalid, key, val)
		return err
	}
	return nil
}

// SpecFromKV converts one -chardev option group to a Spec, with QEMU 7.2's
// defaults and parse errors. kv returns the value of a key and whether it was
// given; id is the group's id. The caller (the QemuOpts layer) rejects keys
// not in Keys; SpecFromKV checks the value types of every known key.
func SpecFromKV(kv func(key string) (string, bool), id string) (Spec, error) {
	s := Spec{ID: id, FD: -1, Signal: true, Size: 65536}
	if id == "" {
		return s, newErr(ErrInvalid, "chardev: no id specified")
	}
	if !optval.ID(id) {
		return s, newErr(ErrInvalid, "Parameter 'id' expects an identifier").
			AppendHint(optval.IDHint)
	}
	for _, k := range Keys {
		if v, ok := kv(k); ok {
			if err := checkKey(k, v); err != nil {
				return s, err
			}
		}
	}
	str := func(k string) string { v, _ := kv(k); return v }
	has := func(k string) bool { _, ok := kv(k); return ok }
	boolean := func(k string, def bool) bool {
		v, ok := kv(k)
		if !ok {
			return def
		}
		b, _ := optval.ParseBool(ErrInvalid, k, v)
		return b
	}
	number := func(k string) uint64 { v, _ := kv(k); n, _ := optval.ParseNumber(ErrInvalid, k, v); return n }

	backend, ok := kv("backend")
	if !ok {
		return s, newErr(ErrInvalid, "chardev: \"%s\" missing backend", id)
	}
	switch backend {
	case "tty":
		s.Warnings = append(s.Warnings, "The alias 'tty' is deprecated, use 'serial' instead")
		backend = BackendSerial
	case "parport":
		s.Warnings = append(s.Warnings, "The alias 'parport' is deprecated, use 'parallel' instead")
		backend = "parallel"
	case "memory":
		backend = BackendRingbuf
	}
	known := false
	for _, d := range Drivers {
		known = known || d == backend
	}
	if !known {
		return s, newErr(ErrInvalid, "'%s' is not a valid char driver name", backend)
	}
	s.Backend = backend
	s.Logfile = str("logfile")
	s.LogAppend = boolean("logappend", false)
	s.Mux = boolean("mux", false)

	switch backend {
	case BackendSocket:
		path, fd, host, port := str("path"), str("fd"), str("host"), str("port")
		n := 0
		for _, k := range []string{"path", "fd", "host"} {
			if has(k) {
				n++
			}
		}
		if n > 1 {
			return s, newErr(ErrInvalid, "None or one of 'path', 'fd' or 'host' option required.")
		}
		if has("host") && !has("port") {
			return s, newErr(ErrInvalid, "chardev: socket: no port given")
		}
		if has("delay") && has("nodelay") {
			return s, newErr(ErrInvalid, "'delay' and 'nodelay' are mutually exclusive")
		}
		s.NoDelay = !boolean("delay", true) || boolean("nodelay", false)
		s.Server = boolean("server", false)
		s.Telnet = boolean("telnet", false)
		s.TN3270 = boolean("tn3270", false)
		s.Websocket = boolean("websocket", false)
		s.WaitSet = has("wait") || s.Server
		s.Wait = boolean("wait", true)
		s.ReconnectSet = has("reconnect")
		s.Reconnect = int64(number("reconnect"))
		s.TLSCreds = str("tls-creds")
		switch {
		case has("path"):
			s.Path = path
		case has("host"):
			s.Host, s.Port = host, port
			s.To = int(number("to"))
			s.IPv4 = boolean("ipv4", false)
			s.IPv6 = boolean("ipv6", false)
		default:
			s.FDStr = fd
			if v, err := strconv.Atoi(fd); err == nil && v >= 0 {
				s.FD = v
			}
		}
	case BackendFile:
		if !has("path") {
			return s, newErr(ErrInvalid, "chardev: file: no filename given")
		}
		s.Path = str("path")
		s.Append = boolean("append", false)
	case BackendPipe:
		if !has("path") {
			return s, newErr(ErrInvalid, "chardev: pipe: no device path given")
		}
		s.Path = str("path")
	case BackendSerial:
		if !has("path") {
			return s, newErr(ErrInvalid, "chardev: serial/tty: no device path given")
		}
		s.Path = str("path")
	case "parallel":
		if !has("path") {
			return s, newErr(ErrInvalid, "chardev: parallel: no device path given")
		}
		s.Path = str("path")
	case BackendUDP:
		s.Host, s.Port = str("host"), str("port")
		if s.Host == "" {
			s.Host = "localhost"
		}
		if s.Port == "" {
			return s, newErr(ErrInvalid, "chardev: udp: remote port not specified")
		}
		s.LocalAddr, s.LocalPort = str("localaddr"), str("localport")
		if s.LocalPort == "" {
			s.LocalPort = "0"
		}
		s.IPv4 = boolean("ipv4", false)
		s.IPv6 = boolean("ipv6", false)
	case BackendStdio:
		s.Signal = boolean("signal", true)
	case BackendRingbuf:
		if v, ok := kv("size"); ok {
			n, _ := optval.ParseSize(ErrInvalid, "size", v)
			s.Size = int64(n)
		}
	case "mux":
		if !has("chardev") {
			return s, newErr(ErrInvalid, "chardev: mux: no chardev given")
		}
		s.Ref = str("chardev")
	}
	return s, nil
}
