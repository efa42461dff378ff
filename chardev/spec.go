package chardev

import (
	"math"
	"strconv"
	"strings"
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
		_, err := parseBool(key, val)
		return err
	case kindNumber:
		_, err := parseNumber(key, val)
		return err
	case kindSize:
		_, err := parseSize(key, val)
		return err
	}
	return nil
}

// parseBool is qapi_bool_parse.
func parseBool(key, val string) (bool, error) {
	switch val {
	case "on", "yes", "true", "y":
		return true, nil
	case "off", "no", "false", "n":
		return false, nil
	}
	return false, newErr(ErrInvalid, "Parameter '%s' expects 'on' or 'off'", key)
}

// parseNumber is QemuOpts' QEMU_OPT_NUMBER: qemu_strtou64 with base 0.
func parseNumber(key, val string) (uint64, error) {
	s := strings.TrimLeft(val, " \t\n\v\f\r")
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	} else if strings.HasPrefix(s, "+") {
		s = s[1:]
	}
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil || s == "" || strings.Contains(s, "_") {
		return 0, newErr(ErrInvalid, "Parameter '%s' expects a number", key)
	}
	if neg {
		n = -n
	}
	return n, nil
}

const sizeHint = "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.\n"

// parseSize is QemuOpts' QEMU_OPT_SIZE (qemu_strtosz).
func parseSize(key, val string) (uint64, error) {
	bad := newErr(ErrInvalid, "Parameter '%s' expects a non-negative number below 2^64", key).
		AppendHint(sizeHint)
	s := val
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	if i == 0 {
		return 0, bad
	}
	num, suffix := s[:i], s[i:]
	mult := 1.0
	if len(suffix) == 1 {
		switch suffix[0] {
		case 'b', 'B':
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		case 't', 'T':
			mult = 1 << 40
		case 'p', 'P':
			mult = 1 << 50
		case 'e', 'E':
			mult = 1 << 60
		default:
			return 0, bad
		}
	} else if suffix != "" {
		return 0, bad
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil || (mult > 1 && n > uint64(math.MaxUint64/mult)) {
			return 0, bad
		}
		return n * uint64(mult), nil
	}
	if mult == 1 {
		return 0, bad // fractions need a suffix
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f*mult >= 0x1p64 {
		return 0, bad
	}
	return uint64(f * mult), nil
}

// validID is QEMU's id_wellformed: a letter, then letters, digits, '-', '.', '_'.
func validID(id string) bool {
	if id == "" {
		return false
	}
	for i, r := range id {
		isAlpha := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		switch {
		case i == 0 && !isAlpha:
			return false
		case isAlpha, r >= '0' && r <= '9', r == '-', r == '.', r == '_':
		default:
			return false
		}
	}
	return true
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
	if !validID(id) {
		return s, newErr(ErrInvalid, "Parameter 'id' expects an identifier").
			AppendHint("Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.\n")
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
		b, _ := parseBool(k, v)
		return b
	}
	number := func(k string) uint64 { v, _ := kv(k); n, _ := parseNumber(k, v); return n }

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
			n, _ := parseSize("size", v)
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
