package chardev

import (
	"strings"

	"tlcvm/compat/qerror"
)

// ParseLegacy converts the legacy string forms of -serial, -monitor, -qmp and
// -parallel ("stdio", "pty", "null", "vc[:WxH]", "file:P", "pipe:P",
// "unix:P[,opts]", "tcp:H:P[,opts]", "telnet:H:P[,opts]", "udp:[H]:P[@[H]:P]",
// "/dev/…", "mon:X", and the caller-level "none" and "chardev:ID") into a
// Spec labelled id, as QEMU 7.2's qemu_chr_parse_compat does.
//
// "mon:X" sets Mux (and, for "mon:stdio", Signal=false so ^C reaches the
// guest); the caller also puts a monitor on it. "none" yields
// Backend==BackendNone, "chardev:ID" yields Backend==BackendRef with Ref=ID.
// Errors carry QEMU's text ("'bogus' is not a valid char driver", "Invalid
// parameter 'x'"); where QEMU prints nothing of its own the error is Silent.
func ParseLegacy(s, id string) (Spec, error) {
	return parseLegacy(s, id, true)
}

// ParseLegacyNoMon is ParseLegacy for contexts that reject "mon:" (-parallel):
// "mon: isn't supported in this context".
func ParseLegacyNoMon(s, id string) (Spec, error) {
	return parseLegacy(s, id, false)
}

func silent(s string) error {
	return qerror.Wrapf(ErrInvalid, errSilent, "cannot parse character device '%s'", s)
}

func parseLegacy(filename, id string, permitMuxMon bool) (Spec, error) {
	if filename == "none" {
		return Spec{ID: id, Backend: BackendNone, FD: -1}, nil
	}
	if ref, ok := strings.CutPrefix(filename, "chardev:"); ok {
		return Spec{ID: ref, Backend: BackendRef, Ref: ref, FD: -1}, nil
	}
	orig := filename
	kv := map[string]string{}
	if p, ok := strings.CutPrefix(filename, "mon:"); ok {
		if !permitMuxMon {
			return Spec{}, newErr(ErrInvalid, "mon: isn't supported in this context")
		}
		filename = p
		kv["mux"] = "on"
		if filename == "stdio" {
			// QEMU: a monitor muxed on stdio passes ^C to the guest.
			kv["signal"] = "off"
		}
	}
	build := func() (Spec, error) {
		spec, err := SpecFromKV(func(k string) (string, bool) { v, ok := kv[k]; return v, ok }, id)
		if err != nil {
			return Spec{}, err
		}
		return spec, nil
	}
	switch filename {
	case "null", "pty", "msmouse", "wctablet", "braille", "testdev", "stdio":
		kv["backend"] = filename
		if filename == "braille" {
			return Spec{}, newErr(ErrUnsupported, "'braille' is not supported by tlcvm")
		}
		return build()
	}
	if p, ok := strings.CutPrefix(filename, "vc"); ok {
		kv["backend"] = BackendVC
		if strings.HasPrefix(p, ":") {
			w, h, ok := scanVC(p[1:], "x")
			if ok {
				kv["width"], kv["height"] = w, h
			} else if w, h, ok = scanVC(p[1:], "Cx"); ok {
				kv["cols"], kv["rows"] = w, h
			} else {
				return Spec{}, silent(orig)
			}
		}
		return build()
	}
	if filename == "con:" || strings.HasPrefix(filename, "COM") {
		return Spec{}, newErr(ErrUnsupported, "'%s' is a Windows character device", filename)
	}
	if p, ok := strings.CutPrefix(filename, "file:"); ok {
		kv["backend"], kv["path"] = BackendFile, p
		return build()
	}
	if p, ok := strings.CutPrefix(filename, "pipe:"); ok {
		kv["backend"], kv["path"] = BackendPipe, p
		return build()
	}
	for _, proto := range []string{"tcp:", "telnet:", "tn3270:", "websocket:"} {
		p, ok := strings.CutPrefix(filename, proto)
		if !ok {
			continue
		}
		host, port, rest, ok := scanHostPort(p, ",")
		if !ok {
			return Spec{}, silent(orig)
		}
		kv["backend"], kv["host"], kv["port"] = BackendSocket, host, port
		if strings.HasPrefix(rest, ",") {
			if err := parseOpts(rest[1:], "", kv); err != nil {
				return Spec{}, err
			}
		}
		switch proto {
		case "telnet:":
			kv["telnet"] = "on"
		case "tn3270:":
			kv["tn3270"] = "on"
		case "websocket:":
			kv["websocket"] = "on"
		}
		return build()
	}
	if p, ok := strings.CutPrefix(filename, "udp:"); ok {
		host, port, rest, ok := scanHostPort(p, "@,")
		if !ok {
			return Spec{}, silent(orig)
		}
		kv["backend"], kv["host"], kv["port"] = BackendUDP, host, port
		if r, ok := strings.CutPrefix(rest, "@"); ok {
			lhost, lport, _, ok := scanHostPort(r, ",")
			if !ok {
				return Spec{}, silent(orig)
			}
			kv["localaddr"], kv["localport"] = lhost, lport
		}
		return build()
	}
	if p, ok := strings.CutPrefix(filename, "unix:"); ok {
		kv["backend"] = BackendSocket
		if err := parseOpts(p, "path", kv); err != nil {
			return Spec{}, err
		}
		return build()
	}
	if strings.HasPrefix(filename, "/dev/parport") || strings.HasPrefix(filename, "/dev/ppi") {
		kv["backend"], kv["path"] = "parallel", filename
		return build()
	}
	if strings.HasPrefix(filename, "/dev/") {
		kv["backend"], kv["path"] = BackendSerial, filename
		return build()
	}
	return Spec{}, newErr(ErrInvalid, "'%s' is not a valid char driver", filename)
}

// scanSet is sscanf's %N[^stop]: at most max bytes not in stop, at least one.
func scanSet(s string, max int, stop string) (string, bool) {
	i := 0
	for i < len(s) && i < max && !strings.ContainsRune(stop, rune(s[i])) {
		i++
	}
	return s[:i], i > 0
}

// scanHostPort is QEMU's sscanf(p, "%64[^:]:%32[^<stop>]%n") with the
// fallback sscanf(p, ":%32[^<stop>]%n") for an empty host. It returns the
// unscanned rest (p + pos).
func scanHostPort(p, stop string) (host, port, rest string, ok bool) {
	if h, ok := scanSet(p, 64, ":"); ok && strings.HasPrefix(p[len(h):], ":") {
		q := p[len(h)+1:]
		if pt, ok := scanSet(q, 32, stop); ok {
			return h, pt, q[len(pt):], true
		}
	}
	if q, ok := strings.CutPrefix(p, ":"); ok {
		if pt, ok := scanSet(q, 32, stop); ok {
			return "", pt, q[len(pt):], true
		}
	}
	return "", "", "", false
}

// scanVC is sscanf(p, "%7[0-9]<sep>%7[0-9]") == 2.
func scanVC(p, sep string) (w, h string, ok bool) {
	digits := func(s string) string {
		i := 0
		for i < len(s) && i < 7 && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return s[:i]
	}
	w = digits(p)
	if w == "" || !strings.HasPrefix(p[len(w):], sep) {
		return "", "", false
	}
	h = digits(p[len(w)+len(sep):])
	return w, h, h != ""
}

// parseOpts is QemuOpts' qemu_opts_do_parse (no deprecation warnings): comma
// separated key=value pairs, ",," for a literal comma, "flag" for flag=on and
// "noflag" for flag=off, an optional implied first key, "id" ignored. Each
// option is validated as it is parsed (unknown key, bad boolean or number),
// and later keys override earlier ones.
func parseOpts(params, firstname string, kv map[string]string) error {
	p := params
	for p != "" {
		var name, value string
		n := strings.IndexAny(p, "=,")
		if n < 0 {
			n = len(p)
		}
		if n == len(p) || p[n] != '=' {
			if firstname != "" {
				name = firstname
				value, p = optValue(p)
			} else {
				name, p = p[:n], p[n:]
				if rest, ok := strings.CutPrefix(name, "no"); ok {
					name, value = rest, "off"
				} else {
					value = "on"
				}
			}
		} else {
			name = p[:n]
			value, p = optValue(p[n+1:])
		}
		p = strings.TrimPrefix(p, ",")
		firstname = ""
		if name == "id" {
			continue
		}
		if err := checkKey(name, value); err != nil {
			return err
		}
		kv[name] = value
	}
	return nil
}

// optValue is QEMU's get_opt_value: the text up to a single ',' with ",,"
// standing for ','. It returns the value and the rest starting at the ','.
func optValue(p string) (string, string) {
	var b strings.Builder
	for {
		i := strings.IndexByte(p, ',')
		if i < 0 {
			b.WriteString(p)
			return b.String(), ""
		}
		if i+1 < len(p) && p[i+1] == ',' {
			b.WriteString(p[:i+1])
			p = p[i+2:]
			continue
		}
		b.WriteString(p[:i])
		return b.String(), p[i:]
	}
}
