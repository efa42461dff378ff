package transport

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"tlcvm/compat/optval"
)

// Scheme is a migration URI's protocol, the text before the first colon.
type Scheme string

// The schemes tlcvm understands. QEMU 7.2 has all but SchemeFile (QEMU 8.2's).
const (
	SchemeExec Scheme = "exec"
	SchemeFD   Scheme = "fd"
	SchemeFile Scheme = "file"
	SchemeTCP  Scheme = "tcp"
	SchemeUnix Scheme = "unix"
)

// unixPathMax is sizeof(sockaddr_un.sun_path) on Linux; QEMU refuses paths that do not
// fit with a NUL ("UNIX socket path '%s' is too long").
const unixPathMax = 108

// inet_parse's sscanf field widths: host %64[^:], port %32[^,].
const (
	maxHostLen = 64
	maxPortLen = 32
)

// Address is a parsed migration URI. Only the fields of its Scheme are set.
type Address struct {
	Scheme Scheme
	// URI is the text parsed, unchanged.
	URI string
	// Command is exec:'s shell command, blanks after the colon included (sh ignores them).
	Command string
	// FD is fd:'s descriptor name or number, as written.
	FD string
	// Path is file:'s file or unix:'s socket path.
	Path string
	// Offset is file:'s ",offset=N": where the stream starts in the file.
	Offset uint64
	// Host and Port are tcp:'s; Host is empty for "tcp::PORT" (every address) and has no
	// brackets for "tcp:[::1]:PORT".
	Host, Port string
	// IPv4 and IPv6 are tcp:'s ",ipv4[=on|off]" and ",ipv6[=on|off]" flags: nil when absent.
	IPv4, IPv6 *bool
}

// Parse splits a migration URI into its parts without side effects (no fd is looked up, no
// file opened, no name resolved). Errors carry QEMU 7.2's texts: unknown schemes wrap
// ErrUnknownProtocol ("unknown migration protocol: X", the incoming text), malformed
// addresses wrap ErrBadURI ("error parsing address 'x'", "invalid Unix socket address" …).
func Parse(uri string) (Address, error) {
	a := Address{URI: uri}
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok {
		return a, newError(fmt.Sprintf("unknown migration protocol: %s", uri), ErrUnknownProtocol, nil)
	}
	a.Scheme = Scheme(scheme)
	switch a.Scheme {
	case SchemeExec:
		a.Command = rest
	case SchemeFD:
		a.FD = rest
	case SchemeFile:
		path, off, err := parseFile(rest)
		if err != nil {
			return a, err
		}
		a.Path, a.Offset = path, off
	case SchemeUnix:
		if rest == "" {
			return a, newError("invalid Unix socket address", ErrBadURI, nil)
		}
		if len(rest) >= unixPathMax {
			return a, newError(fmt.Sprintf("UNIX socket path '%s' is too long", rest), ErrBadURI, nil)
		}
		a.Path = rest
	case SchemeTCP:
		if err := parseInet(&a, rest); err != nil {
			return a, err
		}
	case "rdma":
		// QEMU 7.2 knows rdma: but on a host without RDMA devices (tlcvm's case) fails so.
		return a, newError("RDMA ERROR: could not create rdma event channel", ErrUnsupported, nil)
	default:
		return a, newError(fmt.Sprintf("unknown migration protocol: %s", uri), ErrUnknownProtocol, nil)
	}
	return a, nil
}

// Validate checks an incoming URI (-incoming, migrate-incoming) without side effects and
// returns QEMU 7.2's error for it: "unknown migration protocol: X" (also for "defer", which
// the caller handles before calling Validate), "error parsing address 'x'", "invalid Unix
// socket address", "error parsing IPv6 address '[::1'" …. An fd: name is checked by Listen.
func Validate(uri string) error {
	_, err := Parse(uri)
	return err
}

// ValidateOutgoing is Validate for migrate's URI: QEMU 7.2 refuses an unknown scheme there
// with "Parameter 'uri' expects a valid migration protocol" (and then reports no error-desc
// in query-migrate); the other texts are Validate's.
func ValidateOutgoing(uri string) error {
	_, err := parseOutgoing(uri)
	return err
}

// ParseOutgoing is Parse with ValidateOutgoing's errors: migrate's URI parsed once, at the
// boundary; the address goes to OpenAddress. On error the address holds what was parsed.
func ParseOutgoing(uri string) (Address, error) { return parseOutgoing(uri) }

func parseOutgoing(uri string) (Address, error) {
	a, err := Parse(uri)
	switch {
	case errors.Is(err, ErrUnknownProtocol):
		return a, newError("Parameter 'uri' expects a valid migration protocol", ErrUnknownProtocol, nil)
	case errors.Is(err, ErrUnsupported):
		return a, newError("RDMA ERROR: could not create CM channel", ErrUnsupported, nil)
	}
	return a, err
}

// parseInet is QEMU's inet_parse (util/qemu-sockets.c): "HOST:PORT", ":PORT", "[V6]:PORT",
// then options ",to=N", ",ipv4[=on|off]", ",ipv6[=on|off]" found anywhere after the port;
// other options are ignored as QEMU ignores them.
func parseInet(a *Address, s string) error {
	var opts string
	switch {
	case strings.HasPrefix(s, ":"):
		port, tail := scanUntil(s[1:], ",", maxPortLen)
		if port == "" {
			return newError(fmt.Sprintf("error parsing port in address '%s'", s), ErrBadURI, nil)
		}
		a.Port, opts = port, tail
	case strings.HasPrefix(s, "["):
		host, tail := scanUntil(s[1:], "]", maxHostLen)
		if host == "" || !strings.HasPrefix(tail, "]:") {
			return newError(fmt.Sprintf("error parsing IPv6 address '%s'", s), ErrBadURI, nil)
		}
		port, tail2 := scanUntil(tail[2:], ",", maxPortLen)
		if port == "" {
			return newError(fmt.Sprintf("error parsing IPv6 address '%s'", s), ErrBadURI, nil)
		}
		a.Host, a.Port, opts = host, port, tail2
	default:
		host, tail := scanUntil(s, ":", maxHostLen)
		if host == "" || !strings.HasPrefix(tail, ":") {
			return newError(fmt.Sprintf("error parsing address '%s'", s), ErrBadURI, nil)
		}
		port, tail2 := scanUntil(tail[1:], ",", maxPortLen)
		if port == "" {
			return newError(fmt.Sprintf("error parsing address '%s'", s), ErrBadURI, nil)
		}
		a.Host, a.Port, opts = host, port, tail2
	}
	if i := strings.Index(opts, ",to="); i >= 0 {
		v := opts[i+4:]
		n := 0
		for n < len(v) && (v[n] >= '0' && v[n] <= '9' || n == 0 && (v[n] == '-' || v[n] == '+')) {
			n++
		}
		if _, err := strconv.Atoi(v[:n]); err != nil || n < len(v) && v[n] != ',' {
			return newError("error parsing to= argument", ErrBadURI, nil)
		}
	}
	for _, f := range []struct {
		name string
		dst  **bool
	}{{"ipv4", &a.IPv4}, {"ipv6", &a.IPv6}} {
		i := strings.Index(opts, ","+f.name)
		if i < 0 {
			continue
		}
		v, err := parseFlag(f.name, opts[i+1+len(f.name):])
		if err != nil {
			return err
		}
		*f.dst = &v
	}
	return nil
}

// scanUntil is sscanf's "%N[^stop]": up to max bytes not in stop, and the rest.
func scanUntil(s, stop string, max int) (field, rest string) {
	n := 0
	for n < len(s) && n < max && !strings.ContainsRune(stop, rune(s[n])) {
		n++
	}
	return s[:n], s[n:]
}

// parseFlag is QEMU's inet_parse_flag: "", "=on" → true, "=off" → false, up to the next comma.
func parseFlag(name, s string) (bool, error) {
	v := s
	if i := strings.IndexByte(s, ','); i >= 0 {
		if i+1 < len(s) && s[i+1] == ',' {
			return false, newError(fmt.Sprintf("error parsing '%s' flag '%s'", name, s), ErrBadURI, nil)
		}
		v = s[:i]
	}
	if v == "" {
		return true, nil
	}
	if b, ok := optval.Bool(strings.TrimPrefix(v, "="), optval.OnOff); ok && v[0] == '=' {
		return b, nil
	}
	return false, newError(fmt.Sprintf("error parsing '%s' flag '%s'", name, s), ErrBadURI, nil)
}

// parseFile splits QEMU 8.2's "PATH[,offset=N]" (file_parse_offset: the first ",offset=";
// N is a size as qemu_strtosz reads it, its failure reported with error_setg_errno).
func parseFile(s string) (string, uint64, error) {
	path, opt, found := strings.Cut(s, ",offset=")
	if path == "" {
		return "", 0, newError("file URI has no path", ErrBadURI, nil)
	}
	if !found {
		return path, 0, nil
	}
	off, err := optval.Size(opt)
	if err != nil {
		return "", 0, withErrno("file URI has bad offset "+opt, ErrBadURI, err)
	}
	return path, off, nil
}

// parseFDNumber is QEMU's qemu_parse_fd: strtol base 10 over the whole text (leading
// blanks and a sign allowed), not negative.
func parseFDNumber(s string) (int, bool) {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	t = strings.TrimPrefix(t, "+")
	if t == "" || t[0] < '0' || t[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseInt(t, 10, 32)
	if err != nil || n < 0 {
		return 0, false
	}
	return int(n), true
}
