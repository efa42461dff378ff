package compat

import (
	"strconv"
	"strings"

	"tlcvm/compat/qerror"
)

// monitorParse is vl.c monitor_parse for -monitor, -qmp and -qmp-pretty.
func (s *parseState) monitorParse(arg, mode string, pretty bool, loc string) error {
	d := &s.cfg.defaults
	var label string
	if p, ok := strings.CutPrefix(arg, "chardev:"); ok {
		label = p
		if len(label) > 31 {
			label = label[:31]
		}
	} else {
		label = "compat_monitor" + strconv.Itoa(d.monitorIndex)
		o, qe := s.chrParseCompatOpts(label, arg, true)
		if qe != nil {
			// QEMU prints the converter's complaint, if any, then its own.
			if qe.Msg != "" {
				s.warnings = append(s.warnings, render(s.prog, loc, qe))
			}
			return s.fail(loc, newErr(ErrBadValue, "parse error: "+arg))
		}
		o.Loc = loc
		if e := s.claimID("chardev", label, loc, "Duplicate ID '"+label+"' for chardev"); e != nil {
			return e
		}
		s.cfg.Chardevs = append(s.cfg.Chardevs, o)
	}
	if err := s.claimID("mon", label, loc, "Duplicate ID '"+label+"' for mon"); err != nil {
		return err
	}
	s.cfg.Monitors = append(s.cfg.Monitors, Monitor{ID: label, Chardev: label, Mode: mode, Pretty: pretty, Loc: loc})
	d.monitorIndex++
	return nil
}

// ChardevFromLegacy converts a legacy chardev string into -chardev options
// with the given id (see chrParseCompat for the syntax).
func ChardevFromLegacy(id, legacy string) (*Opts, error) {
	s := &parseState{cfg: &Config{ids: map[string]map[string]bool{}}, prog: "qemu-system-x86_64"}
	o, err := s.chrParseCompatOpts(id, legacy, true)
	if err != nil {
		return nil, err
	}
	return o, nil
}

// errSilent is a compat parse failure QEMU reports without its own text.
var errSilent = &qerror.Error{Kind: ErrBadValue}

func (s *parseState) chrParseCompatOpts(label, filename string, permitMuxMon bool) (*Opts, *qerror.Error) {
	o := &Opts{Group: "chardev", ID: label}
	if p, ok := strings.CutPrefix(filename, "mon:"); ok {
		if !permitMuxMon {
			return nil, newErr(ErrBadValue, "mon: isn't supported in this context")
		}
		filename = p
		o.Set("mux", "on")
		if filename == "stdio" {
			o.Set("signal", "off")
		}
	}
	switch filename {
	case "null", "pty", "msmouse", "wctablet", "braille", "testdev", "stdio":
		o.Set("backend", filename)
		return o, nil
	case "con:":
		o.Set("backend", "console")
		return o, nil
	}
	if p, ok := strings.CutPrefix(filename, "vc"); ok {
		o.Set("backend", "vc")
		if strings.HasPrefix(p, ":") {
			if w, h, ok := scanDims(p[1:], ""); ok {
				o.Set("width", w)
				o.Set("height", h)
			} else if w, h, ok := scanDims(p[1:], "C"); ok {
				o.Set("cols", w)
				o.Set("rows", h)
			} else {
				return nil, errSilent
			}
		}
		return o, nil
	}
	if strings.HasPrefix(filename, "COM") {
		o.Set("backend", "serial")
		o.Set("path", filename)
		return o, nil
	}
	if p, ok := strings.CutPrefix(filename, "file:"); ok {
		o.Set("backend", "file")
		o.Set("path", p)
		return o, nil
	}
	if p, ok := strings.CutPrefix(filename, "pipe:"); ok {
		o.Set("backend", "pipe")
		o.Set("path", p)
		return o, nil
	}
	for _, pfx := range []string{"tcp:", "telnet:", "tn3270:", "websocket:"} {
		p, ok := strings.CutPrefix(filename, pfx)
		if !ok {
			continue
		}
		host, port, rest, ok := scanHostPort(p, ",")
		if !ok {
			return nil, errSilent
		}
		o.Set("backend", "socket")
		o.Set("host", host)
		o.Set("port", port)
		if strings.HasPrefix(rest, ",") {
			if e := s.doParse(o, rest[1:], ""); e != nil {
				return nil, e
			}
		}
		switch pfx {
		case "telnet:":
			o.Set("telnet", "on")
		case "tn3270:":
			o.Set("tn3270", "on")
		case "websocket:":
			o.Set("websocket", "on")
		}
		return o, nil
	}
	if p, ok := strings.CutPrefix(filename, "udp:"); ok {
		o.Set("backend", "udp")
		host, port, rest, ok := scanHostPort(p, "@,")
		if !ok {
			return nil, errSilent
		}
		o.Set("host", host)
		o.Set("port", port)
		if strings.HasPrefix(rest, "@") {
			host, port, _, ok = scanHostPort(rest[1:], ",")
			if !ok {
				return nil, errSilent
			}
			o.Set("localaddr", host)
			o.Set("localport", port)
		}
		return o, nil
	}
	if p, ok := strings.CutPrefix(filename, "unix:"); ok {
		o.Set("backend", "socket")
		if e := s.doParse(o, p, "path"); e != nil {
			return nil, e
		}
		return o, nil
	}
	if strings.HasPrefix(filename, "/dev/parport") || strings.HasPrefix(filename, "/dev/ppi") {
		o.Set("backend", "parallel")
		o.Set("path", filename)
		return o, nil
	}
	if strings.HasPrefix(filename, "/dev/") {
		o.Set("backend", "serial")
		o.Set("path", filename)
		return o, nil
	}
	return nil, newErr(ErrBadValue, "'"+filename+"' is not a valid char driver")
}

// doParse is qemu_opts_do_parse into an existing chardev group (no
// short-form warnings: QEMU passes warn_on_flag=false here).
func (s *parseState) doParse(o *Opts, params, first string) *qerror.Error {
	n, _, _, err := parseOpts(listChardev, params, first != "", false)
	if first != "" {
		n, _, _, err = parseOpts(&optsList{name: "chardev", implied: first, desc: chardevDesc}, params, true, false)
	}
	if err != nil {
		return err
	}
	o.List = append(o.List, n.List...)
	return nil
}

// scanDims is sscanf("%7[0-9]x%7[0-9]") (suffix "") or the C-suffixed form.
func scanDims(p, suf string) (string, string, bool) {
	w := digits(p, 7)
	if w == "" {
		return "", "", false
	}
	p = p[len(w):]
	if !strings.HasPrefix(p, suf+"x") {
		return "", "", false
	}
	p = p[len(suf)+1:]
	h := digits(p, 7)
	if h == "" {
		return "", "", false
	}
	if suf != "" && !strings.HasPrefix(p[len(h):], suf) {
		return "", "", false
	}
	return w, h, true
}

func digits(p string, max int) string {
	i := 0
	for i < len(p) && i < max && p[i] >= '0' && p[i] <= '9' {
		i++
	}
	return p[:i]
}

// scanHostPort is sscanf("%64[^:]:%32[^<stop>]%n") with the ":%32[^<stop>]"
// fallback (empty host).
func scanHostPort(p, stop string) (host, port, rest string, ok bool) {
	i := 0
	for i < len(p) && i < 64 && p[i] != ':' {
		i++
	}
	if i > 0 && i < len(p) && p[i] == ':' {
		j := i + 1
		k := j
		for k < len(p) && k-j < 32 && !strings.ContainsRune(stop, rune(p[k])) {
			k++
		}
		if k > j {
			return p[:i], p[j:k], p[k:], true
		}
	}
	if strings.HasPrefix(p, ":") {
		k := 1
		for k < len(p) && k-1 < 32 && !strings.ContainsRune(stop, rune(p[k])) {
			k++
		}
		if k > 1 {
			return "", p[1:k], p[k:], true
		}
	}
	return "", "", "", false
}
